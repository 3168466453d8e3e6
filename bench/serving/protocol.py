"""The serving protocol for Python: the messages and the service of `proto/kmeans.proto`, and
the conversions between them and NumPy arrays.

grpcio-tools generates the Python code once per version of the file, in a process of its own,
into this environment (`<prefix>/bench-serving/<hash>/`, else the temporary folder), and it
is imported from there. grpcio-tools is never loaded into a harness process: its compiler
links a protobuf runtime of its own, and a process that has loaded TensorFlow's aborts when
both meet.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np

PROTO = Path(__file__).resolve().parent / "proto" / "kmeans.proto"
# What a serving case needs in Python, and where it comes from.
REQUIREMENTS = ("grpc", "grpc_tools")
INSTALL_HINT = "pip install 'bench[serving]' (make setup installs it)"
MESSAGES, SERVICES = f"{PROTO.stem}_pb2", f"{PROTO.stem}_pb2_grpc"


@functools.cache
def protocol() -> tuple[ModuleType, ModuleType]:
    """(messages, services): `Points`, `Labels`; `KMeansStub`, `KMeansServicer` and
    `add_KMeansServicer_to_server`."""
    folder = str(generated())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(MESSAGES), importlib.import_module(SERVICES)


def generated() -> Path:
    """The folder of the generated code for this version of the file and of grpcio-tools,
    generating it first if needed (into a new folder renamed into place: never half-written)."""
    digest = hashlib.sha256(PROTO.read_bytes())
    digest.update(importlib.metadata.version("grpcio-tools").encode())
    roots = (
        Path(sys.prefix) / "bench-serving",
        Path(tempfile.gettempdir()) / f"bench-serving-{os.getuid()}",
    )
    for root in roots:
        folder = root / digest.hexdigest()[:16]
        if (folder / f"{SERVICES}.py").is_file():
            return folder
        try:
            root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=root, prefix=".generating-"))
        except OSError:
            continue  # not writable: the next place
        subprocess.run(
            [
                sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO.parent}",
                f"--python_out={staging}", f"--grpc_python_out={staging}", PROTO.name,
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        try:
            staging.rename(folder)
        except OSError:  # another process generated it meanwhile
            shutil.rmtree(staging, ignore_errors=True)
        return folder
    raise OSError(f"no writable folder to generate the code of {PROTO.name} in: {roots}")


def points(x: np.ndarray):
    """A `Points` message of the rows of `x`."""
    messages, _ = protocol()
    x = np.ascontiguousarray(x, dtype=np.float64)
    return messages.Points(n_features=x.shape[1], values=x.ravel())


def points_array(message, n_features: int) -> np.ndarray:
    """The rows of a `Points` message; ValueError when they are not rows of `n_features`."""
    values = np.asarray(message.values, dtype=np.float64)
    if message.n_features != n_features or values.size % n_features:
        raise ValueError(
            f"expected points of {n_features} features, got {values.size} values of "
            f"{message.n_features} features"
        )
    return values.reshape(-1, n_features)


def labels(values: np.ndarray):
    """A `Labels` message."""
    messages, _ = protocol()
    return messages.Labels(labels=np.asarray(values, dtype=np.int64).tolist())
