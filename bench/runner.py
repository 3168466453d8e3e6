"""Plans a run (scenarios x implementations x threads x devices) and executes every case in
a fresh worker process, with a time limit, recording whatever happens to it.

Nothing here imports a framework: discovery may import plugins, but measuring happens only in
workers (`bench.worker`), one process per case.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import outcomes, threads
from bench.analysis.tables import tidy_tables
from bench.files import atomic_write_json
from bench.names import check_name
from bench.records import (
    BENCHMARK_FILE,
    CASE_FILE,
    LOG_FILE,
    OUTCOME_FILE,
    ROUNDS_FILE,
    Case,
    CaseRecord,
    DatasetResolution,
    Outcome,
    RoundRecord,
)
from bench.registry import Plugin, Registry
from bench.scenarios import PROFILES, SCENARIOS, Scenario
from bench.store import RunStore

LOG_TAIL_CHARS = 4000


def select_scenarios(names: Sequence[str]) -> list[Scenario]:
    for name in names:
        check_name("scenario", name, SCENARIOS)
    return [SCENARIOS[n] for n in names] if names else list(SCENARIOS.values())


def plan(
    registry: Registry,
    scenarios: Sequence[Scenario],
    *,
    implementations: Sequence[str] = (),
    profile: str = "quick",
    thread_counts: Sequence[int] = (),
    devices: Sequence[str] = ("cpu",),
    rounds: int | None = None,
    warmup_rounds: int | None = None,
    timeout_s: float | None = None,
    round_cap_s: float | None = None,
    seed: int = 0,
    datasets: dict[str, DatasetResolution] | None = None,
    overrides: Sequence[dict] = ({},),
) -> list[Case]:
    """Every requested case, including those that cannot run (with their reason).
    `overrides` lists size changes for sweeps (one case per entry; `{}` is the scenario as is)."""
    check_name("profile", profile, PROFILES)
    for name in implementations:
        check_name("implementation", name, registry.names())
    datasets = datasets or {}
    cases = []
    for scenario in scenarios:
        budget = scenario.budget(profile)
        plugins = [
            p
            for p in registry.for_model(scenario.model)
            if not implementations or p.name in implementations
        ]
        for plugin, count, device, sizes in itertools.product(
            plugins, thread_counts or (threads.available_cores(),), devices, overrides
        ):
            status, reason = _cannot_run(plugin, scenario, device)
            cases.append(
                Case(
                    scenario=scenario.name,
                    implementation=plugin.name,
                    model=plugin.model,
                    framework=plugin.framework,
                    source=plugin.source,
                    threads=count,
                    device=device,
                    profile=profile,
                    rounds=budget.rounds if rounds is None else rounds,
                    warmup_rounds=budget.warmup_rounds if warmup_rounds is None else warmup_rounds,
                    timeout_s=budget.timeout_s if timeout_s is None else timeout_s,
                    seed=seed,
                    round_cap_s=budget.round_cap_s if round_cap_s is None else round_cap_s,
                    dataset=datasets.get(scenario.name),
                    deviations=plugin.deviations_for(scenario),
                    overrides=dict(sizes),
                    status=status,
                    reason=reason,
                )
            )
    return cases


def _cannot_run(plugin: Plugin, scenario: Scenario, device: str) -> tuple[str | None, str | None]:
    """(status, reason) for a case decided before it runs; (None, None) if it will run."""
    if not plugin.available:
        return outcomes.SKIPPED, plugin.unavailable_reason
    if device not in plugin.devices:
        return outcomes.UNSUPPORTED, f"runs on {', '.join(plugin.devices)}, not {device}"
    if why := plugin.why_unsupported(scenario):
        return outcomes.UNSUPPORTED, why
    return None, None


# --- execution ---------------------------------------------------------------------------


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _kill_group(process: subprocess.Popen) -> None:
    """Kill the worker and everything it started, and reap it.

    Not `process.wait()`: a Ctrl-C landing inside `Popen.wait(timeout)` can leave Popen's
    internal lock held, and a second wait would then block forever."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    try:
        _, status = os.waitpid(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    except ChildProcessError:
        pass  # already reaped


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


def run_case(store: RunStore, case: Case) -> CaseRecord:
    """Run one case in a fresh worker and store its record. Ctrl-C kills the worker, stores
    the case as *interrupted* (with any rounds it finished) and re-raises."""
    if not case.will_run:
        record = CaseRecord(case, case.status or outcomes.SKIPPED, case.reason)
        store.save_case(record)
        return record
    workdir = store.workdir(case.id).resolve()  # the worker runs inside it
    atomic_write_json(workdir / CASE_FILE, case.to_json())
    env = {
        **os.environ,
        **threads.thread_environment(case.threads),
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    started = time.perf_counter()
    with (workdir / LOG_FILE).open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", str(workdir / CASE_FILE)],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # Ctrl-C reaches us, not the worker; we stop it cleanly
        )
        try:
            returncode = process.wait(timeout=case.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            returncode = None
        except BaseException:
            _kill_group(process)
            record = CaseRecord.ended(
                case,
                Outcome(outcomes.INTERRUPTED, "interrupted (Ctrl-C)"),
                _read_rounds(workdir),
                worker_seconds=time.perf_counter() - started,
            )
            store.save_case(record)
            raise
    worker_seconds = time.perf_counter() - started
    rounds = _read_rounds(workdir)
    outcome = _outcome(case, workdir, returncode, rounds)
    log_tail = _log_tail(workdir) if outcome.status != outcomes.OK else None
    record = CaseRecord.ended(
        case, outcome, rounds, worker_seconds=worker_seconds, log_tail=log_tail
    )
    store.save_case(record, workdir / BENCHMARK_FILE)
    return record


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
        return Outcome(outcomes.CRASHED, f"worker killed by {_signal_name(returncode)}{hint}")
    return Outcome(outcomes.CRASHED, f"worker exited with code {returncode} without a result")


def execute(
    store: RunStore,
    cases: Sequence[Case],
    *,
    on_start: Callable[[Case], None] = lambda case: None,
    on_done: Callable[[Case, CaseRecord], None] = lambda case, record: None,
) -> list[CaseRecord]:
    """Run the cases not already finished in `store`, refreshing the tidy tables after each."""
    finished = store.finished()
    records = []
    try:
        for case in cases:
            if case.id in finished:
                continue
            on_start(case)
            record = run_case(store, case)
            records.append(record)
            _write_tables(store)
            on_done(case, record)
    finally:
        _write_tables(store)
        store.remove_empty_workdir()
    return records


def _write_tables(store: RunStore) -> None:
    store.write_tables(tidy_tables(store.cases(), store.meta, store.scenarios()))
