"""Contention: a case run beside a deliberate CPU hog has its rounds flagged disturbed and its
run gets the busy-machine banner; the same case on a quiet machine is not flagged; disturbed
rounds can be re-run, kept out of the statistics; every view says so."""

import json
import math
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from calibration.contention import cpu_hogs
from conftest import PLUGINS, bench_command, smoke_args
from runs import case, store_run, training_round

from bench import cli, report
from bench.analysis import compare, noise
from bench.execution import contention, doctor, threads
from bench.records import DISTURBED_WAIT_SHARE, CaseRecord, RoundRecord
from bench.report.overview import noise_banner

# A case of one busy thread (0.2 s of CPU a round): on a quiet machine nothing competes with
# it, and beside one busy process per core it waits a third of the time it wants a CPU or more.
CASE = ("--scenario", "dlfs-mlp", "--plugins", str(PLUGINS / "spin"), "--impl", "spin")
CASE += ("--threads", "1")
ROUNDS = 4
HOG_SECONDS = 240  # a hog ends by itself even if the test is killed


def _run(results: Path, *more: str):
    done = bench_command(*smoke_args(*CASE, "--rounds", str(ROUNDS), *more), results=results)
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = [p for p in results.iterdir() if (p / "run.json").is_file()]
    (path,) = (run / "cases").glob("*.json")
    return done, run, CaseRecord.from_json(json.loads(path.read_text()))


def test_a_case_beside_a_cpu_hog_is_flagged_disturbed_and_the_run_gets_the_banner(tmp_path):
    with cpu_hogs(threads.available_cores(), HOG_SECONDS):
        done, run, record = _run(tmp_path / "results", "--retry-disturbed", "2")
    planned = [r for r in record.rounds if not r.warmup and r.replaces is None]
    assert len(planned) == ROUNDS
    assert all(r.disturbed for r in planned), [r.wait_share for r in planned]
    assert all(r.wait_share > DISTURBED_WAIT_SHARE for r in planned)
    assert all(r.run_queue_wait_seconds > 0 and r.involuntary_switches > 0 for r in planned)
    # bench run said at once that the machine was busy, naming the doctor
    assert "bench doctor:" in done.stderr
    # the banner and the flag, in the terminal...
    terminal = " ".join(done.stdout.split())
    # (re-runs beside the hogs may be disturbed too, or not: at least two planned rounds are
    # still counted, and disturbed)
    counted = sum(bool(r.disturbed) for r in record.measured_rounds)
    assert counted >= ROUNDS - 2
    assert "Busy machine:" in terminal and f"disturbed {counted}/{ROUNDS}" in terminal
    # ...the report and its Markdown summary
    context = report.build([_open(run)])
    html, markdown = report.render_html(context), report.render_markdown(context)
    for text in (html, markdown):
        assert "Busy machine" in text and "disturbed" in text
    assert f"disturbed: {counted} of {ROUNDS} rounds waited more than" in html
    # --retry-disturbed 2: two re-runs, each of a disturbed round; the rounds they replaced
    # are recorded but out of the statistics, pytest-benchmark's included
    reruns = [r for r in record.rounds if r.replaces is not None]
    assert len(reruns) == 2 and len(record.rounds) == 1 + ROUNDS + 2
    replaced = sorted(r.replaces for r in reruns)
    disturbed = {r.round for r in record.rounds if r.disturbed and not r.warmup}
    assert len(set(replaced)) == len(replaced) and set(replaced) <= disturbed
    assert len(record.measured_rounds) == ROUNDS
    assert not set(replaced) & {r.round for r in record.measured_rounds}
    summary = pd.read_csv(run / "summary.csv").iloc[0]
    assert summary["rounds"] == ROUNDS and summary["replaced_rounds"] == len(replaced)
    rounds = pd.read_csv(run / "rounds.csv")
    assert sorted(rounds[~rounds["counted"] & ~rounds["warmup"]]["round"]) == replaced
    (benchmark,) = json.loads(next((run / "benchmarks").glob("*.json")).read_text())["benchmarks"]
    assert benchmark["stats"]["rounds"] == ROUNDS
    assert benchmark["stats"]["median"] == summary["train_seconds_median"]
    assert benchmark["stats"]["iqr"] == summary["train_seconds_iqr"]
    assert benchmark["extra_info"]["replaced_rounds"] == replaced
    assert f"{len(replaced)} re-run" in terminal


def test_the_same_case_on_a_quiet_machine_is_not_flagged(tmp_path):
    if busy := _not_quiet():
        pytest.skip(busy)
    done, run, record = _run(tmp_path / "results")
    measured = record.measured_rounds
    disturbed = [r for r in measured if r.disturbed]
    # Others may start in the middle: a disturbed round beside them is no false alarm.
    others = max((r.other_cpu_cores for r in disturbed), default=0.0)
    if disturbed and (others >= QUIET_CORES or (busy := _not_quiet())):
        pytest.skip(f"the machine became busy during the run ({others:.2f} other cores): {busy}")
    assert not disturbed, [(r.wait_share, r.other_cpu_cores) for r in measured]
    assert all(0 <= r.wait_share <= DISTURBED_WAIT_SHARE for r in measured)
    # the run's noise line says "0 of N measured rounds disturbed"; no case is marked
    assert "Busy machine" not in done.stdout and "disturbed " not in done.stdout.replace(
        "rounds disturbed ", ""
    )
    assert "Busy machine" not in report.render_html(report.build([_open(run)]))


# Other processes' CPU, in cores, below which this machine counts as quiet for the test.
QUIET_CORES = 0.1


def _not_quiet() -> str:
    """Why this machine is not quiet now ("" if it is): `bench doctor`'s own sample of the
    other processes."""
    (finding,) = [f for f in doctor.examine(sample_s=1.0) if f.check == "other processes"]
    if finding.level == doctor.OK:  # less than 5 % of the cores
        return ""
    return (
        f"the machine is not quiet, so no round can be shown undisturbed here ({finding.seen}); "
        "the half of this test beside a CPU hog still runs"
    )


def _open(run: Path):
    from bench.store import RunStore

    return RunStore.open(run.parent, run.name)


def test_a_round_of_its_own_threads_waiting_is_measured_from_snapshots():
    start = contention.Snapshot(10.0, 1.0, 0.5, 3, 100.0, 2.0)
    stop = contention.Snapshot(12.0, 2.0, 0.9, 10, 104.0, 2.5)
    fields = contention.measured(start, stop, wall=2.0, cpu=1.6)
    assert fields["run_queue_wait_seconds"] == pytest.approx(0.4)
    # wanted a CPU for 2 s (1.6 s on one, 0.4 s waiting): a fifth of it waiting
    assert fields["wait_share"] == pytest.approx(0.2) and fields["disturbed"] is True
    # the same wait beside two busy threads' CPU is a share of 10 %: not above the threshold
    two = contention.measured(start, stop, wall=2.0, cpu=3.6)
    assert two["wait_share"] == pytest.approx(0.1) and two["disturbed"] is False
    assert fields["involuntary_switches"] == 7
    # the machine was busy for 4 CPU seconds, 1 of them ours, over 2 s: 1.5 other cores
    assert fields["other_cpu_cores"] == pytest.approx(1.5)
    assert fields["steal_seconds"] == pytest.approx(0.5)
    quiet = contention.measured(start, start, wall=2.0, cpu=2.0)
    assert quiet["disturbed"] is False and quiet["wait_share"] == 0


def test_run_queue_wait_is_read_for_every_thread_of_this_process():
    waited = contention.run_queue_wait()
    assert math.isfinite(waited) and waited >= 0


def _rounds(walls, disturbed=(), replaces=None):
    rounds = [training_round(0, walls[0], warmup=True)]
    for index, wall in enumerate(walls[1:], 1):
        flagged = index in disturbed
        rounds.append(
            training_round(
                index,
                wall,
                wait_share=0.6 if flagged else 0.01,
                disturbed=flagged,
                other_cpu_cores=1.2 if flagged else 0.0,
                load_average=3.0 if flagged else 0.1,
            )
        )
    for extra, replaced in enumerate(replaces or ()):
        rounds.append(
            training_round(
                len(walls) + extra, 1.0, wait_share=0.01, disturbed=False, replaces=replaced
            )
        )
    return tuple(rounds)


def test_a_replaced_round_stays_recorded_and_leaves_the_statistics(tmp_path):
    record = CaseRecord(
        case("dlfs-mlp", "numpy-vectorized"),
        "ok",
        rounds=_rounds([1.0, 1.0, 9.0, 1.1], disturbed={2}, replaces=[2]),
    )
    assert [r.round for r in record.measured_rounds] == [1, 3, 4]
    assert record.replaced_rounds == {2} and record.disturbed_rounds == 0
    store = store_run(tmp_path, [record])
    summary = report.build([store])["sections"][0]["rows"][0]
    assert summary.time["max"] == 1.1  # the disturbed 9 s round is not in it
    assert any(flag.startswith("re-run: 1 disturbed round") for flag in summary.flags)
    assert RoundRecord.from_json(record.rounds[-1].to_json()).replaces == 2


def _busy_run(root: Path):
    slow = CaseRecord(
        case("dlfs-mlp", "numpy-vectorized"), "ok", rounds=_rounds([2, 2, 5, 6], disturbed={2, 3})
    )
    quiet = CaseRecord(case("dlfs-mlp", "numpy-pure"), "ok", rounds=_rounds([3, 3, 3, 3]))
    return store_run(root, [slow, quiet])


def test_every_view_flags_disturbed_rounds_and_a_busy_run(tmp_path, capsys):
    store = _busy_run(tmp_path / "results")
    found = noise.run_noise(store.cases())
    assert (found.rounds, found.disturbed, found.disturbed_cases, found.busy) == (6, 2, 1, True)
    context = report.build([store])
    html, markdown = report.render_html(context), report.render_markdown(context)
    for text in (html, markdown):
        assert "Busy machine" in text and "2 of 6 measured rounds" in text
        assert "disturbed: 2 of 3 rounds waited more than 10" in text
    assert "numpy-vectorized (disturbed)" in html  # figure labels
    # the terminal: the banner, the noise line, the flag beside the case
    assert cli.main(["show", "--results-dir", str(tmp_path / "results")]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "Busy machine: 2 of 6 measured rounds, in 1 of 2 cases" in shown
    assert "disturbed 2/3" in shown and "Noise: 2 of 6 measured rounds disturbed" in shown
    # bench compare: a note beside the case, a warning about the run
    result = compare.compare_runs(store, store)
    (flagged,) = [c for c in result.cases if c.implementation == "numpy-vectorized"]
    assert "baseline: 2 disturbed round(s)" in flagged.note
    assert any("busy machine" in warning for warning in result.warnings)


def test_a_banner_says_when_the_waits_came_from_the_cases_own_threads(tmp_path):
    """Keras's pools wait for each other on a quiet machine: the banner must not send the
    reader after other processes that were not there."""
    rounds = [
        replace(r, other_cpu_cores=0.0) if r.disturbed else r
        for r in _rounds([2, 2, 5, 6], disturbed={2, 3})
    ]
    own = store_run(tmp_path / "own", [CaseRecord(case("dlfs-mlp", "keras"), "ok", rounds=rounds)])
    banner = noise_banner(noise.run_noise(own.cases()))
    assert "other processes used 0.0 cores: those cases' own threads waited" in banner
    busy = _busy_run(tmp_path / "busy")  # a hog used 1.2 cores during its disturbed rounds
    assert "own threads" not in noise_banner(noise.run_noise(busy.cases()))


def test_a_quiet_run_gets_a_noise_line_and_no_banner(tmp_path, capsys):
    quiet = CaseRecord(case("dlfs-mlp", "numpy-pure"), "ok", rounds=_rounds([3, 3, 3, 3]))
    store = store_run(tmp_path / "results", [quiet])
    html = report.render_html(report.build([store]))
    assert "Busy machine" not in html and "Noise: 0 of 3 measured rounds disturbed" in html
    assert cli.main(["show", "--results-dir", str(tmp_path / "results")]) == 0
    assert "Busy machine" not in capsys.readouterr().out


def test_a_case_that_may_re_run_rounds_gets_the_time_for_them():
    from bench.execution import plan
    from bench.plugins import discover
    from bench.scenarios import SCENARIOS

    found, scenario = discover(installed=False), SCENARIOS["dlfs-mlp"]
    budget = scenario.budget("quick")
    (plain,) = plan.plan(found, [scenario], implementations=["numpy-vectorized"])
    (retrying,) = plan.plan(
        found, [scenario], implementations=["numpy-vectorized"], retry_disturbed=2
    )
    planned = budget.rounds + budget.warmup_rounds
    assert plain.timeout_s == budget.timeout_s and retrying.retry_disturbed == 2
    assert retrying.timeout_s == pytest.approx(budget.timeout_s * (planned + 2) / planned)
    (given,) = plan.plan(
        found, [scenario], implementations=["numpy-vectorized"], retry_disturbed=2, timeout_s=60
    )
    assert given.timeout_s == 60
