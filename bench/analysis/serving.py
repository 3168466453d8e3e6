"""The serving benchmark's tables: one row per load level (`levels.csv`), and one row per
server and request size, the figures every view shows of it:

    max_rps            the most answered requests/s of any level (a client-bound level says
                       the server can do more)
    capacity_rps       the most answered requests/s of an open-loop level (Poisson arrivals)
                       whose p99 latency stayed within the request size's bound, without
                       errors (MLPerf's Server scenario)
    p50/p99 at the common rate, and p50 unloaded (one request in flight)
    requests_per_cpu_second   answered requests per second of the server's own CPU time, over
                       every level: the comparison that survives a machine whose cores the
                       load generator shares
    heavy_error_rate   errors at the highest offered rate; error counts by kind over all levels
    ratios against the reference implementation (the scenario's original: scikit-learn)

Built from typed records and the stored scenario definitions alone, like every table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from bench import outcomes
from bench.analysis.tables import _case_columns
from bench.records import CaseRecord, LevelRecord
from bench.scenarios import Scenario, ServingLoad


def levels_table(cases: Sequence[CaseRecord]) -> pd.DataFrame:
    """One row per load level of every serving case."""
    rows = []
    for record in cases:
        ids = _case_columns(record)
        for level in record.levels:
            rows.append(
                {
                    **ids,
                    "server": record.server.kind if record.server else None,
                    **level.to_json(),
                    "errors": _errors_text(level.errors),
                    "error_count": level.error_count,
                    "error_rate": level.error_rate,
                    "server_cpu_per_request": level.server_cpu_per_request,
                    "server_utilisation": server_utilisation(record, level),
                }
            )
    return pd.DataFrame(rows)


def server_utilisation(record: CaseRecord, level: LevelRecord) -> float:
    """The share of its cores the server used during the level: near 1, it was the limit."""
    cores = len(record.server.server_cpus) if record.server else 0
    cpu, elapsed = level.server_cpu_seconds, level.elapsed_seconds
    if cpu is None or not cores or not elapsed or not math.isfinite(elapsed):
        return math.nan
    return cpu / (elapsed * cores)


def _errors_text(errors: Mapping[str, int]) -> str:
    return ", ".join(f"{count:,} {kind}" for kind, count in sorted(errors.items()))


def serving_load(scenario: Scenario, profile: str, batch: int) -> ServingLoad | None:
    """The levels a stored scenario defined for this profile and request size."""
    if scenario.serving is None:
        return None
    loads = scenario.serving.loads.get(profile, ())
    return next((load for load in loads if load.batch == batch), None)


@dataclass
class ServingRow:
    """One server (a serving case) at one request size."""

    run_id: str
    case_id: str
    scenario: str
    implementation: str
    server: str  # "grpcio" or "tonic"
    threads: int
    batch: int
    status: str
    reason: str
    levels: int
    max_rps: float
    max_client_bound: bool  # the level of max_rps was client-bound: the server can do more
    capacity_rps: float
    p99_bound_s: float
    common_rate: float
    common_p50_s: float
    common_p99_s: float
    common_error_rate: float
    unloaded_p50_s: float
    requests_per_cpu_second: float
    peak_rss_bytes: float
    heavy_rate: float
    heavy_error_rate: float
    errors: str  # counts by kind over every level, as text
    error_counts: dict[str, int]
    client_bound: list[str]  # the levels whose load generator was saturated
    faults: list[str]
    # Against the reference implementation's case of the same run, threads and batch: its
    # figure divided by this one's (latency) or this one's by its (throughput, efficiency).
    vs_reference: dict[str, float]
    reference: str = ""  # the implementation of those ratios

    @property
    def label(self) -> str:
        return f"{self.implementation} ({self.server})"


def serving_rows(
    cases: Mapping[tuple[str, str], CaseRecord],
    scenarios: Mapping[str, Scenario],
) -> list[ServingRow]:
    """Every serving case at each of its request sizes, keyed by (run id, case id)."""
    rows = []
    for (run_id, _), record in cases.items():
        scenario = scenarios.get(record.case.scenario)
        if scenario is None or scenario.serving is None:
            continue
        loads = scenario.serving.loads.get(record.case.profile, ())
        batches = sorted({load.batch for load in loads} | {v.batch for v in record.levels})
        for batch in batches:
            levels = [v for v in record.levels if v.batch == batch]
            load = serving_load(scenario, record.case.profile, batch)
            rows.append(_row(run_id, record, batch, levels, load))
    _add_ratios(rows, {scenario.original for scenario in scenarios.values() if scenario.serving})
    return rows


def _row(
    run_id: str,
    record: CaseRecord,
    batch: int,
    levels: list[LevelRecord],
    load: ServingLoad | None,
) -> ServingRow:
    case = record.case
    sound = [v for v in levels if not v.fault]
    best = max(sound, key=lambda v: _finite(v.achieved_rps), default=None)
    bound = load.p99_bound_s if load else math.nan
    # MLPerf's Server scenario: Poisson arrivals (open loop), p99 within the bound.
    within = [
        v.achieved_rps
        for v in sound
        if v.mode == "open"
        and v.error_count == 0
        and v.p99_seconds is not None
        and v.p99_seconds <= bound
    ]
    common_rate = load.common_rate if load else math.nan
    common = next((v for v in sound if v.mode == "open" and v.target_rate == common_rate), None)
    unloaded = next((v for v in sound if v.mode == "closed" and v.concurrency == 1), None)
    opened = [v for v in sound if v.mode == "open" and v.target_rate is not None]
    heavy = max(opened, key=lambda v: v.target_rate, default=None)
    answered = sum(v.ok for v in sound if v.server_cpu_seconds is not None)
    cpu = sum(v.server_cpu_seconds for v in sound if v.server_cpu_seconds is not None)
    errors: dict[str, int] = {}
    for level in levels:
        for kind, count in level.errors.items():
            errors[kind] = errors.get(kind, 0) + count
    return ServingRow(
        run_id=run_id,
        case_id=case.id,
        scenario=case.scenario,
        implementation=case.implementation,
        server=record.server.kind if record.server else _planned_server(record),
        threads=case.threads,
        batch=batch,
        status=record.status,
        reason=record.reason or "",
        levels=len(levels),
        max_rps=best.achieved_rps if best else math.nan,
        max_client_bound=bool(best and best.client_bound),
        capacity_rps=max(within, default=math.nan),
        p99_bound_s=bound,
        common_rate=common_rate,
        common_p50_s=_value(common and common.p50_seconds),
        common_p99_s=_value(common and common.p99_seconds),
        common_error_rate=common.error_rate if common else math.nan,
        unloaded_p50_s=_value(unloaded and unloaded.p50_seconds),
        requests_per_cpu_second=answered / cpu if cpu > 0 else math.nan,
        peak_rss_bytes=max(
            (v.server_peak_rss_bytes for v in sound if v.server_peak_rss_bytes), default=math.nan
        ),
        heavy_rate=heavy.target_rate if heavy else math.nan,
        heavy_error_rate=heavy.error_rate if heavy else math.nan,
        errors=_errors_text(errors),
        error_counts=errors,
        client_bound=[describe(v) for v in sound if v.client_bound],
        faults=[v.fault for v in levels if v.fault],
        vs_reference={},
    )


def _planned_server(record: CaseRecord) -> str:
    """The server of a case that never started one: a Rust server's cases are planned with
    the source `program:<its program>` (bench.serving.plan)."""
    return "tonic" if record.case.source.startswith("program:") else "grpcio"


def describe(level: LevelRecord) -> str:
    """`c16` for a closed-loop level of 16 in flight, `2000/s` for an open loop at 2 000/s."""
    if level.mode == "closed":
        return f"c{level.concurrency}"
    return f"{level.target_rate:g}/s"


# How each figure compares with the reference's: throughput and efficiency as this / theirs,
# latency as theirs / this (both read "times better" above 1).
RATIOS = {
    "max_rps": False,
    "requests_per_cpu_second": False,
    "common_p50_s": True,
    "common_p99_s": True,
    "unloaded_p50_s": True,
}


def _add_ratios(rows: list[ServingRow], references: set[str]) -> None:
    by_group = {}
    for row in rows:
        if row.implementation in references and row.status == outcomes.OK:
            by_group[(row.run_id, row.scenario, row.threads, row.batch)] = row
    for row in rows:
        reference = by_group.get((row.run_id, row.scenario, row.threads, row.batch))
        if reference is None:
            continue
        for name, inverse in RATIOS.items():
            mine, theirs = getattr(row, name), getattr(reference, name)
            ratio = theirs / mine if inverse else mine / theirs
            row.vs_reference[name] = ratio if math.isfinite(ratio) and ratio > 0 else math.nan
        row.reference = reference.implementation


def _finite(value: float | None) -> float:
    return value if value is not None and math.isfinite(value) else -math.inf


def _value(value: float | None) -> float:
    return math.nan if value is None else float(value)


# --- two runs ------------------------------------------------------------------------------


@dataclass
class ServingComparison:
    """One server at one request size in two runs. Each level is one measurement, with no
    interval: the verdict rests on requests per server CPU-second (the figure least moved by
    what else the machine did), the other ratios are shown beside it."""

    case_id: str
    implementation: str
    server: str
    batch: int
    baseline: ServingRow | None
    candidate: ServingRow | None
    cpu_ratio: float  # candidate / baseline requests per server CPU-second: below 1 is worse
    rps_ratio: float  # candidate / baseline max requests/s
    p50_ratio: float  # candidate / baseline p50 at the common rate: above 1 is slower
    verdict: str
    note: str = ""


def compare_serving(
    baseline: Mapping[tuple[str, str], CaseRecord],
    candidate: Mapping[tuple[str, str], CaseRecord],
    scenarios: Mapping[str, Scenario],
    threshold: float,
) -> list[ServingComparison]:
    """Every serving case of either run, matched by case id and request size."""
    from bench.analysis.compare import IMPROVED, NOT_COMPARABLE, REGRESSED, WITHIN_THRESHOLD

    sides = [
        {(row.case_id, row.batch): row for row in serving_rows(records, scenarios)}
        for records in (baseline, candidate)
    ]
    found = []
    for key in sorted(set(sides[0]) | set(sides[1])):
        old, new = sides[0].get(key), sides[1].get(key)
        some = new or old
        assert some is not None

        def ratio(name: str, old=old, new=new) -> float:
            if old is None or new is None:
                return math.nan
            value = getattr(new, name) / getattr(old, name)
            return value if math.isfinite(value) else math.nan

        cpu = ratio("requests_per_cpu_second")
        notes = [
            f"not in the {side} run"
            for side, row in (("baseline", old), ("candidate", new))
            if row is None
        ]
        notes += [
            f"{side}: {row.status}"
            for side, row in (("baseline", old), ("candidate", new))
            if row is not None and row.status != outcomes.OK
        ]
        if not math.isfinite(cpu) or notes:
            verdict = NOT_COMPARABLE
        elif cpu < 1 / (1 + threshold):
            verdict = REGRESSED
        elif cpu > 1 + threshold:
            verdict = IMPROVED
        else:
            verdict = WITHIN_THRESHOLD
        found.append(
            ServingComparison(
                case_id=some.case_id,
                implementation=some.implementation,
                server=some.server,
                batch=some.batch,
                baseline=old,
                candidate=new,
                cpu_ratio=cpu,
                rps_ratio=ratio("max_rps"),
                p50_ratio=ratio("common_p50_s"),
                verdict=verdict,
                note="; ".join(notes),
            )
        )
    return found
