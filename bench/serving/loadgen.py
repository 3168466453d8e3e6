"""Load levels, and one level run: the load generator (`bench-loadgen`, on tonic's client,
built from bench/serving/rust) against a server, killed if it overruns its level, its JSON
read back.

Why a generator of our own rather than ghz, the field's gRPC load tool: an open loop here
starts requests at Poisson arrival times and measures each from its *intended* start (no
coordinated omission); ghz paces a constant rate and measures from the actual send, and its
summary stops at p99. One program for both kinds of level keeps closed and open levels on
the same client stack, with the same HDR histogram (p99.9 and max included) and the same
count of its own CPU time, and needs no Go toolchain.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.execution import launcher
from bench.scenarios import ServingLoad
from bench.serving import servers
from bench.serving.placement import cpu_list

CLOSED, OPEN = "closed", "open"
# HTTP/2 connections a level's requests are spread over: one per request in flight, up to
# this many (a closed loop at 64 shares 4); an open loop uses as many.
MAX_CONNECTIONS = 4
# Beyond its own seconds and the requests' deadline: starting, connecting, printing.
GRACE_S = 10.0


@dataclass(frozen=True)
class LoadLevel:
    batch: int
    mode: str  # CLOSED or OPEN
    concurrency: int | None  # closed loop
    rate: float | None  # open loop: offered requests/s, Poisson arrivals
    seconds: float
    max_requests: int
    deadline_s: float

    @property
    def connections(self) -> int:
        return min(self.concurrency or MAX_CONNECTIONS, MAX_CONNECTIONS)

    def describe(self) -> str:
        load = (
            f"closed loop, {self.concurrency} in flight"
            if self.mode == CLOSED
            else f"open loop at {self.rate:g} requests/s"
        )
        return f"batch {self.batch}, {load}"


def levels(load: ServingLoad) -> list[LoadLevel]:
    """A request size's levels: the closed-loop concurrencies, then the open-loop rates, in
    increasing load, so that a server overloaded at the end has measured everything below."""
    common = {
        "batch": load.batch,
        "seconds": load.seconds_per_level,
        "max_requests": load.max_requests_per_level,
        "deadline_s": load.deadline_s,
    }
    closed = [
        LoadLevel(mode=CLOSED, concurrency=c, rate=None, **common) for c in load.concurrencies
    ]
    opened = [LoadLevel(mode=OPEN, concurrency=None, rate=r, **common) for r in load.rates]
    return closed + opened


def warmup(load: ServingLoad) -> LoadLevel:
    """Sent before a request size's levels and not recorded: connections, caches and lazy
    initialisation (a framework's first call) are paid here."""
    return LoadLevel(
        load.batch, CLOSED, 1, None, load.seconds_per_level, load.warmup_requests, load.deadline_s
    )


class GeneratorFailed(Exception):
    """The load generator failed or overran its level; the message says how."""


def command(level: LoadLevel, *, port: int, queries: Path, features: int, cpus, seed: int):
    arguments = [
        str(servers.program(servers.LOAD_GENERATOR)),
        "--target", f"127.0.0.1:{port}",
        "--queries", str(queries),
        "--features", str(features),
        "--batch", str(level.batch),
        "--mode", level.mode,
        "--seconds", repr(level.seconds),
        "--max-requests", str(level.max_requests),
        "--deadline-ms", str(round(level.deadline_s * 1000)),
        "--connections", str(level.connections),
        "--seed", str(seed),
        *(["--cpus", cpu_list(cpus)] if cpus else []),
    ]  # fmt: skip
    if level.mode == CLOSED:
        return [*arguments, "--concurrency", str(level.concurrency)]
    return [*arguments, "--rate", repr(float(level.rate))]


def run(level: LoadLevel, *, log: IO[bytes], **where) -> dict:
    """Run one level; its JSON report (see bench/serving/rust/src/bin/loadgen.rs)."""
    arguments = command(level, **where)
    limit = level.seconds + level.deadline_s + GRACE_S
    process = launcher.start_program(arguments, threads=len(where["cpus"]), log=log)
    try:
        stdout, _ = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        _kill(process)
        raise GeneratorFailed(f"the load generator did not finish within {limit:g} s") from None
    except BaseException:
        _kill(process)
        raise
    if process.returncode != 0:
        raise GeneratorFailed(
            f"the load generator {servers.ended(process.returncode)} (its message is in the "
            "case's log)"
        )
    try:
        return json.loads(stdout)
    except ValueError:
        raise GeneratorFailed(f"the load generator printed {stdout[:200]!r}, not JSON") from None


def _kill(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    process.wait()
