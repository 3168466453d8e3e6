"""The results store: one folder per run, written only by `bench run`, read by every view.

    results/<run-id>/
      run.json                    RunMeta: what was asked, the plan, the scenarios' definitions,
                                  the environment fingerprint, the machine's peak
      cases/<case-id>.json        one CaseRecord per finished case: status, reason, every round
      benchmarks/<case-id>.json   pytest-benchmark's own JSON (`pytest-benchmark compare`)
      rounds.csv, curves.csv, summary.csv   tidy tables (bench.analysis.tables), rewritten
                                  by the run after every case
      work/<case-id>/             the running case's worker folder; gone once it is stored

Every file is written to a temporary name and renamed into place, so an interrupted run never
leaves a half-written file, and `--resume` knows exactly which cases are done. Reading never
writes: `show`, `report` and `compare` work on a read-only copy of a run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import shutil
from pathlib import Path

import pandas as pd

from bench import outcomes
from bench.files import atomic_write_json, atomic_write_text
from bench.records import (
    BENCHMARKS_DIR,
    CASES_DIR,
    RUN_FILE,
    RUN_FORMAT,
    TABLE_NAMES,
    WORK_DIR,
    CaseRecord,
    RunMeta,
)
from bench.scenarios import SCENARIOS, Scenario, scenario_for, scenario_from_json

RESULTS_ENV = "BENCH_RESULTS_DIR"


class RunNotFound(LookupError):
    pass


def results_root(directory: str | os.PathLike | None = None) -> Path:
    """`--results-dir`, else `$BENCH_RESULTS_DIR`, else ./results."""
    return Path(directory or os.environ.get(RESULTS_ENV) or "results")


def new_run_id(profile: str) -> str:
    return f"{dt.datetime.now():%Y%m%d-%H%M%S}-{profile}"


def run_ids(root: Path) -> list[str]:
    """Every run in `root`, oldest first: run ids start with their creation time."""
    return sorted(p.parent.name for p in root.glob(f"*/{RUN_FILE}")) if root.is_dir() else []


def latest_run_id(root: Path) -> str | None:
    runs = run_ids(root)
    return runs[-1] if runs else None


class RunStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._meta: RunMeta | None = None

    @property
    def run_id(self) -> str:
        return self.directory.name

    @classmethod
    def create(cls, root: Path, meta: RunMeta) -> RunStore:
        """A new run folder for `meta`; its id gets a suffix -2, -3, ... if a run of that id
        exists (ids are made from the start time, to the second)."""
        root.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 100):
            candidate = meta.run_id if attempt == 1 else f"{meta.run_id}-{attempt}"
            try:
                (root / candidate).mkdir()
            except FileExistsError:
                continue
            store = cls(root / candidate)
            store._write_meta(meta.replace(run_id=candidate, format=RUN_FORMAT))
            return store
        raise FileExistsError(f"{root / meta.run_id} and 98 suffixed versions of it already exist")

    @classmethod
    def open(cls, root: Path, run_id: str) -> RunStore:
        directory = Path(run_id) if Path(run_id).is_dir() else root / run_id
        if not (directory / RUN_FILE).is_file():
            runs = run_ids(root)
            hint = f"; runs in {root}: {', '.join(runs[-5:])}" if runs else f"; {root} has no runs"
            raise RunNotFound(f"no run {run_id!r} in {root}{hint}")
        return cls(directory)

    # --- reading -------------------------------------------------------------------------

    @property
    def meta(self) -> RunMeta:
        if self._meta is None:
            data = json.loads((self.directory / RUN_FILE).read_text(encoding="utf-8"))
            self._meta = RunMeta.from_json(data)
        return self._meta

    def cases(self) -> list[CaseRecord]:
        folder = self.directory / CASES_DIR
        files = sorted(folder.glob("*.json")) if folder.is_dir() else []
        records = [CaseRecord.from_json(json.loads(f.read_text(encoding="utf-8"))) for f in files]
        return [_with_flops(record) for record in records] if self.meta.format < 2 else records

    def finished(self) -> set[str]:
        """Ids of cases with a final record (an interrupted case is run again on resume)."""
        return {c.case.id for c in self.cases() if c.status != outcomes.INTERRUPTED}

    def scenarios(self) -> dict[str, Scenario]:
        """The definition of every scenario the run planned, as the run stored it."""
        meta = self.meta
        stored = {name: scenario_from_json(data) for name, data in meta.scenarios.items()}
        models = {case.scenario: case.model for case in meta.plan}
        for name in [*models, *meta.datasets]:
            if name not in stored:
                stored[name] = _unstored_definition(name, models.get(name, "?"))
        return stored

    # --- writing (bench run only) --------------------------------------------------------

    def update_meta(self, **changes: object) -> None:
        self._write_meta(self.meta.replace(**changes))

    def _write_meta(self, meta: RunMeta) -> None:
        atomic_write_json(self.directory / RUN_FILE, meta.to_json())
        self._meta = meta

    def case_file(self, case_id: str) -> Path:
        return self.directory / CASES_DIR / f"{case_id}.json"

    def benchmark_file(self, case_id: str) -> Path:
        return self.directory / BENCHMARKS_DIR / f"{case_id}.json"

    def workdir(self, case_id: str) -> Path:
        path = self.directory / WORK_DIR / case_id
        if path.exists():  # leftovers of an interrupted attempt
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def save_case(self, record: CaseRecord, benchmark_json: Path | None = None) -> None:
        """Store one case's final record; its pytest-benchmark JSON first, so a stored record
        never points at a missing file."""
        case_id = record.case.id
        if benchmark_json is not None and benchmark_json.is_file():
            target = self.benchmark_file(case_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(benchmark_json, target)
            relative = str(target.relative_to(self.directory))
            record = CaseRecord.from_json({**record.to_json(), "benchmark_file": relative})
        atomic_write_json(self.case_file(case_id), record.to_json())
        shutil.rmtree(self.directory / WORK_DIR / case_id, ignore_errors=True)

    def write_tables(self, tables: dict[str, pd.DataFrame]) -> None:
        for name in TABLE_NAMES:
            atomic_write_text(self.directory / f"{name}.csv", tables[name].to_csv(index=False))

    def remove_empty_workdir(self) -> None:
        """Once no attempt is in progress; a folder a case left behind stays for inspection."""
        with contextlib.suppress(OSError):
            (self.directory / WORK_DIR).rmdir()


# --- runs written before the records carried everything (format 1) ----------------------


def _with_flops(record: CaseRecord) -> CaseRecord:
    """Format-1 rounds carry no FLOP count: it is derived from this version's definition of
    the scenario, the one place a stored run is read with the catalogue's help."""
    case = record.case
    if case.scenario not in SCENARIOS or not record.rounds:
        return record
    scenario = scenario_for(case.scenario, case.profile, case.overrides)
    rounds = []
    for r in record.to_json()["rounds"]:
        if scenario.trains:
            flops = scenario.flops_per_step() * r.get("steps", 0)
        else:
            flops = scenario.flops_per_iteration(r.get("samples", 0)) * r.get("n_iter", 0)
        rounds.append({**r, "flops": float(flops)})
    return CaseRecord.from_json({**record.to_json(), "rounds": rounds})


def _unstored_definition(name: str, model: str) -> Scenario:
    """A format-1 run's scenario: this version's definition, or where the catalogue no
    longer has it, a stand-in that keeps its stored name and model."""
    if name in SCENARIOS:
        return SCENARIOS[name]
    return Scenario(
        name=name,
        title="definition not stored in the run, and not in this version's catalogue",
        article="",
        model=model,
        dataset="?",
        budgets={},
        target=math.nan,
    )
