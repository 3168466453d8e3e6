"""What the datasets are: their names, the published files each must consist of (with the
digests that identify them) and the mirrors that serve them, and what a caller gets back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.names import unknown_name_message

NAMES = ("mnist", "fashion-mnist", "mnist-5k", "blobs")


FALLBACK = "mnist-5k"


BLOBS_LOCATION = "sklearn.datasets.make_blobs"


IMAGE_SIDE = 28


N_CLASSES = 10


class DatasetError(Exception):
    """A dataset cannot be found, fetched or read; the message says what to do next."""


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


def check_name(name: str) -> None:
    if name not in NAMES:
        raise DatasetError(unknown_name_message("dataset", name, NAMES))
