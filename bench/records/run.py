"""The run's metadata, the broken plugins it saw among them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from bench.records.case import Case, DatasetResolution
from bench.records.common import _Flat, _known, _without_none


@dataclass(frozen=True)
class BrokenPluginRecord(_Flat):
    source: str
    error: str  # one line: exception type and message
    details: str = ""  # the traceback


@dataclass(frozen=True)
class RunMeta:
    """`run.json`: what was asked, the plan, where and on what it ran."""

    run_id: str
    profile: str | None = None
    started_at: str | None = None  # ISO time, to the second
    finished_at: str | None = None
    command: str = ""
    datasets: dict[str, DatasetResolution] = field(default_factory=dict)  # by scenario
    broken_plugins: tuple[BrokenPluginRecord, ...] = ()
    environment: dict = field(default_factory=dict)  # execution.environment.fingerprint
    plan: tuple[Case, ...] = ()
    # Threads -> {"gemm_gflops", "gemm_f64_gflops", "bandwidth_gbs", ...}; None: not measured.
    machine_peak: dict[str, dict] | None = None
    sweep: dict | None = None  # {"key", "sizes", "thread_counts"} for `bench sweep`
    # Set when the cases ran on a Dask cluster (execution.cluster): the scheduler, whether
    # cases could share a host (`--cluster-parallel`), the retry policy, the workers checked.
    cluster: dict | None = None
    # The definition of every planned scenario as it was run (scenarios.scenario_to_json),
    # so that a report never depends on today's catalogue. Empty in format-1 runs.
    scenarios: dict[str, dict] = field(default_factory=dict)
    # What `bench doctor`'s checks found as the run started (execution.doctor.Finding.to_json).
    doctor: tuple[dict, ...] | None = None
    format: int = 1
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        data = {
            "run_id": self.run_id,
            "format": self.format,
            "started_at": self.started_at,
            "command": self.command,
            "profile": self.profile,
            "datasets": {name: d.to_json() for name, d in self.datasets.items()},
            "broken_plugins": [b.to_json() for b in self.broken_plugins],
            "environment": self.environment,
            "plan": [case.to_json() for case in self.plan],
            "scenarios": self.scenarios,
        }
        optional = {
            "finished_at": self.finished_at,
            "machine_peak": self.machine_peak,
            "sweep": self.sweep,
            "cluster": self.cluster,
            "doctor": list(self.doctor) if self.doctor is not None else None,
        }
        return {**data, **_without_none(optional), **self.extra}

    @classmethod
    def from_json(cls, data: dict) -> RunMeta:
        known, extra = _known(cls, data)
        known.pop("extra", None)
        return cls(
            **{
                **known,
                "datasets": {
                    name: DatasetResolution.from_json(d)
                    for name, d in (known.get("datasets") or {}).items()
                    if d
                },
                "broken_plugins": tuple(
                    BrokenPluginRecord.from_json(b) for b in known.get("broken_plugins") or ()
                ),
                "plan": tuple(Case.from_json(c) for c in known.get("plan") or ()),
                "environment": known.get("environment") or {},
                "scenarios": known.get("scenarios") or {},
                "doctor": tuple(known["doctor"]) if known.get("doctor") is not None else None,
            },
            extra=extra,
        )

    def replace(self, **changes: Any) -> RunMeta:
        return dataclasses.replace(self, **changes)
