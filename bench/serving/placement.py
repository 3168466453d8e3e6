"""Which cores a serving case's server and its load generator run on.

The load generator gets cores of its own wherever the machine has two or more, so that its
work never takes the server's CPU: the last quarter of the cores this process may use (at
least one), the server the others (at most the case's thread count). On a one-core machine
both share it, and the case says so (`ServerRecord.shared_core`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    server: tuple[int, ...]
    generator: tuple[int, ...]


def allowed_cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def place(threads: int, cores: Sequence[int] | None = None) -> Placement:
    """The server's and the load generator's cores, out of `cores` (default: this process's)."""
    cores = sorted(cores if cores is not None else allowed_cores())
    if len(cores) < 2:
        return Placement(tuple(cores), tuple(cores))
    generator = cores[-max(1, len(cores) // 4) :]
    server = cores[: len(cores) - len(generator)][: max(1, threads)]
    return Placement(tuple(server), tuple(generator))


def server_threads(threads: int, cores: Sequence[int] | None = None) -> int:
    """The thread count a serving case runs its server with: the cores it gets."""
    return len(place(threads, cores).server)


def cpu_list(cpus: Sequence[int]) -> str:
    """`0,1`: the form the servers' and the generator's `--cpus` take."""
    return ",".join(map(str, cpus))
