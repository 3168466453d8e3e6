"""When a case has measured enough: the adaptive stop rule.

A case runs its rounds in `processes` worker processes or more, one after another. The first
`processes` share the profile's minimum of measured rounds. After that, one more process at
a time is started, with as many rounds as the interval of the case's median seems to need,
until the interval is as narrow as the profile asks (`target`, a relative half-width), the
rounds reach the profile's maximum, or another process would overrun the case's time budget.

More rounds narrow only the within-process part of the interval; more processes narrow the
between-process part too. So each extra round comes with a new process: a case whose
processes disagree gets new processes, and one whose rounds are noisy gets more of them.

Pure logic on numbers, used by the runner (`bench.execution.runner`) and by the coverage
simulation (`bench.analysis.coverage`), which checks the intervals this rule stops on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench.analysis.intervals import (
    CONFIDENCE,
    NO_POOL,
    Interval,
    Pool,
    Spread,
    median_interval,
    median_variance_factor,
    spread,
)

# Why a case stopped measuring (`CaseRecord.stopped`).
TARGET = "target"  # the interval of its median is as narrow as the profile asks
MAX_ROUNDS = "max-rounds"  # the profile's maximum of measured rounds
BUDGET = "budget"  # another process would overrun the case's time budget
FIXED = "fixed"  # its rounds were fixed: no more than the minimum (--rounds N), or no target
STOP_REASONS = {
    TARGET: "its interval reached the target width",
    MAX_ROUNDS: "it reached the most rounds the profile allows",
    BUDGET: "another process would have overrun its time budget",
    FIXED: "its number of rounds was fixed",
}


@dataclass(frozen=True)
class RoundRule:
    """How many processes and rounds a case gets (from its plan: `Case`)."""

    processes: int  # worker processes at least
    min_rounds: int  # measured rounds in all, at least (shared by the first processes)
    max_rounds: int  # and at most
    target: float | None = None  # relative half-width of the median's interval
    budget_s: float | None = None  # no process starts that would end later than this

    def __post_init__(self) -> None:
        # Every process measures at least one round.
        object.__setattr__(self, "processes", max(1, min(self.processes, self.min_rounds)))
        object.__setattr__(self, "max_rounds", max(self.max_rounds, self.min_rounds))

    @classmethod
    def of(
        cls,
        processes: int,
        rounds: int,
        max_rounds: int | None,
        target: float | None,
        budget_s: float | None,
        timeout_s: float,
    ) -> RoundRule:
        """The rule of a case's plan or a profile's budget: adaptive when it may run more
        rounds than its minimum and has a target; no process starts that would end after its
        budget, or after its time limit."""
        return cls(
            processes=processes,
            min_rounds=rounds,
            max_rounds=max_rounds or rounds,
            target=target,
            budget_s=min(budget_s or timeout_s, timeout_s),
        )

    def first_rounds(self, index: int) -> int:
        """Measured rounds of the first processes: the minimum, spread evenly."""
        share, extra = divmod(self.min_rounds, self.processes)
        return share + (index < extra)


@dataclass(frozen=True)
class ProcessRun:
    """What one finished process measured and cost."""

    times: tuple[float, ...]  # comparable seconds of its measured rounds
    seconds: float  # its whole wall time: start-up, warm-up, evaluation, rounds


@dataclass(frozen=True)
class Decision:
    """The next process's measured rounds, or 0 and why the case stops."""

    rounds: int
    stopped: str = ""
    interval: Interval | None = None  # the case's interval when it stopped


def next_process(
    rule: RoundRule, history: Sequence[ProcessRun], elapsed_s: float, others: Pool = NO_POOL
) -> Decision:
    """How many measured rounds the next process of a case runs (0: stop), given the
    processes it has run, the seconds it has taken so far, and the between-process variance
    pooled over the run's other cases."""
    done = len(history)
    if done < rule.processes:
        return Decision(rule.first_rounds(done))
    groups = [run.times for run in history]
    item = spread(groups)
    pool = others.add(item)
    interval = median_interval(groups, pool)
    if rule.target is None or rule.max_rounds <= rule.min_rounds:
        return Decision(0, FIXED, interval)
    if math.isfinite(interval.half_width) and interval.half_width <= rule.target:
        return Decision(0, TARGET, interval)
    if item.n >= rule.max_rounds:
        return Decision(0, MAX_ROUNDS, interval)
    wanted = _rounds_wanted(rule, item, interval, pool)
    affordable = _affordable(rule, history, elapsed_s, item.log_median)
    if affordable < 1:
        return Decision(0, BUDGET, interval)
    return Decision(max(1, min(wanted, affordable, rule.max_rounds - item.n)))


def _rounds_wanted(rule: RoundRule, item: Spread, interval: Interval, pool: Pool) -> int:
    """The fewest rounds in one more process that would bring the interval to the target,
    at today's estimates of the two variances; a usual share when rounds cannot (the
    between-process part alone is too wide, or the rounds' spread is unknown)."""
    from scipy.special import stdtrit

    usual = max(1, rule.min_rounds // rule.processes)
    if not item.within_df or not math.isfinite(interval.df):
        return usual
    quantile = float(stdtrit(max(interval.df, 1.0), 0.5 + CONFIDENCE / 2))
    goal = (math.log1p(rule.target) / quantile) ** 2
    between = pool.variance / (item.processes + 1) if pool.df else 0.0
    for more in range(1, rule.max_rounds - item.n + 1):
        total = item.n + more
        if between + median_variance_factor(total) * item.within / total <= goal:
            return more
    return usual


def _affordable(
    rule: RoundRule, history: Sequence[ProcessRun], elapsed_s: float, log_median: float
) -> int:
    """How many measured rounds one more process can run within the case's budget: its cost
    is what the last process took besides its measured rounds (start-up, warm-up,
    evaluation), plus the median round for each."""
    if rule.budget_s is None:
        return rule.max_rounds
    round_seconds = math.exp(log_median)
    last = history[-1]
    overhead = max(0.0, last.seconds - sum(last.times))
    left = rule.budget_s - elapsed_s - overhead
    return int(left // round_seconds) if left > 0 and round_seconds > 0 else 0
