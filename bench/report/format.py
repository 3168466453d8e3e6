"""How every view writes a number: the HTML report, its Markdown summary, its figures' tick
labels and the terminal tables. One median prints the same wherever it appears.

Plain string functions, no plotting or templating imports, so the CLI can use them cheaply.
"""

from __future__ import annotations

import math

from bench.analysis.stats import clear_difference

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


def fmt_speedup(ratio: dict[str, float], versus: str = "") -> str:
    """`2.31× faster than X (2.10–2.52)` from a speed-up (reference time / this time) and its
    confidence interval; slower cases read `3.0× slower` with the interval inverted alike.
    An interval that includes 1 reads "no clear difference"."""
    value, low, high = ratio["ratio"], ratio["low"], ratio["high"]
    if not finite(value):
        return MISSING
    than = f" than {versus}" if versus else ""
    if value < 1:
        value, low, high = 1 / value, 1 / high, 1 / low
    interval = (
        f" ({fmt_ratio(low)}–{fmt_ratio(high)})" if finite(low) else " (too few rounds for a CI)"
    )
    if finite(low) and not clear_difference(low, high):
        return f"no clear difference{' from ' + versus if versus else ''}{interval}"
    word = "faster" if ratio["ratio"] >= 1 else "slower"
    return f"{fmt_ratio(value)}×{NBSP}{word}{than}{interval}"


def fmt_ratio(value: float) -> str:
    """2.31, 21.4, 210, 1,234: decimals only where they are significant."""
    if value < 10:
        return f"{value:.2f}"
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"
