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
# It ran, but its implementation failed a conformance check on the scenario before it was
# timed (`bench.conformance.gate`): its numbers are shown with the failed check, never ranked,
# charted as fastest or used as the reference of speed-ups.
NON_CONFORMING = "non-conforming"

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
    NON_CONFORMING,
)
NOT_RUN = (SKIPPED, UNSUPPORTED)
# A case stored with one of these has no final record: `--resume` runs it again. Any other
# stored status is final, and is never replaced.
RUN_AGAIN = (INTERRUPTED, DAMAGED)


# What the conformance gate found of a case's implementation on its scenario, before timing.
CONFORMING = "conforming"  # every check passed
UNVERIFIED = "unverified"  # not checked (`bench run --no-check`): flagged wherever it is shown
VERDICTS = (CONFORMING, NON_CONFORMING, UNVERIFIED)


def gated(status: str, verdict: str | None) -> str:
    """The status a case ends with once the gate's verdict is counted: one that ran ok is
    non-conforming when its implementation failed the gate; any other end stays as it is."""
    return NON_CONFORMING if status == OK and verdict == NON_CONFORMING else status


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
