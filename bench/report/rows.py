"""One row per case of a scenario, as every part of the report shows it: its label, its
flags, its comparable time (the one every view ranks and compares by) and its speed-up."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from bench import outcomes
from bench.analysis.intervals import NO_POOL, Interval, Pool, ratio_interval
from bench.analysis.stats import describe
from bench.analysis.tables import SWEEP_PREFIX, comparable_groups, comparable_times, measured_times
from bench.records import DISTURBED_WAIT_SHARE
from bench.report.format import (
    finite,
    fmt_half_width,
    fmt_num,
    fmt_pct,
    fmt_size,
    fmt_speedup,
    fmt_threads,
)
from bench.report.load import Runs
from bench.scenarios import Scenario


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
    group: tuple  # cases compared with each other: run, threads, device, sweep sizes
    values: dict  # the summary row
    times: list[float]  # wall seconds of the measured rounds
    # The comparable time of each measured round: its wall seconds, except that a round
    # stopped by the time cap is scaled up by planned/done steps (its throughput held), so
    # that a capped case is not fast for stopping early. Every view shows and ranks by it.
    comparable: list[float]
    sizes: dict[str, float] = field(default_factory=dict)  # sweep sizes that vary
    groups: list[list[float]] = field(default_factory=list)  # comparable times per process
    pool: Pool = NO_POOL  # the between-process noise of the case's run
    speedup: Interval = field(default_factory=lambda: Interval(math.nan))
    reference: str = ""
    reference_host: str | None = None  # the machine the reference ran on

    @property
    def host(self) -> str | None:
        """The machine that ran the case (a cluster worker's host, else the run's)."""
        host = self.values.get("host")
        return host if isinstance(host, str) else None

    @property
    def cross_machine(self) -> bool:
        """Whether its speed-up compares times taken on two different machines."""
        return self.reference_host is not None and self.host != self.reference_host

    def __post_init__(self) -> None:
        self.wall = describe(self.times)
        self.time = describe(self.comparable)

    @property
    def extrapolated(self) -> bool:
        """Whether `time` is scaled up from capped rounds, and must say so."""
        return self.values.get("time_extrapolated") == True  # noqa: E712 (numpy bools)

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


def sweep_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(SWEEP_PREFIX)]


def varying(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    return [c for c in columns if frame[c].nunique(dropna=True) > 1]


def _default_size(scenario: Scenario, profile: str, key: str) -> float:
    """The size a case without that override ran with (for mixed sweep / plain runs)."""
    if key == "batch_size":
        return float(scenario.batch_size) if scenario.trains else math.nan
    value = getattr(scenario.budget(profile), key, None) if profile in scenario.budgets else None
    return float(value) if value is not None else math.nan


def _fill_sweeps(frame: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    frame = frame.copy()
    for column in sweep_columns(frame):
        key = column.removeprefix(SWEEP_PREFIX)
        defaults = frame["profile"].map(lambda p, key=key: _default_size(scenario, p, key))
        frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(defaults)
    return frame


def case_rows(runs: Runs, scenario: Scenario) -> list[CaseRow]:
    """The scenario's cases: by sweep size, then the cases that finished, fastest first."""
    summary = runs.summary[runs.summary["scenario"] == scenario.name] if len(runs.summary) else None
    if summary is None or summary.empty:
        return []
    summary = _fill_sweeps(summary, scenario)
    sweeps = varying(summary, sweep_columns(summary))
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
        times = measured_times(record)
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
                group=(
                    values["run_id"],
                    values["threads"],
                    values["device"],
                    *(values[c] for c in sweeps),
                ),
                values=values,
                times=times,
                comparable=comparable_times(record),
                sizes=sizes,
                groups=comparable_groups(record),
                pool=runs.pools.get(values["run_id"], NO_POOL),
            )
        )
    _add_speedups(rows, scenario.original or None)
    return sorted(
        rows,
        key=lambda r: (
            tuple(r.sizes.values()),
            not r.ok,
            not r.measured,
            r.time["median"],
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
    if values["status"] == outcomes.NON_CONFORMING:
        flags.append(f"non-conforming: failed {values.get('failed_checks') or 'a check'}")
    elif values["status"] != outcomes.OK and times:
        flags.append(f"partial: {values['status']}")
    if values.get("conformance") == outcomes.UNVERIFIED:
        flags.append("unverified: conformance not checked (--no-check)")
    capped = values.get("capped_rounds")
    if finite(capped) and capped > 0:
        flag = f"capped: {int(capped)} of {len(times)} rounds"
        examples = values.get("test_examples_min")
        if finite(examples):
            flag += f", accuracy on {int(examples):,} test images"
        flags.append(flag)
    if values.get("at_chance_level") == True:  # noqa: E712  (pandas may give numpy bools)
        flags.append("at chance level: did not learn")
    shared = values.get("concurrent_cases")
    if finite(shared) and shared > 0:
        flags.append(
            f"shared machine: {int(shared)} other case(s) ran on its host at the same time "
            "(--cluster-parallel)"
        )
    disturbed = values.get("disturbed_rounds")
    if finite(disturbed) and disturbed > 0:
        flags.append(
            f"disturbed: {int(disturbed)} of {len(times)} rounds waited more than "
            f"{fmt_pct(DISTURBED_WAIT_SHARE, 0)} of the time they wanted a CPU"
        )
    replaced = values.get("replaced_rounds")
    if finite(replaced) and replaced > 0:
        flags.append(f"re-run: {int(replaced)} disturbed round(s), kept out of the statistics")
    if values.get("target_met") == False:  # noqa: E712
        flags.append(
            f"imprecise: interval {fmt_half_width(values.get('interval_half_width'))}, "
            f"target {fmt_half_width(values.get('interval_target'))}"
        )
    return flags


def _add_speedups(rows: list[CaseRow], original: str | None) -> None:
    """Speed-up of every measured case vs the original implementation of the same group
    (run, threads, device, sweep sizes); the fastest stands in where it did not run. A
    non-conforming case is never the reference: without another, the group has none."""
    groups: dict[tuple, list[CaseRow]] = {}
    for row in rows:
        if row.measured:
            groups.setdefault(row.group, []).append(row)
    for members in groups.values():
        candidates = [r for r in members if r.implementation == original and r.ok]
        eligible = [r for r in members if r.status != outcomes.NON_CONFORMING]
        if not eligible:
            for row in members:
                row.speedup = {"ratio": math.nan, "low": math.nan, "high": math.nan}
            continue
        ok = [r for r in eligible if r.ok] or eligible
        reference = candidates[0] if candidates else min(ok, key=lambda r: r.time["median"])
        for row in members:
            row.reference = reference.implementation
            row.reference_host = reference.host
            row.speedup = ratio_interval(reference.groups, row.groups, row.pool)
            if row.cross_machine:
                row.flags.append(
                    f"other machine: ran on {row.host}, its reference {reference.implementation} "
                    f"on {reference.host}; the speed-up compares two machines"
                )


def fastest_cases(rows: list[CaseRow]) -> dict[str, str]:
    """Per group of comparable cases, the fastest one ("fastest"), or, when others are not
    clearly slower than it (the interval of their time ratio includes 1), all of them
    ("tied"). Without an interval (fewer than two rounds) nothing is called a tie."""
    marks: dict[str, str] = {}
    groups: dict[tuple, list[CaseRow]] = {}
    for row in rows:
        if row.ok:
            groups.setdefault(row.group, []).append(row)
    for members in groups.values():
        fastest = min(members, key=lambda r: r.time["median"])
        tied = [r for r in members if r is not fastest and _indistinguishable(r, fastest)]
        for r in [fastest, *tied]:
            marks[r.case_id] = "tied" if tied else "fastest"
    return marks


def _indistinguishable(row: CaseRow, other: CaseRow) -> bool:
    ratio = ratio_interval(row.groups, other.groups, row.pool)
    return ratio.finite and not ratio.significant


def speed_words(row: CaseRow) -> str:
    """`2.31× faster than torch (2.10–2.52)`, with the reason when it is by throughput."""
    if row.implementation == row.reference:
        return "reference"
    words = fmt_speedup(row.speedup, row.reference)
    if row.cross_machine:
        words += ", on another machine"
    return f"{words}, from samples/s (capped)" if row.capped else words


def quality_column(scenario: Scenario) -> str:
    return "test_accuracy_median" if scenario.trains else "adjusted_rand_index_median"


def quality_text(row: CaseRow, scenario: Scenario) -> str:
    """Test accuracy (trainers) or the adjusted Rand index (K-Means), as the glance shows it."""
    value = row.get(quality_column(scenario))
    return fmt_pct(value, 2) if scenario.trains else f"ARI {fmt_num(value, 4)}"
