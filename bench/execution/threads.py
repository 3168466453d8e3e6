"""Thread limits for one process, applied before any framework is imported, and recorded.

`limit_environment(n)` must run before NumPy, torch or TensorFlow is imported (their pools
read these variables once, at start-up). `apply_to_frameworks(n)` then sets what can only be
set through an API, for the frameworks the plugin imported. `describe()` records what is in
force so the result shows it, not what was asked for.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "RAYON_NUM_THREADS",  # Rust extensions: rayon's global pool
    "MATMUL_NUM_THREADS",  # Rust extensions: ndarray's matrixmultiply GEMM
)


def available_cores() -> int:
    """Cores this process may run on (affinity/cgroup aware where the OS says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def oversubscription_warning(threads: int) -> str | None:
    """What to say when a case is given more threads than this process has cores."""
    cores = available_cores()
    if threads <= cores:
        return None
    return (
        f"--threads {threads} is more than the {cores} core(s) this process may run on: the "
        "case's threads will take turns on them, and libraries cap their pools at their own "
        "maximum (OpenBLAS at the count it was built for). The summary shows the threads in "
        "force."
    )


def thread_environment(threads: int) -> dict[str, str]:
    """Variables to put in a fresh process's environment to cap every known pool."""
    return {name: str(threads) for name in THREAD_VARIABLES}


def limit_environment(threads: int) -> None:
    os.environ.update(thread_environment(threads))


def apply_to_frameworks(threads: int) -> None:
    """Set thread counts through the APIs of frameworks already imported by the plugin."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
        # Interop threads can only be set before any parallel work; if that moment has
        # passed, describe() records the value in force.
        if torch.get_num_interop_threads() != threads:
            with contextlib.suppress(RuntimeError):
                torch.set_num_interop_threads(threads)
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        # Refused once TF is initialised; the TF_NUM_* variables set before import then hold.
        with contextlib.suppress(RuntimeError):
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)


def describe(extension_pools: dict[str, int] | None = None) -> dict:
    """Thread settings actually in force in this process, with the pools a plugin reports
    itself (`extension_pools`), and under `in_force` the thread count of every pool."""
    from threadpoolctl import threadpool_info

    info: dict = {
        "environment": {name: os.environ.get(name) for name in THREAD_VARIABLES},
        "threadpools": [
            {
                key: pool.get(key)
                for key in (
                    "user_api",
                    "internal_api",
                    "num_threads",
                    "version",
                    "architecture",
                    "filepath",
                )
            }
            for pool in threadpool_info()
        ],
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = {
            "num_threads": torch.get_num_threads(),
            "num_interop_threads": torch.get_num_interop_threads(),
        }
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        info["tensorflow"] = {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        }
    info["extension_pools"] = dict(extension_pools or {})
    info["in_force"] = pool_counts(info)
    return info


def pool_counts(info: dict) -> dict[str, int]:
    """The thread count of every pool a `describe()` record lists, by pool name."""
    counts = {
        f"{p['internal_api']} ({Path(p['filepath'] or '?').name})": p["num_threads"]
        for p in info["threadpools"]
    }
    counts.update(info.get("extension_pools") or {})
    if "torch" in info:
        counts["torch intra-op"] = info["torch"]["num_threads"]
        counts["torch inter-op"] = info["torch"]["num_interop_threads"]
    if "tensorflow" in info:
        # 0 means "TF's default", which is then the TF_NUM_*_THREADS variables set before import.
        for key in ("intra_op", "inter_op"):
            variable = f"TF_NUM_{key.replace('_', '').upper()}_THREADS"
            value = info["tensorflow"][key] or int(info["environment"].get(variable) or 0)
            counts[f"tensorflow {key.replace('_', '-')}"] = value
    return counts
