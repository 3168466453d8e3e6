"""Checking and reading the files of an image dataset: published IDX files (gzipped or not)
verified by SHA-256 against the catalogue, and Keras's one-file `.npz` copy."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from bench.datasets.catalogue import (
    IMAGE_DATASETS,
    IMAGE_SIDE,
    N_CLASSES,
    DatasetError,
    FileCheck,
    IdxFile,
    ImageDataset,
    ImageSplit,
    NpzFile,
)

CHUNK_BYTES = 2**20


GZIP_MAGIC = b"\x1f\x8b"


# IDX magic number: two zero bytes, the element type (0x08 = unsigned byte), the number of dims.
IDX_UNSIGNED_BYTE = 0x08


# Every element type the IDX format defines, by its code; big-endian, as the format says.
IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


# No image dataset file holds more: the largest published one is 47 040 016 bytes (60 000
# images of 28x28 and the header). A file that inflates beyond it, or beyond what its own
# IDX header declares, is refused while it is being decompressed.
MAX_IDX_BYTES = 64 * 2**20


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _idx_content(source: Path | bytes, max_bytes: int = MAX_IDX_BYTES) -> bytes:
    """The IDX bytes of a file (or of its bytes, already read), gzipped or not; recognised by
    content, not by name, because some downloaders decompress a .gz and keep its name.
    Decompressed as a stream, never beyond the size the IDX header declares (nor
    `max_bytes`): a small gzip file that inflates to gigabytes is refused before it fills
    the memory."""

    with contextlib.ExitStack() as stack:
        raw = stack.enter_context(
            io.BytesIO(source) if isinstance(source, bytes) else source.open("rb")
        )
        compressed = raw.read(len(GZIP_MAGIC)) == GZIP_MAGIC
        raw.seek(0)
        stream = stack.enter_context(gzip.GzipFile(fileobj=raw)) if compressed else raw
        header = stream.read(4)
        limit, limit_is = max_bytes, f"the {max_bytes} bytes a dataset file may hold"
        if len(header) == 4 and header[:2] == b"\0\0" and 1 <= header[3] <= 4:
            dims = stream.read(4 * header[3])
            header += dims
            if len(dims) == 4 * header[3]:
                item = IDX_TYPES[header[2]].itemsize if header[2] in IDX_TYPES else 1
                count = math.prod(struct.unpack(f">{header[3]}I", dims))
                declared = len(header) + item * count
                if declared < limit:
                    limit, limit_is = declared, f"the {declared} bytes its IDX header declares"
        content = header + stream.read(max(0, limit - len(header)) + 1)
    if len(content) > limit:
        what = "inflates" if compressed else "holds"
        raise _Unverified(f"{what} beyond {limit_is}")
    return content


def _verified_idx_content(path: Path, expected: IdxFile) -> bytes:
    """The file's IDX bytes if they are the expected ones, else _Unverified saying why."""
    try:
        content = _idx_content(path)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise _Unverified(f"truncated or corrupt gzip: {error}") from None
    except OSError as error:
        raise _Unverified(f"unreadable: {error}") from None
    digest = hashlib.sha256(content).hexdigest()
    if digest != expected.idx_sha256:
        raise _Unverified(
            f"SHA-256 mismatch: content {digest[:12]}…, expected {expected.idx_sha256[:12]}…"
        )
    return content


def idx_file_problem(path: Path, expected: IdxFile) -> str | None:
    """None when `path` holds the expected file, else why it cannot be used."""
    try:
        if sha256_of_file(path) == expected.gz_sha256:
            return None  # the published archive: no need to decompress it
    except OSError as error:
        return f"unreadable: {error}"
    try:
        _verified_idx_content(path, expected)
    except _Unverified as problem:
        return str(problem)
    return None


def unreadable(path: Path, error: OSError) -> str:
    """What to say of a file or folder that cannot be read (Path.is_file raises on EACCES)."""
    return (
        f"unreadable ({error.strerror}); make {path} readable (e.g. chmod -R u+rX) or move it away"
    )


def check_location(name: str, location: Path) -> list[FileCheck]:
    """A check of every file of `name` found at `location`; an unreadable location is one
    failed check of its own, so that the other locations are still searched."""
    try:
        return _check_files(name, location)
    except OSError as error:
        return [FileCheck(name, location, False, unreadable(location, error))]


def _check_files(name: str, location: Path) -> list[FileCheck]:
    spec = IMAGE_DATASETS[name]
    if spec.keras_npz is not None and location.name == spec.keras_npz.name:
        if not location.is_file():
            return []
        problem = _npz_problem(location, spec.keras_npz)
        return [FileCheck(name, location, problem is None, problem or "SHA-256 verified")]
    checks = []
    for expected in spec.files:
        for file_name in expected.accepted_names:
            path = location / file_name
            if path.is_file():
                problem = idx_file_problem(path, expected)
                checks.append(FileCheck(name, path, problem is None, problem or "SHA-256 verified"))
    return checks


def _missing_files(spec: ImageDataset, location: Path, checks: list[FileCheck]) -> list[str]:
    usable = {check.path.name for check in checks if check.ok}
    if spec.keras_npz is not None and location.name == spec.keras_npz.name:
        return [] if usable else [spec.keras_npz.name]
    return [file.name for file in spec.files if not usable & set(file.accepted_names)]


def is_complete(spec: ImageDataset, location: Path, checks: list[FileCheck]) -> bool:
    return bool(checks) and not _missing_files(spec, location, checks)


def describe_unusable(spec: ImageDataset, location: Path, checks: list[FileCheck]) -> str:
    if not checks:
        exists = os.path.exists(location)  # False, not an error, under an unreadable folder
        return f"{location} holds none of the files" if exists else f"{location} does not exist"
    problems = [
        check.detail if check.path == location else f"{check.path.name}: {check.detail}"
        for check in checks
        if not check.ok
    ]
    missing = _missing_files(spec, location, checks)
    if missing:
        problems.append(f"no good {', '.join(missing)}")
    return f"{location}: {'; '.join(problems)}"


class _Unverified(Exception):
    """A file is not the one expected; the message says how it differs."""


def corrupt(name: str, path: Path, why: str) -> DatasetError:
    return DatasetError(
        f"{path} is not a usable {name} file ({why}); "
        f"delete it or run `bench data fetch {name} --force`"
    )


def load_idx_folder(name: str, folder: Path, spec: ImageDataset) -> ImageSplit:
    x_train = _read_idx_file(name, folder, spec.train_images, dims=3)
    y_train = _read_idx_file(name, folder, spec.train_labels, dims=1)
    x_test = _read_idx_file(name, folder, spec.test_images, dims=3)
    y_test = _read_idx_file(name, folder, spec.test_labels, dims=1)
    for images, labels, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if len(images) != len(labels):
            raise DatasetError(
                f"{folder} holds {len(images)} {split} images but {len(labels)} labels; "
                f"run `bench data fetch {name} --force`"
            )
    return ImageSplit(x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64))


def _read_idx_file(name: str, folder: Path, expected: IdxFile, *, dims: int) -> np.ndarray:
    """The first accepted copy of `expected` in `folder` that verifies, parsed."""
    problems = []
    for file_name in expected.accepted_names:
        path = folder / file_name
        try:
            if not path.is_file():
                continue
        except OSError as error:
            raise DatasetError(f"{path}: {unreadable(path, error)}") from None
        try:
            content = _verified_idx_content(path, expected)
        except _Unverified as problem:
            problems.append((path, str(problem)))
            continue
        return _parse_idx(name, path, content, dims)
    if problems:
        path, why = problems[0]
        raise corrupt(name, path, why)
    raise DatasetError(
        f"{folder} has no {expected.name}; run `bench data fetch {name}` or "
        f"`bench data verify {name}` to see where it is looked for"
    )


def _parse_idx(name: str, path: Path, content: bytes, dims: int) -> np.ndarray:
    header_size = 4 + 4 * dims
    if len(content) < header_size:
        raise corrupt(name, path, f"{len(content)} bytes, shorter than an IDX header")
    magic = struct.unpack(">I", content[:4])[0]
    if magic != (IDX_UNSIGNED_BYTE << 8 | dims):
        raise corrupt(name, path, f"IDX magic number {magic:#010x}, expected {dims}-d uint8")
    shape = struct.unpack(f">{dims}I", content[4:header_size])
    body = memoryview(content)[header_size:]
    if len(body) != int(np.prod(shape)):
        raise corrupt(name, path, f"header says {shape}, data holds {len(body)} bytes")
    array = np.frombuffer(body, dtype=np.uint8).reshape(shape).copy()
    if dims == 3 and shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise corrupt(name, path, f"images are {shape[1]}x{shape[2]}, expected 28x28")
    if dims == 1 and array.size and array.max() >= N_CLASSES:
        raise corrupt(name, path, f"label {array.max()} outside 0..{N_CLASSES - 1}")
    return array


def _npz_problem(path: Path, expected: NpzFile) -> str | None:
    try:
        digest = sha256_of_file(path)
    except OSError as error:
        return f"unreadable: {error}"
    if digest != expected.sha256:
        return f"SHA-256 mismatch: {digest[:12]}…, expected {expected.sha256[:12]}…"
    return None


def load_keras_npz(name: str, path: Path, expected: NpzFile) -> ImageSplit:
    problem = _npz_problem(path, expected)
    if problem:
        raise corrupt(name, path, problem)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, KeyError, ValueError) as error:
        raise corrupt(name, path, f"unreadable npz: {error}") from None
    for key in ("x_train", "x_test"):
        images = arrays[key]
        if images.dtype != np.uint8 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
            raise corrupt(name, path, f"{key} is {images.dtype} {images.shape}")
    return ImageSplit(
        arrays["x_train"],
        arrays["y_train"].astype(np.int64),
        arrays["x_test"],
        arrays["y_test"].astype(np.int64),
    )
