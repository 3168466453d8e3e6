import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import PLUGINS, bench_command, smoke_args

from bench import cli
from bench.execution.measure import SHORTEST_ROUND_PER_EXTRA_THREAD_S


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["run", "--scenario", "dlfs-mpl"],
            "unknown scenario 'dlfs-mpl'. Did you mean 'dlfs-mlp'?",
        ),
        (["run", "--impl", "numpy-vectorised"], "Did you mean 'numpy-vectorized'?"),
        (["run", "--profile", "quik"], "unknown profile 'quik'. Did you mean 'quick'?"),
        (["run", "--dataset", "fashion"], "unknown dataset 'fashion'. Did you mean"),
        (["run", "--threads", "two"], "--threads takes positive integers"),
        (["run", "--resume", "no-such-run"], "no run 'no-such-run'"),
        (["data", "verify", "mnsit"], "Did you mean 'mnist'?"),
    ],
)
def test_unknown_names_get_the_valid_names_and_the_closest_match(args, expected, capsys, tmp_path):
    if args[0] == "run":
        args = [*args, "--results-dir", str(tmp_path)]
    assert cli.main(args) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert expected in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--rounds", "0", "--rounds: takes N or MIN-MAX with 1 <= MIN <= MAX"),
        ("--rounds", "9-3", "--rounds: takes N or MIN-MAX with 1 <= MIN <= MAX"),
        ("--processes", "0", "--processes: takes a whole number of 1 or more"),
        ("--target", "0", "--target: takes a percentage above 0"),
        ("--warmup", "-1", "--warmup: takes a whole number of 0 or more"),
        ("--timeout", "0", "--timeout: takes a number of seconds above 0"),
        ("--round-cap", "-5", "--round-cap: takes a number of seconds above 0"),
        ("--round-cap", "nan", "--round-cap: takes a number of seconds above 0"),
        ("--seed", "-1", "--seed: takes a whole number of 0 or more"),
    ],
)
def test_numbers_out_of_range_are_refused_before_anything_runs(
    option, value, expected, capsys, tmp_path
):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", option, value, "--results-dir", str(tmp_path)])
    assert exit_.value.code == 2
    assert expected in " ".join(capsys.readouterr().err.split())
    assert not any(tmp_path.iterdir())  # no run was started


def test_list_shows_scenarios_implementations_and_broken_plugins(capsys):
    assert cli.main(["list", "--plugins", str(PLUGINS)]) == 0
    captured = capsys.readouterr()
    for name in ("nielsen-mlp", "dlfs-mlp", "tch-mlp", "tch-cnn", "linfa-kmeans"):
        assert name in captured.out
    assert "numpy-vectorized" in captured.out and "sklearn" in captured.out
    assert "broken_import.py" in captured.err and "broken on purpose" in captured.err


def test_list_shows_unavailable_plugins_with_the_reason(capsys):
    assert cli.main(["list", "--plugins", str(PLUGINS / "faulty")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "a_module_that_is_not_installed" in out


def test_a_run_stores_tidy_tables_and_pytest_benchmark_json(tmp_path):
    results = tmp_path / "results"
    done = bench_command(
        *smoke_args("--scenario", "dlfs-mlp,linfa-kmeans", "--impl", "numpy-vectorized,sklearn"),
        results=results,
    )
    assert done.returncode == 0, done.stderr
    assert "Summary" in done.stdout and str(results) in done.stdout
    (run,) = list(results.iterdir())
    meta = json.loads((run / "run.json").read_text())
    assert meta["profile"] == "smoke"
    planned = {(case["scenario"], case["implementation"]) for case in meta["plan"]}
    assert {("dlfs-mlp", "numpy-vectorized"), ("linfa-kmeans", "sklearn")} <= planned
    assert meta["datasets"]["dlfs-mlp"]["used"] == "mnist-5k"
    assert meta["environment"]["packages"]["numpy"]

    rounds = pd.read_csv(run / "rounds.csv")
    mlp = rounds[(rounds.scenario == "dlfs-mlp") & (rounds.implementation == "numpy-vectorized")]
    assert list(mlp.warmup) == [True, False, False]
    assert (mlp.wall_seconds > 0).all() and (mlp.cpu_seconds > 0).all()
    # A smoke round lasts milliseconds: on more than one thread its CPU share is not
    # measurable (test_measure) and is left out rather than shown wrong.
    measurable = mlp.wall_seconds >= (mlp.threads - 1) * SHORTEST_ROUND_PER_EXTRA_THREAD_S
    assert mlp.utilisation[~measurable].isna().all()
    assert ((mlp.utilisation > 0) & (mlp.utilisation <= 1.5))[measurable].all()
    assert (mlp.peak_rss_bytes > 10 * 2**20).all()
    assert mlp.test_accuracy.between(0, 1).all() and mlp.train_accuracy.between(0, 1).all()
    kmeans = rounds[(rounds.scenario == "linfa-kmeans") & (rounds.implementation == "sklearn")]
    assert (kmeans.n_iter >= 1).all() and (kmeans.inertia > 0).all()
    assert kmeans.adjusted_rand_index.between(-1, 1).all()

    curves = pd.read_csv(run / "curves.csv")
    assert set(curves.columns) >= {"train_seconds", "steps", "test_accuracy", "round"}
    last = curves[curves["round"] == 1].steps.max()
    assert last == 5  # the smoke budget of dlfs-mlp

    summary = pd.read_csv(run / "summary.csv")
    (mlp_row,) = summary[summary.case_id == mlp.case_id.iloc[0]].to_dict("records")
    assert mlp_row["rounds"] == 2
    assert mlp_row["train_seconds_median"] == pytest.approx(mlp[~mlp.warmup].wall_seconds.median())
    assert mlp_row["cold_start_seconds"] == pytest.approx(mlp[mlp.warmup].wall_seconds.iloc[0])

    compare = subprocess.run(
        [
            str(Path(sys.executable).with_name("pytest-benchmark")),
            "compare",
            *map(str, (run / "benchmarks").glob("*.json")),
        ],
        capture_output=True,
        text=True,
    )
    assert compare.returncode == 0, compare.stderr
    assert "test_training[dlfs-mlp--numpy-vectorized--t" in compare.stdout
    assert "test_clustering[linfa-kmeans--sklearn--t" in compare.stdout
    text = next((run / "benchmarks").glob("dlfs-mlp*.json")).read_text()
    (bench,) = json.loads(text)["benchmarks"]
    assert bench["stats"]["rounds"] == 2
    # pytest-benchmark holds the rounds' own training-only times: its statistics are ours,
    # the IQR included (one definition, pytest-benchmark's)
    measured = sorted(mlp[~mlp.warmup].wall_seconds)
    assert bench["stats"]["min"] == measured[0] and bench["stats"]["max"] == measured[-1]
    assert bench["stats"]["iqr"] == mlp_row["train_seconds_iqr"]
    # its parameters name the case and nothing else: no object dump, no memory address that
    # would make two identical runs differ
    assert bench["params"] == {"case_id": mlp.case_id.iloc[0]}
    assert "UNSERIALIZABLE" not in text and not re.search(r"0x[0-9a-f]{6,}", text)
    # pytest-benchmark's own machine_info, the CPU py-cpuinfo describes included
    assert json.loads(text)["machine_info"]["cpu"]["arch"]
    csv_file = tmp_path / "compared.csv"
    exported = subprocess.run(
        [
            str(Path(sys.executable).with_name("pytest-benchmark")),
            "compare",
            f"--csv={csv_file}",
            *map(str, (run / "benchmarks").glob("*.json")),
        ],
        capture_output=True,
        text=True,
    )
    assert exported.returncode == 0, exported.stderr
    cells = [cell for row in csv.reader(csv_file.open()) for cell in row]
    assert len(cells) > 10 and max(map(len, cells)) < 200

    shown = bench_command("show", results=results)
    assert shown.returncode == 0 and "dlfs-mlp" in shown.stdout


def test_a_worker_asks_py_cpuinfo_once_per_boot_of_the_machine(tmp_path, monkeypatch):
    import cpuinfo

    from bench.execution import worker

    cache = tmp_path / "cpu-info.json"
    monkeypatch.setattr(worker, "CPU_INFO_CACHE", cache)
    asked = []
    monkeypatch.setattr(cpuinfo, "get_cpu_info", lambda: asked.append(1) or {"arch": "X"})
    assert worker.cpu_info() == {"arch": "X"}
    assert worker.cpu_info() == {"arch": "X"}
    assert len(asked) == 1
    cache.write_text(
        cache.read_text().replace(
            Path("/proc/sys/kernel/random/boot_id").read_text().strip(), "an earlier boot"
        )
    )
    assert worker.cpu_info() == {"arch": "X"}
    assert len(asked) == 2


def test_threads_are_applied_and_recorded(tmp_path):
    results = tmp_path / "results"
    done = bench_command(
        *smoke_args("--scenario", "dlfs-mlp", "--impl", "numpy-vectorized", "--threads", "1"),
        results=results,
    )
    assert done.returncode == 0, done.stderr
    (case_file,) = (next(results.iterdir()) / "cases").glob("*.json")
    record = json.loads(case_file.read_text())
    assert record["case"]["threads"] == 1
    pools = record["threads"]["threadpools"]
    assert pools and all(pool["num_threads"] == 1 for pool in pools)
    assert record["threads"]["environment"]["OMP_NUM_THREADS"] == "1"


def test_results_dir_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path / "elsewhere"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.cli",
            *smoke_args("--scenario", "linfa-kmeans", "--impl", "sklearn"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "elsewhere").glob("*/summary.csv"))) == 1


def test_default_results_dir_is_relative_to_where_bench_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_RESULTS_DIR")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.cli",
            *smoke_args("--scenario", "linfa-kmeans", "--impl", "sklearn"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    (summary,) = (tmp_path / "results").glob("*/summary.csv")
    assert "ok" in summary.read_text()


def test_data_verify_reports_a_corrupt_file_and_fails(tmp_path, monkeypatch, capsys):
    from bench import datasets

    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for spec in (datasets.IMAGE_DATASETS["mnist"].train_images,):
        (folder / spec.name).write_bytes(b"truncated")
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "data"))
    assert cli.main(["data", "verify", "mnist"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "SHA-256 mismatch" in out
    assert "bench data fetch mnist --force" in out
