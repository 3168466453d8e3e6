"""Robust summaries of round measurements: n, median, IQR, min, max."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def describe(values: Sequence[float]) -> dict[str, float]:
    """Order statistics of the finite values (NaN/None dropped); NaN everywhere if none."""
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
    q1, median, q3 = np.percentile(finite, [25, 50, 75])
    return {
        "n": int(finite.size),
        "median": float(median),
        "iqr": float(q3 - q1),
        "q1": float(q1),
        "q3": float(q3),
        "min": float(finite.min()),
        "max": float(finite.max()),
    }
