"""A user's own dataset, from files: a folder of four IDX files (gzipped or not) or an `.npz`
holding `x_train`, `y_train`, `x_test` and `y_test`. Images of any shape and element type,
labels 0..classes-1 for any number of classes.

`resolve_file(path)` reads and checks everything once and records what it found (each file's
SHA-256, every array's shape and dtype, the class count); `load_file(resolution)` reads the
files again in the worker and refuses any whose digest is no longer the recorded one. A file
that cannot be used is a DatasetError naming it and what is wrong: there is no fallback.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from bench.datasets.catalogue import DatasetError, ImageSplit
from bench.datasets.idx import GZIP_MAGIC, IDX_TYPES, _idx_content, _Unverified
from bench.records import DatasetResolution

ARRAYS = ("x_train", "y_train", "x_test", "y_test")


# The IDX files of a folder, by array: their names as MNIST publishes them, whatever the
# number of image dimensions (idx3: n x h x w; idx4: n x c x h x w), gzipped or not.
IDX_PATTERNS = {
    "x_train": "train-images-idx?-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx?-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


# A bound on one file (and on what an IDX file may inflate to): larger than any dataset this
# harness times in memory, and small enough that a bad header cannot exhaust it.
MAX_FILE_BYTES = 4 * 2**30


def resolve_file(path: str | os.PathLike, requested: str | None = None) -> DatasetResolution:
    """Check the dataset at `path` (a folder of IDX files or an .npz) and record it."""
    location = Path(path).expanduser().absolute()
    files = _files_of(location)
    digests, split = _read(location, files)
    arrays = {name: getattr(split, name) for name in ARRAYS}
    return DatasetResolution(
        requested=requested or str(path),
        used=location.name,
        location=str(location),
        kind="file",
        files=digests,
        arrays={
            name: {"shape": list(array.shape), "dtype": str(array.dtype)}
            for name, array in arrays.items()
        },
        classes=int(max(split.y_train.max(), split.y_test.max())) + 1,
    )


def load_file(resolution: DatasetResolution) -> ImageSplit:
    """The arrays of a resolved dataset file, whose digests must still be the recorded ones."""
    location = Path(resolution.location)
    files = _files_of(location)
    digests, split = _read(location, files)
    for name, expected in (resolution.files or {}).items():
        if digests.get(name) != expected:
            raise DatasetError(
                f"{location / name} changed since the run recorded it (SHA-256 "
                f"{str(digests.get(name))[:12]}…, recorded {expected[:12]}…); put the recorded "
                "file back, or start a new run"
            )
    return split


def _files_of(location: Path) -> dict[str, Path]:
    """The file holding each array: the .npz for all four, or one IDX file each."""
    try:
        if location.is_file():
            if location.suffix != ".npz":
                raise DatasetError(
                    f"{location} is not a dataset: give an .npz file holding "
                    f"{', '.join(ARRAYS)}, or a folder of IDX files"
                )
            return dict.fromkeys(ARRAYS, location)
        if not location.is_dir():
            raise DatasetError(
                f"{location} does not exist: give an .npz file holding {', '.join(ARRAYS)}, "
                f"or a folder holding {', '.join(IDX_PATTERNS.values())} (gzipped or not)"
            )
        found = {}
        for name, pattern in IDX_PATTERNS.items():
            matches = sorted([*location.glob(pattern), *location.glob(pattern + ".gz")])
            if not matches:
                raise DatasetError(
                    f"{location} has no {pattern}[.gz] ({name}); a dataset folder holds "
                    f"{', '.join(IDX_PATTERNS.values())}, each gzipped or not"
                )
            if len(matches) > 1:
                raise DatasetError(
                    f"{location} holds {' and '.join(m.name for m in matches)} for {name}: keep one"
                )
            found[name] = matches[0]
        return found
    except OSError as error:
        raise DatasetError(f"{location} cannot be read: {error.strerror}") from None


def _read(location: Path, files: dict[str, Path]) -> tuple[dict[str, str], ImageSplit]:
    """Each file's SHA-256 (by its name relative to `location`, or its own name) and the
    arrays, checked: one read of each file serves both."""
    contents = {path: _bytes(path) for path in dict.fromkeys(files.values())}
    digests = {
        (path.name if path == location else str(path.relative_to(location))): hashlib.sha256(
            data
        ).hexdigest()
        for path, data in contents.items()
    }
    if len(contents) == 1 and location.is_file():
        arrays = _npz_arrays(location, contents[location])
    else:
        arrays = {name: _idx_array(path, contents[path]) for name, path in files.items()}
    return digests, _checked(arrays, files)


def _bytes(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise DatasetError(f"{path} is larger than the {MAX_FILE_BYTES} bytes a file may be")
        return path.read_bytes()
    except OSError as error:
        raise DatasetError(f"{path} cannot be read: {error.strerror}") from None


def _npz_arrays(path: Path, data: bytes) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            missing = [name for name in ARRAYS if name not in archive.files]
            if missing:
                raise DatasetError(
                    f"{path} has no {', '.join(missing)} (it holds "
                    f"{', '.join(archive.files) or 'nothing'}); an .npz dataset holds "
                    f"{', '.join(ARRAYS)}"
                )
            return {name: archive[name] for name in ARRAYS}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise DatasetError(
            f"{path} is not a readable .npz ({type(error).__name__}: {error}); write it with "
            "numpy.savez or numpy.savez_compressed"
        ) from None


def _idx_array(path: Path, data: bytes) -> np.ndarray:
    try:
        content = _idx_content(data, MAX_FILE_BYTES)
    except _Unverified as problem:
        raise DatasetError(f"{path} is not a usable IDX file: it {problem}") from None
    except (EOFError, OSError, zlib.error) as error:
        kind = "gzip" if data[: len(GZIP_MAGIC)] == GZIP_MAGIC else "IDX"
        raise DatasetError(f"{path} is a truncated or corrupt {kind} file ({error})") from None
    if len(content) < 4 or content[:2] != b"\0\0" or content[2] not in IDX_TYPES:
        raise DatasetError(
            f"{path} is not an IDX file: its magic number is {content[:4].hex() or 'missing'}, "
            "expected 0000 followed by an element type (08 uint8, 09 int8, 0b int16, 0c int32, "
            "0d float32, 0e float64) and the number of dimensions"
        )
    dims = content[3]
    header = 4 + 4 * dims
    if dims < 1 or len(content) < header:
        raise DatasetError(f"{path} is a truncated IDX file: its header is incomplete")
    shape = struct.unpack(f">{dims}I", content[4:header])
    dtype = IDX_TYPES[content[2]]
    body = memoryview(content)[header:]
    if len(body) != dtype.itemsize * int(np.prod(shape)):
        raise DatasetError(
            f"{path}: its header says {list(shape)} {dtype.name} values "
            f"({dtype.itemsize * int(np.prod(shape))} bytes), its data holds {len(body)} bytes"
        )
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _checked(arrays: dict[str, np.ndarray], files: dict[str, Path]) -> ImageSplit:
    """The arrays as a split, or a DatasetError naming the file and what is inconsistent."""
    for name in ("x_train", "x_test"):
        images = arrays[name]
        if images.dtype.kind not in "uif" or images.ndim < 2:
            raise DatasetError(
                f"{files[name]}: {name} is {images.dtype} of shape {list(images.shape)}; "
                "images are numbers, one example per row: (n, features) or (n, height, width) "
                "or (n, channels, height, width)"
            )
        if len(images) == 0:
            raise DatasetError(f"{files[name]}: {name} holds no example")
        if images.dtype.kind == "f" and not np.isfinite(images).all():
            raise DatasetError(f"{files[name]}: {name} holds NaN or infinite values")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise DatasetError(
            f"{files['x_test']}: test images are {list(arrays['x_test'].shape[1:])}, training "
            f"images {list(arrays['x_train'].shape[1:])}; both must have one shape"
        )
    for images, labels in (("x_train", "y_train"), ("x_test", "y_test")):
        y = arrays[labels]
        if y.dtype.kind not in "iu" or y.ndim != 1:
            raise DatasetError(
                f"{files[labels]}: {labels} is {y.dtype} of shape {list(y.shape)}; labels are "
                "integers 0, 1, 2, … one per example: shape (n,)"
            )
        if len(y) != len(arrays[images]):
            raise DatasetError(
                f"{files[labels]}: {len(y)} labels in {labels} for {len(arrays[images])} "
                f"examples in {images}"
            )
        if y.min() < 0:
            raise DatasetError(
                f"{files[labels]}: {labels} holds the label {y.min()}; use 0, 1, 2, …"
            )
    return ImageSplit(
        arrays["x_train"],
        arrays["y_train"].astype(np.int64),
        arrays["x_test"],
        arrays["y_test"].astype(np.int64),
    )
