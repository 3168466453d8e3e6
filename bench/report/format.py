"""How every view writes a number: the HTML report, its Markdown summary, its figures' tick
labels and the terminal tables. One median prints the same wherever it appears.

Plain string functions, no plotting or templating imports, so the CLI can use them cheaply.
"""

from __future__ import annotations

import math

from bench.analysis.intervals import Interval

NBSP = "\u00a0"  # keeps a number and its unit on one line in narrow table cells
MISSING = "–"
EXTRAPOLATED = "extrapolated"


def finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def fmt_seconds(value: object) -> str:
    if not finite(value):
        return MISSING
    value = float(value)
    if value < 1e-3:
        return f"{value * 1e6:.3g}{NBSP}µs"
    if value < 1:
        return f"{value * 1e3:.3g}{NBSP}ms"
    if value < 120:
        return f"{value:.3g}{NBSP}s"
    return f"{value / 60:.3g}{NBSP}min"


def fmt_time(seconds: object, extrapolated: bool) -> str:
    """A case's comparable time, saying so when capped rounds were scaled up to it."""
    text = fmt_seconds(seconds)
    return f"{text} ({EXTRAPOLATED})" if extrapolated and finite(seconds) else text


def fmt_pct(value: object, digits: int = 1) -> str:
    return f"{100 * float(value):.{digits}f}{NBSP}%" if finite(value) else MISSING


def fmt_num(value: object, digits: int = 3) -> str:
    return f"{float(value):.{digits}g}" if finite(value) else MISSING


def fmt_int(value: object) -> str:
    return f"{float(value):,.0f}" if finite(value) else MISSING


def fmt_cores(value: object) -> str:
    return f"{float(value):.1f}" if finite(value) else MISSING


def fmt_size(value: float) -> str:
    """A sweep size: 1000000 -> 1,000,000; non-integers as %g."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


def fmt_bytes(value: object) -> str:
    if not finite(value):
        return MISSING
    value = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            digits = 0 if unit in ("B", "KiB", "MiB") else 1
            return f"{value:.{digits}f}{NBSP}{unit}"
        value /= 1024
    return MISSING


def fmt_threads(count: object) -> str:
    return f"{count} thread{'' if str(count) == '1' else 's'}"


def fmt_change(ratio: float) -> str:
    """+25.0 % for a candidate 1.25 times the baseline's time."""
    return f"{ratio - 1:+.1%}" if finite(ratio) else MISSING


NOT_SIGNIFICANT = "not significant"


def speedup_parts(ratio: Interval, versus: str = "") -> tuple[str, str]:
    """A speed-up (reference time / this time) in words, and its interval with the coverage
    it has: ("2.31× faster than X", "2.10–2.52, 95 % CI"). A slower case reads "2.44× slower",
    its interval turned the same way. A speed-up whose interval includes 1 is not a win nor a
    loss: its point estimate and interval stay speed-ups, as the column header says, with
    "not significant": ("0.41×, not significant", "0.32–2.38, 95 % CI")."""
    value, low, high = ratio.estimate, ratio.low, ratio.high
    if not finite(value):
        return MISSING, ""
    if ratio.finite and not ratio.significant:
        against = f" vs {versus}" if versus else ""
        return (
            f"{fmt_ratio(value)}×{against}, {NOT_SIGNIFICANT}",
            f"{fmt_ratio(low)}–{fmt_ratio(high)}, {ratio.label}",
        )
    word = "faster" if value >= 1 else "slower"
    if value < 1:
        value, low, high = 1 / value, 1 / high, 1 / low
    words = f"{fmt_ratio(value)}×{NBSP}{word}{' than ' + versus if versus else ''}"
    if not ratio.finite:
        return words, "too few rounds for a CI"
    return words, f"{fmt_ratio(low)}–{fmt_ratio(high)}, {ratio.label}"


def fmt_speedup(ratio: Interval, versus: str = "") -> str:
    """`2.31× faster than X (2.10–2.52, 95 % CI)`; see `speedup_parts`."""
    words, interval = speedup_parts(ratio, versus)
    return f"{words} ({interval})" if interval else words


def fmt_half_width(half_width: object) -> str:
    """The relative half-width of a median's interval: ±3.1 %, ±12 %, ±>1000 %."""
    if not finite(half_width):
        return MISSING
    percent = 100 * float(half_width)
    if percent >= 1000:
        return f"±>1000{NBSP}%"
    return f"±{percent:.2g}{NBSP}%" if percent < 10 else f"±{percent:.0f}{NBSP}%"


def fmt_ratio(value: float) -> str:
    """2.31, 21.4, 210, 1,234: decimals only where they are significant."""
    if value < 10:
        return f"{value:.2f}"
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"
