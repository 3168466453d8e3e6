"""What several commands share: the option groups declared once (`--plugins`,
`--results-dir`, `--reports-dir`), number types that refuse bad values with the valid range,
and the command-line mistake that prints without a traceback."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from bench.store import RunStore, latest_run_id, results_root


class UsageError(Exception):
    """A mistake in the command line; printed without a traceback, exit code 2."""


def _number(kind: type, minimum: float, what: str) -> Callable[[str], float]:
    """An argparse type: a number of `kind` not below `minimum`, else a clear error."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value < minimum:
            raise argparse.ArgumentTypeError(f"takes {what}, got {text!r}")
        return value

    return parse


POSITIVE_INT = _number(int, 1, "a whole number of 1 or more")


def rounds_range(text: str) -> tuple[int, int]:
    """`--rounds 5` (exactly 5) or `--rounds 4-12` (at least 4, at most 12)."""
    low, _, high = text.partition("-")
    if not low.strip().isdigit() or (high and not high.strip().isdigit()):
        raise argparse.ArgumentTypeError(f"takes N or MIN-MAX (e.g. 5, or 4-12), got {text!r}")
    least, most = int(low), int(high or low)
    if least < 1 or most < least:
        raise argparse.ArgumentTypeError(
            f"takes N or MIN-MAX with 1 <= MIN <= MAX (e.g. 5, or 4-12), got {text!r}"
        )
    return least, most


def percentage(text: str) -> float:
    """`5%` or `5` -> 0.05, above 0."""
    value = text.strip().removesuffix("%").strip()
    try:
        percent = float(value)
    except ValueError:
        percent = math.nan
    if not math.isfinite(percent) or percent <= 0:
        raise argparse.ArgumentTypeError(f"takes a percentage above 0 such as 5%, got {text!r}")
    return percent / 100


COUNT = _number(int, 0, "a whole number of 0 or more")
SECONDS = _number(float, 1e-3, "a number of seconds above 0")


def split(values: list[str] | None) -> list[str]:
    """`--impl a,b --impl c` -> [a, b, c]."""
    return [item.strip() for value in values or () for item in value.split(",") if item.strip()]


def thread_counts(values: list[str] | None) -> list[int]:
    counts = []
    for item in split(values):
        if not item.isdigit() or int(item) < 1:
            raise UsageError(f"--threads takes positive integers, got {item!r}")
        counts.append(int(item))
    return counts


class Groups:
    """Parent parsers for the options several commands take, each declared once."""

    def __init__(self) -> None:
        self.plugins = argparse.ArgumentParser(add_help=False)
        self.plugins.add_argument(
            "--plugins",
            action="append",
            type=Path,
            default=[],
            metavar="DIR",
            help="also load implementations from DIR (repeatable)",
        )
        self.results = argparse.ArgumentParser(add_help=False)
        self.results.add_argument(
            "--results-dir",
            metavar="DIR",
            help="where runs are stored (default $BENCH_RESULTS_DIR or ./results)",
        )
        self.reports = argparse.ArgumentParser(add_help=False)
        self.reports.add_argument(
            "--reports-dir",
            metavar="DIR",
            help="where reports are written (default $BENCH_REPORTS_DIR or ./reports)",
        )


def add_scenarios_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenarios",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="also load the scenarios of this TOML file or folder of them (repeatable; "
        "$BENCH_SCENARIOS too, separated by ':'); `bench run` then runs these by default",
    )


def open_run(results_dir: str | None, run: str | None) -> RunStore:
    """RUN (an id or a folder) in the results folder, or the latest run there."""
    root = results_root(results_dir)
    run_id = run or latest_run_id(root)
    if run_id is None:
        raise UsageError(f"no runs in {root}; start one with `bench run`")
    return RunStore.open(root, run_id)
