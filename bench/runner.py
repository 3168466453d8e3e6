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
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench import outcomes, threads
from bench.files import atomic_write_json
from bench.names import check_name
from bench.registry import Plugin, Registry
from bench.results import RunStore
from bench.scenarios import PROFILES, SCENARIOS, Scenario
from bench.worker import OUTCOME_FILE, ROUNDS_FILE

LOG_FILE = "worker.log"
LOG_TAIL_CHARS = 4000


@dataclass(frozen=True)
class Case:
    """One scenario x implementation x threads x device; runs in one fresh process."""

    scenario: str
    implementation: str
    model: str
    framework: str
    source: str
    threads: int
    device: str
    profile: str
    rounds: int
    warmup_rounds: int
    timeout_s: float
    seed: int
    round_cap_s: float | None = None
    dataset: dict | None = None  # a datasets.Resolution as a dict
    deviations: tuple[str, ...] = ()
    overrides: dict = field(default_factory=dict)  # sweep sizes, e.g. {"n_samples": 10_000}
    status: str | None = None  # set in advance for cases that will not run
    reason: str | None = None
    id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.id:
            ident = f"{self.scenario}--{self.implementation}--t{self.threads}--{self.device}"
            ident += "".join(f"--{k}={v}" for k, v in sorted(self.overrides.items()))
            object.__setattr__(self, "id", ident)

    def spec(self) -> dict:
        return asdict(self)

    @classmethod
    def from_spec(cls, spec: dict) -> Case:
        return cls(**{**spec, "deviations": tuple(spec.get("deviations", ()))})


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
    datasets: dict[str, dict] | None = None,
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


def _read_rounds(workdir: Path) -> list[dict]:
    path = workdir / ROUNDS_FILE
    if not path.is_file():
        return []
    rounds = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rounds.append(json.loads(line))
        except json.JSONDecodeError:
            break  # the line being written when the worker died
    return rounds


def _log_tail(workdir: Path) -> str:
    path = workdir / LOG_FILE
    if not path.is_file():
        return ""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - LOG_TAIL_CHARS))
        return handle.read().decode("utf-8", errors="replace")


def run_case(store: RunStore, case: Case) -> dict:
    """Run one case in a fresh worker and store its record. Ctrl-C kills the worker, stores
    the case as *interrupted* (with any rounds it finished) and re-raises."""
    record: dict = {"case": case.spec(), "rounds": []}
    if case.status in outcomes.NOT_RUN:
        record.update(status=case.status, reason=case.reason)
        store.save_case(record)
        return record
    workdir = store.workdir(case.id).resolve()  # the worker runs inside it
    atomic_write_json(workdir / "case.json", case.spec())
    env = {
        **os.environ,
        **threads.thread_environment(case.threads),
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    started = time.perf_counter()
    with (workdir / LOG_FILE).open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", str(workdir / "case.json")],
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
            record.update(
                status=outcomes.INTERRUPTED,
                reason="interrupted (Ctrl-C)",
                rounds=_read_rounds(workdir),
                worker_seconds=time.perf_counter() - started,
            )
            store.save_case(record)
            raise
    record["worker_seconds"] = time.perf_counter() - started
    record["rounds"] = _read_rounds(workdir)
    outcome_file = workdir / OUTCOME_FILE
    if returncode is None:
        done = sum(not r["warmup"] for r in record["rounds"])
        record.update(
            status=outcomes.TIMEOUT,
            reason=f"exceeded the time limit of {case.timeout_s:g} s "
            f"({done} measured round(s) finished and kept); raise it with --timeout",
        )
    elif outcome_file.is_file():
        record.update(json.loads(outcome_file.read_text(encoding="utf-8")))
    elif returncode < 0:
        hint = " (likely out of memory)" if returncode == -signal.SIGKILL else ""
        record.update(
            status=outcomes.CRASHED, reason=f"worker killed by {_signal_name(returncode)}{hint}"
        )
    else:
        record.update(
            status=outcomes.CRASHED, reason=f"worker exited with code {returncode} without a result"
        )
    if record["status"] != outcomes.OK:
        record["log_tail"] = _log_tail(workdir)
    store.save_case(record, workdir / "benchmark.json")
    return record


def execute(
    store: RunStore,
    cases: Sequence[Case],
    *,
    on_start: Callable[[Case], None] = lambda case: None,
    on_done: Callable[[Case, dict], None] = lambda case, record: None,
) -> list[dict]:
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
            store.write_tables()
            on_done(case, record)
    finally:
        store.write_tables()
        with contextlib.suppress(OSError):  # only when empty: no attempt is in progress
            (store.directory / "work").rmdir()
    return records
