"""What competed with a round for the CPU: run-queue wait and involuntary context switches of
the worker's threads, other processes' CPU, steal time and the load average.

Everything is read at a round's edges (the end of its untimed setup, the start of its
untimed teardown) and, for the worker's own counters, at the training clock's pause points
(`measure.TrainingClock.paused`), never per training step: a round pays for a few reads of
/proc, outside its timed part.

A round is *disturbed* when its threads waited on a run queue, ready to run but without a
CPU, for more than `records.DISTURBED_WAIT_SHARE` of its wall time (docs/measurement.md,
"Contention", says how that share was chosen: tests/calibration/contention.py measures it).
"""

from __future__ import annotations

import math
import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.records import DISTURBED_WAIT_SHARE

_TASKS = Path("/proc/self/task")


def run_queue_wait() -> float:
    """Seconds the live threads of this process have spent ready to run but waiting for a CPU
    (the second field of /proc/self/task/*/schedstat, in nanoseconds), summed over threads;
    NaN where the kernel does not provide it. A thread that has exited takes its wait with it."""
    total = 0
    try:
        tasks = os.listdir(_TASKS)
    except OSError:
        return math.nan
    for task in tasks:
        try:
            with open(_TASKS / task / "schedstat", "rb") as stat:
                total += int(stat.read().split()[1])
        except FileNotFoundError:
            continue  # the thread ended between listing and reading
        except (OSError, IndexError, ValueError):
            return math.nan
    return total / 1e9


def usage() -> tuple[float, int]:
    """(user + system CPU seconds, involuntary context switches) of this process, every thread
    included, ended ones too: one getrusage call."""
    now = resource.getrusage(resource.RUSAGE_SELF)
    return now.ru_utime + now.ru_stime, now.ru_nivcsw


@dataclass(frozen=True)
class Snapshot:
    """The counters at one edge of a round. `waited` and `switches` leave out the training
    clock's pauses; the others run on whatever happens."""

    elapsed: float  # time.perf_counter()
    own_cpu: float  # this process's CPU seconds
    waited: float  # run-queue wait of this process's threads, pauses left out
    switches: int  # involuntary context switches, pauses left out
    system_busy: float  # CPU seconds of every process, every CPU (/proc/stat)
    steal: float  # seconds stolen by the hypervisor, every CPU


def system_times() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine, summed over CPUs, since boot. Busy is
    user, nice, system, irq and softirq: neither idle, I/O wait nor steal."""
    try:
        times = psutil.cpu_times()
    except (OSError, RuntimeError):
        return math.nan, math.nan
    busy = sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))
    return busy, getattr(times, "steal", 0.0)


def snapshot(waited: float, switches: int) -> Snapshot:
    """The counters now; `waited` and `switches` are the training clock's (pauses excluded)."""
    busy, steal = system_times()
    return Snapshot(time.perf_counter(), usage()[0], waited, switches, busy, steal)


def measured(start: Snapshot, stop: Snapshot, wall: float, cpu: float) -> dict:
    """The contention fields of a RoundRecord for a round of training time `wall` and CPU
    time `cpu`, whose edges are `start` and `stop`. The wait share is the run-queue wait of the
    worker's threads over the time they wanted a CPU, waiting or running (wait + CPU): for one
    busy thread, the share of the round's wall time it waited; for several, the share of
    their thread time; threads that sleep (an idle pool) do not dilute it."""
    waited = stop.waited - start.waited
    demand = waited + cpu
    share = waited / demand if demand > 0 and math.isfinite(waited) else math.nan
    span = stop.elapsed - start.elapsed
    # /proc/stat counts in clock ticks (10 ms): over a short round this is coarse.
    others = (stop.system_busy - start.system_busy) - (stop.own_cpu - start.own_cpu)
    return {
        "run_queue_wait_seconds": waited,
        "involuntary_switches": stop.switches - start.switches,
        "wait_share": share,
        "disturbed": bool(share > DISTURBED_WAIT_SHARE) if math.isfinite(share) else None,
        "other_cpu_cores": max(0.0, others / span) if span > 0 else math.nan,
        "steal_seconds": max(0.0, stop.steal - start.steal),
        "load_average": os.getloadavg()[0],
    }
