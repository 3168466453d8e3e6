"""The serving benchmark (Palmieri 2019's second half), end to end on the smoke profile: real
servers (the harness's grpcio server, linfa on tonic) loaded by the real load generator, each
in its own process on 127.0.0.1; faults recorded as results; no process outliving its case."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
from conftest import PLUGINS, bench_command, stored_cases
from runs import case, store_run

from bench import report
from bench.analysis.serving import serving_rows
from bench.records import CaseRecord, DatasetResolution, LevelRecord, ServerRecord
from bench.scenarios import SCENARIOS
from bench.serving import servers
from bench.serving.placement import place

SERVING = "linfa-kmeans-serving"
TEST_SERVERS = PLUGINS / "serving"
BUILT = servers.missing_program(servers.LOAD_GENERATOR) is None
needs_programs = pytest.mark.skipif(
    not BUILT, reason="the serving programs are not built (make setup builds them with cargo)"
)


def serving_args(*args: str) -> list[str]:
    return ["run", "--profile", "smoke", "--scenario", SERVING, "--offline", "--no-peak", *args]


def leftovers(folder: Path) -> list[str]:
    """Live processes whose command line names a path under `folder`: a server, a load
    generator or a worker of a run stored there."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        with_path = any(str(folder) in part for part in process.info["cmdline"] or ())
        if with_path and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(" ".join(process.info["cmdline"]))
    return found


def no_leftovers(folder: Path, within: float = 5.0) -> list[str]:
    """`leftovers(folder)` once they had `within` seconds to go (a parent-death signal is
    delivered at once, a process takes a moment to exit)."""
    deadline = time.monotonic() + within
    while (found := leftovers(folder)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


# --- the scenario and the placement ------------------------------------------------------


def test_the_serving_scenario_sizes_each_profile_by_levels_and_seconds():
    spec = SCENARIOS[SERVING].serving
    assert spec is not None
    for profile, loads in spec.loads.items():
        assert [load.batch for load in loads] == [1, 1_000], profile
        for load in loads:
            assert load.common_rate in load.rates
            assert load.seconds_per_level > 0 and load.max_requests_per_level > 0
        # the case's time limit covers every level at its worst
        assert SCENARIOS[SERVING].budget(profile).timeout_s >= spec.longest_case_seconds(profile)
    assert {load.concurrencies for load in spec.loads["quick"]} == {(1, 4, 16, 64)}
    assert sum(load.level_count * load.seconds_per_level for load in spec.loads["smoke"]) <= 10
    quick_seconds = sum(load.level_count * load.seconds_per_level for load in spec.loads["quick"])
    assert quick_seconds <= 60  # a few minutes for the whole quick matrix of servers


def test_the_load_generator_gets_cores_of_its_own_where_there_are_two():
    assert place(8, [0, 1]) == place(1, [0, 1])
    assert place(1, [0, 1]).server == (0,) and place(1, [0, 1]).generator == (1,)
    many = place(64, range(16))
    assert many.generator == (12, 13, 14, 15) and many.server == tuple(range(12))
    assert place(2, range(16)).server == (0, 1)
    assert place(4, [3]).server == place(4, [3]).generator == (3,)  # one core: shared


def test_bench_list_names_the_rust_servers_beside_the_implementations(capsys):
    from bench import cli

    assert cli.main(["list"]) == 0
    shown = capsys.readouterr().out
    (line,) = [row for row in shown.splitlines() if "linfa-tonic " in row]
    assert "linfa on tonic (Rust)" in line and "serving scenarios only" in line
    assert ("available" if BUILT else "make setup") in shown
    assert "linfa-kmeans-serving" in shown


PROTOCOL_AFTER_TENSORFLOW = """
import tensorflow  # its protobuf runtime, loaded first
from bench.serving import protocol
print(protocol.points([[1.0, 2.0]]).n_features)
"""


def test_the_protocol_loads_in_a_process_that_has_loaded_tensorflow():
    pytest.importorskip("tensorflow")
    done = subprocess.run(
        [sys.executable, "-c", PROTOCOL_AFTER_TENSORFLOW],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "2"


# --- the servers on their own ------------------------------------------------------------


def _start(command: list[str], log: Path) -> servers.RunningServer:
    with log.open("wb") as handle:
        return servers.start(command, threads=1, log=handle, timeout=60)


@needs_programs
@pytest.mark.parametrize("implementation", ["sklearn", "linfa-tonic"])
def test_a_server_asked_for_a_port_in_use_listens_on_another(tmp_path, implementation):
    from bench.records import Case

    case = Case(SERVING, implementation, "kmeans", "x", "path:x", 1, "cpu", "smoke", 1, 0, 60, 0)
    if implementation == "sklearn":
        from bench.plugins import discover

        case = Case(**{**case.to_json(), "source": discover([]).find("sklearn", "kmeans").source})
    (tmp_path / "case.json").write_text(json.dumps(case.to_json()))
    (tmp_path / "model.json").write_text(json.dumps({"centroids": [[0.0, 0.0], [5.0, 5.0]]}))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = servers.server_command(case, tmp_path / "case.json", tmp_path / "model.json", ())
        command[command.index("--port") + 1] = str(port)
        server = _start(command, tmp_path / "server.log")
        try:
            assert server.port != port
            labels = server.predict(__import__("numpy").array([[0.1, 0.2], [4.0, 6.0]]), 10)
            assert labels.tolist() == [0, 1]
        finally:
            server.stop()
    assert server.process.returncode is not None


# --- a smoke run: the tonic server and two Python-hosted implementations -----------------


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("serving") / "results"
    done = bench_command(
        *serving_args("--impl", "linfa-tonic,sklearn,numpy-vectorized"), results=results
    )
    return {"results": results, "done": done, "cases": stored_cases(results)}


@needs_programs
def test_a_smoke_serving_run_measures_every_level_of_every_server(smoke_run):
    done, cases = smoke_run["done"], smoke_run["cases"]
    assert done.returncode == 0, done.stderr
    assert set(cases) == {"linfa-tonic", "sklearn", "numpy-vectorized"}
    loads = SCENARIOS[SERVING].serving.loads["smoke"]
    for name, stored in cases.items():
        assert stored["status"] == "ok", (name, stored.get("reason"), stored.get("log_tail"))
        server = stored["server"]
        assert server["kind"] == ("tonic" if name == "linfa-tonic" else "grpcio")
        assert server["labels_checked"] == 1_000
        assert server["port"] > 0 and server["start_seconds"] > 0
        levels = stored["levels"]
        assert len(levels) == sum(load.level_count for load in loads)
        assert {v["batch"] for v in levels} == {1, 1_000}
        assert {v["mode"] for v in levels} == {"closed", "open"}
        for level in levels:
            where = (name, level["level"])
            percentiles = [level[k] for k in ("p50_seconds", "p90_seconds", "p99_seconds")]
            percentiles += [level["p999_seconds"], level["max_seconds"]]
            assert percentiles == sorted(percentiles) and percentiles[0] > 0, where
            assert level["achieved_rps"] <= level["offered_rps"], where
            assert level["errors"] == {} and level["ok"] == level["sent"] > 0, where
            assert level["server_cpu_seconds"] >= 0, where
            if level["mode"] == "closed" or server["cpu_clock"].startswith("schedstat"):
                # /proc's 10 ms ticks may see nothing of a few dozen requests at 20/s
                assert level["server_cpu_seconds"] / level["ok"] > 0, where
            assert level["server_peak_rss_bytes"] > 0, where
            assert level["client_cpu_seconds"] > 0 and level["client_cores"] >= 1, where
            assert level["stopped_by"] in ("seconds", "requests")
            if level["mode"] == "open":
                assert level["target_rate"] > 0 and level["send_lag_p99_seconds"] >= 0
            else:
                assert level["concurrency"] in (1, 4)


@needs_programs
def test_a_serving_run_stores_one_row_per_level_and_shows_its_table(smoke_run):
    results = smoke_run["results"]
    (run,) = [p for p in results.iterdir() if (p / "run.json").is_file()]
    levels = pd.read_csv(run / "levels.csv")
    assert len(levels) == sum(len(case["levels"]) for case in smoke_run["cases"].values())
    assert {"p99_seconds", "achieved_rps", "server_cpu_per_request", "client_bound"} <= set(
        levels.columns
    )
    assert not (run / "work").exists()
    shown = smoke_run["done"].stdout
    assert "Serving, per server and request size" in shown and "against sklearn" in shown
    rows = [line.split() for line in shown.splitlines()]
    tonic = [row for row in rows if row[:3] == ["linfa-tonic", "(tonic)", "1"]]
    assert tonic and tonic[0][-3:] != ["–", "–", "–"]  # its ratios against sklearn
    assert any(row[:3] == ["sklearn", "(grpcio)", "1,000"] for row in rows)
    show = bench_command("show", results=results)
    assert show.returncode == 0 and "linfa-tonic (tonic)" in show.stdout


@needs_programs
def test_no_server_or_load_generator_outlives_a_serving_run(smoke_run):
    assert no_leftovers(smoke_run["results"]) == []


# --- faults are results -------------------------------------------------------------------


def run_test_servers(tmp_path: Path, implementations: str) -> tuple[Path, dict]:
    """A smoke serving run of the test clusterers named: its results folder and cases."""
    results = tmp_path / "results"
    done = bench_command(
        *serving_args("--plugins", str(TEST_SERVERS), "--impl", implementations), results=results
    )
    assert done.returncode == 0, done.stderr
    return results, stored_cases(results)


@needs_programs
def test_a_slow_predict_raises_its_p99_and_leaves_the_fast_one_alone(tmp_path):
    _, cases = run_test_servers(tmp_path, "slow-now-and-then,numpy-vectorized")

    def one_in_flight(name: str) -> dict:
        (level,) = [
            v
            for v in cases[name]["levels"]
            if v["batch"] == 1 and v["mode"] == "closed" and v["concurrency"] == 1
        ]
        return level

    slow, fast = one_in_flight("slow-now-and-then"), one_in_flight("numpy-vectorized")
    assert cases["slow-now-and-then"]["status"] == "ok"
    assert slow["p99_seconds"] >= 0.2  # one answer in 10 waits 200 ms
    assert slow["p50_seconds"] < 0.1  # the others do not
    assert fast["p99_seconds"] < 0.2
    assert fast["p99_seconds"] < slow["p99_seconds"] / 2


@needs_programs
def test_a_server_that_exits_mid_level_fails_its_case_and_the_run_goes_on(tmp_path):
    results, cases = run_test_servers(tmp_path, "exits-mid-level,numpy-vectorized")
    failed = cases["exits-mid-level"]
    assert failed["status"] == "failed"
    assert "exited with code 7 during level 0" in failed["reason"]
    (level,) = failed["levels"]  # the level it died in is kept, with what its requests met
    assert level["fault"] and level["errors"]
    assert cases["numpy-vectorized"]["status"] == "ok"
    assert no_leftovers(results) == []


@needs_programs
def test_a_server_that_fails_to_start_fails_its_case_with_its_own_error(tmp_path):
    results, cases = run_test_servers(tmp_path, "fails-to-start")
    case = cases["fails-to-start"]
    assert case["status"] == "failed" and not case.get("levels")
    assert "the server exited with code 1 before listening" in case["reason"]
    assert "deliberately unable to start" in case["log_tail"]  # its traceback, in the log
    assert no_leftovers(results) == []


@needs_programs
def test_a_server_that_stops_answering_is_recorded_as_hung(tmp_path):
    results, cases = run_test_servers(tmp_path, "stops-answering")
    case = cases["stops-answering"]
    assert case["status"] == "failed"
    assert "stopped answering after level 0" in case["reason"] and "hung" in case["reason"]
    # its level's requests ran out of time: the client's deadline, or the server cancelling
    # a request whose deadline (sent with it) passed
    errors = case["levels"][0]["errors"]
    assert errors and set(errors) <= {"deadline-exceeded", "cancelled"}
    assert no_leftovers(results) == []


@needs_programs
def test_a_serving_case_killed_at_its_time_limit_leaves_no_process(tmp_path):
    results = tmp_path / "results"
    done = bench_command(
        *serving_args("--impl", "numpy-vectorized", "--timeout", "4"), results=results
    )
    assert done.returncode == 0, done.stderr
    case = stored_cases(results)["numpy-vectorized"]
    assert case["status"] == "timeout"
    assert no_leftovers(results) == []


@needs_programs
def test_a_worker_killed_alone_takes_its_server_and_load_generator_with_it(tmp_path):
    """SIGKILL to the case's worker only (not its group): the kernel's parent-death signal
    ends the server and the load generator it started; the run records the case and ends."""
    results = tmp_path / "results"
    command = [sys.executable, "-m", "bench.cli", *serving_args("--impl", "numpy-vectorized")]
    run = subprocess.Popen(
        [*command, "--results-dir", str(results)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        children = _server_and_generator(results, within=120)
        (worker,) = {child.parent() for child in children}
        assert "bench.execution.worker" in " ".join(worker.cmdline())
        worker.kill()
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == []
    finally:
        run.wait(timeout=120)
    case = stored_cases(results)["numpy-vectorized"]
    assert case["status"] == "crashed" and "SIGKILL" in case["reason"]
    assert no_leftovers(results) == []


def _server_and_generator(results: Path, within: float) -> list[psutil.Process]:
    """The server and a load generator of the run stored in `results`, once both run."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = {}
        for process in psutil.process_iter(["cmdline"]):
            line = " ".join(process.info["cmdline"] or ())
            if str(results) not in line:
                continue
            if "bench.serving.python_server" in line:
                found["server"] = process
            elif servers.LOAD_GENERATOR in line:
                found["generator"] = process
        if len(found) == 2:
            return list(found.values())
        time.sleep(0.05)
    raise AssertionError(f"no server and load generator under {results} within {within} s")


# --- the programs, as make setup builds them ---------------------------------------------


@needs_programs
def test_the_fingerprint_records_the_serving_programs_build():
    from bench.execution import environment

    rust = environment.fingerprint(1, Path(__file__).resolve().parent.parent)["rust"]
    build = rust["builds"]["bench-serving"]
    assert sorted(build["binaries"]) == ["bench-loadgen", "linfa-tonic-server"]
    assert rust["crates"]["tonic"] and rust["crates"]["hdrhistogram"]
    assert math.isfinite(build["built_seconds"])


# --- the views, on a stored run made by hand ---------------------------------------------


def _levels(capacity: float, latency: float, cpu: float, client_limit: float = math.inf):
    """A quick run's levels for a server that answers `capacity` requests/s at most, in
    `latency` seconds unloaded, for `cpu` server seconds each; its load generator saturates
    beyond `client_limit` requests/s."""
    levels, index = [], 0
    for load in SCENARIOS[SERVING].serving.loads["quick"]:
        steps = [("closed", c, None) for c in load.concurrencies]
        steps += [("open", None, r) for r in load.rates]
        for mode, concurrency, rate in steps:
            if mode == "closed":
                achieved = min(capacity, client_limit, concurrency / latency)
                p50, errors = concurrency / achieved, {}
            elif rate < capacity:
                achieved = min(rate * 0.99, client_limit)
                p50, errors = latency / (1 - rate / capacity), {}
            else:
                achieved, p50 = capacity, 0.5
                errors = {"deadline-exceeded": int(2 * (rate - capacity))}
            ok = int(2 * achieved)
            levels.append(
                LevelRecord(
                    level=index, batch=load.batch, mode=mode, concurrency=concurrency,
                    target_rate=rate, seconds_bound=2.0, requests_bound=200_000,
                    stopped_by="seconds", sent=ok + sum(errors.values()), ok=ok, errors=errors,
                    elapsed_seconds=2.0, offered_rps=(ok + sum(errors.values())) / 2,
                    achieved_rps=achieved, p50_seconds=p50, p90_seconds=2 * p50,
                    p99_seconds=3 * p50, p999_seconds=4 * p50, max_seconds=5 * p50,
                    mean_seconds=1.2 * p50, send_lag_p99_seconds=1e-5 if rate else None,
                    server_cpu_seconds=ok * cpu, server_peak_rss_bytes=60 * 2**20,
                    client_cpu_seconds=1.0, client_cores=1,
                    client_utilisation=0.95 if achieved >= client_limit else 0.3,
                    client_bound=achieved >= client_limit,
                )
            )  # fmt: skip
            index += 1
    return tuple(levels)


def _serving_run(root: Path, run_id: str, tonic_cpu: float = 2e-5):
    blobs = DatasetResolution("blobs", "blobs", "sklearn.datasets.make_blobs")
    servers_here = {
        "sklearn": ("grpcio", _levels(1_500, 8e-4, 6e-4)),
        "linfa": ("grpcio", _levels(2_500, 5e-4, 4e-4)),
        "linfa-tonic": ("tonic", _levels(60_000, 6e-5, tonic_cpu, client_limit=30_000)),
    }
    records = []
    for name, (kind, levels) in servers_here.items():
        server = ServerRecord(kind, name.removesuffix("-tonic"), 40_000, (0,), (1,), 0.1, 5, 0.5,
                              30 * 2**20, 1_000)  # fmt: skip
        spec = case(SERVING, name, dataset=blobs, rounds=1, warmup_rounds=0, threads=1)
        records.append(CaseRecord(spec, "ok", levels=levels, server=server))
    failed = case(SERVING, "torch", dataset=blobs, rounds=1, warmup_rounds=0, threads=1)
    records.append(CaseRecord(failed, "failed", "the server exited with code 1 before listening"))
    return store_run(root, records, run_id=run_id, datasets={SERVING: blobs})


def test_the_serving_figures_of_each_server_and_request_size(tmp_path):
    store = _serving_run(tmp_path, "20260101-000000-quick")
    records = {(store.run_id, r.case.id): r for r in store.cases()}
    rows = {(r.implementation, r.batch): r for r in serving_rows(records, store.scenarios())}
    tonic, sklearn = rows[("linfa-tonic", 1)], rows[("sklearn", 1)]
    assert tonic.max_rps == 30_000 and tonic.max_client_bound
    assert "c64" in tonic.client_bound and sklearn.client_bound == []
    assert sklearn.max_rps == 1_500
    # the highest throughput whose p99 stays within 10 ms, without errors
    assert sklearn.capacity_rps == pytest.approx(500 * 0.99)
    assert sklearn.common_rate == 500 and sklearn.common_p50_s == pytest.approx(8e-4 / (2 / 3))
    assert sklearn.requests_per_cpu_second == pytest.approx(1 / 6e-4)
    assert sklearn.heavy_rate == 40_000 and sklearn.heavy_error_rate > 0.9
    assert "deadline-exceeded" in sklearn.errors
    assert tonic.vs_reference["max_rps"] == pytest.approx(20)
    assert tonic.vs_reference["requests_per_cpu_second"] == pytest.approx(30)
    assert tonic.reference == "sklearn" and sklearn.vs_reference["max_rps"] == 1
    assert rows[("torch", 1)].status == "failed" and rows[("torch", 1)].levels == 0


def test_the_report_has_a_serving_section_and_the_articles_25x_beside_ours(tmp_path):
    store = _serving_run(tmp_path / "results", "20260101-000000-quick")
    html = report.write([store], tmp_path / "reports").read_text()
    assert 'id="scenario-linfa-kmeans-serving"' in html
    assert "batches of 1,000 points" in html and "Within p99 ≤ 50" in html
    assert html.count('class="figures"><figure class="wide"><svg') >= 2  # one curve per size
    assert "client-bound" in html and "the server exited with code 1" in html
    assert "25x" in html and "batch 1: 20.0× (at least: client-bound) the requests/s" in html
    assert "this run has no serving benchmark" not in html
    markdown = report.write([store], tmp_path / "reports", fmt="md").read_text()
    assert "### linfa-kmeans-serving: batches of 1 point" in markdown
    assert "| linfa-tonic (tonic) (client-bound" in markdown


def test_compare_matches_serving_cases_by_level_and_gates_on_cpu_per_request(tmp_path):
    results = tmp_path / "results"
    _serving_run(results, "20260101-000000-quick")
    _serving_run(results, "20260102-000000-quick", tonic_cpu=3e-5)  # 50% more CPU per request
    done = bench_command(
        "compare", "20260101-000000-quick", "20260102-000000-quick", "--fail-above", "10%",
        results=results,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "serving, per server and request size" in done.stdout
    assert "regressed" in done.stdout and "-33.3%" in done.stdout
    assert "linfa-kmeans-serving--linfa-tonic--t1--cpu (batch 1)" in done.stdout
    assert "nothing was comparable" not in done.stderr
    same = bench_command(
        "compare", "20260101-000000-quick", "20260101-000000-quick", "--fail-above", "10%",
        results=results,
    )  # fmt: skip
    assert same.returncode == 0, same.stdout + same.stderr


# --- after a level: busy working through a backlog is not hung ----------------------------


class _FakeServer:
    """Answers after `busy_probes` probes that time out, using `cpu_per_probe` CPU seconds
    and with a thread ready to run in `runnable` of the time during each."""

    def __init__(self, busy_probes: int, cpu_per_probe: float, runnable=0.0, exits=False):
        self.busy_probes, self.cpu_per_probe = busy_probes, cpu_per_probe
        self.runnable, self.exits, self.probes = runnable, exits, 0

    @property
    def exit_reason(self):
        return "exited with code 1" if self.exits else None

    def probe(self, point, timeout):
        self.probes += 1
        if self.probes <= self.busy_probes:
            return servers.Probe(TimeoutError("no answer"), self.cpu_per_probe, self.runnable)
        return servers.Probe(None, 0.0, 0.0)


@pytest.mark.parametrize(
    ("server", "recovery_limit", "fault"),
    [
        (_FakeServer(busy_probes=3, cpu_per_probe=4.0), 120.0, None),  # a backlog, worked off
        (_FakeServer(busy_probes=3, cpu_per_probe=0.0, runnable=0.9), 120.0, None),  # starved
        (_FakeServer(busy_probes=1, cpu_per_probe=0.01, runnable=0.1), 120.0, "hung"),
        (_FakeServer(busy_probes=1, cpu_per_probe=0.0, exits=True), 120.0, "exited with code 1"),
        (_FakeServer(busy_probes=10**6, cpu_per_probe=4.0), 0.0, "did not recover"),
    ],
)
def test_after_a_level_a_busy_server_recovers_and_an_idle_silent_one_is_hung(
    server, recovery_limit, fault
):
    import dataclasses

    from bench.serving import suite
    from bench.serving.loadgen import LoadLevel

    spec = dataclasses.replace(SCENARIOS[SERVING].serving, recovery_limit_s=recovery_limit)
    level = LoadLevel(1, "open", None, 40_000.0, 2.0, 100, 1.0)
    record = suite.level_record(3, level, {"sent": 10, "ok": 10}, 1.0, 2**20, None)
    after = suite._recovered(server, None, level, record, spec)
    if fault is None:
        assert after.fault is None and after.recovery_seconds >= 0 and server.probes == 4
    else:
        assert fault in after.fault and "after level 3 (batch 1, open loop at 40000" in after.fault
