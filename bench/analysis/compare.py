"""Two runs, case by case: is the candidate slower than the baseline, beyond the noise?

Cases are matched by id (scenario, implementation, threads, device, sweep sizes). For each
pair the ratio of median times (candidate / baseline, above 1 = slower) gets a confidence
interval that holds both levels of noise: the spread of each case's rounds inside its
processes, and the spread between worker processes, pooled over both runs
(`bench.analysis.intervals`): two runs are two sets of processes, so a difference between
processes is exactly what they differ by when nothing changed. A Mann-Whitney p-value on the
rounds is shown beside it. A case *regressed* when the interval lies above 1 and the ratio
exceeds 1 + threshold: beyond the noise and beyond the threshold; *improved* is the mirror
image. Used by `bench compare` (terminal, exit code for CI) and by the report
(`bench report --baseline`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from bench import outcomes
from bench.analysis.intervals import Interval, ratio_interval
from bench.analysis.noise import run_noise
from bench.analysis.serving import ServingComparison, compare_serving
from bench.analysis.stats import describe, mann_whitney_p
from bench.analysis.tables import between_pool, case_host, comparable_groups, comparable_times
from bench.records import CaseRecord, RunMeta
from bench.store import RunStore

REGRESSED = "regressed"
IMPROVED = "improved"
WITHIN_THRESHOLD = "within threshold"
NOT_SIGNIFICANT = "not significant"
NOT_COMPARABLE = "not comparable"
DEFAULT_THRESHOLD = 0.05
# Environment facts whose change alone can explain a difference in time.
ENVIRONMENT_KEYS = ("cpu_model", "cores_allowed", "threads", "hostname", "python_version")


@dataclass
class CaseComparison:
    case_id: str
    scenario: str
    implementation: str
    threads: int | None
    baseline_median: float  # comparable times (bench.analysis.tables.comparable_times)
    candidate_median: float
    ratio: float  # candidate / baseline median time: above 1 is slower
    low: float
    high: float
    p_value: float
    verdict: str
    interval_label: str = ""  # the coverage of [low, high], e.g. "95 % CI"
    processes: tuple[int, int] = (0, 0)  # worker processes of the baseline and the candidate
    note: str = ""
    # Whether a side's median is extrapolated from capped rounds (throughput, planned steps).
    baseline_extrapolated: bool = False
    candidate_extrapolated: bool = False


@dataclass
class Comparison:
    baseline: str
    candidate: str
    threshold: float
    cases: list[CaseComparison]
    warnings: list[str] = field(default_factory=list)
    # Serving cases compare their load levels, not times (bench.analysis.serving).
    serving: list[ServingComparison] = field(default_factory=list)

    @property
    def regressions(self) -> list[CaseComparison]:
        return [c for c in self.cases if c.verdict == REGRESSED]


def parse_threshold(text: str) -> float:
    """`5%` or `5` -> 0.05: the threshold is always a percentage."""
    value = text.strip().removesuffix("%").strip()
    try:
        percent = float(value)
    except ValueError:
        raise ValueError(f"a threshold is a percentage such as 5%, got {text!r}") from None
    if not math.isfinite(percent) or percent < 0:
        raise ValueError(f"a threshold is a percentage of 0 or more, got {text!r}")
    return percent / 100


def _by_id(store: RunStore) -> dict[str, CaseRecord]:
    return {record.case.id: record for record in store.cases()}


def compare_runs(
    baseline: RunStore, candidate: RunStore, threshold: float = DEFAULT_THRESHOLD
) -> Comparison:
    """Every case of either run, matched by id; times are comparable times, so two runs whose
    capped rounds stopped after different steps still compare the same work."""
    base_cases, cand_cases = _by_id(baseline), _by_id(candidate)
    comparison = Comparison(baseline.run_id, candidate.run_id, threshold, [])
    comparison.warnings = _warnings(baseline.meta, candidate.meta)
    comparison.warnings += [
        warning
        for store, cases in ((baseline, base_cases), (candidate, cand_cases))
        if (warning := _several_machines(store, cases.values()))
    ]
    for side, cases in (("baseline", base_cases), ("candidate", cand_cases)):
        noise = run_noise(list(cases.values()))
        if noise.busy:
            comparison.warnings.append(
                f"the {side} run was on a busy machine: {noise.disturbed} of {noise.rounds} "
                "measured rounds were disturbed (waited for a CPU)"
            )
    pool = between_pool(list(base_cases.values())) + between_pool(list(cand_cases.values()))
    scenarios = {**baseline.scenarios(), **candidate.scenarios()}
    serving = {name for name, scenario in scenarios.items() if scenario.serving is not None}
    comparison.serving = compare_serving(
        {(baseline.run_id, i): r for i, r in base_cases.items() if r.case.scenario in serving},
        {(candidate.run_id, i): r for i, r in cand_cases.items() if r.case.scenario in serving},
        scenarios,
        threshold,
    )
    for case_id in sorted(set(base_cases) | set(cand_cases)):
        spec = (cand_cases.get(case_id) or base_cases[case_id]).case
        if spec.scenario in serving:
            continue
        sides = [cases.get(case_id) for cases in (base_cases, cand_cases)]
        a, b = (comparable_times(side) if side else [] for side in sides)
        groups = [comparable_groups(side) if side else [] for side in sides]
        ratio = ratio_interval(groups[1], groups[0], pool)
        verdict, note = _verdict(ratio, threshold)
        missing = [
            f"not in the {side} run"
            for side, cases in (("baseline", base_cases), ("candidate", cand_cases))
            if case_id not in cases
        ]
        unfinished = [
            f"{side}: {cases[case_id].status}"
            for side, cases in (("baseline", base_cases), ("candidate", cand_cases))
            if case_id in cases and cases[case_id].status != outcomes.OK
        ]
        # Disturbed rounds are slower than the machine can do: said beside the verdict.
        disturbed = [
            f"{side}: {cases[case_id].disturbed_rounds} disturbed round(s)"
            for side, cases in (("baseline", base_cases), ("candidate", cand_cases))
            if case_id in cases and cases[case_id].disturbed_rounds
        ]
        if not a or not b:
            verdict = NOT_COMPARABLE
        hosts = [
            case_host(side, store.meta) if side else None
            for side, store in zip(sides, (baseline, candidate), strict=True)
        ]
        machines = (
            [f"different machines: {hosts[0]} (baseline) vs {hosts[1]} (candidate)"]
            if None not in hosts and hosts[0] != hosts[1]
            else []
        )
        note = "; ".join([*machines, *missing, *unfinished, *disturbed, *([note] if note else [])])
        comparison.cases.append(
            CaseComparison(
                case_id=case_id,
                scenario=spec.scenario,
                implementation=spec.implementation,
                threads=spec.threads,
                baseline_median=describe(a)["median"],
                candidate_median=describe(b)["median"],
                ratio=ratio.estimate,
                low=ratio.low,
                high=ratio.high,
                p_value=mann_whitney_p(b, a),
                verdict=verdict,
                note=note,
                interval_label=ratio.label if ratio.finite else "",
                processes=(len(groups[0]), len(groups[1])),
                baseline_extrapolated=_extrapolated(sides[0]),
                candidate_extrapolated=_extrapolated(sides[1]),
            )
        )
    return comparison


def _extrapolated(record: CaseRecord | None) -> bool:
    return record is not None and any(r.extrapolated for r in record.measured_rounds)


def _verdict(ratio: Interval, threshold: float) -> tuple[str, str]:
    if not math.isfinite(ratio.estimate):
        return NOT_COMPARABLE, ""
    if not ratio.finite:
        return NOT_SIGNIFICANT, "fewer than 2 measured rounds on a side"
    if not ratio.significant:
        return NOT_SIGNIFICANT, ""
    if ratio.low > 1 and ratio.estimate > 1 + threshold:
        return REGRESSED, ""
    if ratio.high < 1 and ratio.estimate < 1 / (1 + threshold):
        return IMPROVED, ""
    return WITHIN_THRESHOLD, ""


def _several_machines(store: RunStore, records: Iterable[CaseRecord]) -> str:
    """Which scenarios of a run had cases on more than one machine (a cluster run)."""
    hosts: dict[str, set[str | None]] = {}
    for record in records:
        hosts.setdefault(record.case.scenario, set()).add(case_host(record, store.meta))
    spread = {name: sorted(map(str, found)) for name, found in hosts.items() if len(found) > 1}
    if not spread:
        return ""
    where = "; ".join(f"{name} on {', '.join(found)}" for name, found in sorted(spread.items()))
    return (
        f"in {store.run_id}, cases of one scenario ran on different machines ({where}): a case "
        "is compared with the same case of the other run, each on the machine that ran it"
    )


def _warnings(base: RunMeta, cand: RunMeta) -> list[str]:
    """Differences between the runs that make their times not directly comparable."""
    found = []
    if base.profile != cand.profile:
        found.append(f"profiles differ: {base.profile} vs {cand.profile}")
    for scenario in sorted(set(base.datasets) & set(cand.datasets)):
        used = [meta.datasets[scenario].used for meta in (base, cand)]
        if used[0] != used[1]:
            found.append(f"{scenario}: dataset {used[0]} vs {used[1]}")
    env_a, env_b = base.environment, cand.environment
    for key in ENVIRONMENT_KEYS:
        if env_a.get(key) != env_b.get(key):
            found.append(f"{key.replace('_', ' ')} differs: {env_a.get(key)} vs {env_b.get(key)}")
    return found
