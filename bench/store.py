"""The results store: one folder per run, written only by `bench run`, read by every view.

    results/<run-id>/
      run.json                    RunMeta: what was asked, the plan, the scenarios' definitions,
                                  the environment fingerprint, the machine's peak
      cases/<case-id>.json        one CaseRecord per finished case: status, reason, every round
      benchmarks/<case-id>.json   pytest-benchmark's own JSON (`pytest-benchmark compare`)
      rounds.csv, curves.csv, summary.csv   tidy tables (bench.analysis.tables), rewritten
                                  by the run after every case
      work/<case-id>/             the running case's worker folder; gone once it is stored
      writer.lock                 the advisory lock of the one `bench run` writing the run

Every file is written to a temporary name and renamed into place, so an interrupted run never
leaves a half-written file, and `--resume` knows exactly which cases are done. One process
writes a run at a time (`RunStore.writing`), and a final case record, once stored, is never
replaced. Reading never writes: `show`, `report` and `compare` work on a read-only copy of a
run, and a case file that cannot be read back is reported as a *damaged* case, not an error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import math
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from bench import outcomes
from bench.files import atomic_write_json, atomic_write_text
from bench.records import (
    BENCHMARKS_DIR,
    CASES_DIR,
    LOCK_FILE,
    RUN_FILE,
    RUN_FORMAT,
    TABLE_NAMES,
    WORK_DIR,
    Case,
    CaseRecord,
    RunMeta,
    case_id_problem,
)
from bench.scenarios import SCENARIOS, Scenario, scenario_for, scenario_from_json

RESULTS_ENV = "BENCH_RESULTS_DIR"


class RunUnavailable(Exception):
    """A run cannot be read or written; the message names the file and what to do."""


class RunNotFound(RunUnavailable, LookupError):
    pass


class RunLocked(RunUnavailable):
    """Another process is writing the run."""


class RunDamaged(RunUnavailable):
    """The run's `run.json` cannot be read back."""


class ResultsNotWritable(RunUnavailable):
    """Runs cannot be stored where asked."""


# What a stored file that is not the record it should be raises while it is parsed.
_UNREADABLE_RECORD = (ValueError, KeyError, TypeError, AttributeError)


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
        try:
            root.mkdir(parents=True, exist_ok=True)
            for attempt in range(1, 100):
                candidate = meta.run_id if attempt == 1 else f"{meta.run_id}-{attempt}"
                try:
                    (root / candidate).mkdir()
                except FileExistsError:
                    continue
                store = cls(root / candidate)
                try:
                    store._write_meta(meta.replace(run_id=candidate, format=RUN_FORMAT))
                except OSError:
                    with contextlib.suppress(OSError):
                        store.directory.rmdir()
                    raise
                return store
        except OSError as error:
            raise ResultsNotWritable(_cannot_write(root, error)) from None
        raise ResultsNotWritable(
            f"{root / meta.run_id} and 98 suffixed versions of it already exist; "
            "choose another folder with --results-dir"
        )

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
            path = self.directory / RUN_FILE
            try:
                self._meta = RunMeta.from_json(json.loads(_read(path)))
            except _UNREADABLE_RECORD as error:
                raise RunDamaged(
                    f"{path} is damaged ({_what_is_wrong(error)}): run {self.run_id}'s plan and "
                    f"settings cannot be read, so it can be neither shown nor resumed. Its case "
                    f"files in {self.directory / CASES_DIR} are intact; restore run.json from a "
                    "copy, or start a new run"
                ) from None
        return self._meta

    def cases(self) -> list[CaseRecord]:
        """Every stored case record; a file that cannot be read back is a *damaged* case."""
        folder = self.directory / CASES_DIR
        files = sorted(folder.glob("*.json")) if folder.is_dir() else []
        records = [r for r in map(self._read_case, files) if r is not None]
        return [_with_flops(record) for record in records] if self.meta.format < 2 else records

    def _read_case(self, path: Path) -> CaseRecord | None:
        try:
            return CaseRecord.from_json(json.loads(_read(path)))
        except _UNREADABLE_RECORD as error:
            case = self._planned_case(path.stem)
            if case is None:
                return None  # not a name bench writes: no case of this run
            return CaseRecord(
                case,
                outcomes.DAMAGED,
                f"{path} is damaged ({_what_is_wrong(error)}); `bench run --resume "
                f"{self.run_id}` runs the case again and keeps the damaged file beside it",
            )

    def _planned_case(self, case_id: str) -> Case | None:
        """The case of that id in the run's plan; for a file the plan does not name, a
        stand-in that keeps the scenario and implementation its id starts with."""
        planned = {case.id: case for case in self.meta.plan}
        if case_id in planned:
            return planned[case_id]
        if case_id_problem(case_id):
            return None
        scenario, implementation, *_ = [*case_id.split("--"), "?"]
        return Case(
            scenario=scenario,
            implementation=implementation,
            model="?",
            framework="?",
            source="?",
            threads=0,
            device="?",
            profile=self.meta.profile or "?",
            rounds=0,
            warmup_rounds=0,
            timeout_s=0,
            seed=0,
            id=case_id,
        )

    def finished(self) -> set[str]:
        """Ids of cases with a final record (an interrupted or damaged case is run again on
        resume)."""
        return {c.case.id for c in self.cases() if c.status not in outcomes.RUN_AGAIN}

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

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the run's writer lock while the block writes the run, so that two `bench run`
        of one run (a CI retry, a second terminal) cannot delete each other's work folders or
        store over each other's cases. The lock is the kernel's (`flock`), released when this
        process ends however it ends: a lock is never stale. The file stays, naming its last
        holder."""
        path = self.directory / LOCK_FILE
        try:
            handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o666), "r+")
        except OSError as error:
            raise ResultsNotWritable(_cannot_write(self.directory, error)) from None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunLocked(self._locked_message(handle.read())) from None
            holder = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": dt.datetime.now().isoformat(timespec="seconds"),
                "command": " ".join(["bench", *sys.argv[1:]]),
            }
            handle.truncate(0)
            handle.write(json.dumps(holder))
            handle.flush()
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _locked_message(self, holder_json: str) -> str:
        try:
            holder = json.loads(holder_json)
            who = f"PID {holder['pid']} on host {holder['host']} (since {holder['since']}: "
            who += f"{holder['command']})"
        except _UNREADABLE_RECORD:  # it has only just taken the lock
            who = "another process"
        return (
            f"run {self.run_id} is being written by {who}; only one `bench run` writes a run at "
            f"a time. Wait for it to end, or stop it (its finished cases are kept), then run "
            f"`bench run --resume {self.run_id}` again"
        )

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

    def save_case(self, record: CaseRecord, benchmark_json: Path | None = None) -> CaseRecord:
        """Store one case's record, its pytest-benchmark JSON first, so a stored record never
        points at a missing file; return the record the run now holds. A final record already
        stored is kept: nothing that reaches the same case later (a second writer, a crash
        after it was stored) replaces what was measured. A damaged file is kept beside the new
        record, as `<case-id>.json.damaged`."""
        case_id = record.case.id
        path = self.case_file(case_id)
        stored = self._read_case(path) if path.is_file() else None
        if stored is not None and stored.status not in outcomes.RUN_AGAIN:
            shutil.rmtree(self.directory / WORK_DIR / case_id, ignore_errors=True)
            return stored
        if stored is not None and stored.status == outcomes.DAMAGED:
            os.replace(path, path.with_name(path.name + ".damaged"))
        if benchmark_json is not None and benchmark_json.is_file():
            target = self.benchmark_file(case_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(benchmark_json, target)
            relative = str(target.relative_to(self.directory))
            record = CaseRecord.from_json({**record.to_json(), "benchmark_file": relative})
        atomic_write_json(path, record.to_json())
        shutil.rmtree(self.directory / WORK_DIR / case_id, ignore_errors=True)
        return record

    def write_tables(self, tables: dict[str, pd.DataFrame]) -> None:
        for name in TABLE_NAMES:
            atomic_write_text(self.directory / f"{name}.csv", tables[name].to_csv(index=False))

    def remove_empty_workdir(self) -> None:
        """Once no attempt is in progress; a folder a case left behind stays for inspection."""
        with contextlib.suppress(OSError):
            (self.directory / WORK_DIR).rmdir()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise RunUnavailable(
            f"cannot read {path}: {error.strerror}; make it readable (chmod u+r) and try again"
        ) from None


def _what_is_wrong(error: Exception) -> str:
    """What is wrong with a stored file that failed to parse, in a few words."""
    if isinstance(error, json.JSONDecodeError):
        return f"not valid JSON: {error}"
    if isinstance(error, KeyError):
        return f"the field {error} is missing"
    return f"not a record: {type(error).__name__}: {error}"


def _cannot_write(folder: Path, error: OSError) -> str:
    if os.path.exists(folder) and not os.path.isdir(folder):
        why = "it is a file, not a folder"
    else:
        why = f"{error.strerror}" + (f" ({error.filename})" if error.filename else "")
    fix = "free some space" if error.errno in (errno.ENOSPC, errno.EDQUOT) else "make it writable"
    return (
        f"cannot store runs in {folder}: {why}. Choose another folder with --results-dir DIR "
        f"(or $BENCH_RESULTS_DIR), or {fix}"
    )


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
