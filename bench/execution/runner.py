"""Executes planned cases, each in fresh worker processes with a time limit, recording
whatever happens to it, and stores every case's record as soon as it ends.

`measure_case` measures one case in a work folder and returns what it measured: its worker
processes, one after another, as many as the stop rule asks for. It stores nothing. The
executor decides where cases run. `LocalExecutor` runs them one after another on this machine
(`run_case`: measure, then store); `cluster.DaskExecutor` runs each as a Dask task that calls
`measure_case` on another machine, and stores the record it returns where the run lives.
Nothing here imports a framework: measuring happens only in workers
(`bench.execution.worker`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from bench import outcomes
from bench.analysis.intervals import NO_POOL, Pool
from bench.analysis.stopping import ProcessRun, RoundRule, next_process
from bench.analysis.tables import between_pool, tidy_tables
from bench.execution import benchmarks, launcher
from bench.files import atomic_write_json
from bench.records import (
    BENCHMARK_FILE,
    CASE_FILE,
    LEVELS_FILE,
    LOG_FILE,
    OUTCOME_FILE,
    PROCESS_FILE,
    ROUNDS_FILE,
    SCENARIO_KEY,
    SERVER_FILE,
    Case,
    CaseRecord,
    LevelRecord,
    Outcome,
    ProcessPlan,
    RoundRecord,
    ServerRecord,
)
from bench.store import RunStore

LOG_TAIL_CHARS = 4000
# Each worker process's pytest-benchmark JSON, until they are merged into BENCHMARK_FILE.
PROCESS_BENCHMARK = "benchmark-process-{}.json"
PROCESS_BENCHMARKS = "benchmark-process-*.json"


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
    """Measure one case in its own worker processes and store its record. Ctrl-C kills the
    worker, stores the case as *interrupted* (with any rounds it finished) and re-raises.
    The between-process noise of the run's finished cases helps decide when it has measured
    enough."""
    if not case.will_run:
        return store.save_case(CaseRecord(case, case.status or outcomes.SKIPPED, case.reason))
    try:
        definition = store.meta.scenarios.get(case.scenario)
        measured = measure_case(
            case, store.workdir(case.id).resolve(), between_pool(store.cases()), definition
        )
    except CaseInterrupted as interrupted:
        store.save_case(interrupted.record)
        raise
    return store.save_case(measured.record, measured.benchmark_file)


def timestamp() -> str:
    """The wall-clock time, to the microsecond, with its UTC offset: when a case started and
    ended, comparable between the cases of one host."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def measure_case(
    case: Case, workdir: Path, others: Pool = NO_POOL, definition: dict | None = None
) -> Measured:
    """Measure one case in `workdir` (an empty folder, where its workers write their files) and
    read back what it measured. Stores nothing, so that an executor can call it on another
    machine and store the record where the run lives. Its worker processes run one after
    another, each a fresh `python -m bench.execution.worker`, as many as
    `bench.analysis.stopping` asks for; the first runs full warm-ups, the later ones short
    ones. `others` is the between-process noise of the run's other cases (none: the case's
    own processes alone). `definition` is the case's scenario as the run stored it (a user's
    scenario file may be gone by the time the case runs): the workers read it from
    `case.json` beside the case. pytest-benchmark's JSON of every process is merged into one.
    Ctrl-C kills the worker and raises `CaseInterrupted`."""
    atomic_write_json(workdir / CASE_FILE, {**case.to_json(), SCENARIO_KEY: definition})
    rule = round_rule(case)
    started, started_at = time.perf_counter(), timestamp()
    history: list[ProcessRun] = []
    rounds: tuple[RoundRecord, ...] = ()
    decision = next_process(rule, history, 0.0, others)
    outcome = Outcome(outcomes.OK)
    with (workdir / LOG_FILE).open("ab") as log:
        while decision.rounds:
            plan = ProcessPlan(
                process=len(history),
                first_round=max((r.round for r in rounds), default=-1) + 1,
                rounds=decision.rounds,
                warmup_rounds=case.warmup_rounds,
                short_warmup=bool(history),
                retry_disturbed=case.retry_disturbed - sum(r.replaces is not None for r in rounds),
            )
            process_started = time.perf_counter()
            finished = _run_worker(case, workdir, plan, log, started)
            seconds = time.perf_counter() - process_started
            if finished is None:  # Ctrl-C
                record = CaseRecord.ended(
                    case,
                    Outcome(outcomes.INTERRUPTED, "interrupted (Ctrl-C)"),
                    _read_rounds(workdir),
                    worker_seconds=time.perf_counter() - started,
                    started_at=started_at,
                    ended_at=timestamp(),
                    **_serving_results(workdir),
                )
                raise CaseInterrupted(record) from None
            previous, rounds = rounds, _read_rounds(workdir)
            outcome = _outcome(case, workdir, finished.returncode, rounds)
            if outcome.status != outcomes.OK:
                break
            replaced = {r.replaces for r in rounds if r.replaces is not None}
            new = [r for r in rounds[len(previous) :] if not r.warmup and r.round not in replaced]
            times = tuple(t for t in (r.comparable_seconds for r in new) if math.isfinite(t))
            history.append(ProcessRun(times, seconds))
            decision = next_process(rule, history, time.perf_counter() - started, others)
    worker_seconds, ended_at = time.perf_counter() - started, timestamp()
    benchmark = workdir / BENCHMARK_FILE
    benchmarks.merge(sorted(workdir.glob(PROCESS_BENCHMARKS)), benchmark, rounds)
    ok = outcome.status == outcomes.OK
    record = CaseRecord.ended(
        case,
        outcome,
        rounds,
        worker_seconds=worker_seconds,
        log_tail=None if ok else _log_tail(workdir),
        started_at=started_at,
        ended_at=ended_at,
        stopped=decision.stopped if ok else None,
        stopped_half_width=_finite_or_none(decision.interval.half_width)
        if ok and decision.interval
        else None,
        **_serving_results(workdir),
    )
    return Measured(record, benchmark if benchmark.is_file() else None)


def round_rule(case: Case) -> RoundRule:
    return RoundRule.of(
        case.processes,
        case.rounds,
        case.max_rounds,
        case.interval_target,
        case.budget_s,
        case.timeout_s,
    )


def _run_worker(
    case: Case, workdir: Path, plan: ProcessPlan, log: IO[bytes], started: float
) -> launcher.Finished | None:
    """Run one worker process for `plan` within what is left of the case's time limit; None
    on Ctrl-C. Its pytest-benchmark JSON is kept under the process's own name."""
    atomic_write_json(workdir / PROCESS_FILE, plan.to_json())
    (workdir / OUTCOME_FILE).unlink(missing_ok=True)
    left = case.timeout_s - (time.perf_counter() - started)
    try:
        finished = launcher.run_python(
            ["-m", "bench.execution.worker", str(workdir / CASE_FILE)],
            threads=case.threads,
            timeout=max(left, 1.0),
            cwd=workdir,
            log=log,
        )
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM turned into it by the CLI
        return None
    produced = workdir / BENCHMARK_FILE
    if produced.is_file():
        os.replace(produced, workdir / PROCESS_BENCHMARK.format(plan.process))
    return finished


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


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
    return _read_lines(workdir / ROUNDS_FILE, RoundRecord)


def _read_lines(path: Path, record: type) -> tuple:
    """The records a worker appended to `path`, one JSON object per line."""
    if not path.is_file():
        return ()
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            found.append(record.from_json(json.loads(line)))
        except json.JSONDecodeError:
            break  # the line being written when the worker died
    return tuple(found)


def _serving_results(workdir: Path) -> dict:
    """A serving case's load levels and server setup, as far as its worker wrote them."""
    server = workdir / SERVER_FILE
    return {
        "levels": _read_lines(workdir / LEVELS_FILE, LevelRecord),
        "server": (
            ServerRecord.from_json(json.loads(server.read_text(encoding="utf-8")))
            if server.is_file()
            else None
        ),
    }


def _log_tail(workdir: Path) -> str:
    path = workdir / LOG_FILE
    if not path.is_file():
        return ""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - LOG_TAIL_CHARS))
        return handle.read().decode("utf-8", errors="replace")
