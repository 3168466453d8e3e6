"""Where a dataset is looked for, best first, and how a user can provide one."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import platformdirs

from bench.datasets.catalogue import IMAGE_DATASETS, check_name

DATA_DIR_VARIABLE = "BENCH_DATA_DIR"


MIRROR_VARIABLE = "BENCH_DATASET_MIRROR"


DEBIAN_DATASETS_ROOT = Path("/usr/share/datasets")


def search_locations(name: str) -> list[Path]:
    """Where `name` is looked for, best first: folders of IDX files, or Keras's .npz file."""
    check_name(name)
    if name not in IMAGE_DATASETS:
        return []
    spec = IMAGE_DATASETS[name]
    locations = []
    locations += user_locations(name)
    locations.append(cache_folder(name))
    keras_datasets = keras_home() / "datasets"
    if spec.keras_npz is not None:
        locations.append(keras_datasets / spec.keras_npz.name)
    if spec.keras_folder is not None:
        locations.append(keras_datasets / spec.keras_folder)
    if spec.debian_folder is not None:
        locations.append(DEBIAN_DATASETS_ROOT / spec.debian_folder)
    return locations


def user_locations(name: str) -> list[Path]:
    """The folders the user chose: `$BENCH_DATA_DIR/<name>/`, then `$BENCH_DATA_DIR` itself
    (files put straight into it are found too: their digests tell MNIST from Fashion-MNIST)."""
    data_dir = os.environ.get(DATA_DIR_VARIABLE)
    if not data_dir:
        return []
    folder = Path(data_dir).expanduser().absolute()
    return [folder / name, folder]


def cache_folder(name: str) -> Path:
    return Path(platformdirs.user_cache_dir("bench")) / "datasets" / name


def keras_home() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def how_to_provide(name: str, rejected: Sequence[Path] = ()) -> str:
    """The ways to provide `name`'s files. Where the user's folders hold files that failed
    verification (`rejected`), the first way is to replace those, not to put files there."""
    spec = IMAGE_DATASETS[name]
    data_dir = os.environ.get(DATA_DIR_VARIABLE) or f"${DATA_DIR_VARIABLE}"
    files = ", ".join(file.name for file in spec.files)
    put = (
        f"replace the files in {', '.join(map(str, rejected))} with the published {name} "
        f"files ({files}, gzipped or not)"
        if rejected
        else f"put {files} (gzipped or not) in {data_dir}/{name}/"
    )
    ways = [
        put,
        f"run `bench data fetch {name}` once a mirror is reachable",
        f"set {MIRROR_VARIABLE} to a server that has <url>/{name}/<file>",
    ]
    if spec.keras_npz is not None:
        ways.append(f"copy Keras's {spec.keras_npz.name} to {keras_home() / 'datasets'}/")
    if spec.debian_package is not None:
        ways.append(f"on Debian or Ubuntu, `apt-get install {spec.debian_package}`")
    return "To provide it: " + "; or ".join(ways) + "."
