"""What a case's worker processes run and measure: their share of rounds, each round, the curve."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from bench.records.common import _finite, _Flat, _known, _without_none


@dataclass(frozen=True)
class CurvePoint(_Flat):
    """Test accuracy after some training, with the clock stopped while it is measured."""

    train_seconds: float
    steps: int
    loss: float
    test_accuracy: float


@dataclass(frozen=True)
class ProcessPlan(_Flat):
    """What one of a case's worker processes runs: its rounds get the indices from
    `first_round` on, warm-ups first. A short warm-up trains one evaluation chunk: enough to
    warm the code paths, and only the first process's warm-up is reported as cold start."""

    process: int = 0
    first_round: int = 0
    rounds: int = 1
    warmup_rounds: int = 0
    short_warmup: bool = False
    retry_disturbed: int = 0  # what is left of the case's re-runs of disturbed rounds


@dataclass(frozen=True)
class RoundRecord:
    """One measured (or warm-up) round. Costs for every model; then the trainer's or the
    clusterer's own metrics, None where they do not apply (and left out of the JSON)."""

    round: int
    warmup: bool
    wall_seconds: float
    cpu_seconds: float
    effective_cores: float
    utilisation: float
    peak_rss_bytes: int
    samples: int
    samples_per_second: float
    # Analytic FLOPs of the work done (the scenario's count, computed by the worker).
    flops: float | None = None
    # trainers
    steps: int | None = None
    planned_steps: int | None = None
    # Stopped by the per-round time cap: throughput stays comparable, accuracy is that of a
    # shorter training and is flagged wherever it is shown.
    capped: bool | None = None
    loss: float | None = None
    train_accuracy: float | None = None
    test_accuracy: float | None = None
    test_examples: int | None = None  # fewer than the test set when the round was capped
    time_to_target_seconds: float | None = None
    curve: tuple[CurvePoint, ...] | None = None
    # clusterers
    inertia: float | None = None
    adjusted_rand_index: float | None = None
    n_iter: int | None = None
    seconds_per_iteration: float | None = None
    predict_seconds_per_sample: float | None = None
    # GPU cases (execution.devices): the allocator's peak, reset per round; NVML's most
    # memory in use and mean utilisation (%) while the round ran, where NVML is readable.
    gpu_memory_peak_bytes: int | None = None
    gpu_driver_memory_peak_bytes: int | None = None
    gpu_utilisation: float | None = None
    # Contention (bench.execution.contention): what competed with the round for the CPU,
    # over its training time (the clock's pauses left out). None in runs stored before it.
    run_queue_wait_seconds: float | None = None  # summed over the worker's threads
    involuntary_switches: int | None = None
    # run_queue_wait_seconds / (run_queue_wait_seconds + cpu_seconds): of the time its
    # threads wanted a CPU, the share they waited for one
    wait_share: float | None = None
    disturbed: bool | None = None  # wait_share above DISTURBED_WAIT_SHARE
    other_cpu_cores: float | None = None  # other processes' CPU during the round, in cores
    steal_seconds: float | None = None  # CPU time the hypervisor gave to other guests
    load_average: float | None = None  # the 1-minute load average as the round ended
    # A re-run (--retry-disturbed) of the disturbed round with this index, which stays
    # recorded but leaves the statistics.
    replaces: int | None = None
    process: int | None = None  # which of the case's worker processes ran it (None: format 2)
    extra: dict = field(default_factory=dict)  # stored fields this version does not know

    @property
    def comparable_seconds(self) -> float:
        """The round's time for comparisons: its wall seconds, or for a capped round what its
        planned steps would have taken at the throughput it measured. Comparing these keeps
        a capped case from looking fast for having stopped early."""
        if not _finite(self.wall_seconds):
            return math.nan
        if self.extrapolated:
            return float(self.wall_seconds * self.planned_steps / self.steps)
        return float(self.wall_seconds)

    @property
    def extrapolated(self) -> bool:
        """Whether `comparable_seconds` is scaled up from a capped round."""
        return bool(
            self.capped
            and _finite(self.steps)
            and _finite(self.planned_steps)
            and self.steps > 0
            and _finite(self.wall_seconds)
        )

    def to_json(self) -> dict:
        data = _without_none(
            {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        )
        if self.curve is not None:
            data["curve"] = [point.to_json() for point in self.curve]
        return {**data, **self.extra}

    @classmethod
    def from_json(cls, data: dict) -> RoundRecord:
        known, extra = _known(cls, data)
        known.pop("extra", None)
        if known.get("curve") is not None:
            known["curve"] = tuple(CurvePoint.from_json(p) for p in known["curve"])
        return cls(**known, extra=extra)
