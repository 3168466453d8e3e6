"""What the commands print: the consoles, and the tables of a stored run (its summary and
a sweep's scaling), with the report's number formats."""

from __future__ import annotations

import math
import sys

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench import outcomes
from bench.analysis.tables import tidy_tables
from bench.records import RunMeta
from bench.report.format import (
    EXTRAPOLATED,
    fmt_bytes,
    fmt_int,
    fmt_num,
    fmt_pct,
    fmt_seconds,
    fmt_time,
)
from bench.report.overview import cluster_line
from bench.store import RunStore

# Piped output (CI logs, `| tee`) gets a wide table instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def print_fallbacks(meta: RunMeta) -> None:
    fallbacks: dict[tuple[str, str], list[str]] = {}
    for scenario, dataset in meta.datasets.items():
        if dataset.fallback_reason:
            fallbacks.setdefault((dataset.requested, dataset.used), []).append(scenario)
    for (requested, used), scenarios in fallbacks.items():
        console.print(
            f"[bold red]FALLBACK DATASET: {', '.join(scenarios)} ran on {used}, not "
            f"{requested}[/] — numbers are not comparable with the articles' (why: "
            "`datasets` in run.json; `bench data` shows where files are looked for)"
        )


SUMMARY_COLUMNS = (
    "scenario",
    "implementation",
    "thr",
    "data",
    "status",
    "time (IQR)",
    "n",
    "cold",
    "CPU util",
    "quality",
    "samples/s",
    "peak RSS",
)


def print_summary(summary: pd.DataFrame, meta: RunMeta) -> None:
    print_fallbacks(meta)
    table = Table(title="Summary (medians over measured rounds)", title_justify="left")
    several_hosts = "host" in summary and summary["host"].nunique() > 1
    for column in SUMMARY_COLUMNS:
        table.add_column(column, overflow="fold")
    for row in summary.to_dict("records"):
        data = escape(str(row["dataset"]))
        if isinstance(row["dataset_fallback"], str):
            data = f"[red]{data} (fallback)[/]"
        ok = row["status"] == outcomes.OK
        status = row["status"] if ok else f"[yellow]{row['status']}[/]"
        if row.get("capped_rounds"):
            status += f"\n[yellow]capped {row['capped_rounds']}/{row['rounds']}[/]"
            if math.isfinite(row.get("test_examples_min", math.nan)):
                status += f"\n[yellow]acc. on {int(row['test_examples_min'])} test images[/]"
        implementation = row["implementation"]
        if row.get("device", "cpu") != "cpu":
            implementation += f" ({row['device']})"
        if several_hosts:
            implementation += f"\n[dim]on {escape(str(row['host']))}[/]"
        if row.get("concurrent_cases", 0) > 0:
            implementation += "\n[yellow]shared machine[/]"
        threads = str(row["threads"])
        in_force = row.get("threads_in_force")
        if isinstance(in_force, str) and in_force != threads:
            threads += f"\n[yellow]in force: {escape(in_force)}[/]"
        first = (row["scenario"], implementation, threads, data, status)
        if not ok and not row["rounds"]:
            reason = escape(str(row["reason"] or ""))
            table.add_row(*first, reason, *[""] * (len(SUMMARY_COLUMNS) - len(first) - 1))
            continue
        time = (
            f"{fmt_seconds(row['comparable_seconds_median'])} "
            f"({fmt_seconds(row['comparable_seconds_iqr'])})"
        )
        if row.get("time_extrapolated") == True:  # noqa: E712 (numpy bools)
            time += f"\n[yellow]{EXTRAPOLATED}[/]"
        table.add_row(
            *first,
            time,
            str(row["rounds"]),
            fmt_seconds(row["cold_start_seconds"]),
            fmt_pct(row["utilisation_median"]),
            _quality(row),
            fmt_int(row["samples_per_second_median"]),
            fmt_bytes(row["peak_rss_bytes_median"]),
        )
    console.print(table)


def _quality(row: dict) -> str:
    if row["model"] == "kmeans":
        return f"ARI {fmt_num(row['adjusted_rand_index_median'])}"
    text = f"test {fmt_pct(row['test_accuracy_median'])}"
    at_chance = row.get("at_chance_level") == True  # noqa: E712  (pandas may give numpy bools)
    return f"[red]{text} (chance)[/]" if at_chance else text


def print_scaling(summary: pd.DataFrame, key: str) -> None:
    from bench.analysis import sweep

    rows = sweep.scaling_rows(summary, key)
    sizes = sorted({size for row in rows for size in row["seconds"]})
    table = Table(
        title=f"Scaling: median seconds per {key}; exponent of time ≈ c·{key}^exponent",
        title_justify="left",
    )
    for column in ("scenario", "implementation", "thr", "device", *map("{:,}".format, sizes)):
        table.add_column(column, overflow="fold")
    table.add_column("exponent")
    for row in rows:
        cells = []
        for size in sizes:
            seconds, status = row["seconds"].get(size, math.nan), row["status"].get(size)
            text = (
                fmt_time(seconds, bool(row["extrapolated"].get(size)))
                if math.isfinite(seconds)
                else ""
            )
            if status != outcomes.OK:
                text = f"{text} [yellow]{status or 'not planned'}[/]".strip()
            cells.append(text)
        first = (row["scenario"], row["implementation"], str(row["threads"]), row["device"])
        table.add_row(*first, *cells, fmt_num(row["exponent"]))
    console.print(table)


def print_run(store: RunStore) -> None:
    """A stored run's summary, and its scaling if it is a sweep. Its tables are computed
    here, not read from (or written to) its CSV files: reading a run writes nothing."""
    tables = tidy_tables(store.cases(), store.meta, store.scenarios())
    if line := cluster_line(store.meta.cluster):
        console.print(escape(line))
    print_summary(tables["summary"], store.meta)
    if sweep := store.meta.sweep:
        print_scaling(tables["summary"], sweep["key"])
    console.print(
        f"\nResults: [bold]{store.directory}[/]  (summary.csv, rounds.csv, "
        "benchmarks/*.json for `pytest-benchmark compare`)"
    )
