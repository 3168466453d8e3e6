"""How a case ended: the worker's outcome and the case's whole record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench import outcomes
from bench.records.case import Case
from bench.records.common import _Flat, _known
from bench.records.rounds import RoundRecord
from bench.records.serving import LevelRecord, ServerRecord


@dataclass(frozen=True)
class Outcome(_Flat):
    """How a worker ended a case: written as its last act, read by the runner."""

    status: str
    reason: str | None = None
    details: str = ""
    threads: dict | None = None  # the thread settings in force (execution.threads.describe)
    pytest_exit_code: int | None = None
    device: dict | None = None  # the GPU of a GPU case (execution.devices.describe)


@dataclass(frozen=True)
class CaseRecord:
    """A finished case: what was planned, how it ended, and every round it measured."""

    case: Case
    status: str
    reason: str | None = None
    details: str | None = None
    rounds: tuple[RoundRecord, ...] = ()
    threads: dict | None = None
    pytest_exit_code: int | None = None
    device: dict | None = None  # the GPU a GPU case ran on: name, CUDA, cuDNN, driver, TF32
    worker_seconds: float | None = None
    log_tail: str | None = None  # the end of the worker's log, for a case that is not ok
    benchmark_file: str | None = None  # pytest-benchmark's JSON, relative to the run folder
    # When its worker started and ended (ISO 8601 with microseconds and UTC offset), by the
    # clock of the machine that ran it.
    started_at: str | None = None
    ended_at: str | None = None
    # Where a cluster ran it (execution.cluster): {"address", "host", "machine" (the
    # machine's facts), "machine_id", "peak" (its measured peak by thread count), ...}.
    # None: on the run's own machine, which run.json describes.
    worker: dict | None = None
    # Attempts that ended without a record of their own (their worker was lost) before the
    # one this record holds, each {"worker", "host", "started_at", "ended_at", "reason"}.
    attempts: tuple[dict, ...] = ()
    # Why the case measured no more rounds (bench.analysis.stopping: target, max-rounds,
    # budget, fixed), and the relative half-width of its median's interval then.
    stopped: str | None = None
    stopped_half_width: float | None = None
    # A serving case: its load levels, as each ended, and its server's setup.
    levels: tuple[LevelRecord, ...] = ()
    server: ServerRecord | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def ended(
        cls,
        case: Case,
        outcome: Outcome,
        rounds: tuple[RoundRecord, ...] = (),
        **fields: Any,
    ) -> CaseRecord:
        verdict = case.conformance.verdict if case.conformance else None
        status = outcomes.gated(outcome.status, verdict)
        return cls(
            case=case,
            status=status,
            reason=case.conformance.reason if status != outcome.status else outcome.reason,
            details=outcome.details or None,
            threads=outcome.threads,
            pytest_exit_code=outcome.pytest_exit_code,
            device=outcome.device,
            rounds=tuple(rounds),
            **fields,
        )

    @property
    def measured_rounds(self) -> list[RoundRecord]:
        """The rounds in the statistics: not warm-ups, and not disturbed rounds that a retry
        replaced (`--retry-disturbed`)."""
        replaced = self.replaced_rounds
        return [r for r in self.rounds if not r.warmup and r.round not in replaced]

    @property
    def replaced_rounds(self) -> set[int]:
        """Indices of the disturbed rounds that a retry replaced: recorded, not counted."""
        return {r.replaces for r in self.rounds if r.replaces is not None}

    @property
    def disturbed_rounds(self) -> int:
        """Disturbed rounds among those in the statistics."""
        return sum(bool(r.disturbed) for r in self.measured_rounds)

    @property
    def warmup_rounds(self) -> list[RoundRecord]:
        return [r for r in self.rounds if r.warmup]

    @property
    def capped_rounds(self) -> int:
        return sum(bool(r.capped) for r in self.measured_rounds)

    def by_process(self, rounds: list[RoundRecord] | None = None) -> list[list[RoundRecord]]:
        """The measured rounds (or `rounds`) grouped by the process that ran them, in order;
        rounds of a run stored before processes were recorded form one group."""
        groups: dict[int | None, list[RoundRecord]] = {}
        for record in self.measured_rounds if rounds is None else rounds:
            groups.setdefault(record.process, []).append(record)
        return list(groups.values())

    def to_json(self) -> dict:
        data = {
            "case": self.case.to_json(),
            "rounds": [r.to_json() for r in self.rounds],
            "status": self.status,
            "reason": self.reason,
        }
        for name in (
            "details",
            "threads",
            "pytest_exit_code",
            "device",
            "worker_seconds",
            "log_tail",
            "started_at",
            "ended_at",
            "worker",
            "stopped",
            "stopped_half_width",
        ):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        if self.attempts:
            data["attempts"] = list(self.attempts)
        if self.benchmark_file is not None:
            data["benchmark_file"] = self.benchmark_file
        if self.levels:
            data["levels"] = [level.to_json() for level in self.levels]
        if self.server is not None:
            data["server"] = self.server.to_json()
        return {**data, **self.extra}

    @classmethod
    def from_json(cls, data: dict) -> CaseRecord:
        known, extra = _known(cls, data)
        known.pop("extra", None)
        return cls(
            **{
                **known,
                "case": Case.from_json(known["case"]),
                "rounds": tuple(RoundRecord.from_json(r) for r in known.get("rounds") or ()),
                "attempts": tuple(known.get("attempts") or ()),
                "levels": tuple(LevelRecord.from_json(v) for v in known.get("levels") or ()),
                "server": ServerRecord.from_json(known["server"]) if known.get("server") else None,
            },
            extra=extra,
        )
