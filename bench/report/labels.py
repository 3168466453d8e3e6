"""Direct labels for the points of a scatter: each beside its own point, or tied to it by a
leader line, never on another point or label."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt

from bench.report.figures import Point
from bench.report.style import INK, LABEL_SIZE, MUTED, plain_text


def _ok(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


# Where a label may go, in points from its marker: beside it first, then on rings farther
# out, tied to it by a leader line. (dx, dy, horizontal alignment, vertical alignment)
_BESIDE = [
    (6, 0, "left", "center"),
    (-6, 0, "right", "center"),
    (0, 6, "center", "bottom"),
    (0, -6, "center", "top"),
    (5, 5, "left", "bottom"),
    (-5, 5, "right", "bottom"),
    (5, -5, "left", "top"),
    (-5, -5, "right", "top"),
]


def _ring(radius: float, steps: int = 12) -> list[tuple[float, float, str, str]]:
    places = []
    for k in range(steps):
        angle = 2 * math.pi * k / steps
        dx, dy = radius * math.cos(angle), radius * math.sin(angle)
        ha = "left" if dx > 1 else "right" if dx < -1 else "center"
        va = "bottom" if dy > 1 else "top" if dy < -1 else "center"
        places.append((dx, dy, ha, va))
    return places


_FARTHER = [place for radius in (18, 30, 46, 66) for place in _ring(radius)]


def place_labels(ax: plt.Axes, points: Sequence[Point], salt: str) -> None:
    """Each label at the first place, beside its point, that stays inside the axes and
    covers no other point or label; if there is none, farther out with a leader line; if
    every place is crowded, the one that covers least."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    centres = [
        ax.transData.transform((p.seconds, p.quality)) if _ok(p.seconds) and _ok(p.quality)
        else None
        for p in points
    ]  # fmt: skip
    radius = 6 * fig.dpi / 72
    taken: list = []
    for i, (p, centre) in enumerate(zip(points, centres, strict=True)):
        if centre is None:
            continue
        best = None
        for place in [*_BESIDE, *_FARTHER]:
            label = _annotate(ax, p, place)
            extent = label.get_window_extent(renderer).padded(2)
            label.remove()
            cost = _crowding(extent, centre, i, centres, taken, box, radius)
            if best is None or cost < best[0]:
                best = (cost, place, extent)
            if cost == 0:
                break
        _, place, extent = best
        label = _annotate(ax, p, place, leader=place not in _BESIDE)
        if label.arrow_patch is not None:
            label.arrow_patch.set_gid(f"{salt}-leader-{i}")
        label.set_gid(f"{salt}-label-{i}")
        taken.append(extent)


def _annotate(ax: plt.Axes, p: Point, place: tuple, leader: bool = False):
    dx, dy, ha, va = place
    arrow = {"arrowstyle": "-", "color": MUTED, "linewidth": 0.6, "shrinkA": 0, "shrinkB": 0}
    return ax.annotate(
        plain_text(p.label),
        (p.seconds, p.quality),
        xytext=(dx, dy),
        textcoords="offset points",
        ha=ha,
        va=va,
        fontsize=LABEL_SIZE,
        color=INK,
        zorder=4,
        arrowprops=arrow if leader else None,
    )


def _crowding(extent, centre, index, centres, taken, box, radius) -> float:
    """0 where a label's box stays inside the axes and clears every other point and label,
    and nothing sits between it and its own point (a point drawn on top of its own cannot
    be avoided: only the box must clear it); more, the more it covers."""
    inside = box.contains(extent.x0, extent.y0) and box.contains(extent.x1, extent.y1)
    x, y = centre
    nearest = (min(max(x, extent.x0), extent.x1), min(max(y, extent.y0), extent.y1))
    points = sum(
        _near(extent, c, radius)
        or (math.dist(c, centre) >= radius and _segment_distance(c, centre, nearest) < radius)
        for j, c in enumerate(centres)
        if c is not None and j != index
    )
    labels = sum(extent.overlaps(other) for other in taken)
    return (0 if inside else 100) + 10 * points + 10 * labels


def _segment_distance(point, start, end) -> float:
    """How far `point` is from the segment `start`-`end` (a label's reach to its point)."""
    (px, py), (sx, sy), (ex, ey) = point, start, end
    length = (ex - sx) ** 2 + (ey - sy) ** 2
    along = ((px - sx) * (ex - sx) + (py - sy) * (ey - sy)) / length if length else 0.0
    t = max(0.0, min(1.0, along))
    return math.dist(point, (sx + t * (ex - sx), sy + t * (ey - sy)))


def _near(extent, centre, radius: float) -> bool:
    """Whether a label's box comes within `radius` of a point's centre."""
    x, y = centre
    dx = max(extent.x0 - x, 0, x - extent.x1)
    dy = max(extent.y0 - y, 0, y - extent.y1)
    return math.hypot(dx, dy) < radius
