"""Does a "95 %" interval contain the truth 95 % of the time? A simulation that answers it for
the intervals of `bench.analysis.intervals`, stopped by the rule of `bench.analysis.stopping`, at
the round counts a profile uses.

A simulated run has `cases` cases. Each case has a true median time and its own noise: a
between-process and a within-process coefficient of variation drawn from `NoiseModel`'s
ranges (log-uniformly: implementations differ), and a share of rounds slowed down by a
disturbance (a neighbour, an interrupt storm: times only ever get longer). Its processes run
one after another under the profile's `RoundRule`, with the between-process variance pooled
over the cases already run, as `bench run` does. Then every case's median interval and the
speed-up interval of every pair of cases are computed with the whole run's pool, as the
report does, and counted as covering when they contain the true value: the median of the
case's distribution of round times (disturbances included), or the ratio of two.

`python -m bench.analysis.coverage` prints the table for every profile; the tests run a
smaller version (tests/test_intervals.py).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field

import numpy as np

from bench.analysis.intervals import Pool, median_interval, ratio_interval, spread
from bench.analysis.stopping import ProcessRun, RoundRule, next_process


@dataclass(frozen=True)
class NoiseModel:
    """The noise of a simulated case's rounds (coefficients of variation, log scale)."""

    between: tuple[float, float] = (0.003, 0.04)
    within: tuple[float, float] = (0.005, 0.08)
    disturbed: float = 0.05  # share of rounds slowed down
    slowdown: float = 0.2  # mean relative slow-down of such a round (exponential)
    round_seconds: tuple[float, float] = (0.3, 10.0)  # true median time of a round
    start_seconds: float = 2.0  # a process's start-up, warm-up and evaluation


@dataclass
class Coverage:
    medians: int = 0
    medians_covered: int = 0
    ratios: int = 0
    ratios_covered: int = 0
    rounds: list[int] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)
    half_widths: list[float] = field(default_factory=list)

    @property
    def median_coverage(self) -> float:
        return self.medians_covered / self.medians if self.medians else math.nan

    @property
    def ratio_coverage(self) -> float:
        return self.ratios_covered / self.ratios if self.ratios else math.nan

    def standard_error(self, coverage: float, count: int) -> float:
        """Monte-Carlo error of a coverage (cases of a run are independent draws)."""
        return math.sqrt(coverage * (1 - coverage) / count) if count else math.nan


@dataclass
class _Case:
    log_scale: float  # the log of the case's typical round time
    log_truth: float  # the log of the median of its round times
    between: float
    within: float
    groups: list[list[float]] = field(default_factory=list)


def _draw_case(rng: np.random.Generator, model: NoiseModel) -> _Case:
    def log_uniform(bounds: tuple[float, float]) -> float:
        return float(math.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1]))))

    scale = math.log(log_uniform(model.round_seconds))
    between, within = log_uniform(model.between), log_uniform(model.within)
    return _Case(scale, scale + _median_offset(rng, model, between, within), between, within)


def _noise(rng, model: NoiseModel, within: float, size: int) -> np.ndarray:
    """Within-process log noise of `size` rounds, disturbances included."""
    logs = rng.normal(0.0, within, size)
    slowed = rng.random(size) < model.disturbed
    return logs + np.log1p(slowed * rng.exponential(model.slowdown, size))


def _median_offset(rng, model: NoiseModel, between: float, within: float) -> float:
    """The median of log times over processes and rounds, relative to the log scale: what a
    case's median estimates (disturbances move it up a little)."""
    draws = 5_000
    return float(np.median(rng.normal(0.0, between, draws) + _noise(rng, model, within, draws)))


def simulate_run(
    rng: np.random.Generator, rule: RoundRule, model: NoiseModel, cases: int, result: Coverage
) -> None:
    drawn = [_draw_case(rng, model) for _ in range(cases)]
    pool = Pool()
    for case in drawn:
        history: list[ProcessRun] = []
        elapsed = 0.0
        while rounds := next_process(rule, history, elapsed, pool).rounds:
            effect = rng.normal(0.0, case.between)
            times = np.exp(case.log_scale + effect + _noise(rng, model, case.within, rounds))
            seconds = model.start_seconds + float(times.sum())
            history.append(ProcessRun(tuple(times), seconds))
            elapsed += seconds
        case.groups = [list(run.times) for run in history]
        pool = pool.add(spread(case.groups))
        result.rounds.append(sum(map(len, case.groups)))
        result.processes.append(len(case.groups))
    for case in drawn:
        interval = median_interval(case.groups, pool)
        result.medians += 1
        result.medians_covered += interval.low <= math.exp(case.log_truth) <= interval.high
        result.half_widths.append(interval.half_width)
    for a, b in zip(drawn[::2], drawn[1::2], strict=False):
        interval = ratio_interval(a.groups, b.groups, pool)
        result.ratios += 1
        truth = math.exp(a.log_truth - b.log_truth)
        result.ratios_covered += interval.low <= truth <= interval.high


def coverage(
    rule: RoundRule, model: NoiseModel = NoiseModel(), *, runs: int, cases: int, seed: int = 0
) -> Coverage:
    rng = np.random.default_rng(seed)
    result = Coverage()
    for _ in range(runs):
        simulate_run(rng, rule, model, cases, result)
    return result


def profile_rules() -> dict[RoundRule, list[str]]:
    """Every round rule the built-in profiles use, with the scenarios that use it."""
    from bench.scenarios import PROFILES, SCENARIOS

    rules: dict[RoundRule, list[str]] = {}
    for scenario in SCENARIOS.values():
        for profile in PROFILES:
            b = scenario.budget(profile)
            rule = RoundRule.of(
                b.processes, b.rounds, b.max_rounds, b.interval_target, b.case_budget_s, b.timeout_s
            )
            rules.setdefault(rule, []).append(f"{profile}/{scenario.name}")
    return rules


MODELS = {
    "default": NoiseModel(),
    "no disturbances": NoiseModel(disturbed=0.0),
    "noisy processes": NoiseModel(between=(0.02, 0.06)),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.analysis.coverage", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--runs", type=int, default=200, help="simulated runs per row")
    parser.add_argument("--cases", type=int, default=30, help="cases per simulated run")
    arguments = parser.parse_args(argv)
    print("coverage of the 95 % intervals; rounds and processes a case used (mean)")
    print(f"{'noise':16} {'median':>7} {'ratio':>7} {'rounds':>7} {'procs':>6}  rule, used by")
    for rule, users in profile_rules().items():
        for name, model in MODELS.items():
            result = coverage(rule, model, runs=arguments.runs, cases=arguments.cases)
            print(
                f"{name:16} {result.median_coverage:7.3f} {result.ratio_coverage:7.3f} "
                f"{np.mean(result.rounds):7.1f} {np.mean(result.processes):6.2f}  "
                f"{rule}, {', '.join(users)}"
            )


if __name__ == "__main__":
    main()
