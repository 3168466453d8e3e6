"""What the worker hands to a suite: the case, its scenario, implementation class and data."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

from bench.api import Implementation
from bench.execution.measure import round_cost
from bench.outcomes import PluginExit
from bench.records import Case, RoundRecord
from bench.scenarios import Budget, Scenario


@dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None = None  # None for clustering
    y_test: np.ndarray | None = None


@dataclass
class CaseContext:
    """Registered as a pytest plugin: provides the suite's `case` fixture."""

    case: Case
    scenario: Scenario  # with the case's sweep overrides applied
    implementation: type[Implementation]
    data: Data
    on_round: Callable[[RoundRecord], None]  # called with each finished round's record
    records: list[RoundRecord] = field(default_factory=list)

    @property
    def budget(self) -> Budget:
        return self.scenario.budget(self.case.profile)

    def record_round(
        self,
        index: int,
        *,
        wall: float,
        cpu: float,
        samples: int,
        peak_rss: int,
        flops: float,
        **metrics: object,
    ) -> None:
        """Record round `index`: the costs every model has, then the model's own metrics."""
        record = RoundRecord(
            round=index,
            warmup=index < self.case.warmup_rounds,
            **round_cost(
                wall=wall, cpu=cpu, threads=self.case.threads, samples=samples, peak_rss=peak_rss
            ),
            flops=float(flops),
            **metrics,
        )
        self.records.append(record)
        self.on_round(record)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """One test per case, named by the case id, so that pytest-benchmark's JSON and its
        `compare` name the case."""
        if "case_id" in metafunc.fixturenames:
            metafunc.parametrize("case_id", [self.case.id])

    @pytest.fixture(name="case")
    def case_fixture(self, case_id: str) -> CaseContext:
        return self


def run_rounds(benchmark, context: CaseContext, round_class: type) -> None:
    """Time `round_class(context, index).run` with pytest-benchmark: warm-up rounds first
    (recorded by us as cold start, excluded from pytest-benchmark's statistics), then the
    measured ones."""
    case = context.case
    indices = iter(range(case.warmup_rounds + case.rounds))
    benchmark.group = case.scenario
    benchmark.pedantic(
        _exits_as_failures(round_class.run),
        setup=_exits_as_failures(lambda: ((round_class(context, next(indices)),), {})),
        teardown=_exits_as_failures(round_class.finish),
        rounds=case.rounds,
        warmup_rounds=case.warmup_rounds,
    )
    benchmark.extra_info["rounds"] = [r.to_json() for r in context.records]


def _exits_as_failures(call: Callable) -> Callable:
    """`call`, with a SystemExit or KeyboardInterrupt that the plugin raises inside it turned
    into a PluginExit: pytest-benchmark then ends the test as failed, as for any exception."""

    @functools.wraps(call)
    def calling(*args, **kwargs):
        try:
            return call(*args, **kwargs)
        except (SystemExit, KeyboardInterrupt) as error:
            raise PluginExit(f"the plugin raised {type(error).__name__}") from error

    return calling
