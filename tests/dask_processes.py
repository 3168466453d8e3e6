"""A real Dask cluster for the tests: a scheduler and workers, each a process of its own on
127.0.0.1 (free ports), started with the `dask` command a user runs. Every process runs in a
session of its own and is killed with its group when the block ends, however it ends."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

DASK = str(Path(sys.executable).parent / "dask")
START_TIMEOUT_S = 90.0


@dataclass
class Cluster:
    folder: Path
    address: str = ""
    scheduler: subprocess.Popen | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)

    def start_worker(self, name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """A worker without a nanny (killed, it stays dead), one thread, no dashboard."""
        command = [DASK, "worker", self.address, "--nthreads", "1", "--no-nanny"]
        command += ["--host", "127.0.0.1", "--no-dashboard", "--name", name]
        command += ["--death-timeout", "60", "--local-directory", str(self.folder / name)]
        worker = _start(command, self.folder / f"{name}.log", env)
        self.workers.append(worker)
        return worker

    def wait_for_workers(self, count: int) -> dict[int, str]:
        """Wait until `count` workers are connected; their addresses by process id."""
        from distributed import Client

        with Client(self.address, timeout=START_TIMEOUT_S, set_as_default=False) as client:
            client.wait_for_workers(count, timeout=START_TIMEOUT_S)
            return {pid: address for address, pid in client.run(os.getpid).items()}

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
            for log in sorted(self.folder.glob("*.log"))
        )


@contextlib.contextmanager
def dask_cluster(folder: Path, env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """A scheduler on 127.0.0.1 (no workers yet: `start_worker`), torn down at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(folder)
    address_file = folder / "scheduler.json"
    try:
        cluster.scheduler = _start(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(address_file)],
            folder / "scheduler.log",
            env,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while not cluster.address:
            with contextlib.suppress(OSError, ValueError, KeyError):
                cluster.address = json.loads(address_file.read_text())["address"]
            if cluster.scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the scheduler did not start:\n{cluster.logs()}")
            time.sleep(0.2)
        yield cluster
    finally:
        for process in [*cluster.workers, cluster.scheduler]:
            if process is not None:
                stop(process)


def _start(command: list[str], log: Path, env: dict[str, str] | None) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )


def stop(process: subprocess.Popen) -> None:
    """Kill a process and its group, and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
