"""Tidy tables of a run, one row per round, curve point, case and load level (pandas).

    rounds   every round's metrics, with the case's identity, GFLOP/s and share of the peak
    curves   every accuracy-vs-training-time point
    summary  one row per case: n, median, IQR, min, max of the measured time and of the
             comparable time; medians of every other metric; the flags every view shows;
             its noise (bench.analysis.noise)
    levels   every load level of a serving case (bench.analysis.serving)

Rounds and curve points carry `counted`: in the statistics (measured, and not a disturbed
round that `--retry-disturbed` replaced).

Built from typed records alone: the FLOPs come with each round and the peak with the run, so
a stored run gives the same tables whichever version of the catalogue reads it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence

import pandas as pd

from bench import outcomes
from bench.analysis import noise
from bench.analysis.intervals import Pool, median_interval, spread
from bench.analysis.stats import describe
from bench.records import CaseRecord, RoundRecord, RunMeta
from bench.scenarios import Scenario

# Round metrics summarised by their median in summary.csv (train time gets the full spread).
MEDIAN_COLUMNS = [
    "cpu_seconds",
    "effective_cores",
    "utilisation",
    "peak_rss_bytes",
    "samples_per_second",
    "gflops",
    "peak_share",
    "loss",
    "train_accuracy",
    "test_accuracy",
    "time_to_target_seconds",
    "inertia",
    "adjusted_rand_index",
    "n_iter",
    "seconds_per_iteration",
    "predict_seconds_per_sample",
    "gpu_memory_peak_bytes",
    "gpu_driver_memory_peak_bytes",
    "gpu_utilisation",
    # contention (bench.analysis.noise summarises it further)
    "wait_share",
    "run_queue_wait_seconds",
    "involuntary_switches",
    "other_cpu_cores",
    "steal_seconds",
    "load_average",
]
SWEEP_PREFIX = "sweep_"
# Ten classes: 10% is chance. Below 15% test accuracy a trainer has not learned anything;
# with another number of classes, below 1.5 times its chance level (one in `classes`).
CHANCE_LEVEL_FACTOR = 1.5
CHANCE_LEVEL_ACCURACY = CHANCE_LEVEL_FACTOR / 10


def chance_level_accuracy(scenario: Scenario | None) -> float:
    """The test accuracy below which a trainer of `scenario` has not learned."""
    classes = scenario.classes if scenario is not None and scenario.trains else 10
    return CHANCE_LEVEL_FACTOR / (classes or 10)


def comparable_times(record: CaseRecord) -> list[float]:
    """The comparable seconds of every measured round (finite ones only)."""
    times = (r.comparable_seconds for r in record.measured_rounds)
    return [t for t in times if math.isfinite(t)]


def comparable_groups(record: CaseRecord) -> list[list[float]]:
    """The comparable seconds of the measured rounds, one list per worker process."""
    groups = (
        [t for t in (r.comparable_seconds for r in group) if math.isfinite(t)]
        for group in record.by_process()
    )
    return [group for group in groups if group]


def between_pool(records: Sequence[CaseRecord]) -> Pool:
    """The between-process variance of a run, pooled over its finished cases."""
    return Pool.of(
        spread(comparable_groups(record)) for record in records if record.status == outcomes.OK
    )


def measured_times(record: CaseRecord) -> list[float]:
    """The wall seconds of every measured round (finite ones only)."""
    times = (r.wall_seconds for r in record.measured_rounds)
    return [float(t) for t in times if t is not None and math.isfinite(t)]


def _case_columns(record: CaseRecord) -> dict:
    case = record.case
    return {
        "case_id": case.id,
        "scenario": case.scenario,
        "implementation": case.implementation,
        "model": case.model,
        "framework": case.framework,
        "threads": case.threads,
        "device": case.device,
        "profile": case.profile,
        "dataset": case.dataset.used if case.dataset else None,
        **{f"{SWEEP_PREFIX}{key}": value for key, value in case.overrides.items()},
    }


def peak_gflops(meta: RunMeta, scenario: Scenario | None, record: CaseRecord) -> float:
    """The measured GEMM peak where the case ran, in the scenario's dtype: the CPU's at the
    case's thread count, or its GPU's (stored under the device's name); the peak of the
    machine that ran it (its cluster worker's, which measures its CPU's), else the run's."""
    case = record.case
    where = case.device if case.device != "cpu" else str(case.threads)
    peaks = (record.worker or {}).get("peak") or meta.machine_peak or {}
    peak = peaks.get(where) or {}
    key = "gemm_f64_gflops" if scenario and scenario.dtype == "float64" else "gemm_gflops"
    value = peak.get(key)
    return float(value) if value else math.nan


def _round_row(ids: dict, record: RoundRecord, peak: float, counted: bool) -> dict:
    row = {**ids, **{k: v for k, v in record.to_json().items() if k != "curve"}}
    # In the statistics: measured, and not a disturbed round replaced by a re-run.
    row["counted"] = counted
    wall = record.wall_seconds or math.nan
    flops = record.flops if record.flops is not None else math.nan
    row["gflops"] = flops / wall / 1e9 if wall > 0 else math.nan
    row["peak_share"] = row["gflops"] / peak if peak > 0 else math.nan
    return row


def tidy_tables(
    cases: Sequence[CaseRecord], meta: RunMeta, scenarios: Mapping[str, Scenario]
) -> dict[str, pd.DataFrame]:
    rounds, curves, summary = [], [], []
    pool = between_pool(cases)
    for case in cases:
        ids = _case_columns(case)
        peak = peak_gflops(meta, scenarios.get(case.case.scenario), case)
        case_rounds = []
        counted = {id(r) for r in case.measured_rounds}
        for record in case.rounds:
            row = _round_row(ids, record, peak, id(record) in counted)
            rounds.append(row)
            case_rounds.append(row)
            curves += [
                {
                    **ids,
                    "round": record.round,
                    "warmup": record.warmup,
                    "counted": row["counted"],
                    **point.to_json(),
                }
                for point in record.curve or ()
            ]
        scenario = scenarios.get(case.case.scenario)
        summary.append(
            {
                **_summary_row(case, ids, case_rounds, chance_level_accuracy(scenario)),
                **_interval_columns(case, pool),
            }
        )
    shared = _shared_a_machine(cases, meta)
    for row, case in zip(summary, cases, strict=True):
        row["host"] = case_host(case, meta)
        row["machine_id"] = (case.worker or {}).get("machine_id")
        row["concurrent_cases"] = shared.get(case.case.id, 0)
    from bench.analysis.serving import levels_table  # it builds on this module's columns

    return {
        "rounds": pd.DataFrame(rounds),
        "curves": pd.DataFrame(curves),
        "summary": pd.DataFrame(summary),
        "levels": levels_table(cases),
    }


def case_host(record: CaseRecord, meta: RunMeta) -> str | None:
    """The host that ran a case: its cluster worker's, else the run's own machine."""
    return (record.worker or {}).get("host") or meta.environment.get("hostname")


def _shared_a_machine(cases: Sequence[CaseRecord], meta: RunMeta) -> dict[str, int]:
    """For each case that ran while other cases ran on its host (a cluster run with
    `--cluster-parallel`), how many others did: its times were measured on shared cores."""
    spans: dict[str | None, list[tuple[dt.datetime, dt.datetime, str]]] = {}
    for case in cases:
        if case.started_at and case.ended_at:
            span = (_time(case.started_at), _time(case.ended_at), case.case.id)
            spans.setdefault(case_host(case, meta), []).append(span)
    shared: dict[str, int] = {}
    for host_spans in spans.values():
        for start, end, case_id in host_spans:
            others = sum(s < end and start < e for s, e, other in host_spans if other != case_id)
            if others:
                shared[case_id] = others
    return shared


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _spread(prefix: str, values: Sequence[float]) -> dict:
    stats = describe(values)
    return {f"{prefix}_{key}": stats[key] for key in ("median", "iqr", "q1", "q3", "min", "max")}


def _interval_columns(case: CaseRecord, pool: Pool) -> dict:
    """How precise the case's comparable time is: the relative half-width of its median's
    interval (the run's between-process noise pooled in), against the profile's target."""
    groups = comparable_groups(case)
    interval = median_interval(groups, pool)
    target = case.case.interval_target
    half_width = interval.half_width
    return {
        "processes": len(groups),
        "interval_low": interval.low,
        "interval_high": interval.high,
        "interval_half_width": half_width,
        "interval_label": interval.label if interval.finite else None,
        "interval_target": target if target is not None else math.nan,
        "target_met": (half_width <= target) if target is not None and interval.finite else None,
        "stopped": case.stopped,
    }


def _threads_in_force(case: CaseRecord) -> str | None:
    counts = ((case.threads or {}).get("in_force") or {}).values()
    return ", ".join(map(str, sorted(set(counts)))) or None


def _summary_row(case: CaseRecord, ids: dict, rounds: list[dict], chance: float) -> dict:
    measured = [r for r in rounds if r["counted"]]
    warmups = case.warmup_rounds
    dataset = case.case.dataset
    conformance = case.case.conformance
    row = {
        **ids,
        "status": case.status,
        "reason": case.reason,
        # The conformance gate's verdict before timing (none in runs older than the gate):
        # unverified numbers are flagged, non-conforming cases never ranked.
        "conformance": conformance.verdict if conformance else None,
        "failed_checks": conformance.failed_checks if conformance else None,
        "dataset_fallback": dataset.fallback_reason if dataset else None,
        "rounds": len(measured_times(case)),
        **_spread("train_seconds", measured_times(case)),
        # What every view compares and ranks by: the measured time, except that a capped
        # round counts what its planned steps would take at its measured throughput.
        **_spread("comparable_seconds", comparable_times(case)),
        "time_extrapolated": any(r.extrapolated for r in case.measured_rounds),
        "cold_start_seconds": warmups[0].wall_seconds if warmups else math.nan,
        "capped_rounds": case.capped_rounds,
        # The distinct thread counts of the pools in force, which may differ from the
        # `threads` asked for (a library caps its pool, a framework refused a setting).
        "threads_in_force": _threads_in_force(case),
        # The fewest test examples a measured round's accuracy was taken on (capped rounds
        # are evaluated on a subset).
        "test_examples_min": describe([r.get("test_examples") for r in measured])["min"],
        **noise.case_noise(case),
    }
    for column in MEDIAN_COLUMNS:
        row[f"{column}_median"] = describe([r.get(column) for r in measured])["median"]
    # A trainer that did not learn must not pass for a fast one: flag it wherever it is shown.
    accuracy = row["test_accuracy_median"]
    row["at_chance_level"] = bool(math.isfinite(accuracy) and accuracy < chance)
    return row
