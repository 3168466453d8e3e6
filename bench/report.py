"""The report: one self-contained HTML file (or a Markdown summary) made from stored runs.

Reads only the results store (`run.json` and the case records, through the tidy tables of
`bench.results`) and writes `reports/<run-id>.html` and `reports/latest.html`. Figures are
inline SVG, CSS is inline, nothing is fetched: the file reads the same offline, in a mail
attachment or printed. Every text that comes from a plugin or a run goes through Jinja's
autoescaping (HTML) or `_md` (Markdown).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup

from bench import outcomes, plots
from bench.analysis import compare
from bench.analysis.stats import (
    clear_difference,
    describe,
    loglog_fit,
    pareto_front,
    ratio_of_medians,
)
from bench.analysis.tables import SWEEP_PREFIX, comparable_times, measured_times, tidy_tables
from bench.files import atomic_write_text
from bench.records import CaseRecord, RunMeta
from bench.scenarios import SCENARIOS, Scenario
from bench.store import RunStore

REPORTS_ENV = "BENCH_REPORTS_DIR"
FORMATS = ("html", "md")
REASON_CHARS_IN_TABLE = 140
NBSP = "\u00a0"  # keeps a number and its unit on one line in narrow table cells
SUBLINE = "\u2028"  # separates a cell's main value from its detail line (never in escaped text)


def reports_root(directory: str | os.PathLike | None = None) -> Path:
    """`--reports-dir`, else `$BENCH_REPORTS_DIR`, else ./reports."""
    return Path(directory or os.environ.get(REPORTS_ENV) or "reports")


def write(
    stores: Sequence[RunStore],
    reports_dir: Path,
    *,
    baseline: RunStore | None = None,
    fmt: str = "html",
) -> Path:
    """Write `<run-id>.<ext>` and `latest.<ext>` under `reports_dir`; return the first path."""
    context = build(stores, baseline=baseline, figures=fmt == "html")
    text = render_html(context) if fmt == "html" else render_markdown(context)
    extension = "html" if fmt == "html" else "md"
    path = reports_dir / f"{context['report_id']}.{extension}"
    atomic_write_text(path, text)
    atomic_write_text(reports_dir / f"latest.{extension}", text)
    return path


# --- formatting --------------------------------------------------------------------------


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def fmt_seconds(value: object) -> str:
    if not _finite(value):
        return "–"
    value = float(value)
    if value < 1e-3:
        return f"{value * 1e6:.3g}{NBSP}µs"
    if value < 1:
        return f"{value * 1e3:.3g}{NBSP}ms"
    if value < 120:
        return f"{value:.3g}{NBSP}s"
    return f"{value / 60:.3g}{NBSP}min"


def fmt_pct(value: object, digits: int = 1) -> str:
    return f"{100 * float(value):.{digits}f}{NBSP}%" if _finite(value) else "–"


def fmt_num(value: object, digits: int = 3) -> str:
    return f"{float(value):.{digits}g}" if _finite(value) else "–"


def fmt_int(value: object) -> str:
    return f"{float(value):,.0f}" if _finite(value) else "–"


def fmt_size(value: float) -> str:
    """A sweep size: 1000000 -> 1,000,000; non-integers as %g."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


def fmt_bytes(value: object) -> str:
    if not _finite(value):
        return "–"
    value = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            digits = 0 if unit in ("B", "KiB", "MiB") else 1
            return f"{value:.{digits}f}{NBSP}{unit}"
        value /= 1024
    return "–"


def fmt_threads(count: object) -> str:
    return f"{count} thread{'' if str(count) == '1' else 's'}"


def fmt_speedup(ratio: dict[str, float], versus: str = "") -> str:
    """`2.31× faster than X (2.10–2.52)` from a speed-up (reference time / this time) and its
    confidence interval; slower cases read `3.0× slower` with the interval inverted alike.
    An interval that includes 1 reads "no clear difference"."""
    value, low, high = ratio["ratio"], ratio["low"], ratio["high"]
    if not _finite(value):
        return "–"
    than = f" than {versus}" if versus else ""
    if value < 1:
        value, low, high = 1 / value, 1 / high, 1 / low
    interval = f" ({_ratio(low)}–{_ratio(high)})" if _finite(low) else " (too few rounds for a CI)"
    if _finite(low) and not clear_difference(low, high):
        return f"no clear difference{' from ' + versus if versus else ''}{interval}"
    word = "faster" if ratio["ratio"] >= 1 else "slower"
    return f"{_ratio(value)}×{NBSP}{word}{than}{interval}"


def _ratio(value: float) -> str:
    """2.31, 21.4, 210, 1,234: decimals only where they are significant."""
    if value < 10:
        return f"{value:.2f}"
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


# --- loading -----------------------------------------------------------------------------


@dataclass
class Runs:
    """One or more stored runs, their tables concatenated with a `run_id` column."""

    stores: list[RunStore]
    metas: list[RunMeta]
    records: dict[tuple[str, str], CaseRecord]  # (run_id, case_id) -> case record
    scenarios: dict[str, Scenario]  # as the runs stored them (the first run's, if several)
    rounds: pd.DataFrame
    curves: pd.DataFrame
    summary: pd.DataFrame

    @classmethod
    def load(cls, stores: Sequence[RunStore]) -> Runs:
        metas, records, frames = [], {}, {"rounds": [], "curves": [], "summary": []}
        scenarios: dict[str, Scenario] = {}
        for store in stores:
            meta, cases, defined = store.meta, store.cases(), store.scenarios()
            metas.append(meta)
            for name, scenario in defined.items():
                scenarios.setdefault(name, scenario)
            for case in cases:
                records[(store.run_id, case.case.id)] = case
            for name, frame in tidy_tables(cases, meta, defined).items():
                frames[name].append(frame.assign(run_id=store.run_id))
        tables = {name: pd.concat(parts, ignore_index=True) for name, parts in frames.items()}
        return cls(list(stores), metas, records, scenarios, **tables)

    @property
    def multiple(self) -> bool:
        return len(self.stores) > 1


def _run_time(store: RunStore) -> dt.datetime:
    """When the run started (run.json), else from the run id, else the file's time."""
    started = store.meta.started_at
    if started:
        return dt.datetime.fromisoformat(started)
    try:
        return dt.datetime.strptime(store.run_id[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        return dt.datetime.fromtimestamp((store.directory / "run.json").stat().st_mtime)


# --- per-case rows -----------------------------------------------------------------------


@dataclass
class CaseRow:
    """One case of a scenario as the report shows it."""

    run_id: str
    case_id: str
    implementation: str
    label: str
    short_label: str  # without the sweep sizes, for figures of one size
    status: str
    reason: str
    flags: list[str]
    times: list[float]
    stats: dict
    group: tuple
    values: dict  # the summary row
    sizes: dict[str, float] = field(default_factory=dict)  # sweep sizes that vary
    speedup: dict = field(default_factory=dict)
    reference: str = ""
    # What each round would have taken for its planned work: `times`, except that a round
    # stopped by the time cap is scaled up by planned/done steps (its throughput held).
    # Speed-ups and "fastest" compare these, so a capped case is not fast for stopping early.
    work_times: list[float] = field(default_factory=list)
    work_stats: dict = field(default_factory=lambda: describe([]))

    @property
    def capped(self) -> bool:
        return bool(self.get("capped_rounds"))

    @property
    def measured(self) -> bool:
        return bool(self.times)

    @property
    def ok(self) -> bool:
        return self.status == outcomes.OK and self.measured

    @property
    def chart_label(self) -> str:
        return self._flagged(self.label)

    @property
    def short_chart_label(self) -> str:
        return self._flagged(self.short_label)

    def _flagged(self, label: str) -> str:
        """The label with each flag's first words (the tables give them whole), short
        enough for a figure: "numpy-pure (fallback data, capped)"."""
        short = [flag.split(":")[0] for flag in self.flags]
        return f"{label} ({', '.join(short)})" if short else label

    def get(self, column: str) -> object:
        value = self.values.get(column)
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _sweep_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(SWEEP_PREFIX)]


def _default_size(scenario: Scenario, profile: str, key: str) -> float:
    """The size a case without that override ran with (for mixed sweep / plain runs)."""
    if key == "batch_size":
        return float(scenario.batch_size) if scenario.trains else math.nan
    value = getattr(scenario.budget(profile), key, None) if profile in scenario.budgets else None
    return float(value) if value is not None else math.nan


def _fill_sweeps(frame: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    frame = frame.copy()
    for column in _sweep_columns(frame):
        key = column.removeprefix(SWEEP_PREFIX)
        defaults = frame["profile"].map(lambda p, key=key: _default_size(scenario, p, key))
        frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(defaults)
    return frame


def _varying(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    return [c for c in columns if frame[c].nunique(dropna=True) > 1]


def _case_rows(runs: Runs, scenario: Scenario) -> list[CaseRow]:
    summary = runs.summary[runs.summary["scenario"] == scenario.name] if len(runs.summary) else None
    if summary is None or summary.empty:
        return []
    summary = _fill_sweeps(summary, scenario)
    sweeps = _varying(summary, _sweep_columns(summary))
    show_threads = summary["threads"].nunique() > 1
    show_device = summary["device"].nunique() > 1 or (summary["device"] != "cpu").any()
    rows = []
    for values in summary.to_dict("records"):
        parts = [values["implementation"]]
        if show_threads:
            parts.append(fmt_threads(values["threads"]))
        if show_device:
            parts.append(str(values["device"]))
        if runs.multiple:
            parts.append(values["run_id"])
        sizes = {c.removeprefix(SWEEP_PREFIX): float(values[c]) for c in sweeps}
        size_parts = [f"{key}={fmt_size(value)}" for key, value in sizes.items()]
        record = runs.records[(values["run_id"], values["case_id"])]
        times, work_times = measured_times(record), comparable_times(record)
        rows.append(
            CaseRow(
                run_id=values["run_id"],
                case_id=values["case_id"],
                implementation=values["implementation"],
                label=" · ".join([*parts, *size_parts]),
                short_label=" · ".join(parts),
                status=values["status"],
                reason=values["reason"] if isinstance(values["reason"], str) else "",
                flags=_flags(values, times),
                times=times,
                stats=describe(times),
                group=(
                    values["run_id"],
                    values["threads"],
                    values["device"],
                    *(values[c] for c in sweeps),
                ),
                values=values,
                sizes=sizes,
                work_times=work_times,
                work_stats=describe(work_times),
            )
        )
    _add_speedups(rows, scenario.original or None)
    return sorted(
        rows,
        key=lambda r: (
            tuple(r.sizes.values()),
            not r.ok,
            not r.measured,
            r.work_stats["median"],
            r.label,
        ),
    )


def headline(rows: list[CaseRow]) -> list[CaseRow]:
    """The cases a scenario is summed up by: all of them, or in a sweep those at the largest
    sizes (the smallest sizes say little about which implementation is fastest)."""
    if not any(r.sizes for r in rows):
        return rows
    largest = {key: max(r.sizes[key] for r in rows) for key in rows[0].sizes}
    return [r for r in rows if r.sizes == largest]


def _flags(values: dict, times: list[float]) -> list[str]:
    """Why this case's numbers must be read with care; shown wherever they appear."""
    flags = []
    if isinstance(values.get("dataset_fallback"), str):
        flags.append(f"fallback data: {values['dataset']}")
    if values["status"] != outcomes.OK and times:
        flags.append(f"partial: {values['status']}")
    capped = values.get("capped_rounds")
    if _finite(capped) and capped > 0:
        flag = f"capped: {int(capped)} of {len(times)} rounds"
        examples = values.get("test_examples_min")
        if _finite(examples):
            flag += f", accuracy on {int(examples):,} test images"
        flags.append(flag)
    if values.get("at_chance_level") == True:  # noqa: E712  (pandas may give numpy bools)
        flags.append("at chance level: did not learn")
    return flags


def _add_speedups(rows: list[CaseRow], original: str | None) -> None:
    """Speed-up of every measured case vs the original implementation of the same group
    (run, threads, device, sweep sizes); the fastest stands in where it did not run."""
    groups: dict[tuple, list[CaseRow]] = {}
    for row in rows:
        if row.measured:
            groups.setdefault(row.group, []).append(row)
    for members in groups.values():
        candidates = [r for r in members if r.implementation == original and r.ok]
        ok = [r for r in members if r.ok] or members
        reference = candidates[0] if candidates else min(ok, key=lambda r: r.work_stats["median"])
        for row in members:
            row.reference = reference.implementation
            row.speedup = ratio_of_medians(reference.work_times, row.work_times)


# --- one scenario ------------------------------------------------------------------------


def _anchor(name: str) -> str:
    return "scenario-" + re.sub(r"[^a-z0-9-]+", "-", name.lower())


def _reference_note(scenario: Scenario, rows: list[CaseRow]) -> str:
    original = scenario.original or None
    references = sorted({r.reference for r in rows if r.reference})
    if original and references == [original]:
        return (
            f"Speed-ups are relative to {original}, the article's original implementation; "
            "the small line beneath is the 95 % bootstrap confidence interval."
        )
    if not references:
        return ""
    missing = (
        f"{original} (the article's original) has no measured case here"
        if original
        else ("this scenario names no original implementation")
    )
    return f"{missing}; speed-ups are relative to the fastest: {', '.join(references)}."


def _cell(main: str, detail: str = "") -> str:
    """A table cell's text: a main value and an optional detail shown smaller beneath it."""
    return f"{main}{SUBLINE}{detail}" if detail else main


def _speedup_cell(row: CaseRow) -> str:
    if not row.measured:
        return "–"
    if row.implementation == row.reference:
        return "reference"
    text = fmt_speedup(row.speedup)
    main, _, interval = text.partition(" (")
    detail = interval.rstrip(")")
    if row.capped:
        detail += f"{' · ' if detail else ''}from samples/s (capped)"
    return _cell(main, detail)


def _summary_table(scenario: Scenario, rows: list[CaseRow], peak_measured: bool) -> Markup:
    """The scenario's table, built with pandas from plain-text cells (escaped by pandas);
    only the row classes and the two-line cell layout are added to its HTML afterwards."""
    records = []
    reference = rows[0].reference if rows and rows[0].reference else "the original"
    for row in rows:
        measured = row.measured
        iqr = f"±{NBSP}{fmt_seconds(row.stats['iqr'])}" if row.stats["n"] > 1 else ""
        record = {
            "Implementation": row.label,
            "Train time" if scenario.trains else "Fit time": _cell(
                fmt_seconds(row.stats["median"]), iqr
            ),
            f"Speed-up vs {reference}": _speedup_cell(row),
        }
        if scenario.trains:
            train = row.get("train_accuracy_median")
            record["Test accuracy"] = _cell(
                fmt_pct(row.get("test_accuracy_median"), 2),
                f"train {fmt_pct(train, 2)}" if train is not None else "",
            )
            reached = row.get("time_to_target_seconds_median")
            record[f"Time to {scenario.target:g}"] = (
                fmt_seconds(reached) if reached is not None else "not reached" if measured else "–"
            )
        else:
            iterations = row.get("n_iter_median")
            record["Time per iteration"] = _cell(
                fmt_seconds(row.get("seconds_per_iteration_median")),
                f"{fmt_num(iterations)} iterations" if iterations is not None else "",
            )
            record["Inertia vs reference"] = row.values.get("inertia_note", "–")
            record["ARI"] = fmt_num(row.get("adjusted_rand_index_median"), 4)
        cores = row.get("effective_cores_median")
        record["CPU use"] = _cell(
            fmt_pct(row.get("utilisation_median"), 0),
            f"{_cores(cores)} cores" if cores is not None else "",
        )
        record["Peak RSS"] = fmt_bytes(row.get("peak_rss_bytes_median"))
        record["Samples/s"] = fmt_int(row.get("samples_per_second_median"))
        share = row.get("peak_share_median")
        record["GFLOP/s"] = _cell(
            fmt_num(row.get("gflops_median")),
            f"{100 * share:.2g}{NBSP}% of peak" if share is not None else "",
        )
        record["n"] = str(row.stats["n"])
        notes = [*row.flags]
        if row.status != outcomes.OK:
            reason = " ".join(row.reason.split())
            if len(reason) > REASON_CHARS_IN_TABLE:
                reason = reason[: REASON_CHARS_IN_TABLE - 1] + "…"
            notes.append(f"{row.status}: {reason}" if reason else row.status)
        record["Notes"] = "; ".join(notes)
        records.append(record)
    frame = pd.DataFrame(records)
    classes = ["numbers", "with-notes"]
    if not frame["Notes"].any():
        frame, classes = frame.drop(columns="Notes"), ["numbers"]
    html = frame.to_html(index=False, escape=True, border=0, classes=classes, na_rep="–")
    # Escaped text holds no "<": a cell's detail line and the row classes are safe to add.
    html = re.sub(
        rf"<td>([^<]*?){SUBLINE}([^<]*)</td>",
        r'<td>\1<span class="detail">\2</span></td>',
        html,
    )
    head, body = html.split("<tbody>", 1)
    fastest = {}
    for row in rows:
        if row.ok:
            fastest.setdefault(row.group, row)
    marked = iter(_row_class(row, fastest.get(row.group) is row) for row in rows)
    body = re.sub(r"<tr>", lambda _: f'<tr class="{next(marked)}">', body)
    return Markup(f"{head}<tbody>{body}")


def _cores(value: object) -> str:
    return f"{float(value):.1f}" if _finite(value) else "–"


def _row_class(row: CaseRow, fastest: bool) -> str:
    classes = []
    if fastest:
        classes.append("fastest")
    if row.flags:
        classes.append("flagged")
    if not row.ok:
        classes.append("not-ok")
    return " ".join(classes) or "plain"


def _kmeans_agreement(runs: Runs, scenario: Scenario, rows: list[CaseRow]) -> dict:
    """Relative inertia difference of each case to the reference's, round by round (same
    round = same seed = same initial centroids); the worst round is shown."""
    measured = runs.rounds[
        (runs.rounds["scenario"] == scenario.name) & ~runs.rounds["warmup"].astype(bool)
    ]
    by_case = {
        (row.run_id, row.case_id): measured[
            (measured["run_id"] == row.run_id) & (measured["case_id"] == row.case_id)
        ].set_index("round")["inertia"]
        for row in rows
        if row.measured
    }
    reference = {r.group: r for r in rows if r.measured and r.implementation == r.reference}
    disagree, worst = [], 0.0
    for row in rows:
        ref = reference.get(row.group)
        if not row.measured or ref is None:
            continue
        mine, theirs = by_case[(row.run_id, row.case_id)], by_case[(ref.run_id, ref.case_id)]
        common = mine.index.intersection(theirs.index)
        if row is ref:
            row.values["inertia_note"] = "reference"
            continue
        if common.empty:
            row.values["inertia_note"] = "no common rounds"
            continue
        difference = float(((mine[common] - theirs[common]).abs() / theirs[common].abs()).max())
        within = difference <= scenario.target
        shown = f"{difference:.1e}" if difference else "0"
        row.values["inertia_note"] = f"{shown} {'✓' if within else '✗'}"
        worst = max(worst, difference)
        if not within:
            disagree.append(f"{row.label} ({difference:.1e})")
    return {"target": scenario.target, "worst": worst, "disagree": disagree}


def _scaling(
    scenario: Scenario, rows: list[CaseRow], colours: dict[str, str], salt: str, figures: bool
) -> list[dict]:
    """One log-log plot and fitted exponent per swept size, when the run is a sweep."""
    summary = pd.DataFrame([{**r.values, "_label": r} for r in rows if r.ok])
    if summary.empty:
        return []
    plotted = []
    sweeps = _varying(summary, _sweep_columns(summary))
    for column in sweeps:
        key = column.removeprefix(SWEEP_PREFIX)
        others = [c for c in sweeps if c != column]
        series, fits = [], []
        group_columns = ["implementation", "threads", "device", "run_id", *others]
        for identity, frame in summary.groupby(group_columns, dropna=False, sort=True):
            points = frame.sort_values(column)
            sizes = [float(v) for v in points[column]]
            seconds = [float(r.work_stats["median"]) for r in points["_label"]]
            fit = loglog_fit(sizes, seconds)
            extra = [
                f"{o.removeprefix(SWEEP_PREFIX)}={v:g}"
                for o, v in zip(others, identity[4:], strict=True)
            ]
            if summary["threads"].nunique() > 1:  # a thread sweep: one line per count
                extra.insert(0, fmt_threads(identity[1]))
            if summary["device"].nunique() > 1:
                extra.insert(0, str(identity[2]))
            label = " · ".join([identity[0], *extra])
            # Fewer threads than the most in the sweep: dashed, beside the solid line.
            dashed = bool(identity[1] < summary["threads"].max())
            series.append(
                plots.Series(label, colours[identity[0]], sizes, seconds, **fit, dashed=dashed)
            )
            fits.append(
                {
                    "label": label,
                    "exponent": fmt_num(fit["exponent"], 3),
                    "sizes": len(sizes),
                    "range": f"{min(sizes):g}–{max(sizes):g}",
                }
            )
        plotted.append(
            {
                "key": key,
                "svg": (
                    Markup(plots.scaling(series, key.replace("_", " "), f"{salt}-{key}"))
                    if figures
                    else None
                ),
                "fits": fits,
            }
        )
    return plotted


def _thread_scaling(
    rows: list[CaseRow], colours: dict[str, str], salt: str, figures: bool
) -> dict | None:
    """Speed-up and parallel efficiency per implementation, when it ran at several thread
    counts (a sweep with --threads 1,2,...); at the largest sweep sizes only."""
    groups: dict[tuple, list[CaseRow]] = {}
    for row in headline(rows):
        if row.ok:
            key = (row.run_id, row.implementation, row.get("device"))
            groups.setdefault(key, []).append(row)
    series, table = [], []
    for (_, implementation, device), members in sorted(groups.items(), key=lambda g: g[0][1:]):
        by_threads = {int(r.get("threads")): r for r in members}
        if len(by_threads) < 2:
            continue
        threads = sorted(by_threads)
        base = by_threads[threads[0]].stats["median"]
        speedups = [base / by_threads[t].stats["median"] for t in threads]
        label = implementation if device in (None, "cpu") else f"{implementation} ({device})"
        series.append(plots.ThreadSeries(label, colours[implementation], threads, speedups))
        for t, speedup in zip(threads, speedups, strict=True):
            table.append(
                {
                    "label": label,
                    "threads": t,
                    "median": fmt_seconds(by_threads[t].stats["median"]),
                    "speedup": f"{speedup:.2f}×",
                    "efficiency": f"{speedup / (t / threads[0]):.0%}",
                }
            )
    if not series:
        return None
    svg = Markup(plots.thread_scaling(series, f"{salt}-threads")) if figures else None
    return {"svg": svg, "rows": table}


def _curves(runs: Runs, rows: list[CaseRow], colours: dict[str, str]) -> list[plots.Curve]:
    if runs.curves.empty or "test_accuracy" not in runs.curves:
        return []
    measured = runs.curves[~runs.curves["warmup"].astype(bool)]
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
        curves.append(plots.Curve(row.short_chart_label, colours[row.implementation], rounds))
    return curves


def _scenario_section(
    runs: Runs, scenario: Scenario, colours: dict[str, str], peak_measured: bool, figures: bool
) -> dict:
    rows = _case_rows(runs, scenario)
    anchor = _anchor(scenario.name)
    # Only the runs that included this scenario say which data it ran on.
    used = [m.datasets[scenario.name].used for m in runs.metas if scenario.name in m.datasets]
    datasets = sorted({name for name in used if name}) or ["?"]
    section = {
        "name": scenario.name,
        "anchor": anchor,
        "title": scenario.title,
        "article": scenario.article,
        "model": scenario.model,
        "dataset": ", ".join(datasets),
        "target": (
            f"test accuracy {scenario.target:g}"
            if scenario.trains
            else f"inertia within {scenario.target:g} (relative) of the reference"
        ),
        "rows": rows,
        "empty": not rows,
        "reference_note": _reference_note(scenario, rows),
        "table": None,
        "kmeans": None,
        "bars": None,
        "curves": None,
        "scatter": None,
        "front": [],
        "sizes": "",
        "scaling": [],
        "threads": None,
    }
    if not rows:
        return section
    if scenario.model == "kmeans" and any(r.measured for r in rows):
        section["kmeans"] = _kmeans_agreement(runs, scenario, rows)
    section["table"] = _summary_table(scenario, rows, peak_measured)
    section["scaling"] = _scaling(scenario, rows, colours, anchor, figures)
    section["threads"] = _thread_scaling(rows, colours, anchor, figures)
    measured = [r for r in rows if r.measured]
    if measured and figures:
        section["bars"] = Markup(
            plots.time_bars(
                [
                    plots.Bar(
                        r.chart_label,
                        r.work_stats["median"],
                        r.work_stats["q1"],
                        r.work_stats["q3"],
                        colours[r.implementation],
                        emphasis=r.implementation == r.reference,
                    )
                    for r in measured
                ],
                f"{anchor}-bars",
            )
        )
        # Curves and the quality/time trade-off compare like with like: one size per sweep.
        measured = [r for r in headline(rows) if r.measured]
        curves = _curves(runs, measured, colours)
        if curves:
            target = scenario.target if scenario.trains else None
            section["curves"] = Markup(plots.accuracy_curves(curves, target, f"{anchor}-curves"))
        quality_column = "test_accuracy_median" if scenario.trains else "adjusted_rand_index_median"
        quality = [r.get(quality_column) for r in measured]
        if any(q is not None for q in quality):
            seconds = [r.stats["median"] for r in measured]
            # A capped case's point is true (this accuracy after this time) but it did not do
            # the scenario's work: it is drawn, never part of the front.
            front = pareto_front(
                seconds,
                [
                    math.nan if q is None or r.capped else q
                    for r, q in zip(measured, quality, strict=True)
                ],
            )
            section["scatter"] = Markup(
                plots.pareto_scatter(
                    [
                        plots.Point(
                            r.short_chart_label,
                            colours[r.implementation],
                            s,
                            math.nan if q is None else q,
                            f,
                        )
                        for r, s, q, f in zip(measured, seconds, quality, front, strict=True)
                    ],
                    "test accuracy" if scenario.trains else "adjusted Rand index",
                    f"{anchor}-scatter",
                )
            )
            section["front"] = [r.label for r, f in zip(measured, front, strict=True) if f]
            section["sizes"] = ", ".join(
                f"{key}={fmt_size(value)}" for key, value in measured[0].sizes.items()
            )
    return section


def _glance(section: dict) -> dict:
    """The line of the first table: fastest case, its speed-up and quality."""
    ok = [r for r in headline(section["rows"]) if r.ok]
    line = {"name": section["name"], "anchor": section["anchor"], "title": section["title"]}
    line["cases"] = f"{sum(r.ok for r in section['rows'])} of {len(section['rows'])}"
    if not ok:
        line["fastest"] = None
        return line
    fastest = min(ok, key=lambda r: r.work_stats["median"])
    trains = section["model"] != "kmeans"
    quality_column = "test_accuracy_median" if trains else "adjusted_rand_index_median"
    quality = (
        (lambda r: fmt_pct(r.get(quality_column), 2))
        if trains
        else (lambda r: f"ARI {fmt_num(r.get(quality_column), 4)}")
    )
    best = max(ok, key=lambda r: r.get(quality_column) or -math.inf)
    line.update(
        fastest=fastest.label,
        flags=fastest.flags,
        time=fmt_seconds(fastest.stats["median"]),
        speedup=(
            f"reference ({fastest.reference})"
            if fastest.implementation == fastest.reference
            else _speed_words(fastest)
        ),
        quality=quality(fastest),
        best=None if best is fastest else f"{best.label}: {quality(best)}",
    )
    return line


# --- articles vs here --------------------------------------------------------------------


def _published_here(published, scenario: Scenario, rows: list[CaseRow], profile: str) -> str:
    ok = {r.implementation: r for r in headline(rows) if r.ok}
    row = ok.get(published.implementation)
    metric = published.metric.lower()
    if row is None:
        return "no such implementation here" if ok else "not run here"
    if "accuracy" in metric:
        test, train = row.get("test_accuracy_median"), row.get("train_accuracy_median")
        if "train" in metric:
            return f"{fmt_num(train, 4)} / {fmt_num(test, 4)}"
        return fmt_pct(test, 2)
    if "cpu" in metric:
        return (
            f"{fmt_pct(row.get('utilisation_median'), 0)} "
            f"({_cores(row.get('effective_cores_median'))} cores)"
        )
    if "time vs" in metric:
        return _speed_words(row)
    if "time" in metric:
        return f"{fmt_seconds(row.stats['median'])} (profile {profile})"
    return "not measured here"


def _speed_words(row: CaseRow) -> str:
    if row.implementation == row.reference:
        return "reference"
    words = fmt_speedup(row.speedup, row.reference)
    return f"{words}, from samples/s (capped)" if row.capped else words


def _articles(runs: Runs, sections: list[dict]) -> list[dict]:
    plan_deviations: dict[str, dict[str, list[str]]] = {}
    for meta in runs.metas:
        for spec in meta.plan:
            for text in spec.deviations:
                found = plan_deviations.setdefault(spec.scenario, {})
                texts = found.setdefault(spec.implementation, [])
                if text not in texts:
                    texts.append(text)
    profiles = sorted({m.profile or "?" for m in runs.metas})
    articles = []
    for section in sections:
        scenario = runs.scenarios[section["name"]]
        rows = section["rows"]
        run_notes = []
        if profiles != ["full"]:
            run_notes.append(
                f"This run used the {', '.join(profiles)} profile; the articles' numbers are "
                "for the full budget, so compare ratios and accuracy trends, not absolute times."
            )
        if section["dataset"] != scenario.dataset:
            run_notes.append(f"Data: {section['dataset']} here, {scenario.dataset} in the article.")
        articles.append(
            {
                "name": scenario.name,
                "anchor": section["anchor"],
                "article": scenario.article,
                "published": [
                    {
                        "implementation": p.implementation,
                        "metric": p.metric,
                        "value": p.value,
                        "here": _published_here(p, scenario, rows, ", ".join(profiles)),
                    }
                    for p in scenario.published
                ],
                "speeds": [
                    {"label": r.label, "flags": r.flags, "speed": _speed_words(r)}
                    for r in headline(rows)
                    if r.ok
                ],
                "deviations": list(scenario.deviations),
                "case_deviations": sorted(plan_deviations.get(scenario.name, {}).items()),
                "run_notes": run_notes,
            }
        )
    return articles


# --- header, problems, environment -------------------------------------------------------


def _fallbacks(runs: Runs) -> list[dict]:
    found: dict[tuple, list[str]] = {}
    for meta in runs.metas:
        for scenario, dataset in meta.datasets.items():
            if dataset.fallback_reason:
                key = (dataset.requested, dataset.used, dataset.fallback_reason)
                found.setdefault(key, []).append(scenario)
    return [
        {"requested": k[0], "used": k[1], "reason": k[2], "scenarios": sorted(set(v))}
        for k, v in found.items()
    ]


def _problems(runs: Runs) -> list[dict]:
    problems = []
    for (run_id, _), record in sorted(runs.records.items()):
        spec, measured, capped = record.case, record.measured_rounds, record.capped_rounds
        if record.status == outcomes.OK and not capped:
            continue
        reason = record.reason or ""
        if record.status == outcomes.OK:
            reason = f"{capped} of {len(measured)} measured rounds stopped at the time cap"
        problems.append(
            {
                "run_id": run_id if runs.multiple else "",
                "scenario": spec.scenario,
                "implementation": spec.implementation,
                "threads": spec.threads,
                "status": record.status if record.status != outcomes.OK else "capped",
                "reason": reason,
                "kept": len(measured),
                "details": (record.log_tail or record.details or "").strip(),
            }
        )
    return problems


def _machine_line(env: dict) -> str:
    parts = [env.get("cpu_model") or "unknown CPU"]
    cores = env.get("cores_allowed") or env.get("cores_logical")
    if cores:
        parts.append(f"{cores} cores")
    memory = env.get("memory_limit_bytes") or env.get("memory_total_bytes")
    if memory:
        parts.append(fmt_bytes(memory) + " memory")
    parts.append(env.get("distribution") or env.get("os") or "unknown OS")
    parts.append(f"Python {env.get('python_version', '?')}")
    blas = _blas_text(env)
    if blas:
        parts.append(blas)
    if env.get("git_commit"):
        parts.append(f"git {env['git_commit'][:10]}{' (dirty)' if env.get('git_dirty') else ''}")
    return " · ".join(parts)


def _blas_text(env: dict) -> str:
    libraries = env.get("blas") or []
    found = dict.fromkeys(
        f"{b.get('internal_api', '?')} {b.get('version') or ''}".strip() for b in libraries
    )
    return ", ".join(found)


def _environment(store: RunStore, meta: RunMeta) -> dict:
    env = meta.environment
    facts = [
        ("CPU", env.get("cpu_model")),
        (
            "Cores",
            f"{env.get('cores_logical')} logical, {env.get('cores_physical')} physical, "
            f"{env.get('cores_allowed')} allowed to this run",
        ),
        ("Threads per case", env.get("threads")),
        (
            "Memory",
            fmt_bytes(env.get("memory_total_bytes"))
            + (
                f" (container limit {fmt_bytes(env['memory_limit_bytes'])})"
                if env.get("memory_limit_bytes")
                else ""
            ),
        ),
        (
            "OS",
            " · ".join(
                str(v)
                for v in (
                    env.get("distribution"),
                    env.get("os"),
                    env.get("kernel"),
                    env.get("machine"),
                )
                if v
            ),
        ),
        ("Python", f"{env.get('python_implementation', '')} {env.get('python_version', '')}"),
        ("BLAS", _blas_text(env) or None),
        ("GPU", env.get("gpu") or "none"),
        (
            "Git commit",
            (env.get("git_commit") or "unknown")
            + (" (uncommitted changes)" if env.get("git_dirty") else ""),
        ),
        ("Host", env.get("hostname")),
    ]
    packages = [(k, v) for k, v in (env.get("packages") or {}).items() if v]
    peaks = [
        {
            "threads": threads,
            "f32": fmt_num(peak.get("gemm_gflops")),
            "f64": fmt_num(peak.get("gemm_f64_gflops")),
            "bandwidth": fmt_num(peak.get("bandwidth_gbs")),
        }
        for threads, peak in sorted(
            (meta.machine_peak or {}).items(), key=lambda item: int(item[0])
        )
        if isinstance(peak, dict)
    ]
    variables = sorted((env.get("environment_variables") or {}).items())
    return {
        "run_id": store.run_id,
        "command": meta.command,
        "results": str(store.directory),
        "facts": [(k, v) for k, v in facts if v not in (None, "")],
        "packages": packages,
        "peaks": peaks,
        "variables": variables,
    }


# --- two runs ----------------------------------------------------------------------------


def _comparison(baseline: RunStore, candidate: RunStore) -> dict:
    result = compare.compare_runs(baseline, candidate)
    rows = []
    for case in result.cases:
        rows.append(
            {
                "scenario": case.scenario,
                "implementation": case.implementation,
                "threads": case.threads,
                "case_id": case.case_id,
                "baseline": fmt_seconds(case.baseline_median),
                "candidate": fmt_seconds(case.candidate_median),
                "change": f"{case.change:+.1%}" if _finite(case.ratio) else "–",
                "interval": (
                    f"{case.low - 1:+.1%} to {case.high - 1:+.1%}" if _finite(case.low) else "–"
                ),
                "p": fmt_num(case.p_value, 2),
                "verdict": case.verdict,
                "note": case.note,
                "css": case.verdict.replace(" ", "-"),
            }
        )
    return {
        "baseline": result.baseline,
        "candidate": result.candidate,
        "threshold": fmt_pct(result.threshold, 0),
        "rows": rows,
        "regressions": len(result.regressions),
        "improvements": sum(c.verdict == compare.IMPROVED for c in result.cases),
        "warnings": result.warnings,
    }


# --- assembly ----------------------------------------------------------------------------


def _scenario_names(runs: Runs) -> list[str]:
    """Scenarios the runs selected, in the catalogue's order (also those with no case)."""
    named = set()
    for meta in runs.metas:
        named |= set(meta.datasets)
        named |= {spec.scenario for spec in meta.plan}
    known = [name for name in SCENARIOS if name in named]
    return known + sorted(named - set(known))


def build(
    stores: Sequence[RunStore], *, baseline: RunStore | None = None, figures: bool = True
) -> dict:
    """Everything the templates show, as plain data; figures rendered unless `figures` is
    False (the Markdown summary has none)."""
    runs = Runs.load(stores)
    implementations = list(runs.summary["implementation"]) if len(runs.summary) else []
    colours = plots.colours(implementations)
    peak_measured = any(meta.machine_peak for meta in runs.metas)
    sections = [
        _scenario_section(runs, runs.scenarios[name], colours, peak_measured, figures)
        for name in _scenario_names(runs)
    ]
    ids = [s.run_id for s in stores]
    counts = runs.summary["status"].value_counts().to_dict() if len(runs.summary) else {}
    order = [*outcomes.STATUSES, *sorted(set(counts) - set(outcomes.STATUSES))]
    if len(runs.summary) and "capped_rounds" in runs.summary:
        # Among the ok cases, shown right after them: those whose rounds hit the time cap.
        counts["capped"] = int((runs.summary["capped_rounds"].fillna(0) > 0).sum())
        order.insert(order.index(outcomes.OK) + 1, "capped")
    statuses = {status: counts[status] for status in order if counts.get(status)}
    return {
        "report_id": ids[0] if len(ids) == 1 else "+".join(ids),
        "runs": [
            {
                "run_id": store.run_id,
                "started": _run_time(store).strftime("%Y-%m-%d %H:%M"),
                "profile": meta.profile,
                "machine": _machine_line(meta.environment),
                "cases": len(meta.plan),
                "datasets": sorted({d.used for d in meta.datasets.values()}),
            }
            for store, meta in zip(stores, runs.metas, strict=True)
        ],
        "generated": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "statuses": statuses,
        "fallbacks": _fallbacks(runs),
        "broken_plugins": [b for meta in runs.metas for b in meta.broken_plugins],
        "problems": _problems(runs),
        "glance": [_glance(s) for s in sections],
        "sections": sections,
        "articles": _articles(runs, sections),
        "comparison": _comparison(baseline, stores[-1]) if baseline else None,
        "environments": [_environment(s, m) for s, m in zip(stores, runs.metas, strict=True)],
        "peak_measured": peak_measured,
    }


def _environment_jinja() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("bench", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(context: dict) -> str:
    return _environment_jinja().get_template("report.html.j2").render(**context)


# --- Markdown ----------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")
_HTML_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


class _Markdown(str):
    """Markdown written by the report itself, passed through `_md` unchanged."""


def _md(text: object) -> str:
    """Literal text in a GitHub Markdown table cell: no markup, no HTML, one line."""
    if isinstance(text, _Markdown):
        return text
    text = re.sub("[&<>]", lambda m: _HTML_SPECIAL[m.group()], " ".join(str(text).split()))
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_table(
    header: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[int] = ()
) -> list[str]:
    """A GitHub table; the `numeric` columns are right-aligned."""
    right = set(numeric)
    lines = [
        "| " + " | ".join(_md(h) for h in header) + " |",
        "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(context: dict) -> str:
    lines = [f"## Benchmark report: {_md(context['report_id'])}", ""]
    for run in context["runs"]:
        lines.append(
            f"Run {_md(run['run_id'])} · profile **{_md(run['profile'])}** · {run['started']} · "
            f"{_md(run['machine'])}"
        )
    lines.append("")
    for fallback in context["fallbacks"]:
        lines.append(
            f"> **Fallback dataset:** {_md(', '.join(fallback['scenarios']))} ran on "
            f"{_md(fallback['used'])}, not {_md(fallback['requested'])}: "
            f"{_md(fallback['reason'])}"
        )
        lines.append("")
    glance = [
        [
            g["name"],
            g["fastest"] + (f" ({', '.join(g['flags'])})" if g["flags"] else ""),
            g["time"],
            g["speedup"],
            g["quality"],
            g["cases"],
        ]
        if g["fastest"]
        else [g["name"], "no measured case", "–", "–", "–", g["cases"]]
        for g in context["glance"]
    ]
    lines += _md_table(
        ["Scenario", "Fastest", "Median time", "Speed-up", "Quality", "Cases ok"],
        glance,
        numeric=(2, 4, 5),
    )
    if context["comparison"]:
        comparison = context["comparison"]
        lines += [
            "",
            f"### Compared with {_md(comparison['baseline'])} "
            f"(threshold {comparison['threshold']}): {comparison['regressions']} "
            f"regression(s), {comparison['improvements']} improvement(s)",
            "",
        ]
        lines += _md_table(
            ["Case", "Baseline", "This run", "Change", "95% CI", "Verdict"],
            [
                [
                    r["case_id"],
                    r["baseline"],
                    r["candidate"],
                    r["change"],
                    r["interval"],
                    _Markdown(
                        ("**regressed**" if r["verdict"] == compare.REGRESSED else r["verdict"])
                        + (f" ({_md(r['note'])})" if r["note"] else "")
                    ),
                ]
                for r in comparison["rows"]
            ],
            numeric=(1, 2, 3, 4),
        )
        for warning in comparison["warnings"]:
            lines.append(f"\n> {_md(warning)}")
    if context["problems"]:
        lines += ["", "### Cases that did not finish cleanly", ""]
        lines += [
            f"- {_md(p['scenario'])} / {_md(p['implementation'])}: **{_md(p['status'])}** "
            f"{_md(p['reason'])}"
            for p in context["problems"]
        ]
    for section in context["sections"]:
        if section["empty"]:
            continue
        lines += ["", f"<details><summary>{_md(section['name'])}: all cases</summary>", ""]
        lines += _md_table(
            ["Implementation", "Time", "Speed-up", "Quality", "CPU use", "Notes"],
            [
                [
                    r.label,
                    fmt_seconds(r.stats["median"]),
                    _speed_words(r) if r.measured else "–",
                    fmt_pct(r.get("test_accuracy_median"), 2)
                    if section["model"] != "kmeans"
                    else f"ARI {fmt_num(r.get('adjusted_rand_index_median'), 4)}",
                    fmt_pct(r.get("utilisation_median"), 0),
                    "; ".join([*r.flags, *([f"{r.status}: {r.reason}"] if not r.ok else [])]),
                ]
                for r in section["rows"]
            ],
            numeric=(1, 3, 4),
        )
        lines += ["", "</details>"]
    lines += ["", "Reproduce:", ""]
    for env in context["environments"]:
        fence = "`" * max(3, 1 + max(map(len, re.findall("`+", env["command"])), default=0))
        lines += [f"{fence}sh", env["command"], fence]
    return "\n".join(lines) + "\n"
