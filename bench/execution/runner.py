"""Executes planned cases, each in a fresh worker process with a time limit, recording
whatever happens to it, and stores every case's record as soon as it ends.

The executor decides where cases run. `LocalExecutor` runs them one after another on this
machine; `cluster.DaskExecutor` runs each as a Dask task that calls `measure_case` on another
machine, and stores the record it returns. Measuring a case (`measure_case`) stores nothing;
storing it (`run_case`, or an executor) happens where the run lives. Nothing here imports a
framework: measuring happens only in workers (`bench.execution.worker`).
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench import outcomes
from bench.analysis.tables import tidy_tables
from bench.execution import launcher
from bench.files import atomic_write_json
from bench.records import (
    BENCHMARK_FILE,
    CASE_FILE,
    LOG_FILE,
    OUTCOME_FILE,
    ROUNDS_FILE,
    Case,
    CaseRecord,
    Outcome,
    RoundRecord,
)
from bench.store import RunStore

LOG_TAIL_CHARS = 4000


class Executor(Protocol):
    def prepare(self, cases: Sequence[Case]) -> dict | None:
        """Check, before any case runs, that the cases can run there (raise with the reason
        otherwise); return what run.json records of where they run (None: this machine)."""
        ...

    def run(
        self, store: RunStore, cases: Sequence[Case], on_start: Callable[[Case], None]
    ) -> Iterator[CaseRecord]:
        """Run every case, store each one's record in `store` as it ends, and yield it."""
        ...


class LocalExecutor:
    """One case after another, on this machine."""

    def prepare(self, cases: Sequence[Case]) -> None:
        return None

    def run(
        self, store: RunStore, cases: Sequence[Case], on_start: Callable[[Case], None]
    ) -> Iterator[CaseRecord]:
        for case in cases:
            on_start(case)
            yield run_case(store, case)


def execute(
    store: RunStore,
    cases: Sequence[Case],
    *,
    executor: Executor | None = None,
    on_start: Callable[[Case], None] = lambda case: None,
    on_done: Callable[[Case, CaseRecord], None] = lambda case, record: None,
) -> list[CaseRecord]:
    """Run the cases not already finished in `store`, refreshing the tidy tables after each."""
    finished = store.finished()
    todo = [case for case in cases if case.id not in finished]
    records = []
    try:
        for record in (executor or LocalExecutor()).run(store, todo, on_start):
            records.append(record)
            write_tables(store)
            on_done(record.case, record)
    finally:
        write_tables(store)
        store.remove_empty_workdir()
    return records


def write_tables(store: RunStore) -> None:
    store.write_tables(tidy_tables(store.cases(), store.meta, store.scenarios()))


@dataclass(frozen=True)
class Measured:
    """What measuring a case gives: its record, and pytest-benchmark's JSON file in the work
    folder (None when the worker wrote none)."""

    record: CaseRecord
    benchmark_file: Path | None


class CaseInterrupted(KeyboardInterrupt):
    """Ctrl-C while a case was measured: its worker is killed; `record` is the case, marked
    *interrupted*, with the rounds it finished."""

    def __init__(self, record: CaseRecord) -> None:
        super().__init__(record.case.id)
        self.record = record


def run_case(store: RunStore, case: Case) -> CaseRecord:
    """Measure one case in a fresh worker and store its record. Ctrl-C kills the worker, stores
    the case as *interrupted* (with any rounds it finished) and re-raises."""
    if not case.will_run:
        return store.save_case(CaseRecord(case, case.status or outcomes.SKIPPED, case.reason))
    try:
        measured = measure_case(case, store.workdir(case.id).resolve())
    except CaseInterrupted as interrupted:
        store.save_case(interrupted.record)
        raise
    return store.save_case(measured.record, measured.benchmark_file)


def measure_case(case: Case, workdir: Path) -> Measured:
    """Measure one case: run its worker in `workdir` (an empty folder, where the worker writes
    its files) and read back what it measured. Stores nothing, so that an executor can call it
    on another machine and store the record where the run lives. Ctrl-C kills the worker and
    raises `CaseInterrupted`."""
    atomic_write_json(workdir / CASE_FILE, case.to_json())
    started, started_at = time.perf_counter(), timestamp()
    with (workdir / LOG_FILE).open("wb") as log:
        try:
            finished = launcher.run_python(
                ["-m", "bench.execution.worker", str(workdir / CASE_FILE)],
                threads=case.threads,
                timeout=case.timeout_s,
                cwd=workdir,
                log=log,
            )
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM turned into it by the CLI
            record = CaseRecord.ended(
                case,
                Outcome(outcomes.INTERRUPTED, "interrupted (Ctrl-C)"),
                _read_rounds(workdir),
                worker_seconds=time.perf_counter() - started,
                started_at=started_at,
                ended_at=timestamp(),
            )
            raise CaseInterrupted(record) from None
    worker_seconds, ended_at = time.perf_counter() - started, timestamp()
    rounds = _read_rounds(workdir)
    outcome = _outcome(case, workdir, finished.returncode, rounds)
    log_tail = _log_tail(workdir) if outcome.status != outcomes.OK else None
    record = CaseRecord.ended(
        case,
        outcome,
        rounds,
        worker_seconds=worker_seconds,
        log_tail=log_tail,
        started_at=started_at,
        ended_at=ended_at,
    )
    benchmark = workdir / BENCHMARK_FILE
    return Measured(record, benchmark if benchmark.is_file() else None)


def timestamp() -> str:
    """The wall-clock time, to the microsecond, with its UTC offset: when a case started and
    ended, comparable between the cases of one host."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def _outcome(
    case: Case, workdir: Path, returncode: int | None, rounds: Sequence[RoundRecord]
) -> Outcome:
    """What the worker said of the case, or what its end says when it could not."""
    outcome_file = workdir / OUTCOME_FILE
    if returncode is None:
        done = sum(not r.warmup for r in rounds)
        return Outcome(
            outcomes.TIMEOUT,
            f"exceeded the time limit of {case.timeout_s:g} s "
            f"({done} measured round(s) finished and kept); raise it with --timeout",
        )
    if outcome_file.is_file():
        return Outcome.from_json(json.loads(outcome_file.read_text(encoding="utf-8")))
    if returncode < 0:
        hint = " (likely out of memory)" if returncode == -signal.SIGKILL else ""
        killed = launcher.signal_name(returncode)
        return Outcome(outcomes.CRASHED, f"worker killed by {killed}{hint}")
    return Outcome(outcomes.CRASHED, f"worker exited with code {returncode} without a result")


def _read_rounds(workdir: Path) -> tuple[RoundRecord, ...]:
    path = workdir / ROUNDS_FILE
    if not path.is_file():
        return ()
    rounds = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rounds.append(RoundRecord.from_json(json.loads(line)))
        except json.JSONDecodeError:
            break  # the line being written when the worker died
    return tuple(rounds)


def _log_tail(workdir: Path) -> str:
    path = workdir / LOG_FILE
    if not path.is_file():
        return ""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - LOG_TAIL_CHARS))
        return handle.read().decode("utf-8", errors="replace")
