"""The report's figures drawn with matplotlib, as inline SVG strings (`draw`).

Text stays text (`svg.fonttype: none`) in the page's system font stack, so the report needs
no font files; the SVG's XML prologue and metadata (which name external URLs) are dropped
so the figure can sit inside the HTML.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from bench.report.figures import Bar, Curve, Figure, Point, Series, ThreadSeries
from bench.report.format import NBSP, fmt_seconds

INK = "#1f2933"
LOG_SPAN = 30  # a time axis spanning more than this factor is drawn logarithmic
LABEL_SIZE = 7.5
MUTED = "#6b7280"
GRID = "#e5e7eb"
FONT_STACK = ["system-ui", "Segoe UI", "Helvetica Neue", "Arial", "DejaVu Sans"]
STYLE = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": FONT_STACK,
    "font.size": 9,
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": GRID,
    "grid.linewidth": 0.8,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "legend.frameon": False,
    "legend.fontsize": 8,
}
# Only the first fonts of the stack exist in the browser; matplotlib measures with the last.
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)


def _text(label: str) -> str:
    """Plain text for matplotlib: a `$` would start mathtext."""
    return label.replace("$", r"\$")


def to_svg(fig: plt.Figure, salt: str) -> str:
    """The figure as an `<svg>` element; `salt` keeps element ids unique within the page."""
    buffer = io.StringIO()
    with plt.rc_context({"svg.hashsalt": salt}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    return svg.replace("<svg ", '<svg role="img" ', 1)


def _figure(width: float, height: float, left: float = 0.9, bottom: float = 0.55):
    """A figure with fixed margins (inches): cheaper than a tight bounding box, which
    draws every figure twice."""
    fig, ax = plt.subplots(figsize=(width, height))
    fig.subplots_adjust(
        left=left / width,
        right=1 - 0.15 / width,
        bottom=bottom / height,
        top=1 - 0.35 / height,
    )
    return fig, ax


def _seconds(value: float, _position: object = None) -> str:
    """Tick labels and bar values, written as the tables write them."""
    return fmt_seconds(value).replace(NBSP, " ") if value > 0 else "0"


def time_bars(bars: Sequence[Bar], salt: str) -> str:
    """Median train time per case (fastest on top) with the interquartile range as error bar."""
    medians = [b.median for b in bars if b.median > 0]
    logarithmic = bool(medians) and max(medians) / min(medians) > LOG_SPAN
    with plt.rc_context(STYLE):
        longest = max((len(b.label) for b in bars), default=10)
        fig, ax = _figure(10, 0.9 + 0.3 * len(bars), left=0.25 + 0.068 * longest)
        y = range(len(bars))
        base = 10 ** math.floor(math.log10(min(b.q1 for b in bars))) if logarithmic else 0
        ax.barh(
            y,
            [b.median - base for b in bars],
            left=base,
            color=[b.colour for b in bars],
            hatch=["///" if b.emphasis else "" for b in bars],
            edgecolor="white",
            height=0.62,
        )
        ax.errorbar(
            [b.median for b in bars],
            y,
            xerr=[
                [max(b.median - b.q1, 0) for b in bars],
                [max(b.q3 - b.median, 0) for b in bars],
            ],
            fmt="none",
            ecolor=INK,
            elinewidth=1,
            capsize=3,
        )
        right = max((b.q3 for b in bars if math.isfinite(b.q3)), default=1.0)
        for i, b in enumerate(bars):
            ax.text(
                max(b.q3, b.median) * 1.05 if logarithmic else max(b.q3, b.median) + right * 0.01,
                i,
                f" {_seconds(b.median)}",
                va="center",
                color=INK,
                fontsize=8,
            )
        ax.set_yticks(list(y), [_text(b.label) for b in bars])
        ax.invert_yaxis()
        if logarithmic:
            ax.set_xscale("log")
            ax.set_xlim(base, right * 3)
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:
            ax.set_xlim(0, right * 1.18)
        ax.xaxis.set_major_formatter(FuncFormatter(_seconds))
        scale = ", log scale" if logarithmic else ""
        ax.set_xlabel(f"median time per round (error bar: interquartile range{scale})")
        ax.grid(axis="y", visible=False)
        ax.tick_params(axis="y", length=0, labelcolor=INK)
        return to_svg(fig, salt)


def accuracy_curves(curves: Sequence[Curve], target: float | None, salt: str) -> str:
    """Test accuracy against cumulative training time, one thin line per measured round."""
    with plt.rc_context(STYLE):
        fig, ax = _figure(4.8, 3.2)
        for curve in curves:
            for i, (seconds, accuracy) in enumerate(curve.rounds):
                ax.plot(
                    seconds,
                    accuracy,
                    color=curve.colour,
                    linewidth=1.2,
                    alpha=0.8,
                    marker="o",
                    markersize=2.5,
                    label=_text(curve.label) if i == 0 else None,
                )
        if target is not None:
            ax.axhline(target, color=MUTED, linestyle="--", linewidth=0.9)
            ax.annotate(
                f"target {target:g}",
                (1, target),
                xycoords=("axes fraction", "data"),
                ha="right",
                va="bottom",
                color=MUTED,
                fontsize=7.5,
            )
        _log_x_if_wide(ax, [s for c in curves for r in c.rounds for s in r[0]])
        ax.xaxis.set_major_formatter(FuncFormatter(_seconds))
        ax.set_xlabel("training time (evaluation excluded)")
        ax.set_ylabel("test accuracy")
        ax.set_title("Accuracy vs training time")
        ax.legend(loc="best")
        return to_svg(fig, salt)


def pareto_scatter(points: Sequence[Point], quality: str, salt: str) -> str:
    """Quality against median time; the Pareto front (nothing both faster and better) joined."""
    with plt.rc_context(STYLE):
        fig, ax = _figure(4.8, 3.2)
        front = sorted((p for p in points if p.on_front), key=lambda p: p.seconds)
        if len(front) > 1:
            ax.step(
                [p.seconds for p in front],
                [p.quality for p in front],
                where="post",
                color=MUTED,
                linewidth=1,
                linestyle="--",
                label="Pareto front",
            )
        for p in points:
            ax.scatter(
                p.seconds,
                p.quality,
                s=60 if p.on_front else 28,
                color=p.colour,
                edgecolor=INK if p.on_front else "white",
                linewidth=1.2 if p.on_front else 0.5,
                zorder=3,
            )
        _log_x_if_wide(ax, [p.seconds for p in points])
        ax.margins(x=0.25, y=0.15)
        for p, (dx, dy) in zip(points, _label_offsets(ax, points, LABEL_SIZE), strict=True):
            ax.annotate(
                _text(p.label),
                (p.seconds, p.quality),
                xytext=(dx, dy),
                textcoords="offset points",
                ha="left" if dx > 0 else "right",
                fontsize=LABEL_SIZE,
                color=INK,
            )
        ax.xaxis.set_major_formatter(FuncFormatter(_seconds))
        ax.set_xlabel("median train time (faster ←)")
        ax.set_ylabel(f"{quality} (better ↑)")
        ax.set_title("Quality vs time (outlined: Pareto front)")
        return to_svg(fig, salt)


def scaling(series: Sequence[Series], size_name: str, salt: str) -> str:
    """Median time against problem size on log-log axes, with each fitted power law."""
    with plt.rc_context(STYLE):
        fig, ax = _figure(4.8, 3.2)
        for s in series:
            label = _text(s.label)
            if math.isfinite(s.exponent):
                label += f" (∝ n^{s.exponent:.2f})"
                lo, hi = min(s.sizes), max(s.sizes)
                ax.plot(
                    [lo, hi],
                    [s.scale * lo**s.exponent, s.scale * hi**s.exponent],
                    color=s.colour,
                    linewidth=0.9,
                    linestyle=":",
                )
            ax.plot(
                s.sizes,
                s.seconds,
                "o--" if s.dashed else "o-",
                color=s.colour,
                markersize=4,
                label=label,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(_seconds))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(size_name)
        ax.set_ylabel("median time per round")
        ax.set_title(f"Scaling with {size_name} (log-log)")
        ax.legend(loc="upper left")
        return to_svg(fig, salt)


def thread_scaling(series: Sequence[ThreadSeries], salt: str) -> str:
    """Speed-up against thread count, beside the ideal (linear) speed-up."""
    with plt.rc_context(STYLE):
        fig, ax = _figure(4.8, 3.2)
        lowest = min(min(s.threads) for s in series)
        highest = max(max(s.threads) for s in series)
        ax.plot(
            [lowest, highest],
            [1, highest / lowest],
            color=MUTED,
            linewidth=0.9,
            linestyle="--",
            label="ideal (linear)",
        )
        for s in series:
            ax.plot(s.threads, s.speedups, "o-", color=s.colour, markersize=4, label=_text(s.label))
        ax.set_xticks(sorted({t for s in series for t in s.threads}))
        ax.set_xlabel("threads")
        ax.set_ylabel(f"speed-up over {lowest} thread{'s' if lowest > 1 else ''}")
        ax.set_title("Scaling with threads")
        ax.legend(loc="upper left")
        return to_svg(fig, salt)


def _label_offsets(ax: plt.Axes, points: Sequence[Point], size: float) -> list[tuple[float, float]]:
    """Label offsets (points) from their markers: to the right, or to the left near the right
    edge; stacked upwards where labels would overlap (extents estimated from their length)."""
    ax.get_xlim(), ax.get_ylim()  # settles the autoscaled limits that transData uses
    scale = ax.figure.dpi / 72
    placed: list[tuple[float, float, float]] = []  # (x0, x1, y) in display pixels
    offsets = []
    for p in points:
        if not (math.isfinite(p.seconds) and math.isfinite(p.quality)):
            offsets.append((5.0, 4.0))
            continue
        x, y = ax.transData.transform((p.seconds, p.quality))
        width = (5 + 0.62 * size * len(p.label)) * scale
        dx = 5.0 if x + width <= ax.bbox.x1 else -5.0
        x0, x1 = (x, x + width) if dx > 0 else (x - width, x)
        step = 1.3 * size
        # Just above the marker, else the nearest free line above or below that stays
        # inside the axes (a cluster of labels then fans out both ways, not into the title).
        candidates = [4.0]
        for k in range(1, 2 * len(points) + 1):
            candidates += [4.0 + k * step, 4.0 - k * step]

        offset = next(
            (
                c
                for c in candidates
                if _line_is_free(ax, placed, (x0, x1, y + c * scale), step * scale)
            ),
            4.0,
        )
        placed.append((x0, x1, y + offset * scale))
        offsets.append((dx, offset))
    return offsets


def _line_is_free(
    ax: plt.Axes, placed: list[tuple[float, float, float]], line: tuple, height: float
) -> bool:
    """Whether a label spanning `line` (x0, x1, y in display pixels) stays inside the axes
    and clears every label already placed."""
    x0, x1, y = line
    if not ax.bbox.y0 <= y <= ax.bbox.y1 - height:
        return False
    return not any(x0 < px1 and px0 < x1 and abs(y - py) < height for px0, px1, py in placed)


def _log_x_if_wide(ax: plt.Axes, values: Sequence[float]) -> None:
    """Times that span more than two decades are only readable on a log axis."""
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if positive and max(positive) / min(positive) > 100:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())


_PLOTS = {
    "time_bars": time_bars,
    "accuracy_curves": accuracy_curves,
    "pareto_scatter": pareto_scatter,
    "scaling": scaling,
    "thread_scaling": thread_scaling,
}


def draw(figure: Figure) -> str:
    return _PLOTS[figure.kind](*figure.arguments, figure.salt)
