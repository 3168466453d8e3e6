"""The servers a serving case can run, how each starts, and what it costs while it runs.

- The harness's grpcio server (`python_server`) hosts any clusterer: the case's
  implementation is a plugin's name (`sklearn`, `linfa`, ...).
- A Rust server is a program of its own, named in `RUST_SERVERS` (`linfa-tonic`: linfa on
  tonic, the article's third setup).

Both print `LISTENING <port>` once they accept requests. Their CPU time and peak memory come
from their own process (/proc), read between load levels.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import psutil

from bench.execution import environment, launcher
from bench.records import Case
from bench.serving.placement import cpu_list

GRPCIO = "grpcio"
TONIC = "tonic"
# How a server's CPU time is read (RunningServer.cpu_clock).
SCHEDSTAT = "schedstat (ns)"
TICKS = "/proc stat (10 ms ticks)"
LOAD_GENERATOR = "bench-loadgen"
READY = "LISTENING"
PROBE_SAMPLE_S = 0.05
RUST_HINT = (
    "install Rust (cargo) from https://rustup.rs, then run `make setup`, which builds "
    "bench/serving/rust"
)


@dataclass(frozen=True)
class RustServer:
    name: str  # the implementation name its cases carry
    program: str
    framework: str
    serves: str  # the crate whose predict it serves, as the Python implementation is named


RUST_SERVERS = {
    server.name: server
    for server in (
        RustServer("linfa-tonic", "linfa-tonic-server", "linfa on tonic (Rust)", "linfa"),
    )
}


def kind_of(case: Case) -> str:
    return TONIC if case.implementation in RUST_SERVERS else GRPCIO


def serves(case: Case) -> str:
    """The implementation whose predict the case's server serves."""
    rust = RUST_SERVERS.get(case.implementation)
    return rust.serves if rust else case.implementation


def program(name: str) -> Path:
    return environment.rust_program_dir() / name


def missing_program(name: str) -> str | None:
    """Why the compiled program `name` cannot run here, or None."""
    if program(name).is_file():
        return None
    return f"{name} is not built: {RUST_HINT}"


def server_command(case: Case, case_file: Path, model: Path, cpus: tuple[int, ...]) -> list[str]:
    where = ["--model", str(model), "--port", "0", *(["--cpus", cpu_list(cpus)] if cpus else [])]
    if kind_of(case) == TONIC:
        return [str(program(RUST_SERVERS[case.implementation].program)), *where]
    return [sys.executable, "-m", "bench.serving.python_server", str(case_file), *where]


@dataclass(frozen=True)
class Probe:
    """One request sent to see whether a server answers, and what it did meanwhile."""

    error: Exception | None  # None: answered
    cpu_seconds: float
    runnable_share: float  # of the samples, those in which a thread of it was ready to run

    @property
    def timed_out(self) -> bool:
        import grpc

        code = getattr(self.error, "code", lambda: None)()
        return isinstance(self.error, TimeoutError) or code == grpc.StatusCode.DEADLINE_EXCEEDED

    @property
    def status(self) -> str:
        """`deadline-exceeded`, `unavailable`: how it failed, in the load generator's words."""
        code = getattr(self.error, "code", lambda: None)()
        return code.name.lower().replace("_", "-") if code else type(self.error).__name__


class ServerFailed(Exception):
    """The server did not start, died, or stopped answering; the message says which."""


def ended(returncode: int) -> str:
    """How a process ended, in words: "exited with code 1", "killed by SIGKILL"."""
    if returncode < 0:
        return f"killed by {launcher.signal_name(returncode)}"
    return f"exited with code {returncode}"


class RunningServer:
    """A started server: its port, and its costs read from its process."""

    def __init__(self, process, port: int, start_seconds: float) -> None:
        self.process = process
        self.port = port
        self.start_seconds = start_seconds
        self._ps = psutil.Process(process.pid)
        self._channel = None

    @property
    def exit_reason(self) -> str | None:
        """How it ended, or None while it runs."""
        code = self.process.poll()
        return None if code is None else ended(code)

    def cpu_seconds(self) -> float:
        """CPU seconds of the server process, every thread included: from each thread's
        scheduler statistics (nanoseconds) where the kernel keeps them, else from
        /proc/<pid>/stat (user + system, in clock ticks of 10 ms)."""
        if self.cpu_clock == SCHEDSTAT:
            with contextlib.suppress(OSError, ValueError):
                return _schedstat_seconds(self.process.pid)
        times = self._ps.cpu_times()
        return times.user + times.system

    @functools.cached_property
    def cpu_clock(self) -> str:
        """How `cpu_seconds` is measured: SCHEDSTAT, or TICKS where the kernel's scheduler
        statistics read zero (some virtual machines) or are missing."""
        try:
            return SCHEDSTAT if _schedstat_seconds(self.process.pid) > 0 else TICKS
        except (OSError, ValueError):
            return TICKS

    def runnable_threads(self) -> int:
        """Its threads ready to run or running now: a server starved of CPU by other work has
        some; a hung one, every thread asleep, has none."""
        runnable = 0
        for stat in Path(f"/proc/{self.process.pid}/task").glob("*/stat"):
            with contextlib.suppress(OSError, IndexError):  # a thread that just ended
                # the state follows the command name, which is in parentheses
                runnable += stat.read_text().rsplit(")", 1)[1].split()[0] == "R"
        return runnable

    def reset_peak(self) -> bool:
        """Reset the kernel's high-water mark of its resident memory (VmHWM); False where the
        kernel does not allow it (the peak is then the memory at the level's end)."""
        try:
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def peak_rss(self) -> int:
        """Its resident memory's high-water mark since the last reset."""
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return self.rss()

    def rss(self) -> int:
        return self._ps.memory_info().rss

    def predict(self, x: np.ndarray, timeout: float) -> np.ndarray:
        """The server's labels of the rows of `x` (grpc.RpcError when it does not answer)."""
        answer = self._predict_future(x, timeout).result()
        return np.asarray(answer.labels, dtype=np.int64)

    def probe(self, x: np.ndarray, timeout: float) -> Probe:
        """Ask for the labels of `x`, watching the server while waiting: the CPU it used and
        how often one of its threads was ready to run."""
        cpu, samples, runnable = self.cpu_seconds(), 0, 0
        future = self._predict_future(x, timeout)
        while not future.done():
            samples += 1
            runnable += self.runnable_threads() > 0
            time.sleep(PROBE_SAMPLE_S)
        return Probe(
            error=future.exception(),
            cpu_seconds=self.cpu_seconds() - cpu if self.exit_reason is None else 0.0,
            runnable_share=runnable / samples if samples else 0.0,
        )

    def _predict_future(self, x: np.ndarray, timeout: float):
        import grpc

        from bench.serving import protocol

        if self._channel is None:
            self._channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        _, services = protocol.protocol()
        stub = services.KMeansStub(self._channel)
        return stub.Predict.future(protocol.points(x), timeout=timeout)

    def stop(self) -> None:
        """Kill it and reap it."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _schedstat_seconds(pid: int) -> float:
    """The summed run time of every thread of `pid` (the first field of each schedstat)."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            total += int(stat.read_text().split()[0])
    return total / 1e9


def start(command: list[str], *, threads: int, log: IO[bytes], timeout: float) -> RunningServer:
    """Start a server and wait until it listens; ServerFailed (after killing it) when it
    exits first or does not listen within `timeout` seconds."""
    started = time.perf_counter()
    process = launcher.start_program(command, threads=threads, log=log)
    try:
        line = _first_line(process, deadline=started + timeout)
        word, _, port = line.partition(" ")
        if word != READY or not port.strip().isdigit():
            reason = process.poll()
            if reason is not None:
                raise ServerFailed(f"the server {ended(reason)} before listening")
            if not line:
                raise ServerFailed(f"the server did not listen within {timeout:g} s")
            raise ServerFailed(f"the server said {line!r} instead of '{READY} <port>'")
        return RunningServer(process, int(port), time.perf_counter() - started)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()
        raise


def _first_line(process, deadline: float) -> str:
    """The first line the process writes to its stdout, or "" at its end or the deadline."""
    pipe = process.stdout.fileno()
    read = b""
    while b"\n" not in read:  # one line is all a server writes there
        remaining = deadline - time.perf_counter()
        if remaining <= 0 or not select.select([pipe], [], [], remaining)[0]:
            return ""
        chunk = os.read(pipe, 4096)
        if not chunk:
            if process.poll() is None:  # closed its stdout: wait for the exit it announces
                with contextlib.suppress(Exception):
                    process.wait(timeout=max(0.0, deadline - time.perf_counter()))
            return ""
        read += chunk
    return read.split(b"\n", 1)[0].decode(errors="replace").strip()
