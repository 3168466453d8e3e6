"""`bench run --cluster`: cases as Dask tasks on a real scheduler and workers, each a process
on 127.0.0.1, bounded in time and always torn down (tests/dask_processes.py); then, without
a cluster, the options, the workers' check, and what the views say of machines."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PLUGINS, bench_command, smoke_args
from dask_processes import dask_cluster, stop
from runs import case as planned_case
from runs import store_run, training_round

from bench import cli, report
from bench.analysis import compare
from bench.analysis.tables import tidy_tables
from bench.execution import cluster as dask_executor
from bench.execution.cluster import remote
from bench.plugins import BUILTIN_DIR, relocated_source, source_digest
from bench.records import CaseRecord

REPO = Path(__file__).resolve().parents[1]
# Six cheap cases: two scenarios, three implementations, one thread each.
SMOKE_MATRIX = ("--scenario", "linfa-kmeans,dlfs-mlp", "--impl",
                "numpy-pure,numpy-vectorized,sklearn", "--threads", "1")  # fmt: skip


def _run_folder(results: Path) -> Path:
    (run,) = [p for p in results.iterdir() if (p / "run.json").is_file()]
    return run


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _cases(run: Path) -> list[dict]:
    return [json.loads(f.read_text()) for f in sorted((run / "cases").iterdir())]


def test_a_smoke_matrix_runs_on_two_workers_one_case_per_host_at_a_time(tmp_path):
    results = tmp_path / "results"
    with dask_cluster(tmp_path / "cluster") as cluster:
        cluster.start_worker("first")
        cluster.start_worker("second")
        workers = set(cluster.wait_for_workers(2).values())
        done = bench_command(
            *smoke_args("--cluster", cluster.address, *SMOKE_MATRIX), results=results
        )
        assert done.returncode == 0, done.stderr + cluster.logs()
    run = _run_folder(results)
    meta = json.loads((run / "run.json").read_text())
    cases = _cases(run)
    # every planned case is stored exactly once (one file each, nothing else), and ran
    assert sorted(f.name for f in (run / "cases").iterdir()) == sorted(
        f"{case['id']}.json" for case in meta["plan"]
    )
    assert len(cases) == 6 and {c["status"] for c in cases} == {"ok"}
    # each records the worker that ran it, its host and machine
    for case in cases:
        assert case["worker"]["address"] in workers
        assert case["worker"]["host"] and case["worker"]["machine_id"]
        assert case["worker"]["machine"]["cpu_model"] == meta["environment"]["cpu_model"]
    assert set(meta["cluster"]["workers"]) == workers and not meta["cluster"]["parallel"]
    # both workers are on this host: with the default policy, no two cases overlapped
    by_host: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    for case in cases:
        span = (_time(case["started_at"]), _time(case["ended_at"]))
        by_host.setdefault(case["worker"]["host"], []).append(span)
    for spans in by_host.values():
        for (_, previous_end), (start, _) in itertools.pairwise(sorted(spans)):
            assert start >= previous_end
    # the report renders the run, and says where it ran
    reports = tmp_path / "reports"
    report = bench_command("report", run.name, "--reports-dir", str(reports), results=results)
    assert report.returncode == 0, report.stderr
    text = (reports / f"{run.name}.html").read_text()
    assert "Dask cluster" in text and cluster.address in text


def _run_until(cluster, implementations: str, cue: Path, results: Path) -> subprocess.Popen:
    """Start `bench run` of dlfs-mlp with faulty plugins on the cluster, in a session of its
    own; return once a plugin has written `cue` (a case is then running on a worker)."""
    args = smoke_args(
        "--cluster", cluster.address, "--plugins", str(PLUGINS / "faulty"),
        "--scenario", "dlfs-mlp", "--impl", implementations, "--threads", "1",
    )  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", *args, "--results-dir", str(results)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not cue.exists():
        if time.monotonic() > deadline or process.poll() is not None:
            stop(process)
            raise AssertionError(f"no case reached its cue:\n{cluster.logs()}")
        time.sleep(0.2)
    return process


def test_a_worker_killed_mid_case_is_retried_on_the_other_and_recorded_once(tmp_path, test_state):
    results = tmp_path / "results"
    hanging = "hangs-once-telling-its-parent"
    with dask_cluster(tmp_path / "cluster", env={"BENCH_TEST_STATE": str(test_state)}) as cluster:
        cluster.start_worker("first")
        cluster.start_worker("second")
        addresses = cluster.wait_for_workers(2)
        cue = test_state / f"{hanging}.parent"
        process = _run_until(cluster, f"healthy,{hanging}", cue, results)
        try:
            parent = int(cue.read_text())
            assert parent in addresses  # the case runs under a Dask worker: kill that worker
            os.kill(parent, signal.SIGKILL)
            _, err = process.communicate(timeout=180)
        finally:
            stop(process)
        assert process.returncode == 0, err + cluster.logs()
    killed = addresses[parent]
    run = _run_folder(results)
    cases = {c["case"]["implementation"]: c for c in _cases(run)}
    assert len(list((run / "cases").iterdir())) == 2
    retried = cases[hanging]
    assert retried["status"] == "ok"
    assert [a["worker"] for a in retried["attempts"]] == [killed]
    assert "left the cluster" in retried["attempts"][0]["reason"]
    assert retried["worker"]["address"] != killed
    # the record holds the retry's rounds alone: a full set, numbered once
    rounds = [r["round"] for r in retried["rounds"] if not r["warmup"]]
    assert len(rounds) == len(set(rounds)) == 2
    assert "retrying" in err


@pytest.mark.parametrize("stop_by", ["ctrl-c", "scheduler gone"])
def test_a_run_stopped_mid_case_keeps_what_finished_and_says_how_to_resume(
    tmp_path, test_state, stop_by
):
    """Ctrl-C: the running case's worker process is killed, the case stored as interrupted.
    The scheduler going away: a clear error. Either way the finished case is kept."""
    import psutil

    results = tmp_path / "results"
    with dask_cluster(tmp_path / "cluster", env={"BENCH_TEST_STATE": str(test_state)}) as cluster:
        worker = cluster.start_worker("only")
        cluster.wait_for_workers(1)
        process = _run_until(cluster, "healthy,hangs-once", test_state / "hangs-once", results)
        try:
            if stop_by == "ctrl-c":
                process.send_signal(signal.SIGINT)
            else:
                stop(cluster.scheduler)
            _, err = process.communicate(timeout=120)
        finally:
            stop(process)
        if stop_by == "ctrl-c":
            # the case's worker process, under the Dask worker, was killed
            deadline = time.monotonic() + 10
            while psutil.Process(worker.pid).children(recursive=True):
                assert time.monotonic() < deadline, "the interrupted case's process lives on"
                time.sleep(0.2)
    message = " ".join(err.split())
    if stop_by == "ctrl-c":
        assert process.returncode == 130, err
    else:
        assert process.returncode == 1, err
        assert f"lost the connection to the Dask scheduler at {cluster.address}" in message
    run = _run_folder(results)
    cases = {c["case"]["implementation"]: c for c in _cases(run)}
    assert cases["healthy"]["status"] == "ok"
    assert cases["hangs-once"]["status"] == "interrupted"
    assert f"--resume {run.name}" in message and f"--cluster {cluster.address}" in message


def test_a_sweep_runs_on_a_local_cluster_of_two_processes_sharing_the_host(tmp_path):
    results = tmp_path / "results"
    done = bench_command(
        "sweep", "--cluster", "local:2", "--cluster-parallel", "--scenario", "linfa-kmeans",
        "--impl", "numpy-vectorized", "--sizes", "1e3,2e3,4e3", "--threads", "1",
        "--profile", "smoke", "--offline", "--no-peak",
        results=results,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = _run_folder(results)
    meta = json.loads((run / "run.json").read_text())
    assert meta["sweep"]["sizes"] == [1000, 2000, 4000]
    assert meta["cluster"]["scheduler"] == "local:2" and meta["cluster"]["parallel"]
    cases = _cases(run)
    assert len(cases) == 3 and {c["status"] for c in cases} == {"ok"}
    assert {c["worker"]["address"] for c in cases} <= set(meta["cluster"]["workers"])
    assert "exponent" in done.stdout


def test_a_worker_with_another_plugin_source_is_refused_before_any_case_runs(tmp_path):
    """A worker whose checkout holds a different numpy-vectorized plugin: refused, named."""
    checkout = tmp_path / "other-checkout"
    ignore = shutil.ignore_patterns("__pycache__", "target")
    shutil.copytree(REPO / "bench", checkout / "bench", ignore=ignore)
    shutil.copytree(REPO / "implementations", checkout / "implementations", ignore=ignore)
    with (checkout / "implementations" / "numpy-vectorized" / "mlp.py").open("a") as plugin:
        plugin.write("\n# changed on this worker only\n")
    results = tmp_path / "results"
    with dask_cluster(tmp_path / "cluster") as cluster:
        cluster.start_worker("changed", env={"PYTHONPATH": str(checkout)})
        (address,) = cluster.wait_for_workers(1).values()
        done = bench_command(
            *smoke_args("--cluster", cluster.address, "--scenario", "dlfs-mlp",
                        "--impl", "numpy-vectorized", "--threads", "1"),
            results=results,
        )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    message = " ".join(done.stderr.split())
    assert f"worker {address}" in message
    assert "plugin implementations/numpy-vectorized differs" in message
    assert "refusing to run" in message
    assert not results.exists() or not list(results.iterdir())


def test_an_unreachable_scheduler_is_a_clear_error_and_stores_nothing(tmp_path):
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    results = tmp_path / "results"
    done = bench_command(
        *smoke_args("--cluster", f"tcp://127.0.0.1:{port}", "--scenario", "dlfs-mlp",
                    "--impl", "numpy-vectorized"),
        results=results,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in message
    assert not results.exists() or not list(results.iterdir())


# --- without a running cluster ----------------------------------------------------------------


def test_without_dask_cluster_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    code = cli.main([*smoke_args("--cluster", "local:2", "--scenario", "dlfs-mlp")])
    assert code == 1
    assert "pip install 'bench[cluster]'" in " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["--cluster", "scheduler"], "give a scheduler as tcp://HOST:PORT"),
        (["--cluster", "local:0"], "local:N takes a number of workers of 1 or more"),
        (["--cluster-parallel"], "--cluster-parallel applies to a run on a cluster"),
    ],
)
def test_cluster_options_are_checked_before_anything_runs(arguments, expected, capsys, tmp_path):
    code = cli.main([*smoke_args(*arguments), "--results-dir", str(tmp_path)])
    assert code in (1, 2)
    assert expected in " ".join(capsys.readouterr().err.split())
    assert not list(tmp_path.iterdir())


def test_a_plugin_is_found_in_each_machines_own_checkout_and_known_by_its_files(tmp_path):
    elsewhere = tmp_path / "checkout" / "implementations"
    planned = f"path:{elsewhere / 'numpy-vectorized'}"
    # planned where the coordinator keeps its checkout, found in this machine's
    assert relocated_source(planned, str(elsewhere)) == f"path:{BUILTIN_DIR / 'numpy-vectorized'}"
    assert relocated_source("path:/somewhere/else", str(elsewhere)) == "path:/somewhere/else"
    copy = tmp_path / "copy"
    shutil.copytree(BUILTIN_DIR / "numpy-vectorized", copy)
    digest = source_digest(f"path:{copy}")
    assert digest == source_digest(f"path:{BUILTIN_DIR / 'numpy-vectorized'}")
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "mlp.cpython-311.pyc").write_bytes(b"compiled")
    assert source_digest(f"path:{copy}") == digest  # what was built from it is not its source
    with (copy / "mlp.py").open("a") as plugin:
        plugin.write("# one more line\n")
    assert source_digest(f"path:{copy}") != digest
    assert source_digest(f"path:{tmp_path / 'missing'}") is None


def test_every_difference_of_a_worker_is_named():
    sources = [f"path:{BUILTIN_DIR / 'numpy-pure'}", f"path:{BUILTIN_DIR / 'sklearn'}"]
    mine = dask_executor.worker_identity(sources, str(BUILTIN_DIR))
    assert mine["plugins"][sources[0]] and mine["harness"]["digest"]
    theirs = json.loads(json.dumps(mine))
    assert dask_executor.differences(mine, theirs, str(BUILTIN_DIR)) == []
    theirs["harness"]["digest"] = "0" * 64
    theirs["python"] = "3.9.0"
    theirs["packages"]["numpy"] = "1.0.0"
    theirs["plugins"][sources[0]] = "f" * 64
    del theirs["plugins"][sources[1]]
    found = dask_executor.differences(mine, theirs, str(BUILTIN_DIR))
    assert len(found) == 5
    assert any(
        f.startswith("harness bench") and "(source digest 000000000000) there" in f for f in found
    )
    assert "Python 3.9.0 there" in found[1]
    assert any(f.startswith("numpy 1.0.0 there") for f in found)
    assert "plugin implementations/numpy-pure differs (sha256 ffffffffffff there" in found[3]
    assert found[4] == "plugin implementations/sklearn is missing there"


def _on(host: str, implementation: str, start: int, end: int, **worker) -> CaseRecord:
    """A dlfs-mlp case that ran on `host` from second `start` to second `end`."""
    wall = {"torch": 1.0, "numpy-vectorized": 0.5}[implementation]
    return CaseRecord(
        planned_case("dlfs-mlp", implementation),
        "ok",
        rounds=tuple(training_round(i, wall * (1 + i / 100)) for i in range(3)),
        started_at=f"2026-01-01T00:00:{start:02d}+00:00",
        ended_at=f"2026-01-01T00:00:{end:02d}+00:00",
        worker={"address": f"tcp://{host}:1", "host": host, "machine_id": host, **worker},
    )


def test_a_speed_up_between_two_machines_is_always_flagged(tmp_path, capsys):
    base = store_run(tmp_path, [_on("alpha", "torch", 0, 5), _on("beta", "numpy-vectorized", 0, 5)])
    context = report.build([base])
    (section,) = [s for s in context["sections"] if s["name"] == "dlfs-mlp"]
    (row,) = [r for r in section["rows"] if r.implementation == "torch"]
    assert row.reference == "numpy-vectorized" and row.cross_machine  # the faster, on beta
    assert "other machine: ran on alpha, its reference numpy-vectorized on beta" in row.flags[0]
    assert "2 different machines (alpha, beta)" in section["reference_note"]
    html = report.render_html(context)
    assert "across machines" in html and "other machine" in html
    # the same two implementations on one machine: no flag
    same = store_run(
        tmp_path, [_on("alpha", "torch", 0, 5), _on("alpha", "numpy-vectorized", 5, 9)],
        run_id="20260102-000000-quick",
    )  # fmt: skip
    (section,) = [s for s in report.build([same])["sections"] if s["name"] == "dlfs-mlp"]
    assert not any(r.cross_machine or "other machine" in " ".join(r.flags) for r in section["rows"])
    assert not section["reference_note"].count("machines")
    # bench compare says when a case's two sides ran on different machines
    moved = store_run(
        tmp_path, [_on("gamma", "torch", 0, 5), _on("alpha", "numpy-vectorized", 5, 9)],
        run_id="20260103-000000-quick",
    )  # fmt: skip
    result = compare.compare_runs(same, moved)
    notes = {c.implementation: c.note for c in result.cases}
    assert "different machines: alpha (baseline) vs gamma (candidate)" in notes["torch"]
    assert "different machines" not in notes["numpy-vectorized"]
    assert any("ran on different machines (dlfs-mlp on alpha, beta)" in w for w in
               compare.compare_runs(base, same).warnings)  # fmt: skip


def test_cases_that_shared_a_host_are_flagged_and_use_their_own_machines_peak(tmp_path):
    peak = {"2": {"gemm_gflops": 10.0}}
    records = [
        _on("alpha", "torch", 0, 5, peak=peak),
        _on("alpha", "numpy-vectorized", 3, 8, peak=peak),
    ]
    store = store_run(tmp_path, records, cluster={"scheduler": "tcp://x:1", "parallel": True})
    summary = tidy_tables(store.cases(), store.meta, store.scenarios())["summary"]
    assert list(summary["concurrent_cases"]) == [1, 1]
    flops_per_second = records[0].rounds[0].flops / records[0].rounds[0].wall_seconds
    rounds = tidy_tables(store.cases(), store.meta, store.scenarios())["rounds"]
    assert rounds["peak_share"].iloc[0] == pytest.approx(flops_per_second / 1e9 / 10.0)
    context = report.build([store])
    (section,) = [s for s in context["sections"] if s["name"] == "dlfs-mlp"]
    assert all(any(f.startswith("shared machine") for f in r.flags) for r in section["rows"])
    assert "--cluster-parallel" in context["runs"][0]["cluster"]


def test_a_worker_verifies_the_planned_dataset_itself_and_fails_its_cases_without_it(
    fake, isolated
):
    from runs import MNIST

    planned = planned_case("dlfs-mlp", "numpy-vectorized", source="path:/elsewhere/x")
    # this "worker" has the files, in its own folder: verified, and the case points there
    folder = fake.write(isolated / "data" / "mnist")
    local = remote._on_this_machine(planned, "/elsewhere", download=False)
    assert local.dataset.location == str(folder) and local.dataset.used == MNIST.used
    assert local.source == f"path:{BUILTIN_DIR / 'x'}"
    # a corrupt file is never used, and no other data stands in: the case fails, saying why
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"corrupt")
    reason = remote._on_this_machine(planned, "/elsewhere", download=False)
    assert isinstance(reason, str) and reason.startswith("dataset mnist is not available on")
    assert "failed verification" in reason and "t10k-labels-idx1-ubyte.gz" in reason
