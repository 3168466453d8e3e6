"""How much the machine disturbed a case and a run, from the contention every round records
(run-queue wait, involuntary context switches, other processes' CPU, steal, load).

A round is *disturbed* when its threads spent more than `DISTURBED_WAIT_SHARE` of the time
they wanted a CPU waiting for one (`RoundRecord.disturbed`, decided in the worker). A run is on
a *busy machine* when at least one round in its statistics was disturbed: every view then
shows a banner.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench.analysis.stats import describe
from bench.records import DISTURBED_WAIT_SHARE, CaseRecord, RoundRecord


def _values(rounds: Sequence[RoundRecord], name: str) -> list[float]:
    return [getattr(r, name) for r in rounds if getattr(r, name) is not None]


def case_noise(record: CaseRecord) -> dict:
    """A case's noise, for its summary row: the rounds in its statistics that were disturbed,
    those a re-run replaced (kept, not counted), the worst wait share and load."""
    counted = record.measured_rounds
    return {
        "disturbed_rounds": record.disturbed_rounds,
        "replaced_rounds": len(record.replaced_rounds),
        "wait_share_max": describe(_values(counted, "wait_share"))["max"],
        "load_average_max": describe(_values(counted, "load_average"))["max"],
    }


@dataclass(frozen=True)
class RunNoise:
    """A run's noise over the rounds in its statistics."""

    rounds: int  # measured rounds in the statistics
    observed: int  # of those, rounds that recorded their contention (not in older runs)
    disturbed: int
    cases: int  # cases with measured rounds
    disturbed_cases: int
    replaced: int  # disturbed rounds re-run (--retry-disturbed), kept out of the statistics
    wait_share_median: float
    wait_share_max: float
    other_cpu_cores_median: float
    load_average_max: float
    steal_seconds: float
    threshold: float = DISTURBED_WAIT_SHARE
    # Other processes' cores during the disturbed rounds alone: near 0, the wait came from the
    # disturbed cases' own threads.
    other_cpu_cores_disturbed_median: float = math.nan

    @property
    def busy(self) -> bool:
        """Whether the run gets the busy-machine banner."""
        return self.disturbed > 0


def run_noise(cases: Sequence[CaseRecord]) -> RunNoise:
    measured = [case for case in cases if case.measured_rounds]
    counted = [r for case in measured for r in case.measured_rounds]
    steal = _values(counted, "steal_seconds")
    return RunNoise(
        rounds=len(counted),
        observed=len(_values(counted, "wait_share")),
        disturbed=sum(bool(r.disturbed) for r in counted),
        cases=len(measured),
        disturbed_cases=sum(case.disturbed_rounds > 0 for case in measured),
        replaced=sum(len(case.replaced_rounds) for case in cases),
        wait_share_median=describe(_values(counted, "wait_share"))["median"],
        wait_share_max=describe(_values(counted, "wait_share"))["max"],
        other_cpu_cores_median=describe(_values(counted, "other_cpu_cores"))["median"],
        load_average_max=describe(_values(counted, "load_average"))["max"],
        steal_seconds=float(sum(steal)) if steal else math.nan,
        other_cpu_cores_disturbed_median=describe(
            _values([r for r in counted if r.disturbed], "other_cpu_cores")
        )["median"],
    )
