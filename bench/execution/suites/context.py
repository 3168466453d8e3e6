"""What the worker hands to a suite: the case, its scenario, implementation class and data."""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

from bench.api import Implementation
from bench.execution import contention
from bench.execution.measure import CLOCK, round_cost
from bench.outcomes import PluginExit
from bench.records import Case, ProcessPlan, RoundRecord
from bench.scenarios import Budget, Scenario


@dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None = None  # None for clustering
    y_test: np.ndarray | None = None


@dataclass(frozen=True)
class StepCost:
    """What training cost in a process's first round: its first `train` call, which also pays
    what a fresh trainer pays once (a Keras model builds its graph then), and each step after
    it; in seconds as a time cap judges them (CPU time over the threads; wall time on a GPU)
    and in wall seconds."""

    first_steps: int
    first_judged: float
    first_wall: float
    judged: float  # per step after the first call
    wall: float  # per step after the first call

    def judged_round(self, steps: int) -> float:
        """What a round of `steps` steps would cost, as the cap judges it."""
        return self.first_judged + self.judged * max(0, steps - self.first_steps)

    def steps_within(self, seconds: float) -> int:
        """The most steps whose wall time fits in `seconds` (one at least)."""
        if self.wall <= 0:
            return self.first_steps
        return max(1, self.first_steps + math.floor((seconds - self.first_wall) / self.wall))


@dataclass
class CaseContext:
    """Registered as a pytest plugin: provides the suite's `case` fixture."""

    case: Case
    scenario: Scenario  # with the case's sweep overrides applied
    implementation: type[Implementation]
    data: Data
    on_round: Callable[[RoundRecord], None]  # called with each finished round's record
    plan: ProcessPlan = field(default_factory=ProcessPlan)  # this process's share of the case
    records: list[RoundRecord] = field(default_factory=list)
    # What a training step cost in this process's first round: how a round with a time cap
    # cuts its training into calls (`bench_training.TrainingRound`).
    step_cost: StepCost | None = None
    # The contention counters at the edges of the current round (end of setup, start of
    # teardown), and the index of the disturbed round it re-runs, if it is a retry.
    round_start: contention.Snapshot | None = None
    round_stop: contention.Snapshot | None = None
    replacing: int | None = None
    replaced: set[int] = field(default_factory=set)  # disturbed rounds re-run so far

    @property
    def budget(self) -> Budget:
        return self.scenario.budget(self.case.profile)

    def is_warmup(self, index: int) -> bool:
        return index < self.plan.first_round + self.plan.warmup_rounds

    def short_round(self, index: int) -> bool:
        """Whether round `index` is a short warm-up (one evaluation chunk)."""
        return self.plan.short_warmup and self.is_warmup(index)

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
            warmup=self.is_warmup(index),
            process=self.plan.process,
            **round_cost(
                wall=wall, cpu=cpu, threads=self.case.threads, samples=samples, peak_rss=peak_rss
            ),
            flops=float(flops),
            **self._contention(wall, cpu),
            replaces=self.replacing,
            **metrics,
        )
        self.records.append(record)
        self.on_round(record)

    def _contention(self, wall: float, cpu: float) -> dict:
        """The round's contention fields, when its edges were read (`run_rounds` reads them;
        a round driven on its own records none)."""
        if self.round_start is None or self.round_stop is None:
            return {}
        return contention.measured(self.round_start, self.round_stop, wall, cpu)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """One test per case, named by the case id, so that pytest-benchmark's JSON and its
        `compare` name the case."""
        if "case_id" in metafunc.fixturenames:
            metafunc.parametrize("case_id", [self.case.id])

    @pytest.fixture(name="case")
    def case_fixture(self, case_id: str) -> CaseContext:
        return self


def run_rounds(benchmark, context: CaseContext, round_class: type) -> None:
    """Time `round_class(context, index).run` with pytest-benchmark: this process's warm-up
    rounds first (the first process's is recorded as cold start; all are excluded from
    pytest-benchmark's statistics), then its measured ones, then re-runs of disturbed rounds
    (`--retry-disturbed`)."""
    case, plan = context.case, context.plan
    indices = itertools.count(plan.first_round)

    def setup() -> tuple[tuple, dict]:
        one_round = round_class(context, next(indices))
        context.round_start = CLOCK.snapshot()  # after the untimed setup, not in the round
        return (one_round,), {}

    def teardown(one_round) -> None:
        context.round_stop = CLOCK.snapshot()  # before the untimed teardown
        one_round.finish()

    setup, teardown = _exits_as_failures(setup), _exits_as_failures(teardown)
    benchmark.group = case.scenario
    benchmark.pedantic(
        _exits_as_failures(round_class.run),
        setup=setup,
        teardown=teardown,
        rounds=plan.rounds,
        warmup_rounds=plan.warmup_rounds,
    )
    _retry_disturbed(context, setup, _exits_as_failures(round_class.run), teardown)
    # pytest-benchmark's statistics are of the rounds in ours, with the times they measured
    # themselves (its own reads of the same clock around each round differ by the call, or
    # by a preemption on a busy machine): its JSON and summary.csv then agree, IQR included.
    counted = [r for r in context.records if not r.warmup and r.round not in context.replaced]
    benchmark.stats.stats.data[:] = [r.wall_seconds for r in counted]
    benchmark.extra_info["replaced_rounds"] = sorted(context.replaced)
    benchmark.extra_info["rounds"] = [r.to_json() for r in context.records]


def _retry_disturbed(context: CaseContext, setup, run, teardown) -> None:
    """Re-run disturbed measured rounds, at most `plan.retry_disturbed` re-runs in this process
    (what its earlier processes left of the case's `--retry-disturbed`), each a fresh round
    with the next index (and so the next seed); a re-run that is disturbed again may be re-run
    in turn. The disturbed round stays recorded, out of the statistics."""
    for _ in range(context.plan.retry_disturbed):
        disturbed = [
            r.round
            for r in context.records
            if not r.warmup and r.disturbed and r.round not in context.replaced
        ]
        if not disturbed:
            return
        context.replacing = disturbed[0]
        (one_round,), _ = setup()
        run(one_round)
        teardown(one_round)
        context.replacing = None
        context.replaced.add(disturbed[0])


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
