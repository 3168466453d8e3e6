""" "Articles vs here": what each article published, beside this run's numbers, saying how
the two differ wherever they do (budget, data, capped rounds)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bench.analysis.intervals import ratio_interval
from bench.report.format import fmt_cores, fmt_int, fmt_num, fmt_pct, fmt_speedup, fmt_time
from bench.report.load import Runs
from bench.report.rows import CaseRow, headline
from bench.scenarios import Published, Scenario

FULL = "full"  # the profile with the articles' own budgets


def budget_words(scenario: Scenario, profile: str) -> str:
    """What one round of `profile` does: "1,000 steps", "1 epoch", "100,000 points"."""
    if profile not in scenario.budgets:
        return ""
    budget = scenario.budget(profile)
    if budget.n_samples:
        return f"{fmt_int(budget.n_samples)} points"
    if budget.steps:
        return f"{fmt_int(budget.steps)} steps"
    if budget.epochs:
        return f"{budget.epochs:g} epoch{'' if budget.epochs == 1 else 's'}"
    return ""


def budget_difference(scenario: Scenario, profiles: list[str]) -> str:
    """How this run's budget differs from the article's, or "" where it does not."""
    if profiles == [FULL]:
        return ""
    here = ", ".join(w for w in (budget_words(scenario, p) for p in profiles) if w)
    article = budget_words(scenario, FULL)
    if not here or not article:
        return f"{', '.join(profiles)} profile, not the article's budget"
    return f"{', '.join(profiles)} profile: {here}; the article: {article}"


def _versus(row: CaseRow, other: CaseRow) -> str:
    """How `row` compares with `other` (another implementation of the same run)."""
    ratio = ratio_interval(other.groups, row.groups, row.pool)
    words = fmt_speedup(ratio, other.implementation)
    if row.host != other.host:
        words += f", on another machine ({row.host} vs {other.host})"
    return f"{words}, from samples/s (capped)" if row.capped or other.capped else words


def _answer(published: Published, ok: dict[str, CaseRow], profile: str) -> tuple[str, list]:
    """This run's number for one published number, and the rows it comes from."""
    metric = published.metric.lower()
    name = published.measured_by
    row = ok.get(name)
    if row is None:
        return (f"not measured here: no {name} case in this run" if ok else "not run here"), []
    if published.versus:
        other = ok.get(published.versus)
        if other is None:
            return f"not measured here: no {published.versus} case in this run", [row]
        return _versus(row, other), [row, other]
    if "accuracy" in metric:
        test, train = row.get("test_accuracy_median"), row.get("train_accuracy_median")
        if "train" in metric:
            return f"{fmt_num(train, 4)} / {fmt_num(test, 4)}", [row]
        return fmt_pct(test, 2), [row]
    if "cpu" in metric:
        utilisation = fmt_pct(row.get("utilisation_median"), 0)
        return f"{utilisation} ({fmt_cores(row.get('effective_cores_median'))} cores)", [row]
    if "time" in metric:
        return fmt_time(row.time["median"], row.extrapolated), [row]
    return "not measured here", []


def published_here(
    published: Published, scenario: Scenario, rows: list[CaseRow], profiles: list[str]
) -> dict:
    """The "here" cell: this run's answer, the flags of the cases it comes from, and how its
    budget differs from the article's."""
    ok = {r.implementation: r for r in headline(rows) if r.ok}
    text, sources = _answer(published, ok, ", ".join(profiles))
    flags = list(dict.fromkeys(flag for r in sources for flag in r.flags))
    return {
        "text": text,
        "flags": flags,
        "differs": budget_difference(scenario, profiles) if sources else "",
    }


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
        if profiles != [FULL]:
            run_notes.append(
                f"This run used the {', '.join(profiles)} profile; the articles' numbers are "
                "for the full budget, so compare ratios and accuracy trends, not absolute times."
            )
        if section["dataset"] != scenario.dataset:
            run_notes.append(f"Data: {section['dataset']} here, {scenario.dataset} in the article.")
        ok = [r for r in headline(rows) if r.ok]
        reference = next((r.reference for r in ok if r.reference), "")
        found.append(
            article_entry(
                scenario,
                section["anchor"],
                lambda p, scenario=scenario, rows=rows: published_here(p, scenario, rows, profiles),
                reference=reference,
                speeds=[
                    {"label": r.label, "flags": _case_flags(r), "speed": _speed(r)}
                    for r in ok
                    if r.implementation != r.reference
                ],
                case_deviations=sorted(plan_deviations.get(scenario.name, {}).items()),
                run_notes=run_notes,
            )
        )
    return found


def article_entry(
    scenario: Scenario,
    anchor: str,
    here: Callable[[Published], dict],
    *,
    reference: str = "",
    speeds: Sequence[dict] = (),
    case_deviations: Sequence[tuple[str, list[str]]] = (),
    run_notes: Sequence[str] = (),
) -> dict:
    """A scenario's part of "Articles vs here": each published number with `here(number)`
    beside it (its "here" cell: text, flags, how the budget differs), then the notes."""
    return {
        "name": scenario.name,
        "anchor": anchor,
        "article": scenario.article,
        "published": [
            {
                "implementation": p.implementation,
                "metric": p.metric,
                "value": p.value,
                "here": here(p),
            }
            for p in scenario.published
        ],
        "reference": reference,
        "speeds": list(speeds),
        "deviations": list(scenario.deviations),
        "case_deviations": list(case_deviations),
        "run_notes": list(run_notes),
    }


def _speed(row: CaseRow) -> str:
    words = fmt_speedup(row.speedup)
    if row.cross_machine:
        words += ", on another machine"
    return f"{words}, from samples/s (capped)" if row.capped else words


def _case_flags(row: CaseRow) -> list[str]:
    """A case's own flags; the fallback data is said once per scenario, in its notes."""
    return [flag for flag in row.flags if not flag.startswith("fallback data")]
