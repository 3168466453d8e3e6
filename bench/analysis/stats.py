"""Robust summaries of round measurements: n, median, IQR, min, max."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pytest_benchmark.stats import Stats


def describe(values: Sequence[float]) -> dict[str, float]:
    """Order statistics of the finite values (NaN/None dropped); NaN everywhere if none.

    The quartiles, and so the IQR, are pytest-benchmark's own (`pytest_benchmark.stats.Stats`:
    for an odd count, Wikipedia's method 3; for an even count, the medians of the lower and
    upper halves), so that summary.csv and the pytest-benchmark JSON beside it give one IQR
    for the same rounds (docs/measurement.md, "Statistics and speed-ups")."""
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if finite.size == 0:
        return {
            "n": 0,
            "median": math.nan,
            "iqr": math.nan,
            "q1": math.nan,
            "q3": math.nan,
            "min": math.nan,
            "max": math.nan,
        }
    quartiles = Stats()
    quartiles.data = [float(v) for v in finite]
    return {
        "n": int(finite.size),
        "median": float(np.median(finite)),
        "iqr": float(quartiles.iqr),
        "q1": float(quartiles.q1),
        "q3": float(quartiles.q3),
        "min": float(finite.min()),
        "max": float(finite.max()),
    }


def _finite(values: Sequence[float]) -> np.ndarray:
    return np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value (exact for small samples); NaN if a side is empty."""
    from scipy.stats import mannwhitneyu

    x, y = _finite(a), _finite(b)
    if x.size == 0 or y.size == 0:
        return math.nan
    return float(mannwhitneyu(x, y, alternative="two-sided").pvalue)


def loglog_fit(sizes: Sequence[float], times: Sequence[float]) -> dict[str, float]:
    """Least-squares fit of log(time) = exponent * log(size) + log(scale): the empirical
    scaling exponent (1 = linear). NaN unless two distinct positive sizes."""
    pairs = [(s, t) for s, t in zip(sizes, times, strict=True) if s and t and s > 0 and t > 0]
    x = np.log([s for s, _ in pairs])
    y = np.log([t for _, t in pairs])
    if len(pairs) < 2 or np.ptp(x) == 0:
        return {"exponent": math.nan, "scale": math.nan}
    exponent, intercept = np.polyfit(x, y, 1)
    return {"exponent": float(exponent), "scale": float(math.exp(intercept))}


def pareto_front(costs: Sequence[float], qualities: Sequence[float]) -> list[bool]:
    """For each point, whether no other point is at least as cheap and as good and strictly
    better in one of the two (lower cost, higher quality)."""
    points = list(zip(costs, qualities, strict=True))
    ok = [math.isfinite(c) and math.isfinite(q) for c, q in points]
    return [
        ok[i]
        and not any(
            ok[j] and cj <= ci and qj >= qi and (cj < ci or qj > qi)
            for j, (cj, qj) in enumerate(points)
        )
        for i, (ci, qi) in enumerate(points)
    ]
