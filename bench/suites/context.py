"""What the worker hands to a suite: the case, its implementation class and its data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

from bench.api import Implementation
from bench.scenarios import Budget, Scenario


@dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None = None  # None for clustering
    y_test: np.ndarray | None = None


@dataclass
class CaseContext:
    """Registered as a pytest plugin; the suite's test receives it as its `case` argument."""

    scenario: Scenario
    profile: str
    budget: Budget
    implementation: type[Implementation]
    data: Data
    seed: int
    device: str
    threads: int
    round_cap_s: float | None
    rounds: int
    warmup_rounds: int
    on_round: Callable[[dict], None]  # called with each finished round's record
    records: list[dict] = field(default_factory=list)

    def record(self, record: dict) -> None:
        self.records.append(record)
        self.on_round(record)

    case_id: str = ""

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Hand this context to the suite's test as its `case` argument, with the case id as
        the test id, so pytest-benchmark's JSON and `compare` name the case."""
        if "case" in metafunc.fixturenames:
            metafunc.parametrize("case", [self], ids=[self.case_id])


def run_rounds(benchmark, case: CaseContext, round_class: type) -> None:
    """Time `round_class(case, index).run` with pytest-benchmark: warm-up rounds first (recorded
    by us as cold start, excluded from pytest-benchmark's statistics), then the measured ones."""
    indices = iter(range(case.warmup_rounds + case.rounds))
    benchmark.group = case.scenario.name
    benchmark.pedantic(
        round_class.run,
        setup=lambda: ((round_class(case, next(indices)),), {}),
        teardown=round_class.finish,
        rounds=case.rounds,
        warmup_rounds=case.warmup_rounds,
    )
    benchmark.extra_info["rounds"] = case.records
