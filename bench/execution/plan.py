"""Which cases a run has: scenarios x implementations x threads x devices x sweep sizes,
each with its budget, and for those that cannot run here, the reason (decided before any
process starts: a missing requirement, a device or scenario the framework cannot do)."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import reprlib
from collections.abc import Sequence

from bench import outcomes
from bench.datasets import DatasetError
from bench.execution import threads
from bench.execution.devices import declared
from bench.names import UnknownName, check_name
from bench.plugins import Plugin, Registry
from bench.records import Case, DatasetResolution
from bench.scenarios import PROFILES, Scenario, known, named_on_command_line
from bench.serving import plan as serving_plan


def select_scenarios(names: Sequence[str]) -> list[Scenario]:
    """The named scenarios; without names, those of the files given with --scenarios, or
    without those, every scenario known (the catalogue's and the user's)."""
    scenarios = known()
    for name in names:
        check_name("scenario", name, scenarios)
    if names:
        return [scenarios[n] for n in names]
    return named_on_command_line() or list(scenarios.values())


def check_dataset_fits(scenario: Scenario, dataset: DatasetResolution) -> None:
    """Refuse a dataset file whose examples or classes do not fit the scenario, naming both,
    before any case starts."""
    if not dataset.from_file or not dataset.arrays:
        return
    shape = tuple(dataset.arrays["x_train"]["shape"][1:])
    values = math.prod(shape)
    where = f"{dataset.location} (for scenario {scenario.name})"
    if scenario.model == "kmeans":
        features = scenario.kmeans.n_features
        if values != features:
            raise DatasetError(
                f"{where} holds points of shape {list(shape)} ({values} values), but the "
                f"scenario clusters {features} features: set kmeans.n_features = {values}"
            )
        return
    if values != math.prod(scenario.input_shape):
        raise DatasetError(
            f"{where} holds examples of shape {list(shape)} ({values} values), but the "
            f"scenario takes input_shape {list(scenario.input_shape)} "
            f"({math.prod(scenario.input_shape)} values): set input_shape to "
            f"[{values}] (mlp) or [channels, height, width] (cnn) with as many values"
        )
    outputs = scenario.classes
    if dataset.classes > outputs:
        raise DatasetError(
            f"{where} has labels 0..{dataset.classes - 1} ({dataset.classes} classes), but the "
            f"scenario's last layer has {outputs} outputs: give it {dataset.classes} units"
        )


# A device is part of a case id, and so of file names: only these forms are accepted.
DEVICE = re.compile(r"^(cpu|cuda(:[0-9]{1,3})?)$")
DEVICE_RULE = "cpu, cuda (the current GPU) or cuda:N (the GPU of index N, e.g. cuda:1)"


def check_selection(
    registry: Registry,
    implementations: Sequence[str],
    profile: str,
    devices: Sequence[str] = ("cpu",),
) -> None:
    """Refuse unknown implementation, profile or device names, before anything slow happens."""
    check_name("profile", profile, PROFILES)
    for name in implementations:
        check_name("implementation", name, [*registry.names(), *serving_plan.names()])
    for device in devices:
        if not DEVICE.match(device):
            raise UnknownName(f"unknown device {reprlib.repr(device)}. Valid: {DEVICE_RULE}.")


def plan(
    registry: Registry,
    scenarios: Sequence[Scenario],
    *,
    implementations: Sequence[str] = (),
    profile: str = "quick",
    thread_counts: Sequence[int] = (),
    devices: Sequence[str] = ("cpu",),
    rounds: int | None = None,
    max_rounds: int | None = None,
    processes: int | None = None,
    interval_target: float | None = None,
    warmup_rounds: int | None = None,
    timeout_s: float | None = None,
    round_cap_s: float | None = None,
    retry_disturbed: int = 0,
    seed: int = 0,
    datasets: dict[str, DatasetResolution] | None = None,
    overrides: Sequence[dict] = ({},),
) -> list[Case]:
    """Every requested case, including those that cannot run (with their reason).
    `overrides` lists size changes for sweeps (one case per entry; `{}` is the scenario as is).
    `rounds` without `max_rounds` fixes the measured rounds; either replaces the profile's."""
    check_selection(registry, implementations, profile, devices)
    datasets = datasets or {}
    cases = []
    for scenario in scenarios:
        if scenario.serving is not None:
            cases += serving_plan.serving_cases(
                registry,
                scenario,
                implementations=implementations,
                profile=profile,
                thread_counts=thread_counts or (threads.available_cores(),),
                devices=devices,
                timeout_s=timeout_s,
                seed=seed,
                dataset=datasets.get(scenario.name),
            )
            continue
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
                    max_rounds=(budget.max_rounds if rounds is None else max_rounds or rounds),
                    processes=budget.processes if processes is None else processes,
                    interval_target=interval_target or budget.interval_target,
                    budget_s=budget.case_budget_s,
                    warmup_rounds=budget.warmup_rounds if warmup_rounds is None else warmup_rounds,
                    timeout_s=budget.timeout_s if timeout_s is None else timeout_s,
                    seed=seed,
                    round_cap_s=budget.round_cap_s if round_cap_s is None else round_cap_s,
                    retry_disturbed=retry_disturbed,
                    dataset=datasets.get(scenario.name),
                    deviations=plugin.deviations_for(scenario),
                    overrides=dict(sizes),
                    status=status,
                    reason=reason,
                )
            )
    if retry_disturbed and timeout_s is None:
        cases = [_with_time_for_retries(c) for c in cases]
    return cases


def _with_time_for_retries(case: Case) -> Case:
    """The case with its profile's time limit grown by the share of the re-runs it may do
    (`--retry-disturbed`), so that it is not killed for them. A `--timeout` is kept as given."""
    planned = case.rounds + case.warmup_rounds
    return dataclasses.replace(
        case, timeout_s=case.timeout_s * (1 + case.retry_disturbed / max(1, planned))
    )


def _cannot_run(plugin: Plugin, scenario: Scenario, device: str) -> tuple[str | None, str | None]:
    """(status, reason) for a case decided before it runs; (None, None) if it will run."""
    if not plugin.available:
        return outcomes.SKIPPED, plugin.unavailable_reason
    if not declared(device, plugin.devices):
        return outcomes.UNSUPPORTED, f"runs on {', '.join(plugin.devices)}, not {device}"
    if why := plugin.why_unsupported(scenario):
        return outcomes.UNSUPPORTED, why
    return None, None
