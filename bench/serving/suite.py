"""One serving case, in its worker process (`bench.execution.worker` hands it over).

1. Fit the model once, untimed: the harness's reference K-Means on the scenario's data, from
   the same initial centroids as the fit scenario.
2. Start the case's server on its cores, with those centroids, and check its labels of 1 000
   query points against the reference's.
3. For each request size: a warm-up, then every load level, each run by the load generator
   on its own cores. Around each level the server's CPU time and peak memory are read from
   its process. Each level's record is appended to `levels.jsonl` as it ends, so a case that
   fails later keeps what it measured.

Faults are results: a server that does not start, exits during a level or stops answering
ends the case as *failed* with what happened, its levels kept. The server is killed when the
case ends, however it ends.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import psutil

from bench import outcomes, reference
from bench.execution.weights import initial_centroids
from bench.files import atomic_write_text
from bench.records import (
    CASE_FILE,
    LEVELS_FILE,
    SERVER_FILE,
    Case,
    LevelRecord,
    Outcome,
    ServerRecord,
)
from bench.scenarios import Scenario, ServingSpec
from bench.serving import loadgen, servers
from bench.serving.loadgen import GeneratorFailed, LoadLevel
from bench.serving.placement import Placement, place
from bench.serving.servers import RunningServer, ServerFailed

MODEL_FILE = "model.json"
QUERIES_FILE = "queries.f64"
CHECKED_POINTS = 1_000
# A load generator whose cores were this busy (by itself, or with whatever else ran there)
# was the bottleneck: the server can do more.
CLIENT_BOUND_UTILISATION = 0.9
# After each level, one point must come back within this time (or twice the deadline), or
# the server must be seen working (its backlog) for up to the scenario's recovery limit.
PROBE_TIMEOUT_S = 5.0
# A server that used less than this share of a core during a probe that timed out, and had a
# thread ready to run in less than this share of the samples, is hung (not busy, not starved).
HUNG_CPU_SHARE = 0.05
HUNG_RUNNABLE_SHARE = 0.5
REFUSED_PAUSE_S = 0.5


class CaseFailed(Exception):
    """The case cannot go on; the message says why."""


def run_case(case: Case, scenario: Scenario, workdir: Path) -> Outcome:
    from bench.execution.worker import load_case_data

    assert scenario.serving is not None and scenario.kmeans is not None
    spec = scenario.serving
    placement = place(case.threads)
    server: RunningServer | None = None
    stage = "fitting the model"
    try:
        x = load_case_data(case, scenario).x_train
        started = time.perf_counter()
        init = initial_centroids(x, scenario.kmeans.n_clusters, case.seed)
        fit = reference.kmeans(x, init, scenario.kmeans.max_iter, scenario.kmeans.tol)
        fit_seconds = time.perf_counter() - started
        queries = x[np.random.default_rng(case.seed).integers(0, len(x), spec.query_points)]
        atomic_write_text(workdir / MODEL_FILE, json.dumps({"centroids": fit.centroids.tolist()}))
        queries.astype("<f8").tofile(workdir / QUERIES_FILE)

        stage = "starting the server"
        command = servers.server_command(
            case, workdir / CASE_FILE, workdir / MODEL_FILE, placement.server
        )
        server = servers.start(
            command, threads=len(placement.server), log=sys.stderr, timeout=spec.start_timeout_s
        )
        checked = _check_labels(server, queries[:CHECKED_POINTS], fit.centroids)
        setup = ServerRecord(
            kind=servers.kind_of(case),
            serves=servers.serves(case),
            port=server.port,
            server_cpus=placement.server,
            generator_cpus=placement.generator,
            fit_seconds=fit_seconds,
            fit_iterations=int(fit.n_iter),
            start_seconds=server.start_seconds,
            idle_rss_bytes=server.rss(),
            labels_checked=checked,
            cpu_clock=server.cpu_clock,
        )
        atomic_write_text(workdir / SERVER_FILE, json.dumps(setup.to_json()))

        stage = "loading the server"
        where = {
            "port": server.port,
            "queries": workdir / QUERIES_FILE,
            "features": x.shape[1],
            "cpus": placement.generator,
            "seed": case.seed,
        }
        with (workdir / LEVELS_FILE).open("a", encoding="utf-8") as kept:
            index = 0
            for load in spec.loads[case.profile]:
                _warm_up(server, loadgen.warmup(load), where)
                for level in loadgen.levels(load):
                    record = _measure(server, level, index, placement, where)
                    if not record.fault:
                        record = _recovered(server, queries[:1], level, record, spec)
                    kept.write(json.dumps(record.to_json()) + "\n")
                    kept.flush()
                    if record.fault:
                        raise CaseFailed(f"{record.fault} ({index} earlier level(s) kept)")
                    index += 1
        return Outcome(outcomes.OK)
    except (ServerFailed, CaseFailed) as error:
        return Outcome(outcomes.FAILED, str(error))
    except GeneratorFailed as error:
        return Outcome(outcomes.FAILED, f"{stage}: {error}")
    finally:
        if server is not None:
            server.stop()


def _check_labels(server: RunningServer, points: np.ndarray, centroids: np.ndarray) -> int:
    """The number of points whose labels the server gave as the reference does."""
    try:
        answered = server.predict(points, timeout=PROBE_TIMEOUT_S)
    except Exception as error:  # grpc.RpcError, or a server that died
        raise ServerFailed(_no_answer(server, "the first request", error)) from None
    expected = reference.nearest_centroid(points, centroids)
    wrong = int((answered != expected).sum()) if answered.shape == expected.shape else len(points)
    if wrong:
        raise ServerFailed(
            f"the server's labels differ from the reference's on {wrong} of {len(points)} points"
        )
    return len(points)


def _no_answer(server: RunningServer, what: str, error: Exception) -> str:
    if exited := server.exit_reason:
        return f"the server {exited} before answering {what}"
    detail = getattr(error, "details", lambda: str(error))() or type(error).__name__
    return f"the server did not answer {what}: {detail}"


def _warm_up(server: RunningServer, level: LoadLevel, where: dict) -> None:
    if level.max_requests <= 0:
        return
    try:
        loadgen.run(level, log=sys.stderr, **where)
    except GeneratorFailed as error:
        if exited := server.exit_reason:
            raise ServerFailed(
                f"the server {exited} during the warm-up of batch {level.batch}"
            ) from None
        raise GeneratorFailed(f"warm-up of batch {level.batch}: {error}") from None
    if exited := server.exit_reason:
        raise ServerFailed(f"the server {exited} during the warm-up of batch {level.batch}")


def _measure(
    server: RunningServer, level: LoadLevel, index: int, placement: Placement, where: dict
) -> LevelRecord:
    """Run one level and read what it cost the server; a server that ended during it leaves
    a record with its `fault` set."""
    cpu_before = server.cpu_seconds()
    cores_before = psutil.cpu_times(percpu=True)
    server.reset_peak()
    try:
        report = loadgen.run(level, log=sys.stderr, **where)
    except GeneratorFailed:
        if exited := server.exit_reason:
            report = None
        else:
            raise
    exited = server.exit_reason
    fault = f"the server {exited} during level {index} ({level.describe()})" if exited else None
    cpu, peak = (None, None) if exited else (server.cpu_seconds() - cpu_before, server.peak_rss())
    busy = busy_share(cores_before, psutil.cpu_times(percpu=True), placement.generator)
    return level_record(index, level, report or {}, cpu, peak, fault, busy)


def busy_share(before, after, cpus) -> float | None:
    """How busy `cpus` were between two readings of `psutil.cpu_times(percpu=True)`: the
    share of their time not idle, whatever ran there."""
    busy = total = 0.0
    for cpu in cpus:
        if cpu >= min(len(before), len(after)):
            return None
        spent = sum(after[cpu]) - sum(before[cpu])
        idle = (after[cpu].idle - before[cpu].idle) + (
            getattr(after[cpu], "iowait", 0) - getattr(before[cpu], "iowait", 0)
        )
        busy, total = busy + spent - idle, total + spent
    return busy / total if total > 0 else None


def level_record(
    index: int,
    level: LoadLevel,
    report: dict,
    server_cpu: float | None,
    server_peak: int | None,
    fault: str | None,
    core_busy: float | None = None,
) -> LevelRecord:
    """A level's record from the load generator's report, the server's costs and how busy the
    load generator's cores were. The level is client-bound when the generator used most of
    its cores, or when they were that busy anyway (other work on them held it back)."""
    latency = report.get("latency_us") or {}
    lag = report.get("send_lag_us") or {}

    def seconds(values: dict, key: str) -> float | None:
        return values[key] / 1e6 if key in values else None

    utilisation = report.get("client_utilisation")
    return LevelRecord(
        level=index,
        batch=level.batch,
        mode=level.mode,
        concurrency=level.concurrency,
        target_rate=level.rate,
        seconds_bound=level.seconds,
        requests_bound=level.max_requests,
        stopped_by=report.get("stopped_by", "fault"),
        sent=int(report.get("sent", 0)),
        ok=int(report.get("ok", 0)),
        errors=dict(report.get("errors") or {}),
        elapsed_seconds=float(report.get("elapsed_seconds", math.nan)),
        offered_rps=float(report.get("offered_rps", math.nan)),
        achieved_rps=float(report.get("achieved_rps", math.nan)),
        p50_seconds=seconds(latency, "p50"),
        p90_seconds=seconds(latency, "p90"),
        p99_seconds=seconds(latency, "p99"),
        p999_seconds=seconds(latency, "p99_9"),
        max_seconds=seconds(latency, "max"),
        mean_seconds=seconds(latency, "mean"),
        send_lag_p99_seconds=seconds(lag, "p99") if level.mode == loadgen.OPEN else None,
        server_cpu_seconds=server_cpu,
        server_peak_rss_bytes=server_peak,
        client_cpu_seconds=report.get("client_cpu_seconds"),
        client_cores=report.get("client_cores"),
        client_utilisation=utilisation,
        client_core_busy=core_busy,
        client_bound=any(
            share is not None and share >= CLIENT_BOUND_UTILISATION
            for share in (utilisation, core_busy)
        ),
        connections=int(report.get("connections", level.connections)),
        fault=fault,
    )


def _recovered(
    server: RunningServer,
    point: np.ndarray,
    level: LoadLevel,
    record: LevelRecord,
    spec: ServingSpec,
) -> LevelRecord:
    """After a level, the server must answer one point again: `record` with how long that
    took (an overloaded server first works through its backlog), or with its fault. A server
    that lets a probe time out while it hardly uses CPU and hardly has a thread ready to run
    is hung; one still busy, starved or refusing after the scenario's recovery limit did not
    recover."""
    started = time.perf_counter()
    timeout = max(PROBE_TIMEOUT_S, 2 * level.deadline_s)
    where = f"after level {record.level} ({level.describe()})"
    while True:
        probe = server.probe(point, timeout)
        if probe.error is None:
            return dataclasses.replace(record, recovery_seconds=time.perf_counter() - started)
        if exited := server.exit_reason:
            return dataclasses.replace(record, fault=f"the server {exited} {where}")
        busy = probe.cpu_seconds > HUNG_CPU_SHARE * timeout
        if probe.timed_out and not busy and probe.runnable_share < HUNG_RUNNABLE_SHARE:
            fault = (
                f"the server stopped answering {where}: no answer to one point within "
                f"{timeout:g} s, while it used {probe.cpu_seconds:.2f} s of CPU and a thread of "
                f"it was ready to run in {probe.runnable_share:.0%} of the time, though it still "
                "runs (hung)"
            )
            return dataclasses.replace(record, fault=fault)
        if time.perf_counter() - started > spec.recovery_limit_s:
            fault = (
                f"the server did not answer one point within {spec.recovery_limit_s:g} s "
                f"{where} ({probe.status}): it did not recover from the load"
            )
            return dataclasses.replace(record, fault=fault)
        if not probe.timed_out:
            time.sleep(REFUSED_PAUSE_S)  # refused at once: ask again shortly
