"""Runs one case in this (fresh) process: `python -m bench.execution.worker WORKDIR/case.json`,
or this process's share of its rounds when `WORKDIR/process.json` says which (`ProcessPlan`).

Order matters: thread limits go into the environment before NumPy or any framework is
imported; then the plugin (and its framework) is imported, thread counts are applied through
the frameworks' APIs, the data is loaded, and pytest-benchmark runs the model's suite.
Each finished round is appended to `rounds.jsonl` at once, so a case killed later (timeout,
crash) keeps what it measured. The worker's last act is writing `outcome.json`.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

import platformdirs

from bench.execution import devices, launcher, threads
from bench.files import atomic_write_text, write_cache
from bench.outcomes import PluginExit
from bench.records import (
    BENCHMARK_FILE,
    OUTCOME_FILE,
    PROCESS_FILE,
    ROUNDS_FILE,
    SCENARIO_KEY,
    Case,
    Outcome,
    ProcessPlan,
    RoundRecord,
)

SUITES = Path(__file__).resolve().parent / "suites"
SUITE_FOR_MODEL = {
    "mlp": "bench_training.py",
    "cnn": "bench_training.py",
    "kmeans": "bench_clustering.py",
}


# py-cpuinfo, which pytest-benchmark asks for the CPU of its JSON's machine_info, takes 0.16 s
# in every worker: it starts a process of its own. Its answer is kept for the machine's boot
# (the kernel's boot id), so the current clock it reports (hz_actual) is the first worker's.
CPU_INFO_CACHE = Path(platformdirs.user_cache_dir("bench")) / "cpu-info.json"


def cpu_info() -> dict:
    """py-cpuinfo's description of this CPU, asked once per boot of the machine."""
    import cpuinfo

    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="utf-8").strip()
    except OSError:  # not Linux: no boot to key it by
        return cpuinfo.get_cpu_info()
    key = f"{boot} py-cpuinfo {cpuinfo.CPUINFO_VERSION_STRING}"
    try:
        cached = json.loads(CPU_INFO_CACHE.read_text(encoding="utf-8"))
        if cached["key"] == key:
            return cached["cpu"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    found = cpuinfo.get_cpu_info()
    entry = json.dumps({"key": key, "cpu": found}).encode()
    write_cache(CPU_INFO_CACHE, lambda out: out.write(entry))
    return found


class MachineInfo:
    """pytest plugin: pytest-benchmark's own machine_info, its CPU from `cpu_info`."""

    def pytest_benchmark_generate_machine_info(self, config) -> dict:
        from unittest import mock

        from pytest_benchmark import plugin

        with mock.patch.object(plugin, "get_cpu_info", cpu_info):
            return plugin.pytest_benchmark_generate_machine_info()


class FailureRecorder:
    """pytest plugin keeping the first exception raised by the case's test."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.details = ""

    def pytest_runtest_makereport(self, item, call) -> None:
        if call.excinfo is not None and self.error is None:
            self.error = call.excinfo.value
            self.details = str(call.excinfo.getrepr(style="short"))


def load_case_data(case: Case, scenario):
    """The case's data, shaped, scaled and typed as its scenario says."""
    import numpy as np

    from bench import datasets
    from bench.execution.suites.context import Data

    budget = scenario.budget(case.profile)
    if scenario.model == "kmeans":
        km = scenario.kmeans
        if case.dataset is not None and case.dataset.from_file:
            split = datasets.load_images(case.dataset)
            x, y = split.x_train[: budget.n_samples], split.y_train[: budget.n_samples]
            x = x.reshape(len(x), -1)
        else:
            x, y = datasets.make_blobs(budget.n_samples, km.n_features, km.centers, scenario.seed)
        return Data(x_train=np.ascontiguousarray(x, dtype=scenario.dtype), y_train=y)
    split = datasets.load_images(case.dataset)
    n_train = min(n for n in (len(split.x_train), scenario.train_limit, budget.train_samples) if n)
    n_test = min(n for n in (len(split.x_test), budget.test_samples) if n)

    def prepare(images: np.ndarray) -> np.ndarray:
        scaled = images.astype(scenario.dtype) * np.asarray(scenario.input_scale, scenario.dtype)
        return np.ascontiguousarray(scaled.reshape(len(images), *scenario.input_shape))

    return Data(
        x_train=prepare(split.x_train[:n_train]),
        y_train=split.y_train[:n_train].astype(np.int64),
        x_test=prepare(split.x_test[:n_test]),
        y_test=split.y_test[:n_test].astype(np.int64),
    )


def failure_reason(error: BaseException, plugin_files: list[Path]) -> str:
    """ "Type: message", and where the plugin raised it: the innermost frame of the
    traceback in the plugin's own files (a plugin's error often surfaces in its framework)."""
    if isinstance(error, PluginExit) and error.__cause__ is not None:
        error = error.__cause__
    reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if any(Path(frame.filename).is_relative_to(root) for root in plugin_files):
            return f"{reason} (raised at {frame.filename}:{frame.lineno}, in {frame.name})"
    return reason


def _plugin_files(source: str, cls: type | None) -> list[Path]:
    """The files and folders holding a plugin's code: its source, and its class's module."""
    roots = [Path(source.removeprefix("path:")).resolve()] if source.startswith("path:") else []
    module = sys.modules.get(cls.__module__) if cls is not None else None
    if module is not None and getattr(module, "__file__", None):
        roots.append(Path(module.__file__).resolve().parent)
    return roots


def process_plan(case: Case, workdir: Path) -> ProcessPlan:
    """This process's share of the case: `process.json`, or all of it."""
    path = workdir / PROCESS_FILE
    if path.is_file():
        return ProcessPlan.from_json(json.loads(path.read_text(encoding="utf-8")))
    return ProcessPlan(
        rounds=case.rounds, warmup_rounds=case.warmup_rounds, retry_disturbed=case.retry_disturbed
    )


def case_scenario(case: Case, definition: dict | None):
    """The scenario a case runs: the definition its run stored, else (a run stored before
    definitions were) the catalogue's; with the case's sweep sizes."""
    from bench.scenarios import scenario_for, scenario_from_json

    if definition is None:
        return scenario_for(case.scenario, case.profile, case.overrides)
    return scenario_from_json(definition).with_overrides(case.profile, case.overrides)


def run_case(case: Case, workdir: Path, definition: dict | None = None) -> Outcome:
    import pytest

    from bench import outcomes, plugins
    from bench.execution.suites.context import CaseContext

    try:
        scenario = case_scenario(case, definition)
    except Exception as error:  # a stored definition this version cannot read
        return Outcome(outcomes.FAILED, f"reading the scenario: {error}", traceback.format_exc())
    if scenario.serving is not None:
        # A serving case's measurements are its load levels, not pytest-benchmark rounds.
        from bench.serving import suite

        return suite.run_case(case, scenario, workdir)
    rounds_file = (workdir / ROUNDS_FILE).open("a", encoding="utf-8")

    def on_round(record: RoundRecord) -> None:
        rounds_file.write(json.dumps(record.to_json()) + "\n")
        rounds_file.flush()

    stage, cls = "importing the implementation", None
    try:
        cls = plugins.load_plugin(case.source, case.implementation, case.model)
        if reason := devices.unavailable(case.device):
            return Outcome(outcomes.SKIPPED, reason)
        devices.place(case.device)
        devices.exact_arithmetic(case.device)
        threads.apply_to_frameworks(case.threads)
        if reason := cls.why_unsupported(scenario):  # a user's scenario is first seen here
            return Outcome(outcomes.UNSUPPORTED, reason)
        stage = "loading the data"
        context = CaseContext(
            case=case,
            scenario=scenario,
            implementation=cls,
            data=load_case_data(case, scenario),
            on_round=on_round,
            plan=process_plan(case, workdir),
        )
    # A plugin's SystemExit or KeyboardInterrupt is its failure too, not the harness's.
    except (Exception, SystemExit, KeyboardInterrupt) as error:
        return Outcome(
            outcomes.classify(error),
            f"{stage}: {failure_reason(error, _plugin_files(case.source, cls))}",
            traceback.format_exc(),
        )
    (workdir / "pytest.ini").write_text("[pytest]\n")  # keep the project's settings out
    recorder = FailureRecorder()
    exit_code = pytest.main(
        [
            str(SUITES / SUITE_FOR_MODEL[scenario.model]),
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            # It runs the garbage collector at the end (0.16 s once TensorFlow is loaded);
            # an exception raised in a finalizer is still printed to the case's log.
            "-p",
            "no:unraisableexception",
            # The rootdir is the ini file's folder. Not `--rootdir`: pytest expands
            # environment variables in it, and a `$` in the results path would break it.
            "-c",
            str(workdir / "pytest.ini"),
            "--benchmark-json",
            str(workdir / BENCHMARK_FILE),
            "--benchmark-timer",
            "bench.execution.measure.training_clock",
        ],
        plugins=[context, recorder, MachineInfo()],
    )
    rounds_file.close()
    ran = {
        "threads": threads.describe(cls.thread_counts()),
        "device": devices.describe(case.device),
        "pytest_exit_code": int(exit_code),
    }
    if recorder.error is not None:
        error = recorder.error
        reason = failure_reason(error, _plugin_files(case.source, cls))
        return Outcome(outcomes.classify(error), reason, recorder.details, **ran)
    if exit_code != 0:
        return Outcome(outcomes.FAILED, f"pytest exited with code {exit_code}", **ran)
    return Outcome(outcomes.OK, **ran)


def _exit_with_parent() -> None:
    """The worker never outlives its runner: if the runner is killed (even by SIGKILL), the
    worker notices that it has been re-parented and exits within a second."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(3)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m bench.execution.worker WORKDIR/case.json", file=sys.stderr)
        return 2
    case_file = Path(argv[0])
    given = json.loads(case_file.read_text(encoding="utf-8"))
    case = Case.from_json(given)
    threads.limit_environment(case.threads)  # before anything imports NumPy
    _exit_with_parent()
    try:
        outcome = run_case(case, case_file.parent, given.get(SCENARIO_KEY))
    except (Exception, SystemExit) as error:  # a harness fault: still say what happened
        outcome = Outcome(
            "failed", f"harness error: {type(error).__name__}: {error}", traceback.format_exc()
        )
    atomic_write_text(case_file.parent / OUTCOME_FILE, json.dumps(outcome.to_json(), default=str))
    return 0


if __name__ == "__main__":
    launcher.exit_child(main())
