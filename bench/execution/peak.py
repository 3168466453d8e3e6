"""The machine's physical limits at one thread count: GEMM rate and memory bandwidth; and
a GPU's, for the cases that run on one (`--device cuda`: torch's matrix product and a copy
on the device, with TF32 off as in the cases).

Cases report achieved GFLOP/s as a share of these. The measurement runs in a fresh process
(`python -m bench.execution.peak --threads N`) because BLAS reads its thread caps once, when
NumPy is imported: this module imports NumPy only after `limit_environment` has set them.

Each figure is the best repetition, not the median: interrupts, neighbours and frequency
dips only ever slow a repetition down, so the fastest one is the closest estimate of what
the hardware can do, which is what "share of peak" divides by.

The figures belong to the machine, not to a run: `machine_peak` measures them once per
machine and thread count and keeps them in a cache file, keyed by what decides them (CPU
model, cores, BLAS library, threads), until they are `MAX_AGE_DAYS` old or remeasured on
request. Each figure says whether it was measured now or taken from the cache, and when it
was measured.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import platformdirs

from bench.execution import launcher
from bench.execution import threads as thread_limits
from bench.execution.devices import exact_arithmetic
from bench.files import atomic_write_json

GEMM_SIZES = (1024, 1536, 2048)
# Share of the time budget for each measurement: float32 GEMM, float64 GEMM, bandwidth.
BUDGET_SHARES = (0.5, 0.25, 0.25)
MIN_REPETITIONS = 2
MAX_REPETITIONS = 50
BANDWIDTH_ARRAY_BYTES = 256 * 2**20
# The cache of measured peaks: $BENCH_PEAK_CACHE, else peak.json in the user's cache folder.
CACHE_ENV = "BENCH_PEAK_CACHE"
# A cached figure older than this is measured again: a BIOS setting, a kernel or a cooling
# change can move it without changing the key.
MAX_AGE_DAYS = 30
MEASURED, CACHED = "measured", "cached"
# The fingerprint facts (bench.execution.environment) that decide the figures.
KEY_FACTS = ("cpu_model", "cores_logical", "cores_allowed", "machine")
BLAS_KEY_FIELDS = ("internal_api", "version", "architecture")


def cache_file() -> Path:
    override = os.environ.get(CACHE_ENV)
    return Path(override) if override else Path(platformdirs.user_cache_dir("bench")) / "peak.json"


def cache_key(environment: dict, threads: int, device: str = "cpu") -> str:
    """What the peak at `threads` (or on a GPU) depends on, as one string: CPU, cores, BLAS,
    threads; for a GPU, the machine's GPUs (as nvidia-smi names them) and the device."""
    if device != "cpu":
        return json.dumps({"gpu": environment.get("gpu"), "device": device}, sort_keys=True)
    blas = [
        {field: pool.get(field) for field in BLAS_KEY_FIELDS}
        for pool in environment.get("blas") or ()
        if isinstance(pool, dict)
    ]
    facts = {fact: environment.get(fact) for fact in KEY_FACTS}
    return json.dumps({**facts, "blas": blas, "threads": threads}, sort_keys=True)


def machine_peak(
    threads: int,
    environment: dict,
    *,
    remeasure: bool = False,
    now: dt.datetime | None = None,
    device: str = "cpu",
) -> dict:
    """The peak at `threads` on the machine `environment` describes: from the cache when it
    was measured there less than MAX_AGE_DAYS ago (and `remeasure` is false), else measured
    now and cached. `source` says which, `measured_at` when; a failed measurement has an
    `error` and is not cached."""
    now = now or dt.datetime.now()
    key = cache_key(environment, threads, device)
    cache = _read_cache()
    cached = cache.get(key)
    if not remeasure and isinstance(cached, dict) and _fresh(cached, now):
        return {**cached, "source": CACHED}
    result = measure_in_subprocess(threads, device=device)
    if "error" in result:
        return {**result, "source": MEASURED}
    result = {**result, "measured_at": now.isoformat(timespec="seconds")}
    with contextlib.suppress(OSError):  # an unwritable cache only means measuring next time
        atomic_write_json(cache_file(), {**_read_cache(), key: result})
    return {**result, "source": MEASURED}


def _fresh(entry: dict, now: dt.datetime) -> bool:
    try:
        measured = dt.datetime.fromisoformat(entry["measured_at"])
    except (KeyError, TypeError, ValueError):
        return False
    return dt.timedelta(0) <= now - measured <= dt.timedelta(days=MAX_AGE_DAYS)


def _read_cache() -> dict:
    try:
        data = json.loads(cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def measure_in_subprocess(
    threads: int, seconds: float = 1.0, timeout: float = 120, device: str = "cpu"
) -> dict:
    """Run this module in a fresh process; on any failure, a dict with "error"."""
    arguments = ["-m", "bench.execution.peak", "--threads", str(threads), "--seconds", str(seconds)]
    if device != "cpu":
        arguments += ["--device", device]
    failure = {"threads": threads, "command": [sys.executable, *arguments]}
    try:
        completed = launcher.run_python(arguments, threads=threads, timeout=timeout)
    except OSError as error:
        return {**failure, "error": f"could not start the peak measurement: {error}"}
    if completed.timed_out:
        return {**failure, "error": f"peak measurement took longer than {timeout} s"}
    if completed.returncode != 0:
        return {
            **failure,
            "error": f"peak measurement exited with status {completed.returncode}: "
            f"{_tail(completed.stderr) or 'no error output'}",
        }
    lines = completed.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {
            **failure,
            "error": f"peak measurement printed no JSON result: {_tail(completed.stdout)!r}",
        }
    if not isinstance(result, dict):
        return {**failure, "error": f"peak measurement printed {type(result).__name__}, not a dict"}
    return result


def measure(threads: int, seconds: float) -> dict[str, Any]:
    """Measure in this process; NumPy must not have been imported with other thread caps."""
    started = time.perf_counter()
    gemm_seconds, gemm_f64_seconds, bandwidth_seconds = (seconds * s for s in BUDGET_SHARES)
    gemm_n, gemm_gflops = _gemm_gflops("float32", gemm_seconds)
    gemm_f64_n, gemm_f64_gflops = _gemm_gflops("float64", gemm_f64_seconds)
    bandwidth_bytes, bandwidth_gbs = _bandwidth_gbs(threads, bandwidth_seconds)
    return {
        "threads": threads,
        "gemm_gflops": gemm_gflops,
        "gemm_n": gemm_n,
        "gemm_f64_gflops": gemm_f64_gflops,
        "gemm_f64_n": gemm_f64_n,
        "bandwidth_gbs": bandwidth_gbs,
        "bandwidth_array_bytes": bandwidth_bytes,
        "statistic": "best repetition",
        "seconds_requested": seconds,
        "seconds_taken": time.perf_counter() - started,
        "thread_settings": thread_limits.describe(),
    }


# Large enough to fill a data-centre GPU, small enough (3 matrices: 0.8 GB in float32) for any.
DEVICE_GEMM_SIZES = {"float32": 8192, "float64": 4096}
DEVICE_COPY_BYTES = 2**30


def measure_device(device: str, seconds: float) -> dict[str, Any]:
    """A GPU's GEMM rates and memory bandwidth through torch, each call synchronised."""
    import torch

    if not torch.cuda.is_available():
        raise SystemExit(f"no CUDA device here for {device} (torch {torch.__version__})")
    exact_arithmetic(device)  # TF32 off, as in the cases
    started = time.perf_counter()
    gemm_seconds, gemm_f64_seconds, bandwidth_seconds = (seconds * s for s in BUDGET_SHARES)

    def synchronised(run):
        def call():
            run()
            torch.cuda.synchronize(device)

        return call

    def gemm(dtype: str, budget: float) -> float:
        n = DEVICE_GEMM_SIZES[dtype]
        a, b = (torch.rand((n, n), device=device, dtype=getattr(torch, dtype)) for _ in "ab")
        out = torch.empty_like(a)
        call = synchronised(lambda: torch.matmul(a, b, out=out))
        call()  # warm-up: the kernel's first launch, cuBLAS's workspace
        return 2 * n**3 / _best_time(call, budget) / 1e9

    source = torch.ones(DEVICE_COPY_BYTES // 4, device=device)
    destination = torch.empty_like(source)
    copy = synchronised(lambda: destination.copy_(source))
    copy()
    bandwidth = 2 * DEVICE_COPY_BYTES / _best_time(copy, bandwidth_seconds) / 1e9
    return {
        "device": device,
        "name": torch.cuda.get_device_name(device),
        "gemm_gflops": gemm("float32", gemm_seconds),
        "gemm_n": DEVICE_GEMM_SIZES["float32"],
        "gemm_f64_gflops": gemm("float64", gemm_f64_seconds),
        "gemm_f64_n": DEVICE_GEMM_SIZES["float64"],
        "bandwidth_gbs": bandwidth,
        "bandwidth_array_bytes": DEVICE_COPY_BYTES,
        "statistic": "best repetition",
        "tf32": False,
        "seconds_requested": seconds,
        "seconds_taken": time.perf_counter() - started,
    }


def _gemm_gflops(dtype: str, seconds: float) -> tuple[int, float]:
    """Best GFLOP/s of C = A @ B, with n the largest size whose call fits the budget
    MIN_REPETITIONS times: small matrices under-use the cores, large ones overrun the budget."""
    import numpy as np

    rng = np.random.default_rng(0)
    for index, n in enumerate(GEMM_SIZES):
        a, b = rng.random((n, n), dtype=dtype), rng.random((n, n), dtype=dtype)
        out = np.empty((n, n), dtype=dtype)
        elapsed = _time(lambda a=a, b=b, out=out: np.matmul(a, b, out=out))  # also the warm-up
        if index + 1 == len(GEMM_SIZES):
            break
        next_call = elapsed * (GEMM_SIZES[index + 1] / n) ** 3
        if next_call * MIN_REPETITIONS > seconds:
            break
    best = _best_time(lambda: np.matmul(a, b, out=out), seconds)
    return n, 2 * n**3 / best / 1e9


def _bandwidth_gbs(threads: int, seconds: float) -> tuple[int, float]:
    """Best GB/s of a large array copy, split over `threads` threads (NumPy's copy releases
    the GIL but is single-threaded). Counts read + write bytes, as STREAM's copy does."""
    import numpy as np

    # Each array at least as large as the last-level cache, so the copy streams from memory.
    try:
        cache_bytes = os.sysconf("SC_LEVEL3_CACHE_SIZE")
    except (ValueError, OSError):
        cache_bytes = 0
    array_bytes = max(BANDWIDTH_ARRAY_BYTES, cache_bytes)
    source = np.ones(array_bytes // 8, dtype=np.float64)
    destination = np.zeros_like(source)
    chunks = [(destination[part], source[part]) for part in _slices(source.size, threads)]
    with ThreadPoolExecutor(max_workers=threads) as pool:

        def copy() -> None:
            list(pool.map(lambda chunk: np.copyto(*chunk), chunks))

        copy()  # warm-up: first-touch page faults and thread start-up
        best = _best_time(copy, seconds)
    return source.nbytes, 2 * source.nbytes / best / 1e9


def _slices(size: int, parts: int) -> list[slice]:
    bounds = [size * i // parts for i in range(parts + 1)]
    return [slice(start, stop) for start, stop in itertools.pairwise(bounds)]


def _best_time(run, seconds: float) -> float:
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < MIN_REPETITIONS or (
        time.perf_counter() < deadline and len(times) < MAX_REPETITIONS
    ):
        times.append(_time(run))
    return min(times)


def _time(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _tail(text: str, lines: int = 5) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.execution.peak", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--threads", type=int, required=True, help="thread count to measure at")
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu (default), or a GPU: cuda, cuda:N")
    arguments = parser.parse_args(argv)
    if arguments.threads < 1:
        parser.error("--threads must be at least 1")
    if "numpy" in sys.modules:
        parser.error("NumPy was imported before the thread caps were set; run in a new process")
    thread_limits.limit_environment(arguments.threads)
    import numpy  # noqa: F401  (imported only now, under the caps)

    if arguments.device != "cpu":
        print(json.dumps(measure_device(arguments.device, arguments.seconds)))
        return
    thread_limits.apply_to_frameworks(arguments.threads)
    print(json.dumps(measure(arguments.threads, arguments.seconds)))


if __name__ == "__main__":
    main()
