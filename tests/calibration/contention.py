"""Measures what the disturbed threshold (`bench.records.DISTURBED_WAIT_SHARE`) separates: the
wait share of rounds run alone, and beside deliberate CPU hogs.

    python tests/calibration/contention.py [--rounds 8] [--profile smoke] [--hogs 0,1,2]
        [--case dlfs-mlp:numpy-vectorized --case ...]

For each number of hogs (busy-looping processes, one per core at most, each ending by itself
after --hog-seconds and killed when its condition is done), it runs the cases with `bench run`
(offline, mnist-5k, no peak) and prints, per case and condition, the distribution of the
rounds' wait share (run-queue wait of the worker's threads over the time they wanted a CPU), the
other processes' CPU and the median time. Before each condition it says how busy the machine
already was (`bench doctor`'s sample), since "alone" means something only on a quiet machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil

DEFAULT_CASES = (
    "dlfs-mlp:numpy-vectorized",  # OpenBLAS, every core
    "dlfs-mlp:numpy-pure",  # one Python thread
    "tch-mlp:torch",  # torch's pools
    "tch-mlp:keras",  # TensorFlow's many threads
    "linfa-kmeans:sklearn",  # short rounds
)
THRESHOLDS = (0.05, 0.10, 0.20, 0.30)
WORKER = "bench.execution.worker"
HOG = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


@contextlib.contextmanager
def cpu_hogs(count: int, seconds: float, boost: int = 0) -> Iterator[list[subprocess.Popen]]:
    """`count` processes that keep a core busy each, for at most `seconds` (they stop by
    themselves), killed and reaped when the block ends, however it ends. Each runs in a
    session of its own, like a job started elsewhere (a case's worker does too); `boost`,
    if not 0, is the niceness given to their sessions' scheduling groups."""
    hogs = [
        subprocess.Popen(
            [sys.executable, "-c", HOG.format(seconds=seconds)], start_new_session=True
        )
        for _ in range(count)
    ]
    try:
        for hog in hogs:
            if boost:
                set_group_niceness(hog.pid, boost)
        time.sleep(0.2 if hogs else 0)  # running before the case starts
        yield hogs
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()


def set_group_niceness(pid: int, niceness: int) -> None:
    """With autogroup scheduling (Linux's default on desktops), `nice` ranks a process only
    inside its session's group; the group's own niceness is /proc/PID/autogroup's."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(str(niceness))


@contextlib.contextmanager
def boosting_workers(niceness: int) -> Iterator[None]:
    """While the block runs, give every case worker that starts the group niceness
    `niceness` (a worker runs in a session of its own), before its rounds begin."""
    stop = threading.Event()
    done: set[int] = set()

    def watch() -> None:
        while not stop.wait(0.05):
            for process in psutil.process_iter(["pid", "cmdline"]):
                if process.pid not in done and WORKER in " ".join(process.info["cmdline"] or ()):
                    set_group_niceness(process.pid, niceness)
                    done.add(process.pid)

    watcher = threading.Thread(target=watch, daemon=True)
    if niceness:
        watcher.start()
    try:
        yield
    finally:
        stop.set()
        if niceness:
            watcher.join()


def run_case(case: str, rounds: int, profile: str, results: Path, more=()) -> list[dict]:
    """`bench run` of one case (SCENARIO:IMPLEMENTATION), with `more` options; its measured
    rounds."""
    scenario, implementation = case.split(":")
    command = [
        *(sys.executable, "-m", "bench.cli", "run", "--profile", profile),
        *("--rounds", str(rounds), "--dataset", "mnist-5k", "--offline", "--no-peak"),
        *("--scenario", scenario, "--impl", implementation, "--results-dir", str(results)),
        *more,
    ]
    subprocess.run(command, check=True, capture_output=True, text=True)
    (run,) = [p for p in results.iterdir() if (p / "run.json").is_file()]
    (path,) = (run / "cases").glob("*.json")
    return [r for r in json.loads(path.read_text())["rounds"] if not r["warmup"]]


def others_now(seconds: float = 1.0) -> float:
    from bench.execution import doctor

    _, others, _, elapsed = doctor.busy_processes(seconds)
    return others / elapsed


def describe(rounds: list[dict]) -> str:
    shares = np.array([r.get("wait_share", np.nan) for r in rounds], dtype=float)
    shares = shares[np.isfinite(shares)]
    if not shares.size:
        return "no round recorded a wait share"
    others = np.nanmedian([r.get("other_cpu_cores", np.nan) for r in rounds])
    wall = np.median([r["wall_seconds"] for r in rounds])
    above = " ".join(f">{t:.0%}: {np.mean(shares > t):4.0%}" for t in THRESHOLDS)
    return (
        f"n={shares.size:3d}  wait share min {shares.min():6.1%}  median "
        f"{np.median(shares):6.1%}  p90 {np.percentile(shares, 90):6.1%}  max "
        f"{shares.max():6.1%}  | {above}  | others {others:4.2f} cores  time {wall:.3g} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--hogs", default="0,1,2", help="hog counts, comma-separated")
    parser.add_argument("--hog-seconds", type=float, default=900)
    parser.add_argument("--case", action="append", help="SCENARIO:IMPLEMENTATION")
    parser.add_argument("--plugins", help="a folder of more implementations (bench run --plugins)")
    parser.add_argument("--threads", help="thread count of every case (default: all cores)")
    parser.add_argument(
        "--boost",
        type=int,
        default=0,
        metavar="NICENESS",
        help="scheduling-group niceness for this script, the cases' workers and the hogs "
        "alike (root only, e.g. -20): on a machine that others keep busy, they then outrank "
        "the others, which approximates a quiet machine while they still compete with each "
        "other; the others wait meanwhile, so use it only where that is acceptable",
    )
    args = parser.parse_args()
    cases = args.case or list(DEFAULT_CASES)
    if args.boost:
        set_group_niceness(os.getpid(), args.boost)  # `bench run` too, in this session
    more = ["--plugins", args.plugins] if args.plugins else []
    more += ["--threads", args.threads] if args.threads else []
    by_condition = {}
    for count in (int(n) for n in args.hogs.split(",")):
        print(f"{count} hog(s): other processes use {others_now():.2f} cores before", flush=True)
        hogs = cpu_hogs(count, args.hog_seconds, args.boost)
        with tempfile.TemporaryDirectory() as results, hogs, boosting_workers(args.boost):
            by_condition[count] = {
                case: run_case(case, args.rounds, args.profile, Path(results) / str(index), more)
                for index, case in enumerate(cases)
            }
    for case in cases:
        print(f"\n{case}")
        for count, found in by_condition.items():
            print(f"  {count} hog(s)  {describe(found.get(case, []))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
