"""A serving case's measurements: each load level, and the server that answered it."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from bench.records.common import _Flat, _known, _without_none


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
