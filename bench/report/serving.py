"""The report's serving sections (Palmieri 2019's second half), their lines of "At a glance"
and "Articles vs here": per request size, each server's table, its throughput-latency curve,
and every level it ran, from `bench.analysis.serving`. Plain data; the figures are specs
drawn on rendering. The number formats are the terminal's too (`fmt_rps`, `fmt_times`).
"""

from __future__ import annotations

import math

from bench import outcomes
from bench.analysis.serving import ServingRow, describe, server_utilisation, serving_rows
from bench.records import CaseRecord, LevelRecord
from bench.report import articles, figures
from bench.report.format import MISSING, NBSP, finite, fmt_bytes, fmt_int, fmt_pct, fmt_ratio
from bench.report.format import fmt_seconds as fmt_latency
from bench.report.load import Runs
from bench.report.sections import Cell, Table, anchor
from bench.scenarios import Published, Scenario

CLIENT_BOUND = "client-bound"


def fmt_rps(value: object) -> str:
    return f"{fmt_int(value)}/s" if finite(value) else MISSING


def fmt_times(value: object, better: str) -> str:
    """`12.3× higher` from a ratio of this to the reference (above 1: better)."""
    if not finite(value):
        return MISSING
    value = float(value)
    if 0.9 <= value <= 1.11:
        return f"{fmt_ratio(value)}×"
    return (
        f"{fmt_ratio(value)}×{NBSP}{better}" if value > 1 else f"{fmt_ratio(1 / value)}×{NBSP}worse"
    )


def _flags(row: ServingRow) -> list[str]:
    flags = []
    if row.status != outcomes.OK:
        flags.append(row.status)
    if row.max_client_bound:
        flags.append(f"{CLIENT_BOUND}: it can serve more than its maximum here")
    return flags


def serving_table(rows: list[ServingRow], reference: str) -> Table:
    """One request size: each server's figures, best throughput first."""
    first = rows[0]
    columns = [
        "Server",
        "Max throughput",
        f"Within p99 ≤ {fmt_latency(first.p99_bound_s)}",
        f"p50 · p99 at {fmt_int(first.common_rate)}/s",
        "p50, one in flight",
        "Requests per server CPU-second",
        "Server peak RSS",
        "Errors",
        f"vs {reference}",
    ]
    table = Table(columns)
    for row in rows:
        status = "" if row.status == outcomes.OK else f"{row.status}: {row.reason}"
        errors = (
            f"{fmt_pct(row.heavy_error_rate, 0)} at {fmt_int(row.heavy_rate)}/s"
            if finite(row.heavy_error_rate)
            else ""
        )
        table.rows.append(
            {
                "css": "plain" if row.status == outcomes.OK else "not-ok",
                "cells": [
                    Cell(row.label, status, tuple(_flags(row))),
                    Cell(
                        fmt_rps(row.max_rps),
                        f"{CLIENT_BOUND}: a lower bound" if row.max_client_bound else "",
                    ),
                    Cell(fmt_rps(row.capacity_rps)),
                    Cell(
                        f"{fmt_latency(row.common_p50_s)} · {fmt_latency(row.common_p99_s)}",
                        f"{fmt_pct(row.common_error_rate, 1)} errors"
                        if finite(row.common_error_rate) and row.common_error_rate > 0
                        else "",
                    ),
                    Cell(fmt_latency(row.unloaded_p50_s)),
                    Cell(fmt_int(row.requests_per_cpu_second)),
                    Cell(fmt_bytes(row.peak_rss_bytes)),
                    Cell(
                        f"{sum(row.error_counts.values()):,}" if row.error_counts else "none",
                        "; ".join(part for part in (row.errors, errors) if part),
                    ),
                    _versus_cell(row),
                ],
            }
        )
    return table


def _versus_cell(row: ServingRow) -> Cell:
    if not row.reference or row.status != outcomes.OK:
        return Cell(MISSING)
    if row.implementation == row.reference and row.server != "tonic":
        return Cell("reference")
    ratios = row.vs_reference
    return Cell(
        f"{fmt_times(ratios.get('max_rps'), 'more')} requests/s",
        f"p50 {fmt_times(ratios.get('common_p50_s'), 'lower')} · per CPU-second "
        f"{fmt_times(ratios.get('requests_per_cpu_second'), 'more')}",
    )


def _series(records: dict[tuple[str, str], CaseRecord], row: ServingRow, colour: str):
    record = records[(row.run_id, row.case_id)]
    levels = [v for v in record.levels if v.batch == row.batch and not v.fault and v.ok]
    opened = sorted((v for v in levels if v.mode == "open"), key=lambda v: v.target_rate)
    overloaded = [v for v in opened if v.error_count]
    opened = [v for v in opened if not v.error_count]
    closed = sorted((v for v in levels if v.mode == "closed"), key=lambda v: v.concurrency)
    return figures.LatencySeries(
        row.label,
        colour,
        [v.achieved_rps for v in opened],
        [v.p50_seconds for v in opened],
        [v.p99_seconds for v in opened],
        [v.achieved_rps for v in closed],
        [v.p50_seconds for v in closed],
        [v.p99_seconds for v in closed],
        [v.achieved_rps for v in overloaded],
        [v.p50_seconds for v in overloaded],
        [v.p99_seconds for v in overloaded],
    )


def _levels_table(record: CaseRecord, batch: int) -> Table:
    """Every level a server ran at one request size, as measured."""
    table = Table(
        [
            "Level",
            "Offered",
            "Achieved",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "Errors",
            "Server CPU per request",
            "Server cores busy",
            "Load generator CPU",
            "Answering again after",
        ]
    )
    for level in (v for v in record.levels if v.batch == batch):
        flags = ((CLIENT_BOUND,) if level.client_bound else ()) + (
            (level.fault,) if level.fault else ()
        )
        table.rows.append(
            {
                "css": "not-ok" if level.fault else "plain",
                "cells": [
                    Cell(describe(level), f"stopped by its {level.stopped_by}", flags),
                    Cell(fmt_rps(level.offered_rps)),
                    Cell(fmt_rps(level.achieved_rps)),
                    *(
                        Cell(fmt_latency(value))
                        for value in (
                            level.p50_seconds,
                            level.p90_seconds,
                            level.p99_seconds,
                            level.p999_seconds,
                            level.max_seconds,
                        )
                    ),
                    Cell(
                        f"{level.error_count:,}",
                        ", ".join(f"{n:,} {kind}" for kind, n in sorted(level.errors.items())),
                    ),
                    Cell(fmt_latency(level.server_cpu_per_request)),
                    Cell(fmt_pct(server_utilisation(record, level), 0)),
                    Cell(fmt_pct(level.client_utilisation, 0), _generator_cores(level)),
                    Cell(fmt_latency(level.recovery_seconds)),
                ],
            }
        )
    return table


def _generator_cores(level: LevelRecord) -> str:
    if not level.client_cores:
        return ""
    busy = fmt_pct(level.client_core_busy, 0)
    return f"of {level.client_cores} core(s), {busy} busy with everything on them"


def serving_section(runs: Runs, scenario: Scenario, colours: dict[str, str]) -> dict:
    records = {key: r for key, r in runs.records.items() if r.case.scenario == scenario.name}
    rows = serving_rows(records, runs.scenarios)
    salt = anchor(scenario.name)
    placements = {
        (
            tuple(r.server.server_cpus),
            tuple(r.server.generator_cpus),
        )
        for r in records.values()
        if r.server
    }
    batches = []
    for batch in sorted({row.batch for row in rows}):
        mine = sorted(
            (r for r in rows if r.batch == batch),
            key=lambda r: (r.status != outcomes.OK, -(r.max_rps if finite(r.max_rps) else -1)),
        )
        measured = [r for r in mine if r.levels]
        series = [_series(records, r, colours.get(r.implementation, "#444444")) for r in measured]
        title = f"{scenario.name}: batches of {fmt_int(batch)} point{'s' if batch > 1 else ''}"
        batches.append(
            {
                "batch": batch,
                "title": title,
                "bound": fmt_latency(mine[0].p99_bound_s),
                "common_rate": fmt_int(mine[0].common_rate),
                "table": serving_table(mine, scenario.original or "the reference"),
                "figure": (
                    figures.Figure(
                        "latency_curves",
                        (series, mine[0].p99_bound_s, title),
                        f"{salt}-batch-{batch}",
                    )
                    if any(s.open_rps or s.closed_rps or s.overloaded_rps for s in series)
                    else None
                ),
                "client_bound": [
                    f"{r.label}: {', '.join(r.client_bound)}" for r in mine if r.client_bound
                ],
                "levels": [
                    {
                        "label": r.label,
                        "table": _levels_table(records[(r.run_id, r.case_id)], batch),
                    }
                    for r in measured
                ],
            }
        )
    used = [m.datasets[scenario.name].used for m in runs.metas if scenario.name in m.datasets]
    return {
        "name": scenario.name,
        "anchor": salt,
        "title": scenario.title,
        "article": scenario.article,
        "dataset": ", ".join(sorted({name for name in used if name}) or ["?"]),
        "empty": not rows,
        "batches": batches,
        "placements": [
            f"server on core(s) {', '.join(map(str, server))}, load generator on "
            f"{', '.join(map(str, generator))}"
            + (" (the same core: this machine has one)" if set(server) & set(generator) else "")
            for server, generator in sorted(placements)
        ],
        "rows": rows,
    }


def glance(section: dict) -> dict:
    """The serving scenario's line of "At a glance": the server with the most requests/s at
    the smallest request size, its p50 at the common rate, its ratio to the reference."""
    line = {"name": section["name"], "anchor": section["anchor"], "title": section["title"]}
    line.update(fastest=None, tied=[], flags=[], best=None, device=None)  # servers run on cpu
    cases = {(r.run_id, r.case_id): r.status == outcomes.OK for r in section["rows"]}
    line["cases"] = f"{sum(cases.values())} of {len(cases)}"
    ok = [r for r in section["rows"] if r.status == outcomes.OK and finite(r.max_rps)]
    if not ok:
        return line
    smallest = min(r.batch for r in ok)
    best = max((r for r in ok if r.batch == smallest), key=lambda r: r.max_rps)
    ratio = best.vs_reference.get("max_rps")
    line.update(
        fastest=f"{best.label}: {fmt_rps(best.max_rps)}, batches of {fmt_int(smallest)}",
        flags=_flags(best),
        time=f"p50 {fmt_latency(best.common_p50_s)} at {fmt_int(best.common_rate)}/s",
        speedup=(
            f"reference ({best.reference})"
            if best.implementation == best.reference or not best.reference
            else f"{fmt_times(ratio, 'more')} requests/s than {best.reference}"
        ),
        quality="labels as the reference's",
    )
    return line


def serving_articles(runs: Runs, sections: list[dict]) -> list[dict]:
    """The serving scenarios' lines of "Articles vs here", shaped as `articles.articles`."""
    found = []
    for section in sections:
        scenario = runs.scenarios[section["name"]]
        rows = [r for r in section["rows"] if r.status == outcomes.OK]
        found.append(
            articles.article_entry(
                scenario,
                section["anchor"],
                lambda p, rows=rows: {
                    "text": published_here(p, rows),
                    "flags": _bound(p, rows),
                    "differs": "",
                },
                run_notes=[
                    "The article published ratios only, from a load and a machine it did not "
                    "describe; here each server ran the same levels, its load generator on a "
                    "core of its own. Requests per server CPU-second compare servers whatever "
                    "cores the load generator left them."
                ],
            )
        )
    return found


def _by_batch(rows: list[ServingRow], name: str) -> dict[int, ServingRow]:
    return {r.batch: r for r in rows if r.implementation == name}


def published_here(published: Published, rows: list[ServingRow]) -> str:
    """This run's answer to one of the article's serving numbers, per request size."""
    mine = _by_batch(rows, published.measured_by)
    if not mine:
        return f"not measured here: no {published.measured_by} case finished in this run"
    metric = published.metric.lower()
    parts = []
    if "error" in metric:
        for batch in sorted(mine):
            rates = ", ".join(
                f"{r.label} {fmt_pct(r.heavy_error_rate, 1)}"
                for r in sorted(rows, key=lambda r: r.heavy_error_rate)
                if r.batch == batch and finite(r.heavy_error_rate)
            )
            parts.append(f"batch {fmt_int(batch)}, at {fmt_int(mine[batch].heavy_rate)}/s: {rates}")
        return "; ".join(parts) or MISSING
    theirs = _by_batch(rows, published.versus)
    if not theirs:
        return f"not measured here: no {published.versus} case finished in this run"
    for batch in sorted(set(mine) & set(theirs)):
        a, b = mine[batch], theirs[batch]
        if "latency" in metric:
            common = _ratio(b.common_p50_s, a.common_p50_s)
            unloaded = _ratio(b.unloaded_p50_s, a.unloaded_p50_s)
            parts.append(
                f"batch {fmt_int(batch)}: p50 {common} lower at {fmt_int(a.common_rate)}/s, "
                f"{unloaded} lower one request in flight"
            )
        else:
            bound = " (at least: client-bound)" if a.max_client_bound else ""
            parts.append(
                f"batch {fmt_int(batch)}: {_ratio(a.max_rps, b.max_rps)}{bound} the requests/s, "
                f"{_ratio(a.requests_per_cpu_second, b.requests_per_cpu_second)} per server "
                "CPU-second"
            )
    return "; ".join(parts) or MISSING


def _bound(published: Published, rows: list[ServingRow]) -> list[str]:
    """A throughput answer from a client-bound level is a lower bound, and says so."""
    if "requests/s" not in published.metric:
        return []
    mine = _by_batch(rows, published.measured_by)
    return [CLIENT_BOUND] if any(r.max_client_bound for r in mine.values()) else []


def _ratio(numerator: float, denominator: float) -> str:
    value = numerator / denominator if finite(numerator) and finite(denominator) else math.nan
    return f"{fmt_ratio(value)}×" if finite(value) and value > 0 else MISSING
