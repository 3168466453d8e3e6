"""The whole path of a user's own workload: scikit-learn's 8x8 digits written as an .npz and
as a folder of IDX files, a 64-32-10 MLP scenario with Adam in a TOML file, numpy-vectorized
and torch run on it through `bench run --scenarios … --dataset …` (conformance gate
included), the two agreeing, the report holding the scenario's section, and `bench report`
rendering the run after the file is gone."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import struct
import textwrap

import numpy as np
import pytest
from conftest import bench_command
from sklearn.datasets import load_digits

from bench.store import RunStore

SCENARIO = """
[scenarios.digits-mlp]
title = "scikit-learn's 8x8 digits: 64-32-10 MLP, Adam"
citation = "scikit-learn's digits (UCI optical recognition of handwritten digits)"
model = "mlp"
dataset = "digits.npz"
input_shape = [64]
input_scale = 0.0625          # pixels are 0..16
layers = [
  { type = "dense", units = 32, activation = "relu" },
  { type = "dense", units = 10 },
]
init = "torch-default"
loss = "cross-entropy"
optimizer = { kind = "adam", lr = 0.01 }
batch_size = 32
target = 0.8
original = "numpy-vectorized"

[scenarios.digits-mlp.budgets]
smoke = { steps = 60, rounds = 2, train_samples = 1200, test_samples = 360 }
quick = { epochs = 5 }
full = { epochs = 50 }
"""


def idx(array: np.ndarray) -> bytes:
    return struct.pack(f">I{array.ndim}I", 0x0800 | array.ndim, *array.shape) + array.tobytes()


@pytest.fixture
def digits(tmp_path):
    """The digits, 1 437 to train on and 360 to test: as an .npz, and as IDX files (the
    training ones gzipped, the test ones not), and the scenario file."""
    loaded = load_digits()
    images, labels = loaded.images.astype(np.uint8), loaded.target.astype(np.uint8)
    split = {
        "x_train": images[:1437],
        "y_train": labels[:1437],
        "x_test": images[1437:],
        "y_test": labels[1437:],
    }
    npz = tmp_path / "digits.npz"
    np.savez(npz, **split)
    folder = tmp_path / "digits-idx"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx(split["x_train"])))
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx(split["y_train"])))
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx(split["x_test"]))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx(split["y_test"]))
    scenario = tmp_path / "digits.toml"
    scenario.write_text(textwrap.dedent(SCENARIO), encoding="utf-8")
    return {"npz": npz, "idx": folder, "toml": scenario}


def measured(results, run_id: str) -> dict[str, dict]:
    store = RunStore.open(results, run_id)
    return {record.case.implementation: record for record in store.cases()}


def run(results, digits, dataset) -> tuple[str, dict]:
    done = bench_command(
        "run", "--scenarios", str(digits["toml"]), "--dataset", str(dataset),
        "-i", "numpy-vectorized,torch", "--profile", "smoke", "--offline", "--no-peak",
        results=results,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = " ".join(done.stdout.split())
    assert "conformance: numpy-vectorized on digits-mlp: passed" in out
    assert "conformance: torch on digits-mlp: passed" in out
    run_id = next(w for w in out.split() if w.endswith("-smoke:")).rstrip(":")
    return run_id, measured(results, run_id)


def assert_same_training(a, b, rtol):
    """Same initial parameters, same batches: the same loss and accuracy curve, round by round."""
    assert a.status == b.status == "ok"
    assert len(a.rounds) == len(b.rounds) == 3  # one warm-up, two measured
    for ra, rb in zip(a.rounds, b.rounds, strict=True):
        assert ra.steps == rb.steps == 60
        assert ra.loss == pytest.approx(rb.loss, rel=rtol)
        assert ra.test_accuracy == pytest.approx(rb.test_accuracy, abs=1 / 360 + 1e-12)
        assert [p.loss for p in ra.curve] == pytest.approx([p.loss for p in rb.curve], rel=rtol)


def test_a_users_scenario_and_dataset_from_files_end_to_end(tmp_path, digits):
    results = tmp_path / "results"
    from_npz, cases = run(results, digits, digits["npz"])
    numpy, torch = cases["numpy-vectorized"], cases["torch"]
    # float32 throughout; torch's kernels round otherwise than NumPy's
    assert_same_training(numpy, torch, rtol=1e-4)
    assert numpy.measured_rounds[0].test_accuracy > 0.8  # it learns the digits

    meta = RunStore.open(results, from_npz).meta
    dataset = meta.datasets["digits-mlp"]
    assert dataset.kind == "file" and dataset.location == str(digits["npz"])
    assert dataset.files == {"digits.npz": hashlib.sha256(digits["npz"].read_bytes()).hexdigest()}
    assert dataset.arrays["x_train"] == {"shape": [1437, 8, 8], "dtype": "uint8"}
    assert dataset.classes == 10
    definition = meta.scenarios["digits-mlp"]
    assert definition["layers"][0] == {
        "layer": "Dense", "units_in": 64, "units_out": 32, "activation": "relu"
    }  # fmt: skip
    assert definition["optimizer"]["kind"] == "adam"

    # The same digits as IDX files give the same training, bit for bit.
    from_idx, again = run(results, digits, digits["idx"])
    for implementation in ("numpy-vectorized", "torch"):
        assert [r.loss for r in again[implementation].rounds] == [
            r.loss for r in cases[implementation].rounds
        ]

    # The report has the scenario's section, from the definition stored in the run.
    report = bench_command("report", from_npz, "--reports-dir", str(tmp_path / "reports"),
                           results=results)  # fmt: skip
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "reports" / f"{from_npz}.html").read_text(encoding="utf-8")
    assert 'id="scenario-digits-mlp"' in html
    assert "scikit-learn&#39;s 8x8 digits: 64-32-10 MLP, Adam" in html
    assert "UCI optical recognition of handwritten digits" in html

    # Without the scenario file (and the data), the stored runs still render and compare.
    for path in (digits["toml"], digits["npz"]):
        path.unlink()
    shutil.rmtree(digits["idx"])
    later = bench_command("report", from_npz, from_idx, "--reports-dir",
                          str(tmp_path / "later"), results=results)  # fmt: skip
    assert later.returncode == 0, later.stderr
    (rendered,) = (tmp_path / "later").glob("2*.html")
    assert 'id="scenario-digits-mlp"' in rendered.read_text(encoding="utf-8")
    compared = bench_command("compare", from_npz, from_idx, results=results)
    assert compared.returncode == 0, compared.stderr
    assert "digits-mlp" in compared.stdout
    shown = bench_command("show", from_idx, results=results)
    assert shown.returncode == 0 and "digits-idx" in shown.stdout
    assert json.loads((results / from_idx / "run.json").read_text())["datasets"]["digits-mlp"][
        "files"
    ]


KMEANS_ON_DIGITS = """
[scenarios.digits-kmeans]
title = "K-Means on scikit-learn's digits"
model = "kmeans"
dataset = "digits.npz"
dtype = "float64"
kmeans = { n_clusters = 10, n_features = 64 }
budgets.smoke = { n_samples = 500 }
budgets.quick = {}
budgets.full = {}
"""


def test_a_kmeans_scenario_on_a_dataset_file_and_a_sweep_of_a_users_scenario(tmp_path, digits):
    (tmp_path / "kmeans.toml").write_text(textwrap.dedent(KMEANS_ON_DIGITS), encoding="utf-8")
    results = tmp_path / "results"
    common = ["--profile", "smoke", "--offline", "--no-peak", "--no-check", "--threads", "1"]
    done = bench_command(
        "run", "--scenarios", str(tmp_path / "kmeans.toml"), "-i", "numpy-vectorized,sklearn",
        *common, results=results,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = results.iterdir()
    cases = {r.case.implementation: r for r in RunStore(run).cases()}
    assert {r.status for r in cases.values()} == {"ok"}
    numpy, sklearn = cases["numpy-vectorized"].rounds[-1], cases["sklearn"].rounds[-1]
    assert numpy.samples == 500 and numpy.n_iter == sklearn.n_iter
    assert numpy.inertia == pytest.approx(sklearn.inertia, rel=1e-9)
    assert 0 < numpy.adjusted_rand_index <= 1  # against the digits' own labels

    swept = bench_command(
        "sweep", "--scenarios", str(digits["toml"]), "-s", "digits-mlp", "--over", "steps",
        "--sizes", "10,20", "-i", "numpy-vectorized", *common, results=tmp_path / "sweep",
    )  # fmt: skip
    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert "Scaling" in swept.stdout and "digits-mlp" in swept.stdout


def test_a_users_scenario_and_dataset_file_run_on_a_local_cluster(tmp_path, digits):
    """The workers get the definition the run stored (they read no scenario file) and find
    the dataset file at its path, checked by SHA-256."""
    pytest.importorskip("distributed")
    results = tmp_path / "results"
    done = bench_command(
        "run", "--cluster", "local:1", "--scenarios", str(digits["toml"]),
        "-i", "numpy-vectorized", "--profile", "smoke", "--offline", "--no-peak",
        "--no-check", "--threads", "1", results=results,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = results.iterdir()
    (record,) = RunStore(run).cases()
    assert record.status == "ok", record.reason
    assert record.worker["dataset_location"] == str(digits["npz"])
    assert record.measured_rounds[0].steps == 60
