"""How precise a case's median time is, and whether two medians differ, when a case's rounds
come from several worker processes.

Noise has two levels. Each worker process has a speed of its own (where the allocator put the
arrays, which core it landed on, how busy the machine was that minute), and each round in it
varies around that speed. On the log scale of a round's time t:

    log t = mu + b_process + e_round,   b with variance `between`, e with variance `within`

A case's time is the median of its measured rounds, all processes pooled. The variance of its
logarithm is estimated as

    between / processes  +  c(n) * within / n

where c(n) is the variance of the median of n normal values relative to that of their mean
(1 for n <= 2, rising to pi/2). `within` comes from the case's own rounds, as the pooled
variance inside its processes: every implementation has its own. `between` is pooled over the
cases of a run (`Pool`): one case's two processes give it a single degree of freedom, which
would make any honest interval useless, whereas a run of thirty such cases gives thirty. The
interval is `estimate x exp(+- t * sqrt(variance))`, with Student's t at the Welch-Satterthwaite
degrees of freedom of the terms. A ratio of two medians (a speed-up, or a run against another
in `bench compare`) adds the terms of both sides, the pooled between-process term counted once
with weight 1/processes_a + 1/processes_b.

The coverage of these intervals at the round counts the profiles use is checked by simulation
(`bench.analysis.coverage`); `COVERAGE_LABEL` is what that simulation supports.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# The nominal level of the t quantile. Stopping a case when its interval happens to be narrow
# costs coverage; at 97.5 % the simulation finds at least 95 % at the profiles' round counts,
# adaptive stopping included, and 95 % is what `COVERAGE_LABEL` claims.
CONFIDENCE = 0.975
# Variance of the median of n standard normal values, times n (simulated, 400 000 draws each):
# the median of few rounds is less precise than their mean, down to pi/2 for many.
MEDIAN_VARIANCE_FACTOR = (
    1.0, 1.0, 1.344, 1.198, 1.43, 1.288, 1.472, 1.347, 1.494, 1.379,
    1.517, 1.405, 1.522, 1.426, 1.526, 1.444, 1.529, 1.456, 1.538, 1.469,
)  # fmt: skip


def median_variance_factor(n: int) -> float:
    return MEDIAN_VARIANCE_FACTOR[n - 1] if n <= len(MEDIAN_VARIANCE_FACTOR) else math.pi / 2


def _logs(values: Iterable[float]) -> np.ndarray:
    finite = [math.log(v) for v in values if v is not None and math.isfinite(v) and v > 0]
    return np.array(finite, dtype=float)


@dataclass(frozen=True)
class Spread:
    """One case's measured rounds, grouped by process, summarised on the log scale."""

    n: int
    processes: int
    log_median: float
    within: float  # pooled variance of log times inside processes; NaN without a process of 2
    within_df: int
    means: float  # variance of the process means (processes - 1 degrees of freedom)
    harmonic_rounds: float  # harmonic mean of the rounds per process
    total: float  # variance of all log times together (n - 1 degrees of freedom)

    @property
    def between_df(self) -> int:
        """Degrees of freedom of `between`: none when the case cannot tell the levels apart."""
        return self.processes - 1 if self.processes > 1 and self.within_df > 0 else 0

    @property
    def between(self) -> float:
        """The case's own estimate of the between-process variance: the variance of its
        process means less what its within-process noise explains. Unbiased, so it may be
        negative; NaN when the case cannot tell the two levels apart."""
        return self.means - self._within_share if self.between_df else math.nan

    @property
    def _within_share(self) -> float:
        """What within-process noise adds to the variance of a process mean."""
        return self.within / self.harmonic_rounds

    def between_precision(self, between: float) -> float:
        """1 / variance of `self.between`, were the between-process variance `between`
        (mean squares of normal values: variance 2 E^2 / df)."""
        share = self._within_share
        variance = 2 * (between + share) ** 2 / self.between_df + 2 * share**2 / self.within_df
        return 1 / variance if variance > 0 else math.inf


def spread(groups: Sequence[Sequence[float]]) -> Spread:
    """The spread of one case's rounds; `groups` holds the times of each process."""
    logs = [g for g in (_logs(group) for group in groups) if g.size]
    every = np.concatenate(logs) if logs else np.array([])
    n, processes = int(every.size), len(logs)
    within_df = n - processes
    within = (
        float(sum(((g - g.mean()) ** 2).sum() for g in logs) / within_df)
        if within_df > 0
        else math.nan
    )
    means = np.array([g.mean() for g in logs])
    return Spread(
        n=n,
        processes=processes,
        # The log of the median of the times (for an even count, of the mean of the two
        # middle ones, as every view's median), so that a ratio's estimate is the ratio of
        # the medians shown.
        log_median=math.log(float(np.median(np.exp(every)))) if n else math.nan,
        within=within,
        within_df=max(within_df, 0),
        means=float(means.var(ddof=1)) if processes > 1 else math.nan,
        harmonic_rounds=processes / sum(1 / g.size for g in logs) if logs else math.nan,
        total=float(every.var(ddof=1)) if n > 1 else math.nan,
    )


@dataclass(frozen=True)
class Pool:
    """The between-process variance of a set of cases (a run, or two runs compared).

    Each case that ran two processes or more, one of them with two rounds, gives an unbiased
    estimate; they are averaged weighted by their precision. A case with noisy rounds tells
    little about its processes (its process means vary mostly by their rounds), so weighting
    by degrees of freedom alone would let the noisiest cases decide. The degrees of freedom of
    the average are Satterthwaite's, from the same precisions."""

    cases: tuple[Spread, ...] = ()

    @classmethod
    def of(cls, spreads: Iterable[Spread]) -> Pool:
        return cls(tuple(s for s in spreads if s.between_df))

    def add(self, item: Spread) -> Pool:
        return Pool((*self.cases, item)) if item.between_df else self

    def __add__(self, other: Pool) -> Pool:
        return Pool((*self.cases, *other.cases))

    @functools.cached_property
    def _estimate(self) -> tuple[float, float]:
        if not self.cases:
            return math.nan, 0.0
        by_df = sum(c.between_df * c.between for c in self.cases)
        first = max(0.0, by_df / sum(c.between_df for c in self.cases))
        weights = [c.between_precision(first) for c in self.cases]
        if any(math.isinf(w) for w in weights):
            return first, float(sum(c.between_df for c in self.cases))
        total = sum(weights)
        weighted = sum(w * c.between for w, c in zip(weights, self.cases, strict=True))
        variance = max(0.0, weighted / total)
        # The average's own variance is 1 / total at the first estimate; its degrees of
        # freedom 2 v^2 / var(v), at most those of all cases together.
        most = float(sum(c.between_df for c in self.cases))
        df = min(most, 2 * variance**2 * total) if variance > 0 else most
        return variance, max(df, 1.0)

    @property
    def variance(self) -> float:
        """Never negative: a pool whose processes agree better than their rounds has none."""
        return self._estimate[0]

    @property
    def df(self) -> float:
        return self._estimate[1]


@dataclass(frozen=True)
class Interval:
    """A point estimate (a median, or a ratio of two) and its confidence interval."""

    estimate: float
    low: float = math.nan
    high: float = math.nan
    df: float = math.nan
    # Whether the noise between processes is part of the interval: not when every round came
    # from one process and no other case of the run measured it.
    between_included: bool = True

    @property
    def finite(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    @property
    def half_width(self) -> float:
        """Relative half-width: the interval is estimate x (1 +- this), on the log scale."""
        return self.high / self.estimate - 1 if self.finite and self.estimate > 0 else math.nan

    @property
    def significant(self) -> bool:
        """For a ratio: whether the interval excludes 1."""
        return self.finite and (self.low > 1 or self.high < 1)

    @property
    def label(self) -> str:
        """The coverage this interval has, as checked by simulation."""
        return COVERAGE_LABEL if self.between_included else ONE_PROCESS_LABEL

    def to_json(self) -> dict[str, float]:
        """The dict the views and tables keep: ratio/low/high."""
        return {"ratio": self.estimate, "low": self.low, "high": self.high}


COVERAGE_LABEL = "95 % CI"
NO_POOL = Pool()
ONE_PROCESS_LABEL = "95 % CI of one process's rounds"


@dataclass(frozen=True)
class _Terms:
    """The variance of a log median: terms estimated from the case (variance, df), and the
    weight of the pooled between-process variance."""

    own: tuple[tuple[float, float], ...]
    between_weight: float


def _terms(item: Spread) -> _Terms:
    factor = median_variance_factor(item.n)
    if item.within_df > 0:
        return _Terms(((factor * item.within / item.n, item.within_df),), 1 / item.processes)
    # No process has two rounds: every round is from another process, so the plain variance
    # of all of them holds both levels.
    return _Terms(((factor * item.total / item.n, item.n - 1),), 0.0)


def _interval(center: float, terms: Sequence[_Terms], pool: Pool) -> Interval:
    from scipy.special import stdtrit

    parts = [part for term in terms for part in term.own]
    weight = sum(term.between_weight for term in terms)
    if weight and pool.df:
        parts.append((weight * pool.variance, pool.df))
    variance = sum(v for v, _ in parts)
    if not parts or not math.isfinite(variance):
        return Interval(math.exp(center))
    denominator = sum(v * v / df for v, df in parts if v > 0)
    df = variance * variance / denominator if denominator > 0 else math.inf
    half = float(stdtrit(df, 0.5 + CONFIDENCE / 2)) * math.sqrt(variance) if variance else 0.0
    return Interval(
        math.exp(center),
        math.exp(center - half),
        math.exp(center + half),
        df,
        between_included=weight == 0 or pool.df > 0,
    )


def median_interval(groups: Sequence[Sequence[float]], pool: Pool | None = None) -> Interval:
    """The median of every round of `groups` (one sequence per process) and its interval;
    `pool` is the between-process variance of the run, this case included (without it, the
    case's own processes alone)."""
    item = spread(groups)
    if item.n == 0:
        return Interval(math.nan)
    if item.n < 2:
        return Interval(math.exp(item.log_median))
    return _interval(item.log_median, [_terms(item)], pool if pool is not None else Pool.of([item]))


def ratio_interval(
    numerator: Sequence[Sequence[float]],
    denominator: Sequence[Sequence[float]],
    pool: Pool | None = None,
) -> Interval:
    """median(numerator) / median(denominator), each side's rounds grouped by process, with
    its interval; `pool` is the between-process variance of the run(s) both belong to."""
    a, b = spread(numerator), spread(denominator)
    if a.n == 0 or b.n == 0:
        return Interval(math.nan)
    center = a.log_median - b.log_median
    if a.n < 2 or b.n < 2:
        return Interval(math.exp(center))
    return _interval(center, [_terms(a), _terms(b)], pool if pool is not None else Pool.of([a, b]))
