"""What the commands print: the consoles, and the tables of a stored run (its summary and
a sweep's scaling), with the report's number formats."""

from __future__ import annotations

import math
import sys

import pandas as pd
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench import outcomes
from bench.records import RunMeta
from bench.report import overview
from bench.report.format import (
    EXTRAPOLATED,
    MISSING,
    fmt_bytes,
    fmt_half_width,
    fmt_int,
    fmt_num,
    fmt_pct,
    fmt_seconds,
    fmt_threads,
    fmt_time,
)
from bench.report.load import Runs
from bench.report.overview import cluster_line
from bench.report.rows import CaseRow, case_rows, fastest_cases, quality_text
from bench.report.sections import status_note
from bench.scenarios import Scenario
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


# The summary's columns: (header, justify, wraps). Only the notes wrap, and only between
# words: a name or a number is never broken, whatever the width (100 columns fit).
SUMMARY_COLUMNS = (
    ("scenario", "left", False),
    ("case", "left", False),
    ("time (IQR)", "right", False),
    ("n", "right", False),
    ("CPU", "right", False),
    ("quality", "left", False),
    ("peak RSS", "right", False),
    ("notes", "left", True),
)
NOTES_MIN_WIDTH = 14


def print_summary(runs: Runs) -> None:
    """The run's cases, by scenario then by time, the fastest of each group marked; flags in
    short words beside them; why a case did not finish, in full, beneath the table."""
    from bench.report import scenario_names

    meta = runs.metas[0]
    print_fallbacks(meta)
    (noise,) = overview.noise(runs)
    if noise["banner"]:
        console.print(f"[bold red]{escape(noise['banner'])}[/]")
    table = Table(
        title=_summary_title(runs.summary),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    for header, justify, wraps in SUMMARY_COLUMNS:
        table.add_column(
            header,
            justify=justify,
            no_wrap=not wraps,
            overflow="fold" if wraps else "ellipsis",
            min_width=NOTES_MIN_WIDTH if wraps else None,
        )
    reasons: list[str] = []
    several_hosts = "host" in runs.summary and runs.summary["host"].nunique() > 1
    for name in scenario_names(runs):
        if runs.scenarios[name].serving is not None:
            continue  # its table is print_serving's
        rows = case_rows(runs, runs.scenarios[name])
        fastest = fastest_cases(rows)
        for index, row in enumerate(rows):
            first = _scenario_cell(name, row) if index == 0 else ""
            cells = _summary_cells(row, runs.scenarios[name], fastest, reasons)
            if several_hosts:  # a cluster run: where each case ran
                cells[0] += f"\n[dim]on {escape(str(row.values.get('host')))}[/]"
            table.add_row(first, *cells)
        if rows:
            table.add_section()
    console.print(table)
    for number, reason in enumerate(reasons, 1):
        console.print(f"[{number}] {escape(reason)}", highlight=False)
    console.print(noise["line"], highlight=False)
    if line := _precision_line(runs.summary):
        console.print(line, highlight=False)


def _precision_line(summary: pd.DataFrame) -> str:
    """How many cases reached their profile's interval target, and how many did not."""
    if "target_met" not in summary:
        return ""
    verdicts = [v for v in summary["target_met"] if v is not None and v == v]  # no NaN
    if not verdicts:
        return ""
    missed = sum(not v for v in verdicts)
    text = f"95 % interval of the median within the profile's target: {len(verdicts) - missed}"
    text += f" of {len(verdicts)} cases"
    return text + (f"; [yellow]{missed} wider (in yellow)[/]" if missed else "")


def _summary_title(summary: pd.DataFrame) -> str:
    title = "Summary: medians over the measured rounds, fastest first"
    counts = sorted(set(summary["threads"])) if len(summary) else []
    if len(counts) == 1:
        title += f"; {fmt_threads(counts[0])} per case"
    return title


def _scenario_cell(name: str, row: CaseRow) -> str:
    dataset = row.values.get("dataset")
    if not isinstance(dataset, str):
        return escape(name)
    if isinstance(row.values.get("dataset_fallback"), str):
        return f"{escape(name)}\n[red]{escape(dataset)} (fallback)[/]"
    return f"{escape(name)}\n[dim]{escape(dataset)}[/]"


def _summary_cells(
    row: CaseRow, scenario: Scenario, fastest: dict[str, str], reasons: list[str]
) -> list[str]:
    """The cells of one case after its scenario's; a reason too long for the table goes
    to `reasons`, and the notes say its number."""
    # The implementation, then what sets the case apart beneath it: "(2 threads)", "(cuda)".
    implementation, *parts = row.label.split(" · ")
    label = escape(implementation) + "".join(f"\n({escape(part)})" for part in parts)
    notes = _notes(row, fastest.get(row.case_id))
    if row.status != outcomes.OK:
        reasons.append(f"{row.label} ({scenario.name}): {status_note(row, limit=None)}")
        notes.insert(0, f"[yellow]{row.status} [{len(reasons)}][/]")
    if not row.measured:
        return [label, MISSING, "", "", "", "", ", ".join(notes)]
    time = fmt_seconds(row.time["median"])
    if row.get("disturbed_rounds"):
        time = f"[yellow]{time}[/]"
    if row.time["n"] > 1:
        time += f"\n({fmt_seconds(row.time['iqr'])})"
    time += f"\n{_interval(row)}"
    quality = quality_text(row, scenario)
    if row.values.get("at_chance_level") == True:  # noqa: E712  (numpy bools)
        quality = f"[red]{quality}[/]"
    return [
        label,
        time,
        f"{row.time['n']}\n{int(row.get('processes') or 0)} pr.",
        fmt_pct(row.get("utilisation_median"), 0),
        quality,
        fmt_bytes(row.get("peak_rss_bytes_median")),
        ", ".join(notes),
    ]


def _interval(row: CaseRow) -> str:
    """The half-width of the median's 95 % interval, yellow when wider than its target."""
    text = fmt_half_width(row.get("interval_half_width"))
    return f"[yellow]{text}[/]" if row.values.get("target_met") == False else text  # noqa: E712


def _notes(row: CaseRow, mark: str | None) -> list[str]:
    """The case's flags in a few words each (the report gives them whole)."""
    n = row.time["n"]
    notes = [f"[bold green]{'tied fastest' if mark == 'tied' else 'fastest'}[/]"] if mark else []
    if row.extrapolated:
        notes.append(f"[yellow]{EXTRAPOLATED}[/]")
    if disturbed := row.get("disturbed_rounds"):
        notes.append(f"[yellow]disturbed {int(disturbed)}/{n}[/]")
    if replaced := row.get("replaced_rounds"):
        notes.append(f"{int(replaced)} re-run")
    if capped := row.get("capped_rounds"):
        notes.append(f"[yellow]capped {int(capped)}/{n}[/]")
        if examples := row.get("test_examples_min"):
            notes.append(f"[yellow]acc. on {int(examples)} test images[/]")
    if row.values.get("at_chance_level") == True:  # noqa: E712  (numpy bools)
        notes.append("[red]chance level[/]")
    if row.values.get("target_met") == False:  # noqa: E712  (numpy bools)
        notes.append(f"[yellow]CI > ±{fmt_pct(row.get('interval_target'), 0)} target[/]")
    in_force = row.get("threads_in_force")
    if isinstance(in_force, str) and in_force != str(row.values["threads"]):
        notes.append(f"[yellow]threads in force: {escape(in_force)}[/]")
    if row.get("concurrent_cases"):  # cases ran beside it on its host (--cluster-parallel)
        notes.append("[yellow]shared machine[/]")
    if row.status == outcomes.NON_CONFORMING:
        notes.append(f"[red]failed {escape(str(row.get('failed_checks')))}[/]")
    if row.get("conformance") == outcomes.UNVERIFIED:
        notes.append("[yellow]unverified[/]")
    return notes


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


# Serving: (header, justify). Only the notes wrap; numbers and names are never broken.
SERVING_COLUMNS = (
    ("server", "left"),
    ("batch", "right"),
    ("max req/s", "right"),
    ("p99≤bound", "right"),
    ("rate", "right"),
    ("p50", "right"),
    ("p99", "right"),
    ("p50 c=1", "right"),
    ("req/CPU-s", "right"),
    ("errors", "right"),
    ("× req/s", "right"),
    ("× p50", "right"),
    ("× CPU-s", "right"),
    ("notes", "left"),
)
# Against the reference, above 1 better (bench.analysis.serving.RATIOS).
SERVING_RATIOS = ("max_rps", "common_p50_s", "requests_per_cpu_second")


def print_serving(store: RunStore) -> None:
    """The serving cases of a run, one row per server and request size: max requests/s,
    requests/s within the p99 bound, p50 and p99 at the common rate, p50 with one request in
    flight, requests per server CPU-second, errors, ratios against the reference, and the
    client-bound levels; errors by kind and why a case failed, beneath the table."""
    from bench.analysis.serving import serving_rows

    records = {(store.run_id, record.case.id): record for record in store.cases()}
    rows = serving_rows(records, store.scenarios())
    if not rows:
        return
    references = sorted({row.reference for row in rows if row.reference})
    bounds = {row.batch: row.p99_bound_s for row in rows}
    table = Table(
        title="Serving, per server and request size. p99 bound "
        + ", ".join(f"{fmt_seconds(b)} (batch {n:,})" for n, b in sorted(bounds.items()))
        + "; rate: the common offered rate of p50 and p99; c=1: one request in flight; "
        + f"× against {', '.join(references) or 'the reference (not in this run)'}, above 1 "
        + "is better",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    for header, justify in SERVING_COLUMNS:
        wraps = header == "notes"
        table.add_column(
            header, justify=justify, no_wrap=not wraps, overflow="fold" if wraps else "ellipsis"
        )
    footnotes: list[str] = []
    for row in sorted(rows, key=lambda r: (r.scenario, r.batch, -_finite_or(r.max_rps))):
        notes = []
        if row.status != outcomes.OK:
            footnotes.append(f"{row.label}, batch {row.batch:,}: {row.status}: {row.reason}")
            notes.append(f"[yellow]{row.status} [{len(footnotes)}][/]")
        errors = "none"
        if row.error_counts:
            footnotes.append(f"{row.label}, batch {row.batch:,}: {row.errors}")
            errors = f"{sum(row.error_counts.values()):,} [{len(footnotes)}]"
        if row.client_bound:
            notes.append(f"client-bound: {', '.join(row.client_bound)}")
        table.add_row(
            escape(row.label),
            f"{row.batch:,}",
            fmt_int(row.max_rps) + ("[yellow]*[/]" if row.max_client_bound else ""),
            fmt_int(row.capacity_rps),
            f"{fmt_int(row.common_rate)}/s",
            fmt_seconds(row.common_p50_s),
            fmt_seconds(row.common_p99_s),
            fmt_seconds(row.unloaded_p50_s),
            fmt_int(row.requests_per_cpu_second),
            errors,
            *(fmt_num(row.vs_reference.get(name)) for name in SERVING_RATIOS),
            "; ".join(notes),
        )
    console.print(table)
    if any(row.max_client_bound for row in rows):
        console.print(
            "* client-bound: the load generator's cores were saturated; the server can do more"
        )
    for number, text in enumerate(footnotes, 1):
        console.print(f"[{number}] {escape(text)}", highlight=False)


def _finite_or(value: float, default: float = -1.0) -> float:
    return value if math.isfinite(value) else default


def print_run(store: RunStore) -> None:
    """A stored run's summary (its serving cases apart), and its scaling if it is a sweep.
    Its tables are computed here, not read from (or written to) its CSV files: reading a run
    writes nothing."""
    from bench.report import scenario_names

    runs = Runs.load([store])
    if line := cluster_line(store.meta.cluster):
        console.print(escape(line))
    if any(runs.scenarios[name].serving is None for name in scenario_names(runs)):
        print_summary(runs)
    print_serving(store)
    if sweep := store.meta.sweep:
        print_scaling(runs.summary, sweep["key"])
    console.print(
        f"\nResults: [bold]{escape(str(store.directory))}[/] (summary.csv, rounds.csv, "
        "levels.csv, benchmarks/*.json for `pytest-benchmark compare`; both give the IQR the "
        "same way, docs/measurement.md)",
        highlight=False,
    )
