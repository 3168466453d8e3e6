"""The report: one self-contained HTML file (or a Markdown summary) made from stored runs.

Reads only the results store and writes `reports/<run-id>.html` and `reports/latest.html`.
Data and rendering stay apart:

    load       the runs: records, stored scenario definitions, tidy tables
    rows       one CaseRow per case: label, flags, comparable time, speed-up
    sections   one section per scenario: its table, K-Means agreement, figure specs
    serving    a serving scenario's section: per request size, each server's throughput,
               latencies and costs, its throughput-latency curve, every level
    sweeps     a sweep's scaling plots and fitted exponents, thread speed-ups
    overview   header, banners, at a glance, problems, comparison, environment
    articles   each article's published numbers beside this run's
    format     how every number is written (shared with the terminal)
    figures    what each figure shows (specs); plots draws them as inline SVG, with labels
               and style, while the HTML renders
    render     the Jinja templates (templates/): HTML with inlined CSS, and Markdown

Figures are inline SVG, CSS is inline, nothing is fetched: the file reads the same offline,
in a mail attachment or printed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from pathlib import Path

from bench.files import atomic_write_text
from bench.records import DISTURBED_WAIT_SHARE
from bench.report import articles, figures, overview, sections, serving
from bench.report.format import fmt_half_width, fmt_pct, fmt_seconds, fmt_time
from bench.report.load import Runs
from bench.report.render import render_html, render_markdown
from bench.report.rows import CaseRow, quality_text, speed_words
from bench.scenarios import SCENARIOS, Scenario
from bench.store import RunStore

REPORTS_ENV = "BENCH_REPORTS_DIR"
FORMATS = {"html": render_html, "md": render_markdown}  # --format: extension -> renderer

__all__ = [
    "FORMATS",
    "build",
    "render_html",
    "render_markdown",
    "reports_root",
    "scenario_names",
    "write",
]


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
    """Write `<run-id>.<fmt>` and `latest.<fmt>` under `reports_dir`; return the first path.
    A Markdown summary names its HTML report when one was written beside it."""
    context = build(stores, baseline=baseline)
    html = reports_dir / f"{_report_id(stores)}.html"
    context["html_report"] = str(html) if fmt != "html" and html.is_file() else ""
    text = FORMATS[fmt](context)
    path = reports_dir / f"{_report_id(stores)}.{fmt}"
    atomic_write_text(path, text)
    atomic_write_text(reports_dir / f"latest.{fmt}", text)
    return path


def _report_id(stores: Sequence[RunStore]) -> str:
    return "+".join(store.run_id for store in stores)


def scenario_names(runs: Runs) -> list[str]:
    """Scenarios the runs selected (also those with no case): the catalogue's first, in its
    order, then any the catalogue no longer has, under their stored names."""
    named = set()
    for meta in runs.metas:
        named |= set(meta.datasets)
        named |= {spec.scenario for spec in meta.plan}
    known = [name for name in SCENARIOS if name in named]
    return known + sorted(named - set(known))


def _brief(row: CaseRow, scenario: Scenario) -> dict:
    """A case in one line, for the Markdown summary."""
    not_ok = [] if row.ok else [f"{row.status}: {row.reason}"]
    return {
        "label": row.label,
        "time": fmt_time(row.time["median"], row.extrapolated),
        "iqr": fmt_seconds(row.time["iqr"]) if row.time["n"] > 1 else "–",
        "interval": fmt_half_width(row.get("interval_half_width")),
        "n": f"{row.time['n']} ({row.get('processes') or 0})",
        "speed": speed_words(row) if row.measured else "–",
        "quality": quality_text(row, scenario),
        "cpu": fmt_pct(row.get("utilisation_median"), 0),
        "notes": "; ".join([*row.flags, *not_ok]),
    }


def build(stores: Sequence[RunStore], *, baseline: RunStore | None = None) -> dict:
    """Everything the templates show, as plain data (figures as specs, drawn on rendering)."""
    runs = Runs.load(stores)
    implementations = list(runs.summary["implementation"]) if len(runs.summary) else []
    colours = figures.colours(implementations)
    scenario_sections, serving_sections = [], []
    for name in scenario_names(runs):
        scenario = runs.scenarios[name]
        if scenario.serving is not None:
            serving_sections.append(serving.serving_section(runs, scenario, colours))
            continue
        section = sections.scenario_section(runs, scenario, colours)
        section["brief"] = [_brief(row, scenario) for row in section["rows"]]
        section["glance"] = overview.glance(section, scenario)
        scenario_sections.append(section)
    environments = [
        overview.environment(store, meta) for store, meta in zip(stores, runs.metas, strict=True)
    ]
    for env in environments:
        longest = max(map(len, re.findall("`+", env["command"])), default=0)
        env["fence"] = "`" * max(3, 1 + longest)
    return {
        "report_id": _report_id(stores),
        "runs": overview.runs_header(runs),
        "generated": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "statuses": overview.statuses(runs),
        "fallbacks": overview.fallbacks(runs),
        "noise": overview.noise(runs),
        "broken_plugins": [b for meta in runs.metas for b in meta.broken_plugins],
        "problems": overview.problems(runs),
        "glance": [
            *(line for s in scenario_sections for line in s["glance"]),
            *(serving.glance(s) for s in serving_sections),
        ],
        "sections": scenario_sections,
        "serving": serving_sections,
        "articles": [
            *articles.articles(runs, scenario_sections),
            *serving.serving_articles(runs, serving_sections),
        ],
        "comparison": overview.comparison(baseline, stores[-1]) if baseline else None,
        "environments": environments,
        "peak_measured": any(meta.machine_peak for meta in runs.metas)
        or any((record.worker or {}).get("peak") for record in runs.records.values()),
        "disturbed_share": fmt_pct(DISTURBED_WAIT_SHARE, 0),
        "html_report": "",
    }
