"""End to end: `bench run` on real worker processes, with implementations that fail in every
way a case can, on the smoke profile."""

import errno
import json
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import PLUGINS, bench_command, smoke_args, stored_cases


def test_every_failure_is_recorded_with_its_reason_and_other_cases_are_intact(tmp_path, test_state):
    results = tmp_path / "results"
    impls = "healthy,crashing,hanging,diverging,killed,needs-missing,hangs-later,out-of-memory"
    done = bench_command(
        *smoke_args(
            "--plugins",
            str(PLUGINS / "faulty"),
            "--scenario",
            "dlfs-mlp",
            "--impl",
            impls,
            "--timeout",
            "10",
        ),
        results=results,
    )
    assert done.returncode == 0, done.stderr
    cases = stored_cases(results)
    assert cases["healthy"]["status"] == "ok"
    assert len([r for r in cases["healthy"]["rounds"] if not r["warmup"]]) == 2
    # an uncapped round is evaluated on the whole (smoke-sized) test set
    assert {r["test_examples"] for r in cases["healthy"]["rounds"]} == {200}
    assert cases["crashing"]["status"] == "failed"
    assert "deliberate failure in train" in cases["crashing"]["reason"]
    assert cases["hanging"]["status"] == "timeout"
    assert "time limit of 10 s" in cases["hanging"]["reason"]
    assert cases["diverging"]["status"] == "diverged"
    assert "loss is nan" in cases["diverging"]["reason"]
    assert cases["out-of-memory"]["status"] == "out-of-memory"
    assert "64.0 GiB" in cases["out-of-memory"]["reason"]
    assert cases["killed"]["status"] == "crashed"
    assert "SIGKILL" in cases["killed"]["reason"]
    assert cases["needs-missing"]["status"] == "skipped"
    assert "a_module_that_is_not_installed" in cases["needs-missing"]["reason"]
    # a timeout keeps the rounds finished before it
    assert cases["hangs-later"]["status"] == "timeout"
    assert len(cases["hangs-later"]["rounds"]) == 1

    (run,) = [p for p in results.iterdir() if p.is_dir()]
    summary = pd.read_csv(run / "summary.csv").set_index("implementation")
    assert summary.loc["healthy", "status"] == "ok" and summary.loc["healthy", "rounds"] == 2
    # it predicts class 0 for everything: shown as not having learned
    assert summary.loc["healthy", "at_chance_level"]
    assert "chance level" in done.stdout
    assert summary.loc["crashing", "status"] == "failed"
    assert (run / "benchmarks" / "dlfs-mlp--healthy--t2--cpu.json").is_file() or any(
        (run / "benchmarks").glob("dlfs-mlp--healthy--*.json")
    )
    assert not (run / "work").exists()
    for status in ("failed", "timeout", "diverged", "crashed", "skipped"):
        assert status in done.stdout


def test_a_run_killed_midway_resumes_without_rerunning_finished_cases(tmp_path, test_state):
    results = tmp_path / "results"
    args = smoke_args(
        "--plugins",
        str(PLUGINS / "faulty"),
        "--scenario",
        "dlfs-mlp,tch-mlp",
        "--impl",
        "healthy,hangs-once",
        "--threads",
        "1",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", *args, "--results-dir", str(results)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # dlfs/healthy finishes, then dlfs/hangs-once hangs: kill the runner there, hard.
    deadline = time.monotonic() + 120
    while not (test_state / "hangs-once").exists():
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    (run,) = [p for p in results.iterdir() if p.is_dir()]
    finished = {f.name: f.stat().st_mtime_ns for f in (run / "cases").glob("*.json")}
    assert list(finished) == ["dlfs-mlp--healthy--t1--cpu.json"]

    resumed = bench_command("run", "--resume", run.name, results=results)
    assert resumed.returncode == 0, resumed.stderr
    assert "3 of 4 cases left" in resumed.stdout
    after = {f.name: f.stat().st_mtime_ns for f in (run / "cases").glob("*.json")}
    assert len(after) == 4
    assert after["dlfs-mlp--healthy--t1--cpu.json"] == finished["dlfs-mlp--healthy--t1--cpu.json"]
    statuses = {json.loads((run / "cases" / n).read_text())["status"] for n in after}
    assert statuses == {"ok"}
    assert len(pd.read_csv(run / "summary.csv")) == 4


def test_ctrl_c_records_the_case_as_interrupted_and_says_how_to_resume(
    tmp_path, test_state, monkeypatch, capsys
):
    from bench import cli

    # Ctrl-C arrives while the runner waits for the hanging worker. It is raised from the
    # wait itself (in this process) so that the test does not depend on signal timing.
    original_wait = subprocess.Popen.wait

    def wait_then_interrupt(self, timeout=None):
        if "hangs-once" not in " ".join(map(str, self.args)):
            return original_wait(self, timeout)
        deadline = time.monotonic() + 120
        while not (test_state / "hangs-once").exists():
            assert time.monotonic() < deadline, "the worker never started training"
            time.sleep(0.1)
        raise KeyboardInterrupt

    monkeypatch.setattr(subprocess.Popen, "wait", wait_then_interrupt)
    results = tmp_path / "results"
    args = smoke_args(
        "--plugins",
        str(PLUGINS / "faulty"),
        "--scenario",
        "dlfs-mlp",
        "--impl",
        "hangs-once,healthy",
        "--results-dir",
        str(results),
    )
    assert cli.main(args) == 130
    err = " ".join(capsys.readouterr().err.split())
    (run,) = [p for p in results.iterdir() if p.is_dir()]
    assert f"bench run --resume {run.name}" in err
    (interrupted,) = (run / "cases").glob("dlfs-mlp--hangs-once--*.json")
    assert json.loads(interrupted.read_text())["status"] == "interrupted"
    monkeypatch.setattr(subprocess.Popen, "wait", original_wait)
    resumed = bench_command("run", "--resume", run.name, results=results)
    assert resumed.returncode == 0, resumed.stderr
    outcomes = {name: (c["status"], c.get("reason")) for name, c in stored_cases(results).items()}
    assert {status for status, _ in outcomes.values()} == {"ok"}, outcomes


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_real_signal_stops_the_run_and_keeps_what_was_measured(tmp_path, test_state, signum):
    results = tmp_path / "results"
    args = smoke_args(
        "--plugins",
        str(PLUGINS / "faulty"),
        "--scenario",
        "dlfs-mlp,tch-mlp",
        "--impl",
        "hangs-in-tch-mlp",
        "--results-dir",
        str(results),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # started as a shell starts a background command: with SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    deadline = time.monotonic() + 180
    while not (test_state / "hangs-in-tch-mlp-hanging").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "tch-mlp never started its second round"
        time.sleep(0.1)
    process.send_signal(signum)
    try:
        _, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)  # bench prints every thread's stack
        time.sleep(2)
        process.kill()
        pytest.fail("bench run did not stop:\n" + process.communicate()[1][-8000:])
    assert process.returncode == 130, err
    (run,) = [p for p in results.iterdir() if p.is_dir()]
    assert f"bench run --resume {run.name}" in " ".join(err.split())
    records = {
        record["case"]["scenario"]: record
        for record in (json.loads(f.read_text()) for f in (run / "cases").glob("*.json"))
    }
    assert records["dlfs-mlp"]["status"] == "ok"  # finished before the signal: kept
    assert records["tch-mlp"]["status"] == "interrupted"
    assert len(records["tch-mlp"]["rounds"]) == 1  # the round it finished is kept too
    summary = pd.read_csv(run / "summary.csv").set_index("scenario")
    assert summary.loc["tch-mlp", "status"] == "interrupted"


def test_a_full_disk_stops_the_run_with_advice_and_keeps_finished_cases(
    tmp_path, monkeypatch, capsys
):
    from bench import cli
    from bench.store import RunStore

    real_save = RunStore.save_case
    saved = []

    def save_then_fill_the_disk(self, record, benchmark_json=None):
        if saved:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.directory))
        saved.append(record.case.id)
        return real_save(self, record, benchmark_json)

    monkeypatch.setattr(RunStore, "save_case", save_then_fill_the_disk)
    results = tmp_path / "results"
    args = smoke_args(
        "--plugins",
        str(PLUGINS / "noop"),
        "--impl",
        "noop",
        "--scenario",
        "dlfs-mlp,tch-mlp",
        "--results-dir",
        str(results),
    )
    assert cli.main(args) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "disk full" in err and "bench run --resume" in err
    (run,) = results.iterdir()
    (kept,) = (run / "cases").glob("*.json")
    assert json.loads(kept.read_text())["status"] == "ok"


ONE_ROUND_IN_EACH_OF_TWO = ("--rounds", "2", "--warmup", "0")


def _capped_run(
    tmp_path, implementation: str, cap: str, rounds: tuple = ONE_ROUND_IN_EACH_OF_TWO
) -> tuple:
    """dlfs-mlp quick (hundreds of steps) under a round cap; by default in two processes, one
    round each."""
    results = tmp_path / "results"
    done = bench_command(
        "run", "--profile", "quick", "--dataset", "mnist-5k", "--offline", "--no-peak",
        "--no-check",
        "--plugins", str(PLUGINS / "faulty"), "--impl", implementation, "--scenario", "dlfs-mlp",
        *rounds, "--round-cap", cap, results=results,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    record = stored_cases(results)[implementation]
    assert record["status"] == "ok", (record["reason"], record.get("log_tail"))
    return done, record


def test_a_round_cap_stops_rounds_too_slow_for_it_and_marks_them_capped(tmp_path):
    from bench.execution.suites.bench_training import CAPPED_EVALUATION_EXAMPLES
    from bench.scenarios import SCENARIOS

    planned = SCENARIOS["dlfs-mlp"].budget("quick").steps
    # 10 ms of CPU a step: even with both threads busy, a round would take far longer than
    # 0.3 s, so it is capped at the first `train` call after 0.3 s
    done, record = _capped_run(tmp_path, "slow-steps", "0.3")
    for round_ in record["rounds"]:
        assert round_["capped"] and round_["planned_steps"] == planned
        # A process's first round: calls of 3, 6, 12 ... steps (from a hundredth of the
        # round, doubling), none planned past 0.3 s at the pace so far; it stops when not
        # one more step fits: near 0.3 s, with about the 30 steps 0.3 s allows.
        assert 0.25 <= round_["wall_seconds"] < 0.3 + 0.05
        assert 24 <= round_["steps"] <= 33
        assert round_["curve"][-1]["steps"] == round_["steps"]
        assert round_["samples"] == round_["steps"] * 100
        # a capped round's accuracy is taken on the first few of mnist-5k's test images
        assert round_["test_examples"] == CAPPED_EVALUATION_EXAMPLES
    assert {r["process"] for r in record["rounds"]} == {0, 1}
    assert "capped 2/2" in done.stdout
    assert f"acc. on {CAPPED_EVALUATION_EXAMPLES}" in done.stdout


def test_a_round_cap_spares_a_fast_implementation_slowed_down_by_waiting(tmp_path):
    """Its wall time passes the cap, but it used next to no CPU: what made it slow was not
    its own work (a busy machine), so it runs its whole round."""
    from bench.scenarios import SCENARIOS

    planned = SCENARIOS["dlfs-mlp"].budget("quick").steps
    done, record = _capped_run(tmp_path, "waiting-steps", "0.3")
    for round_ in record["rounds"]:
        assert not round_["capped"] and round_["steps"] == planned
        assert round_["wall_seconds"] > 0.3
    assert "capped" not in done.stdout


def test_a_round_that_fits_its_cap_is_not_cut_into_many_train_calls(tmp_path):
    """A call can cost far more than a step (a Keras `fit` about 30 ms): cut into a hundred
    pieces, a round would time the calls. With a cap, only a process's first round is cut
    (calls doubling in size: 8 for dlfs-mlp's 300 steps); a later round that the first
    says fits trains each of its 3 evaluation chunks in one call, as without a cap."""
    rounds = ("--rounds", "2", "--processes", "1", "--warmup", "1")
    _, record = _capped_run(tmp_path, "costly-calls", "5", rounds)
    warmup, *measured = record["rounds"]
    assert warmup["warmup"] and not warmup["capped"]
    assert 8 * 0.02 <= warmup["wall_seconds"] < 20 * 0.02
    for round_ in measured:
        assert not round_["capped"] and round_["steps"] == round_["planned_steps"]
        assert 3 * 0.02 <= round_["wall_seconds"] < 6 * 0.02


def test_a_process_s_later_rounds_train_the_steps_its_first_round_says_fit_the_cap(tmp_path):
    """slow-steps (10 ms of CPU a step) under a 0.3 s cap: the first round (a warm-up) finds
    it too slow; each later round trains the steps that fit in 0.3 s at the first round's
    wall time per step, the same number in each, in one call per chunk."""
    rounds = ("--rounds", "3", "--processes", "1", "--warmup", "1")
    _, record = _capped_run(tmp_path, "slow-steps", "0.3", rounds)
    warmup, *measured = record["rounds"]
    assert warmup["capped"]
    per_step = warmup["wall_seconds"] / warmup["steps"]
    (steps,) = {round_["steps"] for round_ in measured}  # the same in every round
    assert abs(steps - 0.3 / per_step) <= 1.5  # its first call aside, the warm-up's rate
    assert 20 <= steps <= 30  # 0.3 s of 10 ms steps, at most
    assert all(r["capped"] and r["wall_seconds"] < 0.3 * 1.5 for r in measured)


def test_a_step_cost_counts_what_a_fresh_trainer_pays_once_only_once():
    from bench.execution.suites.context import StepCost

    # a Keras-like first call: 0.5 s of graph building, then 10 ms a step
    keras_like = StepCost(first_steps=3, first_judged=0.5, first_wall=0.6, judged=0.01, wall=0.01)
    assert keras_like.judged_round(300) == pytest.approx(0.5 + 0.01 * 297)
    assert keras_like.steps_within(1.0) == 3 + 40
    # one step longer than the cap: one step still runs
    assert StepCost(1, 4.0, 4.0, 4.0, 4.0).steps_within(1.0) == 1


def test_the_cap_is_decided_from_cpu_time_with_every_thread_busy():
    from bench.execution.suites.bench_training import too_slow_for_cap

    # 1 s of CPU for 10 of 100 steps: 10 s on one thread, 5 s on two
    assert too_slow_for_cap(4.0, cpu_seconds=1.0, threads=2, done=10, steps=100)
    assert not too_slow_for_cap(6.0, cpu_seconds=1.0, threads=2, done=10, steps=100)
    assert not too_slow_for_cap(4.0, cpu_seconds=0.0, threads=2, done=10, steps=100)


def test_a_device_this_machine_lacks_makes_the_case_skipped_with_the_reason(tmp_path):
    """torch answers for torch and for tch-store (one LibTorch); TensorFlow for keras."""
    import tensorflow as tf
    import torch

    results = tmp_path / "results"
    impls = "torch,tch-store,keras"
    args = smoke_args("--scenario", "tch-mlp", "--impl", impls, "--device", "cuda")
    done = bench_command(*args, results=results)
    assert done.returncode == 0, done.stderr
    records = stored_cases(results)
    for name, has_gpu, missing in (
        ("torch", torch.cuda.is_available(), "no CUDA device on this machine"),
        ("tch-store", torch.cuda.is_available(), "no CUDA device on this machine"),
        ("keras", bool(tf.config.list_physical_devices("GPU")), "TensorFlow 2."),
    ):
        if has_gpu:  # a machine with a GPU runs it
            assert records[name]["status"] == "ok", records[name]
        else:
            assert records[name]["status"] == "skipped", records[name]
            assert missing in records[name]["reason"]
            assert "--device cpu" in records[name]["reason"]
    assert "(cuda)" in done.stdout  # the summary names the device


def test_flops_count_the_examples_trained_on_when_the_batch_exceeds_the_data(tmp_path):
    """A batch of 1 000 on the smoke profile's 300 examples trains on 300 per step."""
    from bench.scenarios import SCENARIOS

    results = tmp_path / "results"
    args = [
        "sweep", "--profile", "smoke", "--dataset", "mnist-5k", "--offline", "--no-peak",
        "--plugins", str(PLUGINS / "noop"), "--impl", "noop", "--scenario", "dlfs-mlp",
        "--over", "batch_size", "--sizes", "1000", "--threads", "1",
    ]  # fmt: skip
    done = bench_command(*args, results=results)
    assert done.returncode == 0, done.stderr
    (round_, *_) = stored_cases(results)["noop"]["rounds"]
    assert round_["samples"] == round_["steps"] * 300
    per_sample = SCENARIOS["dlfs-mlp"].forward_flops_per_sample()
    assert round_["flops"] == 3 * per_sample * round_["samples"]


def test_a_device_with_an_index_is_a_device_of_its_kind():
    from bench.execution import plan
    from bench.plugins import discover
    from bench.scenarios import SCENARIOS

    found = discover(installed=False)
    cases = plan.plan(
        found, [SCENARIOS["tch-mlp"]], implementations=["torch", "numpy-vectorized"],
        devices=["cuda:1"],
    )  # fmt: skip
    by_name = {case.implementation: case for case in cases}
    assert by_name["torch"].status in (None, "skipped")  # runs, unless torch is missing
    assert by_name["numpy-vectorized"].status == "unsupported"
    assert by_name["numpy-vectorized"].reason == "runs on cpu, not cuda:1"


def test_a_case_runs_its_rounds_in_several_processes_until_its_interval_is_narrow(tmp_path):
    """Two processes share the minimum; more follow while the median's interval is wider than
    the target (1 % here, out of reach for so short rounds) and the rounds allow."""
    results = tmp_path / "results"
    args = smoke_args(
        "--plugins", str(PLUGINS / "noop"), "--impl", "noop", "--scenario", "dlfs-mlp"
    )
    done = bench_command(
        *args, "--processes", "2", "--rounds", "4-7", "--target", "1%", results=results
    )
    assert done.returncode == 0, done.stderr
    record = stored_cases(results)["noop"]
    measured = [r for r in record["rounds"] if not r["warmup"]]
    warmups = [r for r in record["rounds"] if r["warmup"]]
    processes = sorted({r["process"] for r in record["rounds"]})
    assert 4 <= len(measured) <= 7 and processes[:2] == [0, 1]
    assert [r["round"] for r in record["rounds"]] == list(range(len(record["rounds"])))
    # each process warms up first; only the first process's warm-up is a whole round
    assert [r["process"] for r in warmups] == processes
    planned = warmups[0]["steps"]
    assert all(r["steps"] < planned for r in warmups[1:])
    assert all(r["steps"] == planned for r in measured)
    assert record["stopped"] in ("target", "max-rounds", "budget")
    if record["stopped"] != "target":
        assert record["stopped_half_width"] > 0.01
    # pytest-benchmark's JSON holds every process's measured rounds, in its own statistics
    (run,) = [p for p in results.iterdir() if p.is_dir()]
    benchmark = json.loads((run / record["benchmark_file"]).read_text())["benchmarks"][0]
    assert benchmark["stats"]["rounds"] == len(measured)
    assert benchmark["extra_info"]["processes"] == len(processes)
    summary = pd.read_csv(run / "summary.csv").iloc[0]
    assert summary["processes"] == len(processes) and summary["interval_target"] == 0.01
    assert summary["stopped"] == record["stopped"]
    assert summary["interval_half_width"] > 0
    met = "1 of 1 cases" if summary["target_met"] else "0 of 1 cases; 1 wider"
    assert f"within the profile's target: {met}" in done.stdout


def test_rounds_fixed_on_the_command_line_are_what_every_case_runs(tmp_path):
    results = tmp_path / "results"
    args = smoke_args(
        "--plugins", str(PLUGINS / "noop"), "--impl", "noop", "--scenario", "dlfs-mlp"
    )
    done = bench_command(*args, "--processes", "3", "--rounds", "5", results=results)
    assert done.returncode == 0, done.stderr
    record = stored_cases(results)["noop"]
    measured = [r["process"] for r in record["rounds"] if not r["warmup"]]
    assert measured == [0, 0, 1, 1, 2] and record["stopped"] == "fixed"
