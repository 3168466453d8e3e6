""" "Articles vs here": what each article published, beside this run's numbers."""

from __future__ import annotations

from bench.analysis.stats import ratio_of_medians
from bench.report.format import fmt_cores, fmt_num, fmt_pct, fmt_speedup, fmt_time
from bench.report.load import Runs
from bench.report.rows import CaseRow, headline, speed_words
from bench.scenarios import Published


def _versus(row: CaseRow, other: CaseRow) -> str:
    """How `row` compares with `other` (another implementation of the same run)."""
    words = fmt_speedup(ratio_of_medians(other.comparable, row.comparable), other.implementation)
    return f"{words}, from samples/s (capped)" if row.capped or other.capped else words


def published_here(published: Published, rows: list[CaseRow], profile: str) -> str:
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
            f"({fmt_cores(row.get('effective_cores_median'))} cores)"
        )
    if published.versus:
        other = ok.get(published.versus)
        return _versus(row, other) if other else f"no {published.versus} case here"
    if "time vs" in metric:
        return speed_words(row)
    if "time" in metric:
        return f"{fmt_time(row.time['median'], row.extrapolated)} (profile {profile})"
    return "not measured here"


def articles(runs: Runs, sections: list[dict]) -> list[dict]:
    plan_deviations: dict[str, dict[str, list[str]]] = {}
    for meta in runs.metas:
        for spec in meta.plan:
            for text in spec.deviations:
                found = plan_deviations.setdefault(spec.scenario, {})
                texts = found.setdefault(spec.implementation, [])
                if text not in texts:
                    texts.append(text)
    profiles = sorted({m.profile or "?" for m in runs.metas})
    found = []
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
        found.append(
            {
                "name": scenario.name,
                "anchor": section["anchor"],
                "article": scenario.article,
                "published": [
                    {
                        "implementation": p.implementation,
                        "metric": p.metric,
                        "value": p.value,
                        "here": published_here(p, rows, ", ".join(profiles)),
                    }
                    for p in scenario.published
                ],
                "speeds": [
                    {"label": r.label, "flags": r.flags, "speed": speed_words(r)}
                    for r in headline(rows)
                    if r.ok
                ],
                "deviations": list(scenario.deviations),
                "case_deviations": sorted(plan_deviations.get(scenario.name, {}).items()),
                "run_notes": run_notes,
            }
        )
    return found
