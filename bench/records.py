"""What a run stores, typed: the case, each round, the case's outcome, the run's metadata.

Every producer (planner, worker, suites, runner) builds these and every reader (store,
analysis, report, CLI) gets them back, through one `to_json` / `from_json` pair each. A new
metric is a new field of `RoundRecord`: the tables, the report and the JSON follow.

Stored JSON stays readable both ways: a field a record does not know is kept in `extra` and
written back unchanged, and a field an older run lacks takes its default. `RUN_FORMAT`
counts the changes of meaning; runs written before it existed are format 1.

The names of the files a worker and the store exchange live here too.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from bench import outcomes

# 2: rounds carry their analytic FLOPs, the run stores its scenarios' definitions.
# 3: a case's rounds come from one worker process or more (`RoundRecord.process`), and its
#    record says why it stopped measuring.
RUN_FORMAT = 3
# A round is *disturbed* when its threads spent more than this share of the time they wanted
# a CPU waiting for one on a run queue (`RoundRecord.wait_share`): for one busy thread, a
# tenth of the round's wall time; about a round slowed by a tenth. `RoundRecord.disturbed`;
# how it was chosen: docs/measurement.md, "Contention".
DISTURBED_WAIT_SHARE = 0.10

# A run's folder.
RUN_FILE = "run.json"
CASES_DIR = "cases"
BENCHMARKS_DIR = "benchmarks"
WORK_DIR = "work"
TABLE_NAMES = ("rounds", "curves", "summary", "levels")
# Held (an advisory lock) by the one `bench run` writing the run; names the holder.
LOCK_FILE = "writer.lock"
# A case's work folder, shared by the runner and its worker.
CASE_FILE = "case.json"  # the Case, and its scenario's definition under SCENARIO_KEY
SCENARIO_KEY = "scenario_definition"
ROUNDS_FILE = "rounds.jsonl"  # one RoundRecord per line, appended as each round ends
BENCHMARK_FILE = "benchmark.json"  # pytest-benchmark's own JSON
OUTCOME_FILE = "outcome.json"  # the worker's last act
LOG_FILE = "worker.log"
PROCESS_FILE = "process.json"  # which of the case's processes the worker is (ProcessPlan)
# A serving case's: one LevelRecord per line as each load level ends, and its server's setup.
LEVELS_FILE = "levels.jsonl"
SERVER_FILE = "server.json"


# A case id names files and a folder (cases/<id>.json, benchmarks/<id>.json, work/<id>/), so
# it is made of characters that are safe in a file name, starts with a letter or digit (no
# "..", no hidden file) and stays well below the 255 bytes a file name may have, leaving room
# for the suffixes of atomic writes.
CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:=+-]*$")
MAX_CASE_ID_CHARS = 200


def case_id_problem(case_id: str) -> str | None:
    """Why `case_id` (or a part of one) cannot name a file, or None."""
    if len(case_id) > MAX_CASE_ID_CHARS:
        return f"is {len(case_id)} characters long, more than {MAX_CASE_ID_CHARS}"
    if not CASE_ID.match(case_id):
        return "may hold only letters, digits and . _ : = + -, and starts with a letter or digit"
    return None


def _known(cls: type, data: dict) -> tuple[dict, dict]:
    """Split `data` into the fields of dataclass `cls` and the rest."""
    names = {f.name for f in dataclasses.fields(cls)}
    return (
        {k: v for k, v in data.items() if k in names},
        {k: v for k, v in data.items() if k not in names},
    )


def _without_none(data: dict) -> dict:
    return {k: v for k, v in data.items() if v is not None}


class _Flat:
    """JSON of a record whose fields are all plain values."""

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict):
        known, _ = _known(cls, data)
        return cls(**known)


@dataclass(frozen=True)
class DatasetResolution(_Flat):
    """What a run asked for and what it loads: the same for every case of a scenario."""

    requested: str
    used: str
    location: str = ""  # the folder or file holding the verified files, or a description
    fallback_reason: str | None = None
    downloaded: bool = False
    # "built-in" (a catalogue dataset) or "file" (the user's folder of IDX files or .npz)
    kind: str = "built-in"
    # A file dataset: each file's SHA-256 by its name relative to `location`, every array's
    # {"shape", "dtype"} (x_train, y_train, x_test, y_test), and how many classes it has.
    files: dict[str, str] | None = None
    arrays: dict[str, dict] | None = None
    classes: int | None = None

    @property
    def from_file(self) -> bool:
        return self.kind == "file"


@dataclass(frozen=True)
class Conformance(_Flat):
    """The conformance gate's verdict on a case's implementation and scenario, decided before
    the case is timed: `outcomes.CONFORMING`, `NON_CONFORMING` or `UNVERIFIED` (not checked).
    `failed` lists each failed check as {"check", "detail"}."""

    verdict: str
    failed: tuple[dict, ...] = ()
    checks: int = 0  # how many checks ran (or were read from the cache)
    cached: bool = False
    seconds: float | None = None  # what checking cost this time (0 when read from the cache)

    @property
    def failed_checks(self) -> str:
        """The failed checks' names: "matches-reference, exact-steps"."""
        return ", ".join(item["check"].split("/")[-1] for item in self.failed)

    @property
    def reason(self) -> str:
        """Why a case is non-conforming, check by check."""
        details = "; ".join(f"{item['check']}: {item['detail']}" for item in self.failed)
        return f"failed the conformance check(s) {self.failed_checks} before timing: {details}"

    @classmethod
    def from_json(cls, data: dict) -> Conformance:
        known, _ = _known(cls, data)
        return cls(**{**known, "failed": tuple(known.get("failed") or ())})


@dataclass(frozen=True)
class Case:
    """One scenario x implementation x threads x device; runs in one fresh process."""

    scenario: str
    implementation: str
    model: str
    framework: str
    source: str
    threads: int
    device: str
    profile: str
    rounds: int  # measured rounds in all the case's processes, at least
    warmup_rounds: int  # in each process
    timeout_s: float
    seed: int
    round_cap_s: float | None = None
    # How many disturbed rounds may be re-run (`--retry-disturbed`), in all, for this case.
    retry_disturbed: int = 0
    processes: int = 1  # worker processes, at least
    max_rounds: int | None = None  # None: exactly `rounds`
    interval_target: float | None = None  # relative half-width of the median's interval
    budget_s: float | None = None  # no further process starts that would end after this
    dataset: DatasetResolution | None = None
    deviations: tuple[str, ...] = ()
    overrides: dict = field(default_factory=dict)  # sweep sizes, e.g. {"n_samples": 10_000}
    status: str | None = None  # set in advance for cases that will not run
    reason: str | None = None
    # The conformance gate's verdict, set before the case runs (None: not gated yet)
    conformance: Conformance | None = None
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            parts = [self.scenario, self.implementation, f"t{self.threads}", self.device]
            parts += [f"{k}={v}" for k, v in sorted(self.overrides.items())]
            for part in parts:
                if problem := case_id_problem(str(part)):
                    raise ValueError(f"a case id cannot be made of {part!r}: it {problem}")
            object.__setattr__(self, "id", "--".join(map(str, parts)))
        # Also an id read back from a stored plan: it becomes a file name when written.
        if problem := case_id_problem(self.id):
            raise ValueError(f"case id {self.id!r} {problem}")

    @property
    def will_run(self) -> bool:
        return self.status not in outcomes.NOT_RUN

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["deviations"] = list(self.deviations)
        data["dataset"] = self.dataset.to_json() if self.dataset else None
        data["conformance"] = self.conformance.to_json() if self.conformance else None
        return data

    @classmethod
    def from_json(cls, data: dict) -> Case:
        known, _ = _known(cls, data)
        dataset, conformance = known.get("dataset"), known.get("conformance")
        return cls(
            **{
                **known,
                "deviations": tuple(known.get("deviations") or ()),
                "overrides": dict(known.get("overrides") or {}),
                "dataset": DatasetResolution.from_json(dataset) if dataset else None,
                "conformance": Conformance.from_json(conformance) if conformance else None,
            }
        )


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


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


@dataclass(frozen=True)
class LevelRecord:
    """One load level of a serving case: the load offered, what the server made of it, and
    what it cost the server and the load generator. Latencies are seconds, from the HDR
    histogram of the level's answered requests (from their intended start in an open loop)."""

    level: int  # its place in the case's sequence
    batch: int  # points per request
    mode: str  # "closed" (a concurrency) or "open" (Poisson arrivals at a rate)
    seconds_bound: float
    requests_bound: int
    stopped_by: str  # "seconds" or "requests": the bound that ended the level
    sent: int
    ok: int
    errors: dict[str, int]  # by kind: gRPC status ("unavailable", "deadline-exceeded", ...)
    elapsed_seconds: float
    offered_rps: float  # requests started per second (open loop: over their arrival span)
    achieved_rps: float  # answered requests per second over the whole level
    concurrency: int | None = None  # closed loop: requests in flight
    target_rate: float | None = None  # open loop: the arrival rate asked for, requests/s
    p50_seconds: float | None = None
    p90_seconds: float | None = None
    p99_seconds: float | None = None
    p999_seconds: float | None = None
    max_seconds: float | None = None
    mean_seconds: float | None = None
    send_lag_p99_seconds: float | None = None  # open loop: how late the generator started them
    server_cpu_seconds: float | None = None
    server_peak_rss_bytes: int | None = None
    client_cpu_seconds: float | None = None
    client_cores: int | None = None
    client_utilisation: float | None = None  # CPU / (elapsed x cores) of the load generator
    client_core_busy: float | None = None  # how busy its cores were, with whatever ran there
    client_bound: bool = False  # its cores were saturated: the server can do more
    connections: int = 1
    # From the level's end until the server answered one point again: an overloaded server
    # first works through the requests it queued.
    recovery_seconds: float | None = None
    fault: str | None = None  # what went wrong with the server during or after this level
    extra: dict = field(default_factory=dict)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def error_rate(self) -> float:
        return self.error_count / self.sent if self.sent else math.nan

    @property
    def server_cpu_per_request(self) -> float:
        """Server CPU seconds per answered request."""
        cpu = self.server_cpu_seconds
        return cpu / self.ok if cpu is not None and self.ok else math.nan

    def to_json(self) -> dict:
        data = _without_none(
            {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        )
        return {**data, **self.extra}

    @classmethod
    def from_json(cls, data: dict) -> LevelRecord:
        known, extra = _known(cls, data)
        known.pop("extra", None)
        return cls(**{**known, "errors": dict(known.get("errors") or {})}, extra=extra)


@dataclass(frozen=True)
class ServerRecord(_Flat):
    """How a serving case's server was set up: which, where, and what starting it took."""

    kind: str  # "grpcio" (the harness's Python server) or "tonic" (Rust)
    serves: str  # the implementation whose predict it serves
    port: int  # on 127.0.0.1
    server_cpus: tuple[int, ...]
    generator_cpus: tuple[int, ...]
    fit_seconds: float  # the one untimed fit of the model, by the harness
    fit_iterations: int
    start_seconds: float  # from launch to listening
    idle_rss_bytes: int
    labels_checked: int  # query points whose labels were checked against the reference's
    cpu_clock: str = ""  # how its CPU time was read (bench.serving.servers.RunningServer)

    @classmethod
    def from_json(cls, data: dict) -> ServerRecord:
        known, _ = _known(cls, data)
        cpus = {name: tuple(known[name]) for name in ("server_cpus", "generator_cpus")}
        return cls(**{**known, **cpus})

    @property
    def shared_core(self) -> bool:
        """The server and the load generator ran on the same core (a one-core machine)."""
        return bool(set(self.server_cpus) & set(self.generator_cpus))


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
