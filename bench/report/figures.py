"""What the report's figures show, as plain data: each section describes a figure as a
`Figure` (which plot, its data, a salt that keeps its SVG ids unique in the page), and
`plots.draw` renders it when the HTML template asks for it. Each implementation keeps one
colour everywhere."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PALETTE = (
    "#4c72b0",
    "#dd8452",
    "#55a868",
    "#c44e52",
    "#8172b3",
    "#937860",
    "#da8bc3",
    "#8c8c8c",
    "#ccb974",
    "#64b5cd",
)


def colours(names: Sequence[str]) -> dict[str, str]:
    """A stable colour per implementation name (sorted, so every figure agrees)."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(set(names)))}


@dataclass
class Bar:
    label: str
    median: float
    q1: float
    q3: float
    colour: str
    reference: bool = False  # the reference of the speed-ups: outlined
    extrapolated: bool = False  # scaled up from capped rounds: hatched, dashed outline


@dataclass
class Curve:
    label: str
    colour: str
    rounds: list[tuple[list[float], list[float]]]  # (seconds, accuracy) of each round


@dataclass
class Point:
    label: str
    colour: str
    seconds: float
    quality: float
    on_front: bool


@dataclass
class Series:
    label: str
    colour: str
    sizes: list[float]
    seconds: list[float]
    exponent: float
    scale: float
    dashed: bool = False  # e.g. the same implementation at fewer threads


@dataclass(frozen=True)
class ThreadSeries:
    label: str
    colour: str
    threads: list[int]
    speedups: list[float]  # median time at the fewest threads / median time at each


@dataclass(frozen=True)
class LatencySeries:
    """One server's latencies against the throughput it achieved, level by level (seconds,
    answered requests per second): open-loop levels in order of offered rate (those with
    errors apart: overloaded), closed-loop levels in order of concurrency."""

    label: str
    colour: str
    open_rps: list[float]
    open_p50: list[float]
    open_p99: list[float]
    closed_rps: list[float]
    closed_p50: list[float]
    closed_p99: list[float]
    overloaded_rps: list[float]
    overloaded_p50: list[float]
    overloaded_p99: list[float]


@dataclass(frozen=True)
class Figure:
    """What to draw: the name of one of this module's plots, its arguments, and the salt."""

    kind: str
    arguments: tuple[Any, ...]
    salt: str
