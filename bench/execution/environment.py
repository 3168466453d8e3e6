"""The environment fingerprint stored with every run: what the numbers were measured on.

Every probe is independent and guarded: a probe that fails records None and the others go
on, because a missing fact must never cost a run. Framework versions come from package
metadata, never from importing the framework: importing torch or TensorFlow here would take
seconds and start thread pools in the harness process.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.execution import threads as thread_limits

PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "torch",
    "tensorflow",
    "keras",
    "mlxtend",
    "pytest",
    "pytest-benchmark",
    "threadpoolctl",
)
# TensorFlow ships under either name; the key stays "tensorflow" and the one found is recorded.
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu")
BLAS_FIELDS = ("user_api", "internal_api", "version", "architecture", "num_threads")
EXTRA_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "VECLIB_MAXIMUM_THREADS")
SUBPROCESS_TIMEOUT_S = 5.0
# The crates behind the compiled implementations whose versions a run records (Cargo.lock).
RUST_CRATES = (
    "ndarray",
    "matrixmultiply",
    "linfa",
    "linfa-clustering",
    "tch",
    "torch-sys",
    "pyo3",
    "numpy",
    "rayon",
    # the serving benchmark's programs (bench/serving/rust)
    "tonic",
    "prost",
    "tokio",
    "hdrhistogram",
)


def fingerprint(threads: int, project_dir: Path) -> dict[str, Any]:
    """Describe this machine and software stack; JSON-serialisable, same keys every time."""
    return {
        **machine_facts(),
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "packages": package_versions(),
        "tensorflow_distribution": _probe(_tensorflow_distribution),
        "blas": _probe(blas_libraries),
        "threads": threads,
        "git_commit": _probe(lambda: _git(project_dir, "rev-parse", "--verify", "HEAD")),
        "git_dirty": _probe(lambda: _git_dirty(project_dir)),
        "environment_variables": _probe(_relevant_variables),
        "rust": _probe(lambda: rust_builds(project_dir)),
    }


def machine_facts() -> dict[str, Any]:
    """The hardware (CPU, memory, GPUs) and system a case's times depend on, and the host's
    name."""
    return {
        "cpu_model": _probe(_cpu_model),
        "cores_logical": _probe(lambda: _psutil().cpu_count(logical=True)),
        "cores_physical": _probe(lambda: _psutil().cpu_count(logical=False)),
        "cores_allowed": _probe(thread_limits.available_cores),
        "memory_total_bytes": _probe(lambda: _psutil().virtual_memory().total),
        "memory_limit_bytes": _probe(_cgroup_memory_limit),
        "os": _probe(platform.system) or None,
        "kernel": _probe(platform.release) or None,
        "distribution": _probe(_distribution),
        "machine": _probe(platform.machine) or None,
        "hostname": _probe(socket.gethostname),
        "gpu": _probe(_gpus),
    }


def package_versions() -> dict[str, str | None]:
    """The installed version of every package a case's numbers depend on (None: absent)."""
    return {name: _probe(lambda name=name: _version(name)) for name in PACKAGES}


def _probe(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception:
        return None


def _psutil():
    import psutil

    return psutil


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def _cgroup_memory_limit() -> int | None:
    """A container's memory cap (cgroup v2), which can be far below the machine's total."""
    text = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    return None if text == "max" else int(text)


def _distribution() -> str | None:
    return platform.freedesktop_os_release().get("PRETTY_NAME")


def _version(distribution: str) -> str | None:
    if distribution == "tensorflow":
        found = _tensorflow_distribution()
        return importlib.metadata.version(found) if found else None
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _tensorflow_distribution() -> str | None:
    for name in TENSORFLOW_DISTRIBUTIONS:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        return name
    return None


def blas_libraries() -> list[dict[str, Any]]:
    """BLAS libraries NumPy loads. num_threads is this process's default, not a case's limit:
    each worker records the pools actually in force with `threads.describe()`."""
    import numpy  # noqa: F401  (loads the BLAS library so threadpoolctl can see it)
    from threadpoolctl import threadpool_info

    return [
        {field: pool.get(field) for field in BLAS_FIELDS}
        for pool in threadpool_info()
        if pool.get("user_api") == "blas"
    ]


def _gpus() -> list[dict[str, str]] | None:
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return None
    completed = subprocess.run(
        [executable, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=True,
    )
    gpus = []
    for line in completed.stdout.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) == 3:
            gpus.append(dict(zip(("name", "memory_total", "driver_version"), fields, strict=True)))
    return gpus or None


def _git(project_dir: Path, *arguments: str) -> str | None:
    executable = shutil.which("git")
    if executable is None:
        return None
    completed = subprocess.run(
        [executable, "-C", str(project_dir), *arguments],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    return completed.stdout.strip() if completed.returncode == 0 else None


def _git_dirty(project_dir: Path) -> bool | None:
    # Untracked files count: a new, uncommitted implementation file changes what ran.
    status = _git(project_dir, "status", "--porcelain")
    return None if status is None else bool(status)


def rust_stamp_dir() -> Path:
    """Where `tools/build_rust.py` records each extension (and crate of programs) it installed
    in this environment."""
    return Path(sys.prefix) / "bench-rust"


def rust_builds(project_dir: Path) -> dict[str, Any] | None:
    """The compiled implementations: the crate versions pinned by Cargo.lock, and for each
    extension module installed here the build's record (rustc, cargo, RUSTFLAGS, target CPU,
    the LibTorch version it links). None outside a Cargo workspace."""
    lock = project_dir / "Cargo.lock"
    if not lock.is_file():
        return None
    crates: dict[str, list[str]] = {}
    for package in lock.read_text(encoding="utf-8").split("[[package]]")[1:]:
        name = re.search(r'^name = "(.+)"$', package, re.MULTILINE)
        version = re.search(r'^version = "(.+)"$', package, re.MULTILINE)
        if name and version and name.group(1) in RUST_CRATES:
            crates.setdefault(name.group(1), []).append(version.group(1))
    records = {
        stamp.stem: json.loads(stamp.read_text(encoding="utf-8"))
        for stamp in sorted(rust_stamp_dir().glob("*.json"))
    }
    builds = {name: record for name, record in records.items() if _installed(name, record)}
    return {"crates": {name: ", ".join(v) for name, v in sorted(crates.items())}, "builds": builds}


def _installed(name: str, record: dict) -> bool:
    """Whether what a build record describes is still here: its extension module, or for a
    crate of programs, every program beside this interpreter."""
    if "binaries" in record:
        return all((rust_program_dir() / binary).is_file() for binary in record["binaries"])
    return importlib.util.find_spec(name) is not None


def rust_program_dir() -> Path:
    """Where `tools/build_rust.py` installs the compiled programs: beside the interpreter of
    this environment, as pip installs console scripts."""
    return Path(sys.executable).parent


def _relevant_variables() -> dict[str, str]:
    return {
        name: value
        for name, value in sorted(os.environ.items())
        if name.endswith("_NUM_THREADS")
        or name in EXTRA_VARIABLES
        or name in thread_limits.THREAD_VARIABLES
    }
