"""`bench doctor`: each check says what it saw and what to do, reads what a machine offers
and says so where it cannot; `bench run` prints one line when a finding is serious."""

import json

import pytest
from calibration.contention import cpu_hogs
from conftest import PLUGINS, bench_command, smoke_args

from bench import cli
from bench.execution import doctor, threads

NOOP = str(PLUGINS / "noop")


def _by_check(findings):
    return {finding.check: finding for finding in findings}


@pytest.fixture
def sysfs(tmp_path, monkeypatch):
    """A /sys/devices/system/cpu of our own: two CPUs with cpufreq, SMT, intel_pstate."""
    root = tmp_path / "cpu"
    for cpu in ("cpu0", "cpu1"):
        (root / cpu / "cpufreq").mkdir(parents=True)
        (root / cpu / "cpufreq" / "scaling_governor").write_text("powersave\n")
    (root / "smt").mkdir()
    (root / "smt" / "active").write_text("1\n")
    (root / "intel_pstate").mkdir()
    (root / "intel_pstate" / "no_turbo").write_text("0\n")
    monkeypatch.setattr(doctor, "SYSTEM_CPU", root)
    return root


def test_frequency_scaling_turbo_and_smt_each_get_advice(sysfs, monkeypatch):
    monkeypatch.setattr(doctor.psutil, "cpu_count", lambda logical=True: 4 if logical else 2)
    found = _by_check(doctor.examine([4], sample_s=0.05))
    governor = found["CPU frequency governor"]
    assert governor.level == doctor.WARNING and governor.seen == "powersave"
    assert "cpupower frequency-set -g performance" in governor.advice
    turbo = found["turbo"]
    assert turbo.level == doctor.WARNING and "no_turbo" in turbo.advice
    smt = found["SMT"]
    assert smt.level == doctor.WARNING and "up to 2" in smt.advice

    (sysfs / "cpu0" / "cpufreq" / "scaling_governor").write_text("performance\n")
    (sysfs / "cpu1" / "cpufreq" / "scaling_governor").write_text("performance\n")
    (sysfs / "intel_pstate" / "no_turbo").write_text("1\n")
    (sysfs / "smt" / "active").write_text("0\n")
    found = _by_check(doctor.examine([2], sample_s=0.05))
    for check in ("CPU frequency governor", "turbo", "SMT"):
        assert found[check].level == doctor.OK, found[check]


def test_what_cannot_be_read_is_a_note_never_a_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(doctor, "SYSTEM_CPU", tmp_path / "nothing-here")
    found = _by_check(doctor.examine(sample_s=0.05))
    for check in ("CPU frequency governor", "turbo", "SMT"):
        assert found[check].level == doctor.NOTE and "not readable" in found[check].seen


def test_thread_variables_and_openblas_coretype_are_reported(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    found = _by_check(doctor.examine(sample_s=0.05))
    assert "OMP_NUM_THREADS=3" in found["thread variables"].seen
    assert "do not reach the cases" in found["thread variables"].advice
    coretype = found["OPENBLAS_CORETYPE"]
    assert coretype.level == doctor.NOTE and "Haswell" in coretype.seen


def test_more_threads_than_allotted_cores_is_serious_and_fails_the_doctor(capsys):
    cores = threads.available_cores()
    (finding,) = [f for f in doctor.examine([cores + 1], sample_s=0.05) if f.check == "cores"]
    assert finding.level == doctor.SERIOUS and f"at most {cores}" in finding.advice
    assert cli.main(["doctor", "--threads", str(cores + 1), "--sample", "0.05"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "serious cores:" in out and "serious finding(s)" in out


def test_a_busy_process_is_named_and_bench_run_says_so_in_one_line(tmp_path, monkeypatch):
    # On a machine that others keep busy too, a hog may get only a small share of a core.
    monkeypatch.setattr(doctor, "BUSY_PROCESS_CORES", 0.01)
    with cpu_hogs(threads.available_cores(), seconds=60) as hogs:
        processes, _, _, _ = doctor.busy_processes(1.0)
        findings = doctor.examine(sample_s=0.5)
        done = bench_command(
            *smoke_args("--scenario", "dlfs-mlp", "--impl", "noop", "--plugins", NOOP),
            results=tmp_path / "results",
        )
    named = {p.pid: p for p in processes}
    for hog in hogs:
        assert hog.pid in named and named[hog.pid].name.startswith("python -c import time")
    (activity,) = [f for f in findings if f.check == "other processes"]
    assert activity.level == doctor.SERIOUS and "pid " in activity.seen
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("bench doctor:") == 1
    said = " ".join(done.stderr.split())
    assert "other processes used" in said and "`bench doctor` names the processes" in said
    # the findings are stored with the run
    (run,) = (tmp_path / "results").iterdir()
    stored = json.loads((run / "run.json").read_text())["doctor"]
    assert any(f["check"] == "other processes" and f["level"] == "serious" for f in stored)
