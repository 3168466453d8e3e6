"""The results store: `results/<run-id>/` and the tidy tables made from it.

    run.json                 what was asked, the plan, environment fingerprint, machine peak
    cases/<case-id>.json     one record per finished case: status, reason, every round
    benchmarks/<case-id>.json  pytest-benchmark's own JSON (`pytest-benchmark compare` reads it)
    rounds.csv, curves.csv, summary.csv   tidy pandas tables, rebuilt after every case

Every file is written to a temporary name and renamed into place, so an interrupted run never
leaves a half-written file, and `--resume` knows exactly which cases are done.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
from pathlib import Path

import pandas as pd

from bench import outcomes
from bench.files import atomic_write_json, atomic_write_text
from bench.scenarios import SCENARIOS, scenario_for
from bench.stats import describe

RESULTS_ENV = "BENCH_RESULTS_DIR"
CASE_COLUMNS = [
    "case_id",
    "scenario",
    "implementation",
    "model",
    "framework",
    "threads",
    "device",
    "profile",
    "dataset",
]
# Round metrics summarised by their median in summary.csv (train time gets the full spread).
MEDIAN_COLUMNS = [
    "cpu_seconds",
    "effective_cores",
    "utilisation",
    "peak_rss_bytes",
    "samples_per_second",
    "gflops",
    "peak_share",
    "loss",
    "train_accuracy",
    "test_accuracy",
    "time_to_target_seconds",
    "inertia",
    "adjusted_rand_index",
    "n_iter",
    "seconds_per_iteration",
    "predict_seconds_per_sample",
]


# Ten classes: 10% is chance. Below 15% test accuracy a trainer has not learned anything.
CHANCE_LEVEL_ACCURACY = 0.15


class RunNotFound(LookupError):
    pass


def results_root(directory: str | os.PathLike | None = None) -> Path:
    """`--results-dir`, else `$BENCH_RESULTS_DIR`, else ./results."""
    return Path(directory or os.environ.get(RESULTS_ENV) or "results")


def new_run_id(profile: str) -> str:
    return f"{dt.datetime.now():%Y%m%d-%H%M%S}-{profile}"


def latest_run_id(root: Path) -> str | None:
    """Run ids start with their creation time, so the greatest is the latest."""
    runs = sorted(p.parent.name for p in root.glob("*/run.json")) if root.is_dir() else []
    return runs[-1] if runs else None


def _atomic_write_csv(path: Path, frame: pd.DataFrame) -> None:
    atomic_write_text(path, frame.to_csv(index=False))


class RunStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def run_id(self) -> str:
        return self.directory.name

    @classmethod
    def create(cls, root: Path, run_id: str, meta: dict) -> RunStore:
        """A new run folder; `run_id` gets a suffix -2, -3, ... if a run of that id exists
        (ids are made from the start time, to the second)."""
        root.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 100):
            candidate = run_id if attempt == 1 else f"{run_id}-{attempt}"
            try:
                (root / candidate).mkdir()
            except FileExistsError:
                continue
            store = cls(root / candidate)
            atomic_write_json(store.directory / "run.json", {"run_id": candidate, **meta})
            return store
        raise FileExistsError(f"{root / run_id} and 98 suffixed versions of it already exist")

    @classmethod
    def open(cls, root: Path, run_id: str) -> RunStore:
        directory = Path(run_id) if Path(run_id).is_dir() else root / run_id
        if not (directory / "run.json").is_file():
            runs = sorted(p.parent.name for p in root.glob("*/run.json")) if root.is_dir() else []
            hint = f"; runs in {root}: {', '.join(runs[-5:])}" if runs else f"; {root} has no runs"
            raise RunNotFound(f"no run {run_id!r} in {root}{hint}")
        return cls(directory)

    @property
    def meta(self) -> dict:
        return json.loads((self.directory / "run.json").read_text(encoding="utf-8"))

    def update_meta(self, **fields: object) -> None:
        atomic_write_json(self.directory / "run.json", {**self.meta, **fields})

    def case_file(self, case_id: str) -> Path:
        return self.directory / "cases" / f"{case_id}.json"

    def benchmark_file(self, case_id: str) -> Path:
        return self.directory / "benchmarks" / f"{case_id}.json"

    def workdir(self, case_id: str) -> Path:
        path = self.directory / "work" / case_id
        if path.exists():  # leftovers of an interrupted attempt
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def save_case(self, record: dict, benchmark_json: Path | None = None) -> None:
        """Store one case's final record; its pytest-benchmark JSON first, so a stored record
        never points at a missing file."""
        case_id = record["case"]["id"]
        if benchmark_json is not None and benchmark_json.is_file():
            target = self.benchmark_file(case_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(benchmark_json, target)
            record = {**record, "benchmark_file": str(target.relative_to(self.directory))}
        atomic_write_json(self.case_file(case_id), record)
        shutil.rmtree(self.directory / "work" / case_id, ignore_errors=True)

    def cases(self) -> list[dict]:
        folder = self.directory / "cases"
        files = sorted(folder.glob("*.json")) if folder.is_dir() else []
        return [json.loads(f.read_text(encoding="utf-8")) for f in files]

    def finished(self) -> set[str]:
        """Ids of cases with a final record (an interrupted case is run again on resume)."""
        return {c["case"]["id"] for c in self.cases() if c["status"] != outcomes.INTERRUPTED}

    def write_tables(self) -> dict[str, pd.DataFrame]:
        tables = tidy_tables(self.cases(), self.meta)
        for name, frame in tables.items():
            _atomic_write_csv(self.directory / f"{name}.csv", frame)
        return tables

    def load_tables(self) -> dict[str, pd.DataFrame]:
        return {
            name: pd.read_csv(self.directory / f"{name}.csv")
            for name in ("rounds", "curves", "summary")
            if (self.directory / f"{name}.csv").is_file()
        }


def planned_work_seconds(record: dict) -> float:
    """A round's wall seconds, scaled up to its planned steps when the time cap stopped it:
    what the whole round would have taken at the throughput it measured. Comparing these
    keeps a capped case from looking fast for having stopped early."""
    wall, steps, planned = (record.get(k) for k in ("wall_seconds", "steps", "planned_steps"))
    finite = [isinstance(v, int | float) and math.isfinite(v) for v in (wall, steps, planned)]
    if record.get("capped") == True and all(finite) and steps > 0:  # noqa: E712 (numpy bools)
        return float(wall * planned / steps)
    return float(wall) if finite[0] else math.nan


# --- tidy tables -------------------------------------------------------------------------


def _case_columns(case: dict) -> dict:
    spec = case["case"]
    return {
        "case_id": spec["id"],
        "scenario": spec["scenario"],
        "implementation": spec["implementation"],
        "model": spec["model"],
        "framework": spec.get("framework"),
        "threads": spec["threads"],
        "device": spec["device"],
        "profile": spec["profile"],
        "dataset": (spec.get("dataset") or {}).get("used"),
        **{f"sweep_{key}": value for key, value in (spec.get("overrides") or {}).items()},
    }


def _flops(case: dict, record: dict) -> float:
    spec = case["case"]
    if spec["scenario"] not in SCENARIOS:
        return math.nan
    scenario = scenario_for(spec["scenario"], spec["profile"], spec.get("overrides"))
    if scenario.trains:
        return scenario.flops_per_step() * record.get("steps", 0)
    return scenario.flops_per_iteration(record.get("samples", 0)) * record.get("n_iter", 0)


def _peak_gflops(meta: dict, scenario_name: str, threads: int) -> float:
    """The run's measured GEMM peak at the case's thread count, in the scenario's dtype."""
    peak = (meta.get("machine_peak") or {}).get(str(threads)) or {}
    scenario = SCENARIOS.get(scenario_name)
    key = "gemm_f64_gflops" if scenario and scenario.dtype == "float64" else "gemm_gflops"
    value = peak.get(key)
    return float(value) if value else math.nan


def tidy_tables(cases: list[dict], meta: dict) -> dict[str, pd.DataFrame]:
    rounds, curves, summary = [], [], []
    for case in cases:
        ids = _case_columns(case)
        peak = _peak_gflops(meta, ids["scenario"], ids["threads"])
        case_rounds = []
        for record in case.get("rounds", []):
            row = {**ids, **{k: v for k, v in record.items() if k != "curve"}}
            wall = record.get("wall_seconds") or math.nan
            row["gflops"] = _flops(case, record) / wall / 1e9 if wall > 0 else math.nan
            row["peak_share"] = row["gflops"] / peak if peak > 0 else math.nan
            rounds.append(row)
            case_rounds.append(row)
            curves += [
                {**ids, "round": record["round"], "warmup": record["warmup"], **point}
                for point in record.get("curve", [])
            ]
        summary.append(_summary_row(case, ids, case_rounds))
    return {
        "rounds": pd.DataFrame(rounds),
        "curves": pd.DataFrame(curves),
        "summary": pd.DataFrame(summary),
    }


def _summary_row(case: dict, ids: dict, rounds: list[dict]) -> dict:
    measured = [r for r in rounds if not r["warmup"]]
    warmups = [r for r in rounds if r["warmup"]]
    time = describe([r["wall_seconds"] for r in measured])
    dataset = case["case"].get("dataset") or {}
    row = {
        **ids,
        "status": case["status"],
        "reason": case.get("reason"),
        "dataset_fallback": dataset.get("fallback_reason"),
        "rounds": time["n"],
        "train_seconds_median": time["median"],
        "train_seconds_iqr": time["iqr"],
        "train_seconds_q1": time["q1"],
        "train_seconds_q3": time["q3"],
        "train_seconds_min": time["min"],
        "train_seconds_max": time["max"],
        "cold_start_seconds": warmups[0]["wall_seconds"] if warmups else math.nan,
        "capped_rounds": sum(bool(r.get("capped")) for r in measured),
        # The fewest test examples a measured round's accuracy was taken on (capped rounds
        # are evaluated on a subset).
        "test_examples_min": describe([r.get("test_examples") for r in measured])["min"],
    }
    for column in MEDIAN_COLUMNS:
        row[f"{column}_median"] = describe([r.get(column) for r in measured])["median"]
    # A trainer that did not learn must not pass for a fast one: flag it wherever it is shown.
    accuracy = row["test_accuracy_median"]
    row["at_chance_level"] = bool(math.isfinite(accuracy) and accuracy < CHANCE_LEVEL_ACCURACY)
    return row
