"""A sweep's figures and tables: time against each swept size on log-log axes with the
fitted exponent, and speed-up against thread count with the parallel efficiency."""

from __future__ import annotations

import pandas as pd

from bench.analysis.stats import loglog_fit
from bench.analysis.tables import SWEEP_PREFIX
from bench.report import figures
from bench.report.format import fmt_num, fmt_seconds, fmt_threads
from bench.report.rows import CaseRow, headline, sweep_columns, varying


def size_scaling(rows: list[CaseRow], colours: dict[str, str], salt: str) -> list[dict]:
    """One log-log plot and fitted exponent per swept size, when the run is a sweep."""
    summary = pd.DataFrame([{**r.values, "_row": r} for r in rows if r.ok])
    if summary.empty:
        return []
    plotted = []
    sweeps = varying(summary, sweep_columns(summary))
    for column in sweeps:
        key = column.removeprefix(SWEEP_PREFIX)
        others = [c for c in sweeps if c != column]
        series, fits = [], []
        group_columns = ["implementation", "threads", "device", "run_id", *others]
        for identity, frame in summary.groupby(group_columns, dropna=False, sort=True):
            points = frame.sort_values(column)
            sizes = [float(v) for v in points[column]]
            seconds = [float(r.time["median"]) for r in points["_row"]]
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
                figures.Series(label, colours[identity[0]], sizes, seconds, **fit, dashed=dashed)
            )
            fits.append(
                {
                    "label": label,
                    "exponent": fmt_num(fit["exponent"], 3),
                    "sizes": len(sizes),
                    "range": f"{min(sizes):g}–{max(sizes):g}",
                }
            )
        size_name = key.replace("_", " ")
        plotted.append(
            {
                "key": key,
                "figure": figures.Figure("scaling", (series, size_name), f"{salt}-{key}"),
                "fits": fits,
            }
        )
    return plotted


def thread_scaling(rows: list[CaseRow], colours: dict[str, str], salt: str) -> dict | None:
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
        base = by_threads[threads[0]].time["median"]
        speedups = [base / by_threads[t].time["median"] for t in threads]
        label = implementation if device in (None, "cpu") else f"{implementation} ({device})"
        series.append(figures.ThreadSeries(label, colours[implementation], threads, speedups))
        for t, speedup in zip(threads, speedups, strict=True):
            table.append(
                {
                    "label": label,
                    "threads": t,
                    "median": fmt_seconds(by_threads[t].time["median"]),
                    "speedup": f"{speedup:.2f}×",
                    "efficiency": f"{speedup / (t / threads[0]):.0%}",
                }
            )
    if not series:
        return None
    return {"figure": figures.Figure("thread_scaling", (series,), f"{salt}-threads"), "rows": table}
