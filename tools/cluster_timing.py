"""What running on a Dask cluster costs, and what a cluster of machines would save.

Run on a quiet machine (the figures are wall times):

    .venv/bin/python tools/cluster_timing.py [--repeat 3] [--from-run RUN] [--machines 4]

It prints
1. the smoke matrix's wall time (the six cases of tests/test_cluster.py): run locally, with
   `--cluster local:2` (one case per host at a time: the default), and with
   `--cluster local:2 --cluster-parallel`; the whole command, and the span from the first
   case's start to the last case's end;
2. the per-case overhead the cluster adds: (cluster span - local span) / cases, both one case
   at a time on this machine, so the difference is the task round trip, the dataset check on
   the worker and the record's way back;
3. an ESTIMATE of a run of the full profile on N machines like this one (default 4): every
   case's time from a stored run (`--from-run`; by default a quick-profile run of the whole
   matrix measured now), scaled to the full budget where the run is not full (the rounds'
   time in proportion to the work: optimizer steps, or K-Means points; start-up as
   measured), plus the per-case overhead, scheduled longest first onto N hosts that each run
   one case at a time. The same sum on one machine is printed beside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.records import CaseRecord, RunMeta
from bench.scenarios import Scenario, scenario_from_json

SMOKE_MATRIX = ["--scenario", "linfa-kmeans,dlfs-mlp", "--impl",
                "numpy-pure,numpy-vectorized,sklearn", "--threads", "1"]  # fmt: skip
SMOKE = ["run", "--profile", "smoke", "--dataset", "mnist-5k", "--offline", "--no-peak"]
MODES = {
    "local": [],
    "--cluster local:2": ["--cluster", "local:2"],
    "--cluster local:2 --cluster-parallel": ["--cluster", "local:2", "--cluster-parallel"],
}
# MNIST's training set: what an epoch budget counts mini-batches of, at the full profile.
MNIST_TRAIN = 60_000


def bench(arguments: list[str], results: Path) -> float:
    """Run the bench CLI; its wall time in seconds."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", *arguments, "--results-dir", str(results)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"bench {' '.join(arguments)} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started


def latest_run(results: Path) -> Path:
    return sorted(p.parent for p in results.glob("*/run.json"))[-1]


def records(run: Path) -> list[CaseRecord]:
    return [CaseRecord.from_json(json.loads(f.read_text())) for f in (run / "cases").glob("*.json")]


def span(run: Path) -> float:
    """From the first case's start to the last case's end."""
    cases = [r for r in records(run) if r.started_at and r.ended_at]
    starts = [dt.datetime.fromisoformat(r.started_at) for r in cases]
    ends = [dt.datetime.fromisoformat(r.ended_at) for r in cases]
    return (max(ends) - min(starts)).total_seconds()


def measure_smoke(repeat: int, root: Path) -> tuple[dict[str, dict[str, float]], int]:
    figures: dict[str, dict[str, list[float]]] = {m: {"wall": [], "span": []} for m in MODES}
    cases = 0
    for index in range(repeat):
        for mode, extra in MODES.items():
            results = root / f"smoke-{index}-{len(figures[mode]['wall'])}-{mode.split()[-1]}"
            figures[mode]["wall"].append(bench([*SMOKE, *SMOKE_MATRIX, *extra], results))
            run = latest_run(results)
            figures[mode]["span"].append(span(run))
            cases = len(records(run))
    medians = {
        mode: {key: statistics.median(values) for key, values in found.items()}
        for mode, found in figures.items()
    }
    return medians, cases


def full_case_seconds(record: CaseRecord, scenario: Scenario, profile: str) -> float:
    """A case's time at the full profile: measured as is for a full run; otherwise its
    start-up as measured plus the full profile's rounds, each scaled from the measured
    rounds in proportion to the work (steps, or K-Means points)."""
    measured = record.worker_seconds or 0.0
    if profile == "full" or "full" not in scenario.budgets or not record.rounds:
        return measured
    rounds_seconds = sum(r.wall_seconds for r in record.rounds if math.isfinite(r.wall_seconds))
    start_up = max(0.0, measured - rounds_seconds)
    per_round = statistics.median(r.comparable_seconds for r in record.rounds)
    full = scenario.budget("full")
    if scenario.trains:
        done = statistics.median(r.planned_steps or r.steps or 1 for r in record.rounds)
        n_train = min(n for n in (MNIST_TRAIN, scenario.train_limit, full.train_samples) if n)
        work = scenario.steps_for("full", n_train) / done
    else:
        work = (full.n_samples or 1) / (scenario.budget(profile).n_samples or 1)
    return start_up + (full.rounds + full.warmup_rounds) * per_round * work


def makespan(seconds: list[float], machines: int) -> float:
    """Longest case first, each onto the machine that frees up first."""
    hosts = [0.0] * machines
    for case in sorted(seconds, reverse=True):
        heapq.heapreplace(hosts, hosts[0] + case)
    return max(hosts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each smoke mode")
    parser.add_argument("--from-run", type=Path, help="a stored run's folder for the estimate")
    parser.add_argument("--machines", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cluster-timing-") as folder:
        root = Path(folder)
        smoke, cases = measure_smoke(args.repeat, root)
        print(f"Smoke matrix, {cases} cases, median of {args.repeat} (seconds):")
        print(f"  {'mode':40} {'command':>8} {'cases':>8}")
        for mode, found in smoke.items():
            print(f"  {mode:40} {found['wall']:8.2f} {found['span']:8.2f}")
        overhead = (smoke["--cluster local:2"]["span"] - smoke["local"]["span"]) / cases
        before = {mode: found["wall"] - found["span"] for mode, found in smoke.items()}
        start = before["--cluster local:2"] - before["local"]
        print(f"Per-case overhead of the cluster: {overhead:+.3f} s")
        print(f"Start-up the cluster adds (a LocalCluster, the workers' check): {start:+.2f} s")

        run = args.from_run
        if run is None:
            print("Measuring the quick profile of the whole matrix for the estimate ...")
            bench(["run", "--profile", "quick", "--no-peak"], root / "quick")
            run = latest_run(root / "quick")
        meta = RunMeta.from_json(json.loads((run / "run.json").read_text()))
        definitions = {name: scenario_from_json(data) for name, data in meta.scenarios.items()}
        seconds = [
            full_case_seconds(r, definitions[r.case.scenario], meta.profile or "quick") + overhead
            for r in records(run)
            if r.case.scenario in definitions and r.worker_seconds
        ]
    one, many = sum(seconds), makespan(seconds, args.machines)
    print(
        f"ESTIMATE, full profile, {len(seconds)} cases from run {run.name} "
        f"({meta.profile} profile{'' if meta.profile == 'full' else ', scaled to full'}):"
    )
    print(f"  one machine: {one / 3600:.2f} h")
    print(
        f"  {args.machines} machines like this one, one case per host at a time: "
        f"{many / 3600:.2f} h (longest case: {max(seconds) / 3600:.2f} h)"
    )


if __name__ == "__main__":
    main()
