"""The one way the harness starts a process of its own: a case's worker, the peak probe, the
conformance suite's thread probe (`run_python`, to their end); a serving case's server and
load generator (`start_program`, in the background).

Each child gets the same environment: thread caps for every known pool set before it imports
anything (`threads.thread_environment`), unbuffered output, TensorFlow's start-up chatter
off, and this harness importable. It runs in a session of its own, so that Ctrl-C reaches
the harness, which then kills the child's whole process group: a child never outlives the
command that started it, and nothing it started does either.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn, TypeVar

from bench.execution import threads

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")
R = TypeVar("R")
# The children `run_python` is waiting for, so that `kill_running` can end those that other
# threads of this process wait for (the gate's lanes) when Ctrl-C reaches the main thread.
_RUNNING: set[subprocess.Popen] = set()


@dataclass(frozen=True)
class Finished:
    """How a child ended: its exit code (negative: killed by that signal), or None when it
    was killed at its deadline; its output when it was captured."""

    returncode: int | None
    stdout: str = ""
    stderr: str = ""

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def environment(thread_count: int, python_path: Iterable[str] = ()) -> dict[str, str]:
    """The environment of a child limited to `thread_count` threads."""
    paths = [str(PACKAGE_ROOT), *python_path, os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        **threads.thread_environment(thread_count),
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(p for p in paths if p)),
    }


def run_python(
    arguments: Sequence[str],
    *,
    threads: int,
    timeout: float,
    cwd: Path | None = None,
    log: IO[bytes] | None = None,
    python_path: Iterable[str] = (),
) -> Finished:
    """Run `python ARGUMENTS` to its end or its deadline. Its output goes to `log` (stdout
    and stderr together) or, without one, is captured and returned. Any exception here,
    Ctrl-C included, kills the child's process group before it propagates."""
    capture = log is None
    process = subprocess.Popen(
        [sys.executable, *arguments],
        cwd=cwd,
        stdout=subprocess.PIPE if capture else log,
        stderr=subprocess.PIPE if capture else subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=environment(threads, python_path),
        start_new_session=True,
        text=capture,
        errors="replace" if capture else None,
    )
    _RUNNING.add(process)
    try:
        if capture:
            stdout, stderr = process.communicate(timeout=timeout)
            return Finished(process.returncode, stdout, stderr)
        return Finished(process.wait(timeout=timeout))
    except subprocess.TimeoutExpired:
        _kill_group(process)
        stdout, stderr = process.communicate() if capture else ("", "")
        return Finished(None, stdout or "", stderr or "")
    except BaseException:
        _kill_group(process)
        raise
    finally:
        _RUNNING.discard(process)


def kill_running() -> None:
    """Kill every child `run_python` is still waiting for, in any thread: each wait then
    returns the child's death (a negative exit code)."""
    for process in list(_RUNNING):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def in_parallel(work: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[T, R]]:
    """`(item, work(item))` for each item, as each finishes, with as many running at once as
    this process may use cores: for work that waits on a child of `run_python` (the gate's
    checks, the plugins' import probes), none of which measures anything. An exception, Ctrl-C
    included, kills the children still running before it propagates."""
    lanes = max(1, min(len(items), threads.available_cores()))
    with concurrent.futures.ThreadPoolExecutor(lanes, thread_name_prefix="lane") as pool:
        running = {pool.submit(work, item): item for item in items}
        try:
            for done in concurrent.futures.as_completed(running):
                yield running[done], done.result()
        except BaseException:
            for future in running:
                future.cancel()
            while not all(future.done() for future in running):  # one may be starting its child
                kill_running()
                concurrent.futures.wait(running, timeout=0.1)
            raise


def exit_child(code: int) -> NoReturn:
    """End a child the harness started, once it has written what it found: run the atexit
    handlers (a plugin's clean-up, logging's flush) and leave without the interpreter's
    teardown of every module it imported. That teardown measured 1.0 s after importing
    TensorFlow and 0.5 s after torch, against 0.1 s this way, in every worker of every case."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def start_program(
    command: Sequence[str], *, threads: int, log: IO[bytes], cwd: Path | None = None
) -> subprocess.Popen:
    """Start `command` (a harness program, Python or compiled) in the background with the
    environment of `threads`; its stdout is a pipe to read, its stderr goes to `log`. It
    stays in this process's group, so that killing a case's worker group (the runner does, at
    the case's deadline or on Ctrl-C) kills it too; the program itself asks the kernel to kill
    it when this process dies."""
    return subprocess.Popen(
        list(command),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        env=environment(threads),
    )


def _kill_group(process: subprocess.Popen) -> None:
    """Kill the child and everything it started, and reap it.

    Not `process.wait()`: a Ctrl-C landing inside `Popen.wait(timeout)` can leave Popen's
    internal lock held, and a second wait would then block forever."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    try:
        _, status = os.waitpid(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    except ChildProcessError:
        pass  # already reaped


def signal_name(returncode: int) -> str:
    """`SIGKILL` for -9: what killed a child that exited with a negative code."""
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"
