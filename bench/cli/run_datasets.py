"""The dataset of each scenario a new run plans: named, found, fetched or read once, and
said on the terminal (a fallback loudly)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from rich.markup import escape

from bench import datasets
from bench.cli.options import UsageError
from bench.cli.terminal import errors
from bench.execution import plan
from bench.names import unknown_name_message
from bench.records import DatasetResolution
from bench.scenarios import SCENARIOS, Scenario


def resolve_datasets(
    scenarios: Sequence[Scenario], args: argparse.Namespace
) -> dict[str, DatasetResolution]:
    """Dataset per scenario, found, fetched or read once in this process. The built-in
    scenarios' own mnist may fall back to mnist-5k, loudly; a dataset the user named (with
    --dataset, or in a scenario file) never falls back."""
    if args.dataset:
        if args.dataset == "blobs":
            raise UsageError(
                "--dataset blobs: the image scenarios need images; K-Means "
                "scenarios always use blobs"
            )
        if not datasets.is_name(args.dataset) and not Path(args.dataset).expanduser().exists():
            images = [n for n in datasets.NAMES if n != "blobs"]
            raise UsageError(
                f"{unknown_name_message('dataset', args.dataset, images)} Or give your own, "
                "an existing folder of IDX files or an .npz holding x_train, y_train, x_test "
                f"and y_test (there is no file or folder {args.dataset!r})"
            )
    resolved: dict[str, DatasetResolution] = {}
    by_name: dict[tuple[str, bool], DatasetResolution] = {}
    for scenario in scenarios:
        name = (
            scenario.dataset if scenario.model == "kmeans" else (args.dataset or scenario.dataset)
        )
        # Only the articles' own datasets may fall back: never one the user named.
        may_fall_back = name == scenario.dataset and not args.dataset and scenario.name in SCENARIOS
        key = (name, may_fall_back)
        if key not in by_name:
            by_name[key] = _resolve_one(name, may_fall_back, args.offline)
        resolved[scenario.name] = by_name[key]
        plan.check_dataset_fits(scenario, by_name[key])
    return resolved


def _resolve_one(name: str, may_fall_back: bool, offline: bool) -> DatasetResolution:
    if not datasets.is_name(name):
        resolution = datasets.resolve_file(name)
        arrays = resolution.arrays or {}
        shapes = ", ".join(f"{k} {v['dtype']} {v['shape']}" for k, v in arrays.items())
        errors.print(
            f"dataset {escape(resolution.location)}: {shapes}; {resolution.classes} classes"
        )
        return resolution
    resolution = datasets.resolve(
        name,
        download=not offline,
        fallback=may_fall_back,
        log=lambda m: errors.print(f"[yellow]{escape(m)}[/]"),
    )
    if resolution.fallback_reason:
        errors.print(f"[bold red]DATASET FALLBACK[/]: {escape(resolution.fallback_reason)}")
    return resolution
