"""How often `bench compare --fail-above 5%` cries wolf, and how small a slow-down it catches.

    python tests/calibration/compare_noise.py [--pairs 10] [--detect-pairs 5]
        [--scenario dlfs-mlp] [--impl numpy-vectorized] [--slowdowns 2,5,10,20] [--profile quick]

1. False alarms: `--pairs` pairs of identical `bench run`s of one case (the quick profile,
   each case in its worker processes as the profile says), each pair compared with
   `--fail-above`: how many cases flag a regression (or an improvement) that is not there.
   `--impl a,b,c` runs several cases per run: the noise between processes is then pooled
   over them, as in a run of the whole matrix, and the intervals are narrower.
2. Detection: a CPU-bound NumPy trainer (the `workload` plugin written by this script: the
   matrix products of a DLFS-sized MLP step) that sleeps `BENCH_SLOWDOWN` x the time each of
   its `train` calls took. Per pair, a run without slow-down is compared with one run per
   slow-down level (and with a second run without it: more false alarms). The smallest level
   flagged in every pair is the smallest slow-down reliably detected.

Run it on an otherwise idle machine: it prints the load average before and after every run,
and the largest it saw. Nothing else should run meanwhile (no builds, no tests, no browser).
Each `bench run` takes seconds to a minute; the defaults make about 50 runs.
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

from bench.analysis import compare
from bench.store import RunStore

WORKLOAD = '''
import os
import time

import numpy as np

from bench.api import Trainer, register


@register
class Workload(Trainer):
    """The matrix products of a DLFS-sized MLP step (100 x 784 x 50 x 10), then a sleep of
    BENCH_SLOWDOWN times what they took: a slow-down of known size."""

    name, model, framework = "workload", "mlp", "numpy"

    def load(self, x_train, y_train):
        rng = np.random.default_rng(self.seed)
        self.x = np.ascontiguousarray(x_train[:100].reshape(100, -1), dtype=np.float32)
        self.w1 = rng.standard_normal((self.x.shape[1], 50)).astype(np.float32)
        self.w2 = rng.standard_normal((50, 10)).astype(np.float32)

    def train(self, steps):
        started = time.perf_counter()
        for _ in range(steps):
            hidden = self.x @ self.w1
            out = hidden @ self.w2
            grad_hidden = out @ self.w2.T
            self.w1 -= 1e-9 * (self.x.T @ grad_hidden)
            self.w2 -= 1e-9 * (hidden.T @ out)
        time.sleep(float(os.environ.get("BENCH_SLOWDOWN", "0")) * (time.perf_counter() - started))
        return 0.0

    def predict(self, x):
        return np.zeros(len(x), dtype=np.int64)

    def parameters(self):
        return dict(self.initial_parameters)
'''


def load() -> float:
    return os.getloadavg()[0]


class Runner:
    def __init__(self, root: Path, profile: str, dataset: str | None) -> None:
        self.root, self.profile, self.dataset = root, profile, dataset
        self.loads: list[float] = []
        self.count = 0

    def run(self, *options: str, slowdown: float = 0.0) -> RunStore:
        """One `bench run`; returns its stored run."""
        self.count += 1
        results = self.root / f"run-{self.count:03d}"
        command = [sys.executable, "-m", "bench.cli", "run", "--profile", self.profile]
        command += ["--no-peak", "--results-dir", str(results), *options]
        if self.dataset:
            command += ["--dataset", self.dataset]
        before = load()
        started = time.perf_counter()
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, "BENCH_SLOWDOWN": str(slowdown)},
        )
        after = load()
        self.loads += [before, after]
        if done.returncode != 0:
            sys.exit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
        (run,) = [p for p in results.iterdir() if (p / "run.json").is_file()]
        print(
            f"  run {self.count:3d}: {time.perf_counter() - started:5.1f} s, load {before:.2f} "
            f"-> {after:.2f}{', slow-down ' + format(slowdown, '.0%') if slowdown else ''}",
            flush=True,
        )
        return RunStore(run)


def verdicts(
    baseline: RunStore, candidate: RunStore, threshold: float
) -> list[compare.CaseComparison]:
    return compare.compare_runs(baseline, candidate, threshold).cases


def show(result: compare.CaseComparison) -> str:
    return (
        f"  {result.implementation:18} change {result.ratio - 1:+.1%} "
        f"({result.low - 1:+.1%} … {result.high - 1:+.1%}): {result.verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10, help="identical pairs (false alarms)")
    parser.add_argument("--detect-pairs", type=int, default=5, help="pairs per slow-down")
    parser.add_argument("--scenario", default="dlfs-mlp")
    parser.add_argument("--impl", default="numpy-vectorized", help="the case of part 1")
    parser.add_argument("--slowdowns", default="2,5,10,20", help="percentages, part 2")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--dataset", help="e.g. mnist-5k (default: the scenario's)")
    parser.add_argument("--threshold", default="5%")
    parser.add_argument("--keep", action="store_true", help="keep the runs (printed folder)")
    args = parser.parse_args()
    threshold = compare.parse_threshold(args.threshold)
    slowdowns = [float(s) / 100 for s in args.slowdowns.split(",") if s]
    root = Path(tempfile.mkdtemp(prefix="compare-noise-"))
    runner = Runner(root, args.profile, args.dataset)
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    print(f"\n1. {args.pairs} pairs of identical runs of {args.scenario} / {args.impl}")
    case = ["--scenario", args.scenario, "--impl", args.impl]
    alarms, compared, changes = 0, 0, []
    for _ in range(args.pairs):
        for result in verdicts(runner.run(*case), runner.run(*case), threshold):
            compared += 1
            changes.append(result.ratio - 1)
            alarms += result.verdict in (compare.REGRESSED, compare.IMPROVED)
            print(show(result))

    plugins = root / "plugins"
    plugins.mkdir()
    (plugins / "workload.py").write_text(WORKLOAD)
    workload = ["--plugins", str(plugins), "--impl", "workload", "--scenario", args.scenario]
    print(f"\n2. the workload plugin, {args.detect_pairs} pairs per slow-down")
    flagged = {level: 0 for level in [0.0, *slowdowns]}
    measured: dict[float, list[float]] = {level: [] for level in flagged}
    for _ in range(args.detect_pairs):
        baseline = runner.run(*workload)
        for level in flagged:
            (result,) = verdicts(baseline, runner.run(*workload, slowdown=level), threshold)
            print(show(result))
            measured[level].append(result.ratio - 1)
            flagged[level] += result.verdict == compare.REGRESSED
            alarms += level == 0 and result.verdict in (compare.REGRESSED, compare.IMPROVED)

    print(f"\nthreshold {threshold:.0%}; largest load average seen {max(runner.loads):.2f}")
    print(
        f"false alarms: {alarms} of {compared + args.detect_pairs} comparisons of identical "
        f"cases ({compared} of {args.impl}, {args.detect_pairs} of the workload); changes "
        f"measured between identical runs of {args.impl}: median "
        f"{statistics.median(changes):+.1%}, from {min(changes):+.1%} to {max(changes):+.1%}"
    )
    if not args.detect_pairs:  # false alarms only
        return
    print(f"{'slow-down':>10} {'flagged':>9} {'change measured (median)':>26}")
    reliable = None
    for level in flagged:
        print(f"{level:10.0%} {flagged[level]:>4} of {args.detect_pairs} "
              f"{statistics.median(measured[level]):+26.1%}")  # fmt: skip
        if level and reliable is None and flagged[level] == args.detect_pairs:
            reliable = level
    words = f"{reliable:.0%}" if reliable is not None else "none of the levels tried"
    print(f"smallest slow-down flagged in every pair: {words}")
    if args.keep:
        print(f"runs kept in {root}")
    else:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
