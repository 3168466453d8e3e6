"""The report's figures drawn with matplotlib, as inline SVG strings (`draw`).

Text stays text (`svg.fonttype: none`) in the page's system font stack, so the report needs
no font files; the SVG's XML prologue and metadata (which name external URLs) are dropped
so the figure can sit inside the HTML.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogLocator, MultipleLocator, NullFormatter

from bench.report.figures import Bar, Curve, Figure, LatencySeries, Point, Series, ThreadSeries
from bench.report.format import NBSP, fmt_seconds
from bench.report.labels import place_labels
from bench.report.style import INK, MUTED, STYLE, plain_text


def to_svg(fig: plt.Figure, salt: str) -> str:
    """The figure as an `<svg>` element. Every element id gets `salt` as its prefix (the ids
    an artist was given already start with it), so that the figures of one page never share
    an id."""
    buffer = io.StringIO()
    with plt.rc_context({"svg.hashsalt": salt}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    own = {i for i in re.findall(r'\bid="([^"]+)"', svg) if not i.startswith(f"{salt}-")}
    svg = re.sub(
        r'(\bid="|href="#|url\(#)([^")]+)',
        lambda m: m.group(1) + (f"{salt}-{m.group(2)}" if m.group(2) in own else m.group(2)),
        svg,
    )
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


# Tick steps that read as round numbers of the unit the labels use (ms, s, min, h).
_SECOND_STEPS = sorted(
    [m * 10.0**e for e in range(-6, 2) for m in (1, 2, 5)] + [60, 120, 300, 600, 900, 1800, 3600]
)


def _tick_step(span: float, ticks: int = 6) -> float:
    """The smallest round step that puts at most `ticks` ticks on an axis of `span` seconds;
    whole minutes once the labels are in minutes (from 2 min on)."""
    steps = [s for s in _SECOND_STEPS if s >= 60] if span > 120 else _SECOND_STEPS
    return next((s for s in steps if span / s <= ticks), span / ticks)


def time_bars(bars: Sequence[Bar], salt: str) -> str:
    """Median time per case (fastest on top) with the interquartile range as error bar, on a
    linear axis from zero: a bar twice as long is a case twice as slow."""
    with plt.rc_context(STYLE):
        longest = max((len(b.label) for b in bars), default=10)
        fig, ax = _figure(10, 0.9 + 0.3 * len(bars), left=0.25 + 0.068 * longest)
        for i, b in enumerate(bars):
            ax.barh(
                i,
                b.median,
                color="white" if b.extrapolated else b.colour,
                hatch="////" if b.extrapolated else "",
                edgecolor=INK if b.reference else b.colour,
                linestyle="--" if b.extrapolated else "-",
                linewidth=1.6 if b.reference else 0.9,
                height=0.62,
                gid=f"{salt}-bar-{i}",
            )
        ax.errorbar(
            [b.median for b in bars],
            range(len(bars)),
            xerr=[
                [max(b.median - b.q1, 0) for b in bars],
                [max(b.q3 - b.median, 0) for b in bars],
            ],
            fmt="none",
            ecolor=INK,
            elinewidth=1,
            capsize=3,
        )
        right = max((max(b.q3, b.median) for b in bars if math.isfinite(b.q3)), default=1.0)
        for i, b in enumerate(bars):
            words = " (extrapolated)" if b.extrapolated else ""
            ax.text(
                max(b.q3, b.median) + right * 0.01,
                i,
                f" {_seconds(b.median)}{words}",
                va="center",
                color=INK,
                fontsize=8,
            )
        ax.set_yticks(range(len(bars)), [plain_text(b.label) for b in bars])
        ax.invert_yaxis()
        ax.set_xlim(0, right * 1.25)
        ax.xaxis.set_major_locator(MultipleLocator(_tick_step(right * 1.25)))
        ax.xaxis.set_major_formatter(FuncFormatter(_seconds))
        ax.set_xlabel("median time per round (error bar: interquartile range)")
        ax.grid(axis="y", visible=False)
        ax.tick_params(axis="y", length=0, labelcolor=INK)
        return to_svg(fig, salt)


# Legend labels up to this many characters fit two to a row beneath a 4.8-inch figure.
TWO_COLUMN_LABEL = 26


def _legend_columns(labels: Sequence[str]) -> int:
    return 2 if len(labels) > 1 and max(map(len, labels)) <= TWO_COLUMN_LABEL else 1


def _figure_with_legend(labels: Sequence[str], width: float = 4.8, height: float = 3.2):
    """A figure whose legend goes beneath the axes, never on the data."""
    rows = math.ceil(len(labels) / _legend_columns(labels)) if labels else 0
    legend = 0.19 * rows + 0.15 if rows else 0.0
    return _figure(width, height + legend, bottom=0.55 + legend)


def _legend_below(ax: plt.Axes, salt: str) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    legend = ax.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=_legend_columns(labels),
        borderaxespad=0,
    )
    legend.set_gid(f"{salt}-legend")


def _fraction_axis(ax: plt.Axes, values: Sequence[float], reference: float | None = None) -> None:
    """A y axis fitted to accuracies or indices: around the data, never past 0 or 1."""
    finite = [v for v in [*values, *([reference] if reference is not None else [])] if _ok(v)]
    if not finite:
        return
    low, high = min(finite), max(finite)
    pad = max((high - low) * 0.08, 0.005)
    ax.set_ylim(max(0.0, low - pad), min(1.0, high + pad) if high < 1 else 1.0 + pad / 4)


def _ok(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def accuracy_curves(curves: Sequence[Curve], target: float | None, salt: str) -> str:
    """Test accuracy against cumulative training time, one thin line per measured round."""
    with plt.rc_context(STYLE):
        fig, ax = _figure_with_legend([c.label for c in curves])
        accuracies = []
        for k, curve in enumerate(curves):
            for i, (seconds, accuracy) in enumerate(curve.rounds):
                accuracies += accuracy
                ax.plot(
                    seconds,
                    accuracy,
                    color=curve.colour,
                    linewidth=1.2,
                    alpha=0.8,
                    marker="o",
                    markersize=2.5,
                    label=plain_text(curve.label) if i == 0 else None,
                    gid=f"{salt}-data-{k}-{i}",
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
        _fraction_axis(ax, accuracies, target)
        logarithmic = _log_x_if_wide(ax, [s for c in curves for r in c.rounds for s in r[0]])
        ax.xaxis.set_major_formatter(FuncFormatter(_seconds))
        scale = " (log scale)" if logarithmic else ""
        ax.set_xlabel(f"training time, evaluation excluded{scale}")
        ax.set_ylabel("test accuracy")
        ax.set_title("Accuracy vs training time")
        _legend_below(ax, salt)
        return to_svg(fig, salt)


def pareto_scatter(points: Sequence[Point], quality: str, salt: str) -> str:
    """Quality against median time; the Pareto front (nothing both faster and better) joined.
    Every label sits beside its own point, or is tied to it by a leader line."""
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
            )
        for i, p in enumerate(points):
            ax.scatter(
                p.seconds,
                p.quality,
                s=60 if p.on_front else 28,
                color=p.colour,
                edgecolor=INK if p.on_front else "white",
                linewidth=1.2 if p.on_front else 0.5,
                zorder=3,
                gid=f"{salt}-point-{i}",
            )
        logarithmic = _log_x_if_wide(ax, [p.seconds for p in points])
        ax.margins(x=0.3, y=0.25)
        _fraction_axis(ax, [p.quality for p in points])
        place_labels(ax, points, salt)
        ax.xaxis.set_major_formatter(FuncFormatter(_seconds))
        scale = ", log scale" if logarithmic else ""
        ax.set_xlabel(f"median train time (faster ←{scale})")
        ax.set_ylabel(f"{quality} (better ↑)")
        ax.set_title("Quality vs time (outlined: Pareto front)")
        return to_svg(fig, salt)


def scaling(series: Sequence[Series], size_name: str, salt: str) -> str:
    """Median time against problem size on log-log axes, with each fitted power law."""
    with plt.rc_context(STYLE):
        fig, ax = _figure_with_legend(
            [s.label + (" (∝ n^0.00)" if math.isfinite(s.exponent) else "") for s in series]
        )
        for k, s in enumerate(series):
            label = plain_text(s.label)
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
                gid=f"{salt}-data-{k}",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(_seconds))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"{size_name} (log scale)")
        ax.set_ylabel("median time per round (log scale)")
        ax.set_title(f"Scaling with {size_name} (log-log)")
        _legend_below(ax, salt)
        return to_svg(fig, salt)


def thread_scaling(series: Sequence[ThreadSeries], salt: str) -> str:
    """Speed-up against thread count, beside the ideal (linear) speed-up."""
    with plt.rc_context(STYLE):
        fig, ax = _figure_with_legend(["ideal (linear)", *(s.label for s in series)])
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
        for k, s in enumerate(series):
            ax.plot(
                s.threads,
                s.speedups,
                "o-",
                color=s.colour,
                markersize=4,
                label=plain_text(s.label),
                gid=f"{salt}-data-{k}",
            )
        ax.set_xticks(sorted({t for s in series for t in s.threads}))
        ax.set_xlabel("threads")
        ax.set_ylabel(f"speed-up over {lowest} thread{'s' if lowest > 1 else ''}")
        ax.set_title("Scaling with threads")
        _legend_below(ax, salt)
        return to_svg(fig, salt)


def _log_x_if_wide(ax: plt.Axes, values: Sequence[float]) -> bool:
    """Times that span more than two decades are only readable on a log axis."""
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if positive and max(positive) / min(positive) > 100:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
        return True
    return False


def latency_curves(series: Sequence[LatencySeries], bound: float, title: str, salt: str) -> str:
    """p50 (solid) and p99 (dashed) latency against achieved requests per second, on log-log
    axes: a line through the open-loop levels without errors, crosses at those with errors
    (overloaded: their throughput falls back), hollow markers at the closed-loop levels; the
    p99 bound as a dotted line."""
    with plt.rc_context(STYLE):
        fig, ax = _figure_with_legend([s.label for s in series], width=5.4)
        for k, s in enumerate(series):
            label = plain_text(s.label)
            ax.plot(s.open_rps, s.open_p50, "o-", color=s.colour, markersize=3.5, label=label,
                    gid=f"{salt}-data-{k}")  # fmt: skip
            ax.plot(s.open_rps, s.open_p99, "o--", color=s.colour, markersize=3.5, linewidth=1)
            for latencies, marker in ((s.closed_p50, "o"), (s.closed_p99, "^")):
                ax.plot(s.closed_rps, latencies, marker, color=s.colour, markersize=5,
                        markerfacecolor="none", linestyle="none")  # fmt: skip
            for latencies, marker in ((s.overloaded_p50, "x"), (s.overloaded_p99, "1")):
                ax.plot(s.overloaded_rps, latencies, marker, color=s.colour, markersize=6,
                        linestyle="none")  # fmt: skip
        if _ok(bound):
            ax.axhline(bound, color=MUTED, linewidth=0.9, linestyle=":")
            ax.annotate(f"p99 bound {_seconds(bound)}", (0.01, bound), xycoords=("axes fraction",
                        "data"), color=MUTED, fontsize=8, va="bottom")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(_seconds))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("answered requests per second (log scale)")
        ax.set_ylabel("latency (log scale)")
        ax.set_title(title)
        _legend_below(ax, salt)
        return to_svg(fig, salt)


_PLOTS = {
    "time_bars": time_bars,
    "accuracy_curves": accuracy_curves,
    "pareto_scatter": pareto_scatter,
    "scaling": scaling,
    "thread_scaling": thread_scaling,
    "latency_curves": latency_curves,
}


def draw(figure: Figure) -> str:
    return _PLOTS[figure.kind](*figure.arguments, figure.salt)
