"""The wall time of a one-case `bench run`, measuring the machine's peak (as every run did
before the peak was cached) and taking it from the cache.

    python tests/calibration/peak_cache_timing.py [--repeat 5] [--scenario dlfs-mlp]
        [--impl numpy-vectorized] [--profile quick] [--dataset mnist-5k]

Alternates `bench run ... --remeasure-peak` (before) and `bench run ...` with the peak
cached (after), `--repeat` times each, in a cache file of its own (the user's is left alone),
and prints each wall time, the medians and their difference. Run it on an idle machine; it
prints the load average around every run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.execution import peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scenario", default="dlfs-mlp")
    parser.add_argument("--impl", default="numpy-vectorized")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--dataset", help="e.g. mnist-5k (default: the scenario's)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="peak-timing-"))
    env = {**os.environ, peak.CACHE_ENV: str(root / "peak.json")}
    command = [sys.executable, "-m", "bench.cli", "run", "--profile", args.profile]
    command += ["--scenario", args.scenario, "--impl", args.impl]
    command += ["--dataset", args.dataset] if args.dataset else []
    times: dict[str, list[float]] = {"measured (before)": [], "cached (after)": []}
    for index in range(args.repeat):
        for label, extra in (("measured (before)", ["--remeasure-peak"]), ("cached (after)", [])):
            results = root / f"{index}-{len(times[label])}-{label.split()[0]}"
            before = os.getloadavg()[0]
            started = time.perf_counter()
            done = subprocess.run(
                [*command, *extra, "--results-dir", str(results)],
                capture_output=True,
                text=True,
                env=env,
            )
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                sys.exit(f"bench run failed:\n{done.stdout}\n{done.stderr}")
            times[label].append(seconds)
            print(f"{label:18} {seconds:6.1f} s  load {before:.2f} -> {os.getloadavg()[0]:.2f}")
    medians = {label: statistics.median(values) for label, values in times.items()}
    for label, value in medians.items():
        print(f"median, peak {label}: {value:.1f} s")
    saved = medians["measured (before)"] - medians["cached (after)"]
    print(f"saved per run by the cache: {saved:.1f} s")


if __name__ == "__main__":
    main()
