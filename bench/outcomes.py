"""The statuses a case can end with, and how an exception maps to one.

Shared by the suites (which raise), the worker (which classifies) and the runner/results
(which record and show them).
"""

from __future__ import annotations

OK = "ok"
SKIPPED = "skipped"  # a requirement is not installed
UNSUPPORTED = "unsupported"  # the framework cannot express the scenario exactly
FAILED = "failed"  # the plugin raised
DIVERGED = "diverged"  # the loss became NaN or infinite
OUT_OF_MEMORY = "out-of-memory"
TIMEOUT = "timeout"  # killed after the case's time limit
CRASHED = "crashed"  # the worker process died without reporting (segfault, SIGKILL, ...)
INTERRUPTED = "interrupted"  # Ctrl-C; `bench run --resume` runs it again
# Its stored file cannot be read back (truncated, not JSON, fields missing): set by the store
# when reading, never by a worker; `bench run --resume` runs it again.
DAMAGED = "damaged"

STATUSES = (
    OK,
    SKIPPED,
    UNSUPPORTED,
    FAILED,
    DIVERGED,
    OUT_OF_MEMORY,
    TIMEOUT,
    CRASHED,
    INTERRUPTED,
    DAMAGED,
)
NOT_RUN = (SKIPPED, UNSUPPORTED)
# A case stored with one of these has no final record: `--resume` runs it again. Any other
# stored status is final, and is never replaced.
RUN_AGAIN = (INTERRUPTED, DAMAGED)


class Diverged(ArithmeticError):
    """The training loss is no longer a finite number."""


class PluginExit(Exception):
    """A plugin raised SystemExit or KeyboardInterrupt (its `__cause__`). pytest and
    pytest-benchmark treat those as the end of the session, not as a failed test, so the
    suites carry them as this ordinary exception: the case then fails with the plugin's own
    exception as its reason."""


def classify(error: BaseException) -> str:
    if isinstance(error, Diverged):
        return DIVERGED
    if isinstance(error, MemoryError):
        return OUT_OF_MEMORY
    return FAILED
