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
