import json
import sys

import pytest

from bench.execution import peak
from bench.execution.peak import measure_in_subprocess


@pytest.fixture(scope="module")
def one_thread(tmp_path_factory) -> dict:
    # From an unrelated directory: the child must find `bench` without relying on the cwd.
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("elsewhere"))
        patch.delenv("PYTHONPATH", raising=False)
        return measure_in_subprocess(threads=1, seconds=0.1)


def test_peak_at_one_thread_is_measured(one_thread):
    assert "error" not in one_thread, one_thread.get("error")
    assert one_thread["threads"] == 1
    assert one_thread["gemm_gflops"] > 0
    assert one_thread["gemm_f64_gflops"] > 0
    assert one_thread["bandwidth_gbs"] > 0
    assert one_thread["gemm_n"] in peak.GEMM_SIZES
    assert one_thread["gemm_f64_n"] in peak.GEMM_SIZES
    assert one_thread["seconds_taken"] > 0


def test_peak_runs_under_the_thread_limit(one_thread):
    settings = one_thread["thread_settings"]
    blas = [pool for pool in settings["threadpools"] if pool["user_api"] == "blas"]
    assert blas, settings
    assert all(pool["num_threads"] == 1 for pool in blas)
    assert settings["environment"]["OPENBLAS_NUM_THREADS"] == "1"


def test_missing_interpreter_gives_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    result = measure_in_subprocess(threads=1, seconds=0.1)
    assert "could not start" in result["error"]
    assert result["threads"] == 1


def test_failing_process_gives_an_error(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/bin/false")
    result = measure_in_subprocess(threads=1, seconds=0.1)
    assert "exited with status 1" in result["error"]


def test_output_that_is_not_json_gives_an_error(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/bin/echo")
    result = measure_in_subprocess(threads=1, seconds=0.1)
    assert "no JSON result" in result["error"]


def test_hanging_process_gives_an_error(tmp_path, monkeypatch):
    hanging = tmp_path / "python"
    hanging.write_text("#!/bin/sh\nexec sleep 30\n")
    hanging.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(hanging))
    result = measure_in_subprocess(threads=1, seconds=0.1, timeout=0.5)
    assert "longer than 0.5 s" in result["error"]


def test_refuses_to_measure_after_numpy_was_imported():
    import numpy  # noqa: F401

    with pytest.raises(SystemExit):
        peak.main(["--threads", "1"])


def test_rejects_a_thread_count_below_one():
    with pytest.raises(SystemExit):
        peak.main(["--threads", "0"])


MACHINE = {
    "cpu_model": "Test CPU",
    "cores_logical": 2,
    "cores_allowed": 2,
    "machine": "x86_64",
    "blas": [{"internal_api": "openblas", "version": "0.3", "architecture": "Haswell"}],
}


@pytest.fixture
def measured(tmp_path, monkeypatch):
    """Peak measurements counted, not run; the cache in a folder of the test's own."""
    monkeypatch.setenv(peak.CACHE_ENV, str(tmp_path / "peak.json"))
    calls = []

    def fake(threads, seconds=1.0, timeout=120, device="cpu"):
        calls.append(threads)
        return {"threads": threads, "gemm_gflops": 100.0 + len(calls)}

    monkeypatch.setattr(peak, "measure_in_subprocess", fake)
    return calls


def test_the_peak_is_measured_once_per_machine_and_thread_count(measured):
    import datetime as dt

    now = dt.datetime(2026, 1, 1, 12)
    first = peak.machine_peak(2, MACHINE, now=now)
    assert first["source"] == peak.MEASURED and first["measured_at"] == "2026-01-01T12:00:00"
    later = peak.machine_peak(2, MACHINE, now=now + dt.timedelta(days=29))
    assert later["source"] == peak.CACHED and later["gemm_gflops"] == first["gemm_gflops"]
    assert later["measured_at"] == first["measured_at"]
    assert measured == [2]
    # another thread count, another BLAS, or another CPU is another machine
    peak.machine_peak(1, MACHINE, now=now)
    other_blas = {**MACHINE, "blas": [{**MACHINE["blas"][0], "version": "0.4"}]}
    peak.machine_peak(2, other_blas, now=now)
    peak.machine_peak(2, {**MACHINE, "cpu_model": "Other CPU"}, now=now)
    assert measured == [2, 1, 2, 2]
    # the number of threads a BLAS library happens to start with is not the machine
    same = {**MACHINE, "blas": [{**MACHINE["blas"][0], "num_threads": 64}]}
    assert peak.machine_peak(2, same, now=now)["source"] == peak.CACHED


def test_the_peak_is_measured_again_when_old_or_asked(measured):
    import datetime as dt

    now = dt.datetime(2026, 1, 1, 12)
    peak.machine_peak(2, MACHINE, now=now)
    old = now + dt.timedelta(days=peak.MAX_AGE_DAYS + 1)
    assert peak.machine_peak(2, MACHINE, now=old)["source"] == peak.MEASURED
    assert peak.machine_peak(2, MACHINE, now=old, remeasure=True)["source"] == peak.MEASURED
    assert len(measured) == 3


def test_a_failed_peak_measurement_is_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv(peak.CACHE_ENV, str(tmp_path / "peak.json"))
    monkeypatch.setattr(peak, "measure_in_subprocess", lambda threads, **_: {"error": "no BLAS"})
    assert peak.machine_peak(1, MACHINE)["error"] == "no BLAS"
    assert not (tmp_path / "peak.json").exists()


def test_a_run_records_whether_its_peak_was_measured_or_cached(tmp_path, monkeypatch):
    from conftest import PLUGINS, bench_command

    monkeypatch.setenv(peak.CACHE_ENV, str(tmp_path / "peak.json"))
    args = ["run", "--profile", "smoke", "--dataset", "mnist-5k", "--offline", "--threads", "1"]
    args += ["--plugins", str(PLUGINS / "noop"), "--impl", "noop", "--scenario", "dlfs-mlp"]
    sources = []
    for name, extra in (("first", []), ("second", []), ("third", ["--remeasure-peak"])):
        done = bench_command(*args, *extra, results=tmp_path / name)
        assert done.returncode == 0, done.stderr
        (run,) = (tmp_path / name).iterdir()
        recorded = json.loads((run / "run.json").read_text())["machine_peak"]["1"]
        assert recorded["gemm_gflops"] > 0 and recorded["measured_at"]
        sources.append(recorded["source"])
        if recorded["source"] == peak.CACHED:
            assert "from the cache, measured" in done.stdout
    assert sources == [peak.MEASURED, peak.CACHED, peak.MEASURED]
