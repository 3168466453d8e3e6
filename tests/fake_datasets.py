"""A sandbox for dataset tests, with no network: every search location and the download
cache in a temporary folder, a tiny synthetic IDX dataset the catalogue is patched to expect,
and http.server mirrors on 127.0.0.1 that serve it (or misbehave)."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import platformdirs
import pytest

from bench import datasets
from bench.datasets import locations

N_TRAIN, N_TEST = 20, 10
IDX_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
REAL_DEBIAN_ROOT = locations.DEBIAN_DATASETS_ROOT


def idx_bytes(array: np.ndarray) -> bytes:
    magic = 0x0800 | array.ndim
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclasses.dataclass
class FakeDataset:
    """Tiny IDX images and labels, their published (.gz) bytes, and a table entry for them."""

    arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    raw: dict[str, bytes]  # IDX bytes by published (.gz) name
    published: dict[str, bytes]  # gzip bytes by name, as a mirror serves them
    spec: datasets.ImageDataset

    def write(self, folder: Path, *, compressed: bool = True) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name in IDX_NAMES:
            if compressed:
                (folder / name).write_bytes(self.published[name])
            else:
                (folder / name.removesuffix(".gz")).write_bytes(self.raw[name])
        return folder

    def assert_loaded(self, split: datasets.ImageSplit) -> None:
        loaded = (split.x_train, split.y_train, split.x_test, split.y_test)
        for got, expected in zip(loaded, self.arrays, strict=True):
            np.testing.assert_array_equal(got, expected)
        assert split.x_train.dtype == np.uint8 and split.y_train.dtype == np.int64


def make_fake_dataset() -> FakeDataset:
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8)
    y_train = np.arange(N_TRAIN, dtype=np.uint8) % 10
    x_test = rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8)
    y_test = rng.integers(0, 10, N_TEST, dtype=np.uint8)
    arrays = (x_train, y_train, x_test, y_test)
    raw = {name: idx_bytes(array) for name, array in zip(IDX_NAMES, arrays, strict=True)}
    published = {name: gzip.compress(data, mtime=0) for name, data in raw.items()}
    files = [
        datasets.IdxFile(name, sha256(published[name]), sha256(raw[name])) for name in IDX_NAMES
    ]
    spec = datasets.ImageDataset(*files, mirrors=())
    return FakeDataset(
        (x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)), raw, published, spec
    )


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every search location and the download cache into tmp_path."""
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda app: str(tmp_path / "cache" / app))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("BENCH_DATASET_MIRROR", raising=False)
    monkeypatch.delenv("BENCH_DOWNLOAD_TIMEOUT", raising=False)
    monkeypatch.setattr(locations, "DEBIAN_DATASETS_ROOT", tmp_path / "debian")
    return tmp_path


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeDataset:
    """The table expects the fake files for both mnist and fashion-mnist, with no mirror of
    its own: only $BENCH_DATASET_MIRROR is tried."""
    dataset = make_fake_dataset()
    for name in ("mnist", "fashion-mnist"):
        real = datasets.IMAGE_DATASETS[name]
        patched = dataclasses.replace(
            dataset.spec,
            keras_folder=real.keras_folder,
            debian_package=real.debian_package,
            debian_folder=real.debian_folder,
        )
        monkeypatch.setitem(datasets.IMAGE_DATASETS, name, patched)
    return dataset


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        super().do_GET()


class TruncatingHandler(QuietHandler):
    """Promises 1 000 bytes, sends 10, and hangs up: a connection lost mid-download."""

    def do_GET(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"\x1f\x8b" + b"\0" * 8)
        self.close_connection = True


@dataclasses.dataclass
class Served:
    url: str
    requests: list[str]


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """serve(files, handler) starts a server on 127.0.0.1 with `files` ({relative path:
    bytes}) and sets $BENCH_DATASET_MIRROR to it; shut down after the test."""
    servers = []

    def start(files: dict[str, bytes], handler: type = QuietHandler) -> Served:
        root = tmp_path / f"served-{len(servers)}"
        root.mkdir()
        for relative, data in files.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_bytes(data)
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
        )
        server.requests = []  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        url = f"http://127.0.0.1:{server.server_port}"
        monkeypatch.setenv("BENCH_DATASET_MIRROR", url)
        return Served(url, server.requests)  # type: ignore[attr-defined]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def dataset_files(fake: FakeDataset, name: str) -> dict[str, bytes]:
    return {f"{name}/{file}": data for file, data in fake.published.items()}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cache_folder(tmp_path: Path, name: str) -> Path:
    return tmp_path / "cache" / "bench" / "datasets" / name
