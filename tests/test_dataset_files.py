"""The user's own datasets: a folder of IDX files (gzipped or not) or an .npz, any image shape
and class count, recorded with digests, shapes and dtypes; every bad file an error naming it
and what is wrong; a dataset the user named never replaced by another."""

from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np
import pytest
from conftest import bench_command

from bench import datasets
from bench.datasets import files
from bench.execution import plan
from bench.scenarios import SCENARIOS

IDX_TYPE = {np.dtype("u1"): 0x08, np.dtype(">f4"): 0x0D, np.dtype(">i4"): 0x0C}


def idx(array: np.ndarray) -> bytes:
    big_endian = array.astype(array.dtype.newbyteorder(">"))
    header = struct.pack(">BBBB", 0, 0, IDX_TYPE[big_endian.dtype], array.ndim)
    return header + struct.pack(f">{array.ndim}I", *array.shape) + big_endian.tobytes()


def arrays(shape=(8, 8), classes=3, n_train=30, n_test=12, dtype=np.uint8):
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 17, size=(n_train, *shape)).astype(dtype),
        "y_train": np.arange(n_train) % classes,
        "x_test": rng.integers(0, 17, size=(n_test, *shape)).astype(dtype),
        "y_test": np.arange(n_test) % classes,
    }


def write_idx_folder(folder, data, *, compressed=("x_train", "y_train")):
    folder.mkdir(parents=True, exist_ok=True)
    names = {
        "x_train": f"train-images-idx{data['x_train'].ndim}-ubyte",
        "y_train": "train-labels-idx1-ubyte",
        "x_test": f"t10k-images-idx{data['x_test'].ndim}-ubyte",
        "y_test": "t10k-labels-idx1-ubyte",
    }
    for key, name in names.items():
        array = data[key] if key.startswith("x") else data[key].astype(np.uint8)
        content = idx(array)
        if key in compressed:
            (folder / f"{name}.gz").write_bytes(gzip.compress(content))
        else:
            (folder / name).write_bytes(content)
    return folder


def test_an_npz_is_recorded_with_its_digest_shapes_and_dtypes(tmp_path):
    data = arrays()
    path = tmp_path / "mine.npz"
    np.savez(path, **data)
    resolution = datasets.resolve_file(path)
    assert resolution.from_file and resolution.location == str(path.absolute())
    assert resolution.files == {"mine.npz": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert resolution.arrays["x_train"] == {"shape": [30, 8, 8], "dtype": "uint8"}
    assert resolution.arrays["y_test"]["shape"] == [12]
    assert resolution.classes == 3
    split = datasets.load_images(resolution)
    np.testing.assert_array_equal(split.x_test, data["x_test"])
    assert split.y_train.dtype == np.int64


@pytest.mark.parametrize("shape", [(8, 8), (3, 4, 5), (20,)])
def test_an_idx_folder_of_any_image_shape_gzipped_or_not(tmp_path, shape):
    data = arrays(shape=shape, dtype=">f4" if len(shape) == 1 else np.uint8)
    folder = write_idx_folder(tmp_path / "idx", data)
    resolution = datasets.resolve_file(folder)
    assert sorted(resolution.files) == sorted(p.name for p in folder.iterdir())
    assert resolution.arrays["x_train"]["shape"] == [30, *shape]
    split = datasets.load_images(resolution)
    np.testing.assert_array_equal(split.x_train, data["x_train"])
    np.testing.assert_array_equal(split.y_test, data["y_test"])


def test_a_file_changed_after_it_was_recorded_is_refused(tmp_path):
    path = tmp_path / "mine.npz"
    np.savez(path, **arrays())
    resolution = datasets.resolve_file(path)
    np.savez(path, **arrays(classes=2))
    with pytest.raises(datasets.DatasetError, match=r"mine.npz changed since the run recorded it"):
        datasets.load_images(resolution)


def _npz(tmp_path, **changes):
    data = {**arrays(), **changes}
    path = tmp_path / "bad.npz"
    np.savez(path, **{k: v for k, v in data.items() if v is not None})
    return path


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"y_test": None}, "has no y_test (it holds x_train, y_train, x_test)"),
        ({"x_test": np.zeros((12, 7, 7))}, "test images are [7, 7], training images [8, 8]"),
        ({"y_train": np.zeros(29, int)}, "29 labels in y_train for 30 examples in x_train"),
        ({"y_train": np.zeros(30)}, "y_train is float64 of shape [30]; labels are integers"),
        ({"y_test": -np.ones(12, int)}, "y_test holds the label -1"),
        ({"x_train": np.full((30, 8, 8), np.nan)}, "x_train holds NaN or infinite values"),
        ({"x_train": np.zeros(30)}, "x_train is float64 of shape [30]; images are numbers, one"),
    ],
)
def test_a_mis_shaped_or_inconsistent_npz_names_the_file_and_the_problem(
    tmp_path, changes, expected
):
    path = _npz(tmp_path, **changes)
    with pytest.raises(datasets.DatasetError) as error:
        datasets.resolve_file(path)
    assert str(path) in str(error.value)
    assert expected in str(error.value)


def test_corrupt_files_name_the_file_and_what_is_wrong(tmp_path):
    path = tmp_path / "cut.npz"
    np.savez(path, **arrays())
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(datasets.DatasetError, match=r"cut.npz is not a readable .npz"):
        datasets.resolve_file(path)

    folder = write_idx_folder(tmp_path / "idx", arrays())
    images = folder / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:40])
    with pytest.raises(datasets.DatasetError, match=r"train-images-idx3-ubyte.gz is a truncated"):
        datasets.resolve_file(folder)

    folder = write_idx_folder(tmp_path / "idx2", arrays())
    labels = folder / "t10k-labels-idx1-ubyte"
    labels.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 12) + b"\x00" * 5)
    with pytest.raises(datasets.DatasetError, match=r"header says \[12\] uint8 values"):
        datasets.resolve_file(folder)
    labels.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(datasets.DatasetError, match=r"t10k-labels-idx1-ubyte is not an IDX file"):
        datasets.resolve_file(folder)
    labels.unlink()
    with pytest.raises(datasets.DatasetError, match=r"has no t10k-labels-idx1-ubyte\[.gz\]"):
        datasets.resolve_file(folder)

    other = write_idx_folder(tmp_path / "idx3", arrays(), compressed=())
    write_idx_folder(other, arrays(), compressed=("y_test",))
    both = r"holds t10k-labels-idx1-ubyte and t10k-labels-idx1-ubyte.gz for y_test: keep one"
    with pytest.raises(datasets.DatasetError, match=both):
        datasets.resolve_file(other)

    with pytest.raises(datasets.DatasetError, match=r"does not exist"):
        datasets.resolve_file(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(datasets.DatasetError, match=r"notes.txt is not a dataset: give an .npz"):
        datasets.resolve_file(tmp_path / "notes.txt")


def test_a_dataset_that_does_not_fit_the_scenario_is_refused_before_anything_runs(tmp_path):
    path = tmp_path / "mine.npz"
    np.savez(path, **arrays(classes=12, n_train=40))
    resolution = datasets.resolve_file(path)
    with pytest.raises(datasets.DatasetError, match=r"input_shape \[784\] \(784 values\)"):
        plan.check_dataset_fits(SCENARIOS["dlfs-mlp"], resolution)
    np.savez(path, **arrays(shape=(28, 28), classes=12, n_train=40))
    classes = r"labels 0..11 \(12 classes\), but the scenario's last layer has 10 outputs"
    with pytest.raises(datasets.DatasetError, match=classes):
        plan.check_dataset_fits(SCENARIOS["dlfs-mlp"], datasets.resolve_file(path))
    with pytest.raises(datasets.DatasetError, match=r"clusters 2 features"):
        plan.check_dataset_fits(SCENARIOS["linfa-kmeans"], datasets.resolve_file(path))


def test_a_dataset_the_user_names_never_falls_back(tmp_path, isolated):
    results = tmp_path / "results"
    args = ["run", "-s", "dlfs-mlp", "-i", "numpy-vectorized", "--profile", "smoke"]
    named = bench_command(*args, "--dataset", "mnist", "--offline", "--no-peak", results=results)
    assert named.returncode == 2
    assert (
        "mnist is not available" in named.stderr
        and "mnist-5k" not in named.stderr.split("To provide it")[0].split("not available")[0]
    )
    assert not results.exists() or not any(results.iterdir())
    missing = bench_command(*args, "--dataset", str(tmp_path / "gone.npz"), results=results)
    assert missing.returncode == 2
    assert "there is no file or folder" in missing.stderr


def test_own_files_in_the_data_dir_are_an_error_that_says_how_to_give_them(fake, isolated):
    """The reported problem: one's own files put in $BENCH_DATA_DIR/mnist were rejected, the
    run quietly used mnist-5k, and the advice was to put the files where they already were."""
    folder = isolated / "data" / "mnist"
    write_idx_folder(folder, arrays(shape=(28, 28)))
    (folder / "train-images-idx3-ubyte.gz").rename(folder / "train-images-idx3-ubyte.gz")
    with pytest.raises(datasets.DatasetError) as error:
        datasets.resolve("mnist", download=False)
    message = " ".join(str(error.value).split())
    assert "SHA-256" in message and "does not fall back" in message
    assert "--dataset PATH" in message
    assert f"replace the files in {folder}" in message
    assert f"in {isolated / 'data'}/mnist/" not in message.split("To provide it:")[1]
    # The same files, given as the user's own dataset, are used.
    resolution = datasets.resolve_file(folder)
    assert resolution.arrays["x_train"]["shape"] == [30, 28, 28]


def test_files_put_straight_into_the_data_dir_are_found(fake, isolated):
    fake.write(isolated / "data")
    resolution = datasets.resolve("mnist", download=False)
    assert resolution.location == str(isolated / "data") and resolution.fallback_reason is None
    fake.assert_loaded(datasets.load_images(resolution))


def test_files_module_reads_every_idx_element_type():
    for dtype in (np.uint8, ">f4", ">i4"):
        array = np.arange(12).reshape(3, 4).astype(dtype)
        got = files._idx_array(files.Path("x"), idx(array))
        np.testing.assert_array_equal(got, array)
        assert got.dtype.isnative
