"""One section per scenario: its table, its K-Means agreement, and the data of its figures.

Plain data only: the table is rows of cells, the figures are `figures.Figure` specs that the
HTML rendering draws (the Markdown summary draws none).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from bench import outcomes
from bench.analysis.stats import pareto_front
from bench.report import figures, sweeps
from bench.report.format import (
    EXTRAPOLATED,
    MISSING,
    NBSP,
    fmt_bytes,
    fmt_cores,
    fmt_half_width,
    fmt_int,
    fmt_num,
    fmt_pct,
    fmt_seconds,
    fmt_size,
    speedup_parts,
)
from bench.report.load import Runs
from bench.report.rows import (
    CaseRow,
    case_rows,
    fastest_cases,
    headline,
    quality_column,
    quality_text,
)
from bench.scenarios import Scenario

REASON_CHARS_IN_TABLE = 140
# Qualities this close (test accuracy, adjusted Rand index) do not tell cases apart: a
# quality-vs-time plot of them would be a strip along one line.
SAME_QUALITY = 0.005


@dataclass(frozen=True)
class Cell:
    """A table cell: a main value, an optional detail shown smaller beneath it, and flags
    (drawn as pills beneath both: in the first column, so that they are never off screen)."""

    main: str
    detail: str = ""
    flags: tuple[str, ...] = ()


@dataclass
class Table:
    columns: list[str]
    rows: list[dict] = field(default_factory=list)  # {"css": str, "cells": list[Cell]}


def anchor(name: str) -> str:
    return "scenario-" + re.sub(r"[^a-z0-9-]+", "-", name.lower())


def reference_note(scenario: Scenario, rows: list[CaseRow]) -> str:
    return " ".join(filter(None, [_reference_words(scenario, rows), machines_note(rows)]))


def machines_note(rows: list[CaseRow]) -> str:
    """Whether the scenario's cases ran on different machines, and what that does to the
    speed-ups (each one between two machines is flagged)."""
    hosts = sorted({r.host for r in rows if r.measured and r.host})
    if len(hosts) < 2:
        return ""
    return (
        f"These cases ran on {len(hosts)} different machines ({', '.join(hosts)}): a speed-up "
        "between two of them compares machines as well as implementations, and is flagged "
        "“other machine”."
    )


def _reference_words(scenario: Scenario, rows: list[CaseRow]) -> str:
    original = scenario.original or None
    references = sorted({r.reference for r in rows if r.reference})
    if original and references == [original]:
        return f"Speed-ups are relative to {original}, the article's original implementation."
    if not references:
        return ""
    missing = (
        f"{original} (the article's original) has no measured case here"
        if original
        else ("this scenario names no original implementation")
    )
    return f"{missing}; speed-ups are relative to the fastest: {', '.join(references)}."


def _time_cell(row: CaseRow) -> Cell:
    """The median, with its IQR and the half-width of its interval beneath."""
    details = [f"IQR{NBSP}{fmt_seconds(row.time['iqr'])}"] if row.time["n"] > 1 else []
    if (half_width := row.get("interval_half_width")) is not None:
        details.append(f"{fmt_half_width(half_width)} ({row.get('interval_label')})")
    if row.extrapolated:
        details.append(f"{EXTRAPOLATED} · measured {fmt_seconds(row.wall['median'])}")
    return Cell(fmt_seconds(row.time["median"]), " · ".join(details))


def _speedup_cell(row: CaseRow) -> Cell:
    if not row.measured:
        return Cell(MISSING)
    if row.implementation == row.reference:
        return Cell("reference")
    main, detail = speedup_parts(row.speedup)
    if row.cross_machine:
        detail += f"{' · ' if detail else ''}across machines"
    if row.capped:
        detail += f"{' · ' if detail else ''}from samples/s (capped)"
    return Cell(main, detail)


def summary_table(scenario: Scenario, rows: list[CaseRow], inertia: dict[str, str]) -> Table:
    """The scenario's table; `inertia` is the K-Means agreement note of each case id."""
    reference = rows[0].reference if rows and rows[0].reference else "the original"
    columns = ["Implementation", "Train time" if scenario.trains else "Fit time"]
    columns.append(f"Speed-up vs {reference}")
    if scenario.trains:
        columns += ["Test accuracy", f"Time to {scenario.target:g}"]
    else:
        columns += ["Time per iteration", "Inertia vs reference", "ARI"]
    columns += ["CPU use", "Peak RSS", "Samples/s", "GFLOP/s", "n"]
    fastest = fastest_cases(rows)
    table = Table(columns)
    for row in rows:
        label = Cell(row.label, status_note(row), tuple(row.flags))
        cells = [label, _time_cell(row), _speedup_cell(row)]
        if scenario.trains:
            train = row.get("train_accuracy_median")
            cells.append(
                Cell(
                    fmt_pct(row.get("test_accuracy_median"), 2),
                    f"train {fmt_pct(train, 2)}" if train is not None else "",
                )
            )
            reached = row.get("time_to_target_seconds_median")
            missed = "not reached" if row.measured else MISSING
            cells.append(Cell(fmt_seconds(reached) if reached is not None else missed))
        else:
            iterations = row.get("n_iter_median")
            cells.append(
                Cell(
                    fmt_seconds(row.get("seconds_per_iteration_median")),
                    f"{fmt_num(iterations)} iterations" if iterations is not None else "",
                )
            )
            cells.append(Cell(inertia.get(row.case_id, MISSING)))
            cells.append(Cell(fmt_num(row.get("adjusted_rand_index_median"), 4)))
        share = row.get("peak_share_median")
        cells += [
            Cell(fmt_pct(row.get("utilisation_median"), 0), _cpu_detail(row)),
            Cell(fmt_bytes(row.get("peak_rss_bytes_median")), _gpu_note(row)),
            Cell(fmt_int(row.get("samples_per_second_median"))),
            Cell(
                fmt_num(row.get("gflops_median")),
                f"{100 * share:.2g}{NBSP}% of peak" if share is not None else "",
            ),
            Cell(str(row.time["n"])),
        ]
        table.rows.append({"css": _row_class(row, fastest.get(row.case_id)), "cells": cells})
    return table


def _gpu_note(row: CaseRow) -> str:
    """A GPU case's device memory peak and, where NVML was read, how busy the GPU was."""
    memory, busy = row.get("gpu_memory_peak_bytes_median"), row.get("gpu_utilisation_median")
    parts = [f"GPU {fmt_bytes(memory)}"] if memory is not None else []
    if busy is not None:
        parts.append(f"{busy:.0f}{NBSP}% busy")
    return " · ".join(parts)


def _cpu_detail(row: CaseRow) -> str:
    """The effective cores, and the case's noise: the median share of the time its threads
    wanted a CPU that they waited for one."""
    cores, waited = row.get("effective_cores_median"), row.get("wait_share_median")
    parts = [f"{fmt_cores(cores)} cores"] if cores is not None else []
    if waited is not None:
        parts.append(f"waited {fmt_pct(waited, 0)}")
    return " · ".join(parts)


def status_note(row: CaseRow, limit: int | None = REASON_CHARS_IN_TABLE) -> str:
    """For a case that did not end ok: its status and reason."""
    if row.status == outcomes.OK:
        return ""
    reason = " ".join(row.reason.split())
    if limit is not None and len(reason) > limit:
        reason = reason[: limit - 1] + "…"
    return f"{row.status}: {reason}" if reason else row.status


def _row_class(row: CaseRow, fastest: str | None) -> str:
    classes = [fastest] if fastest else []
    if row.flags:
        classes.append("flagged")
    if not row.ok:
        classes.append("not-ok")
    return " ".join(classes) or "plain"


def kmeans_agreement(runs: Runs, scenario: Scenario, rows: list[CaseRow]) -> dict:
    """Relative inertia difference of each case to the reference's, round by round (the
    same initial centroids in every round of every case); each case shows its worst round.
    Returns the note per case id (`notes`) and what the section says of them all."""
    measured = runs.rounds[
        (runs.rounds["scenario"] == scenario.name) & runs.rounds["counted"].astype(bool)
    ]
    by_case = {
        (row.run_id, row.case_id): measured[
            (measured["run_id"] == row.run_id) & (measured["case_id"] == row.case_id)
        ].set_index("round")["inertia"]
        for row in rows
        if row.measured
    }
    reference = {r.group: r for r in rows if r.measured and r.implementation == r.reference}
    notes_by_case, disagree, worst = {}, [], 0.0
    for row in rows:
        ref = reference.get(row.group)
        if not row.measured or ref is None:
            continue
        if row is ref:
            notes_by_case[row.case_id] = "reference"
            continue
        mine, theirs = by_case[(row.run_id, row.case_id)], by_case[(ref.run_id, ref.case_id)]
        common = mine.index.intersection(theirs.index)
        if common.empty:
            notes_by_case[row.case_id] = "no common rounds"
            continue
        difference = float(((mine[common] - theirs[common]).abs() / theirs[common].abs()).max())
        within = difference <= scenario.target
        shown = f"{difference:.1e}" if difference else "0"
        notes_by_case[row.case_id] = f"{shown} {'✓' if within else '✗'}"
        worst = max(worst, difference)
        if not within:
            disagree.append(f"{row.label} ({difference:.1e})")
    return {
        "notes": notes_by_case,
        "target": scenario.target,
        "worst": worst,
        "disagree": disagree,
    }


def _curves(runs: Runs, rows: list[CaseRow], colours: dict[str, str]) -> list[figures.Curve]:
    if runs.curves.empty or "test_accuracy" not in runs.curves:
        return []
    measured = runs.curves[runs.curves["counted"].astype(bool)]
    curves = []
    for row in rows:
        if not row.measured:
            continue
        mine = measured[(measured["run_id"] == row.run_id) & (measured["case_id"] == row.case_id)]
        mine = mine.dropna(subset=["test_accuracy"])
        if mine.empty:
            continue
        rounds = [
            (list(points["train_seconds"]), list(points["test_accuracy"]))
            for _, points in mine.sort_values("train_seconds").groupby("round")
        ]
        curves.append(figures.Curve(row.short_chart_label, colours[row.implementation], rounds))
    return curves


def scenario_section(runs: Runs, scenario: Scenario, colours: dict[str, str]) -> dict:
    rows = case_rows(runs, scenario)
    salt = anchor(scenario.name)
    # Only the runs that included this scenario say which data it ran on.
    used = [m.datasets[scenario.name].used for m in runs.metas if scenario.name in m.datasets]
    section = {
        "name": scenario.name,
        "anchor": salt,
        "title": scenario.title,
        "article": scenario.article,
        "model": scenario.model,
        "dataset": ", ".join(sorted({name for name in used if name}) or ["?"]),
        "target": (
            f"test accuracy {scenario.target:g}"
            if scenario.trains
            else f"inertia within {scenario.target:g} (relative) of the reference"
        ),
        "rows": rows,
        "empty": not rows,
        "reference_note": reference_note(scenario, rows),
        "table": None,
        "kmeans": None,
        "bars": None,
        "curves": None,
        "scatter": None,
        "scatter_note": "",
        "front": [],
        "sizes": "",
        "scaling": [],
        "threads": None,
    }
    if not rows:
        return section
    if scenario.model == "kmeans" and any(r.measured for r in rows):
        section["kmeans"] = kmeans_agreement(runs, scenario, rows)
    inertia = section["kmeans"]["notes"] if section["kmeans"] else {}
    section["table"] = summary_table(scenario, rows, inertia)
    section["scaling"] = sweeps.size_scaling(rows, colours, salt)
    section["threads"] = sweeps.thread_scaling(rows, colours, salt)
    measured = [r for r in rows if r.measured]
    if not measured:
        return section
    bars = [
        figures.Bar(
            r.chart_label,
            r.time["median"],
            r.time["q1"],
            r.time["q3"],
            colours[r.implementation],
            reference=r.implementation == r.reference,
            extrapolated=r.extrapolated,
        )
        for r in measured
    ]
    section["bars"] = figures.Figure("time_bars", (bars,), f"{salt}-bars")
    # Curves and the quality/time trade-off compare like with like: one size per sweep.
    measured = [r for r in headline(rows) if r.measured]
    curves = _curves(runs, measured, colours)
    if curves:
        target = scenario.target if scenario.trains else None
        section["curves"] = figures.Figure("accuracy_curves", (curves, target), f"{salt}-curves")
    _add_scatter(section, scenario, measured, colours)
    return section


def _add_scatter(
    section: dict, scenario: Scenario, measured: list[CaseRow], colours: dict[str, str]
) -> None:
    """Quality against the measured time: a point that was observed. A capped case's point is
    true (this accuracy after this time) but it did not do the scenario's work: it is drawn,
    never part of the front."""
    quality = [r.get(quality_column(scenario)) for r in measured]
    known = [q for q in quality if q is not None]
    if not known:
        return
    axis = "test accuracy" if scenario.trains else "adjusted Rand index"
    if max(known) - min(known) <= SAME_QUALITY:
        shown = quality_text(measured[quality.index(known[0])], scenario)
        section["scatter_note"] = (
            f"Every case reached the same {axis} ({shown}), so there is no trade-off between "
            "time and quality to plot: the table and the bars say it all."
        )
        return
    seconds = [r.wall["median"] for r in measured]
    front = pareto_front(
        seconds,
        [math.nan if q is None or r.capped else q for r, q in zip(measured, quality, strict=True)],
    )
    points = [
        figures.Point(
            r.short_chart_label, colours[r.implementation], s, math.nan if q is None else q, f
        )
        for r, s, q, f in zip(measured, seconds, quality, front, strict=True)
    ]
    section["scatter"] = figures.Figure(
        "pareto_scatter", (points, axis), f"{section['anchor']}-scatter"
    )
    section["front"] = [r.label for r, f in zip(measured, front, strict=True) if f]
    section["sizes"] = ", ".join(
        f"{key}={fmt_size(value)}" for key, value in measured[0].sizes.items()
    )
