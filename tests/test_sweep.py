"""`bench sweep`: a run over growing sizes and thread counts, and the scaling exponent."""

import json
import math

import pandas as pd
import pytest
from conftest import bench_command

from bench import cli
from bench.analysis import sweep
from bench.analysis.stats import loglog_fit
from bench.scenarios import SCENARIOS


def test_a_smoke_sweep_stores_one_case_per_size_and_thread_count(tmp_path, capsys):
    results = tmp_path / "results"
    done = bench_command(
        "sweep",
        "--scenario",
        "linfa-kmeans",
        "--impl",
        "numpy-vectorized",
        "--profile",
        "smoke",
        "--sizes",
        "1e3,2000",
        "--threads",
        "1,2",
        "--rounds",
        "1",
        "--warmup",
        "0",
        "--no-peak",
        results=results,
    )
    assert done.returncode == 0, done.stderr
    assert "Scaling" in done.stdout and "exponent" in done.stdout
    (run,) = list(results.iterdir())
    meta = json.loads((run / "run.json").read_text())
    assert meta["sweep"] == {"key": "n_samples", "sizes": [1000, 2000], "thread_counts": [1, 2]}
    planned = {(case["overrides"]["n_samples"], case["threads"]) for case in meta["plan"]}
    assert planned == {(1000, 1), (1000, 2), (2000, 1), (2000, 2)}
    assert len(list((run / "cases").glob("*.json"))) == 4

    rounds = pd.read_csv(run / "rounds.csv")
    assert sorted(zip(rounds.sweep_n_samples, rounds.threads, strict=True)) == sorted(planned)
    assert (rounds.samples == rounds.sweep_n_samples).all()
    assert (rounds.n_iter >= 1).all() and (rounds.inertia > 0).all()
    assert (rounds.seconds_per_iteration > 0).all() and (
        rounds.predict_seconds_per_sample > 0
    ).all()
    summary = pd.read_csv(run / "summary.csv")
    assert set(summary.sweep_n_samples) == {1000, 2000}

    assert cli.main(["show", str(run)]) == 0  # a stored sweep shows its scaling table again
    assert "Scaling" in capsys.readouterr().out


def test_the_fitted_exponent_of_a_power_law_is_its_power():
    sizes = [1e4, 1e5, 1e6, 1e7]
    fit = loglog_fit(sizes, [3e-7 * n**1.5 for n in sizes])
    exponent, prefactor = fit["exponent"], fit["scale"]
    assert exponent == pytest.approx(1.5)
    assert prefactor == pytest.approx(3e-7)


def test_a_fit_needs_two_sizes_with_times():
    fit = loglog_fit([1e4, 1e5], [0.1, math.nan])
    exponent, prefactor = fit["exponent"], fit["scale"]
    assert math.isnan(exponent) and math.isnan(prefactor)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--over", "epochs"],
            "cannot sweep 'epochs' for linfa-kmeans (kmeans); sweepable: n_samples",
        ),
        (["--over", "batch_size"], "cannot sweep 'batch_size' for linfa-kmeans"),
        (
            ["--sizes", "1e4,ten"],
            "--sizes takes positive whole numbers such as 1e4 or 500, got 'ten'",
        ),
        (["--sizes", "0.5"], "got '0.5'"),
    ],
)
def test_a_sweep_that_cannot_be_planned_says_why(args, expected, tmp_path, capsys):
    argv = ["sweep", "--scenario", "linfa-kmeans", *args, "--results-dir", str(tmp_path)]
    assert cli.main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert expected in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing stored


def test_a_sweep_names_its_scenario(tmp_path, capsys):
    assert cli.main(["sweep", "--results-dir", str(tmp_path)]) == 2
    assert "--scenario" in capsys.readouterr().err


def test_the_swept_size_follows_the_model():
    assert sweep.sweep_key([SCENARIOS["linfa-kmeans"]]) == "n_samples"
    assert sweep.sweep_key([SCENARIOS["dlfs-mlp"], SCENARIOS["tch-cnn"]]) == "batch_size"
    assert sweep.sweep_key([SCENARIOS["dlfs-mlp"]], "steps") == "steps"
    with pytest.raises(sweep.SweepError, match="separately"):
        sweep.sweep_key([SCENARIOS["dlfs-mlp"], SCENARIOS["linfa-kmeans"]])


def test_sizes_and_thread_counts():
    assert sweep.parse_sizes(["1e5,1e4", "10000"]) == [10_000, 100_000]
    assert sweep.default_sizes("n_samples", "quick") == [10_000, 100_000, 1_000_000]
    assert sweep.default_sizes("n_samples", "full")[-1] == 10_000_000
    assert sweep.default_thread_counts(1) == [1]
    assert sweep.default_thread_counts(2) == [1, 2]
    assert sweep.default_thread_counts(6) == [1, 2, 4, 6]
    assert sweep.default_thread_counts(8) == [1, 2, 4, 8]
    assert sweep.overrides("n_samples", [10, 20]) == [{"n_samples": 10}, {"n_samples": 20}]


def test_scaling_rows_give_time_per_size_and_the_exponent():
    summary = pd.DataFrame(
        {
            "scenario": "linfa-kmeans",
            "implementation": ["a", "a", "a", "b", "b", "b"],
            "threads": 1,
            "device": "cpu",
            "sweep_n_samples": [1_000, 100, 10_000] * 2,
            # the measured time of a capped case differs from its comparable time
            "train_seconds_median": [1.0, 0.1, 10.0, 2.0, 0.5, math.nan],
            "comparable_seconds_median": [1.0, 0.1, 10.0, 2.0, 1.0, math.nan],
            "time_extrapolated": [False, False, False, False, True, False],
            "status": ["ok", "ok", "ok", "ok", "ok", "timeout"],
        }
    )
    a, b = sweep.scaling_rows(summary, "n_samples")
    assert list(a["seconds"]) == [100, 1_000, 10_000]
    assert a["exponent"] == pytest.approx(1.0) and a["prefactor"] == pytest.approx(1e-3)
    assert b["status"][10_000] == "timeout" and math.isnan(b["seconds"][10_000])
    assert b["exponent"] == pytest.approx(math.log10(2))
    assert b["extrapolated"] == {100: True, 1_000: False, 10_000: False}
