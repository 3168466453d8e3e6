"""Sweeps: the same cases measured over growing sizes and thread counts, for scaling curves.

A sweep is an ordinary run whose cases carry `overrides` (one case per size x threads x
implementation), stored like any run plus a `sweep` entry in run.json; the tidy tables get a
`sweep_<key>` column. What grows: `n_samples` for K-Means, `batch_size` (or `steps`) for
trainers. The time of each size, fitted on log-log axes, gives an empirical exponent:
time ≈ prefactor · size^exponent (1 = linear).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from bench.analysis import stats
from bench.analysis.tables import SWEEP_PREFIX
from bench.scenarios import OVERRIDABLE, Scenario

SWEEPABLE = {
    "kmeans": ("n_samples",),
    "mlp": ("batch_size", "steps"),
    "cnn": ("batch_size", "steps"),
}
DEFAULT_SIZES = {
    "n_samples": {
        "smoke": (1_000, 10_000),
        "quick": (10_000, 100_000, 1_000_000),
        "full": (10_000, 100_000, 1_000_000, 10_000_000),
    },
    "batch_size": {"smoke": (8, 32), "quick": (16, 64, 256), "full": (16, 64, 256, 1_024)},
    "steps": {"smoke": (2, 8), "quick": (100, 1_000), "full": (100, 1_000, 10_000)},
}


class SweepError(ValueError):
    """A sweep that cannot be planned; the message says what is valid."""


def sweep_key(scenarios: Sequence[Scenario], key: str | None = None) -> str:
    """What grows: `key` if every scenario can sweep it, else the scenarios' common default."""
    if key is None:
        defaults = {SWEEPABLE[s.model][0] for s in scenarios}
        if len(defaults) > 1:
            raise SweepError(
                "these scenarios grow different sizes (" + ", ".join(sorted(defaults)) + "); "
                "sweep K-Means and trainer scenarios separately, or choose one with --over"
            )
        (key,) = defaults
    for scenario in scenarios:
        valid = SWEEPABLE[scenario.model]
        if key not in valid or key not in OVERRIDABLE:
            raise SweepError(
                f"cannot sweep {key!r} for {scenario.name} ({scenario.model}); "
                f"sweepable: {', '.join(valid)}"
            )
    return key


def parse_sizes(values: Sequence[str]) -> list[int]:
    """`["1e4,1e5", "1000000"]` -> [10000, 100000, 1000000], sorted, without repeats."""
    sizes = set()
    for item in (part.strip() for value in values for part in value.split(",")):
        if not item:
            continue
        try:
            size = float(item)
        except ValueError:
            size = math.nan
        if not (math.isfinite(size) and size >= 1 and size == int(size)):
            raise SweepError(
                f"--sizes takes positive whole numbers such as 1e4 or 500, got {item!r}"
            )
        sizes.add(int(size))
    return sorted(sizes)


def default_sizes(key: str, profile: str) -> list[int]:
    return list(DEFAULT_SIZES[key][profile])


def default_thread_counts(available: int) -> list[int]:
    """1, 2, 4, ... below `available`, then `available` itself."""
    counts = [1]
    while counts[-1] * 2 < available:
        counts.append(counts[-1] * 2)
    return counts if counts[-1] == available else [*counts, available]


def overrides(key: str, sizes: Sequence[int]) -> list[dict[str, int]]:
    """One case override per size, for `runner.plan(..., overrides=...)`."""
    return [{key: int(size)} for size in sizes]


def scaling_rows(summary: pd.DataFrame, key: str) -> list[dict]:
    """One row per scenario x implementation x threads x device: median comparable time per
    size (NaN where the case did not finish a round; `extrapolated` where capped rounds were
    scaled to their planned steps), status per size, and the fitted exponent."""
    column = f"{SWEEP_PREFIX}{key}"
    if summary.empty or column not in summary:
        return []
    rows = []
    identity = ["scenario", "implementation", "threads", "device"]
    for ids, group in summary.sort_values(column).groupby(identity):
        sizes = [int(size) for size in group[column]]
        times = [float(t) for t in group["comparable_seconds_median"]]
        fit = stats.loglog_fit(sizes, times)
        rows.append(
            {
                **dict(zip(identity, ids, strict=True)),
                "seconds": dict(zip(sizes, times, strict=True)),
                "status": dict(zip(sizes, group["status"], strict=True)),
                "extrapolated": dict(zip(sizes, group["time_extrapolated"], strict=True)),
                "exponent": fit["exponent"],
                "prefactor": fit["scale"],
            }
        )
    return rows
