"""What one round costs: training-only wall and CPU time, and the round's peak memory.

Evaluation (accuracy curves) runs between training chunks inside `CLOCK.paused()`, so it is
subtracted from both clocks. pytest-benchmark times rounds with `training_clock` (passed as
`--benchmark-timer`), so its statistics are training time only, like ours.
"""

from __future__ import annotations

import contextlib
import math
import resource
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def cpu_seconds() -> float:
    """User + system CPU seconds of this process, all threads included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class TrainingClock:
    """Wall and CPU clocks that stand still while paused."""

    def __init__(self) -> None:
        self._paused_wall = 0.0
        self._paused_cpu = 0.0

    def __call__(self) -> float:
        return time.perf_counter() - self._paused_wall

    def cpu(self) -> float:
        return cpu_seconds() - self._paused_cpu

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        wall, cpu = time.perf_counter(), cpu_seconds()
        try:
            yield
        finally:
            self._paused_cpu += cpu_seconds() - cpu
            self._paused_wall += time.perf_counter() - wall


CLOCK = TrainingClock()


def training_clock() -> float:
    """The timer pytest-benchmark uses in the worker (`--benchmark-timer`)."""
    return CLOCK()


class PeakMemory:
    """Peak resident memory of this process since the last `reset()`.

    On Linux, writing 5 to /proc/self/clear_refs resets the kernel's high-water mark (VmHWM),
    which is exact and costs nothing while the round runs. Where that is not allowed, a
    background thread samples RSS with psutil every few milliseconds instead.
    """

    def __init__(self, sample_interval: float = 0.005) -> None:
        self._interval = sample_interval
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()
        self._sampled_peak = 0
        self.method = "VmHWM" if self._kernel_reset() else "psutil sampling"

    @staticmethod
    def _kernel_reset() -> bool:
        try:
            _CLEAR_REFS.write_text("5")
            return _read_hwm() is not None
        except OSError:
            return False

    def reset(self) -> None:
        if self.method == "VmHWM":
            self._kernel_reset()
            return
        self.stop()
        self._stop.clear()
        self._sampled_peak = psutil.Process().memory_info().rss
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._stop.wait(self._interval):
            self._sampled_peak = max(self._sampled_peak, process.memory_info().rss)

    def stop(self) -> None:
        if self._sampler is not None:
            self._stop.set()
            self._sampler.join()
            self._sampler = None

    def peak_bytes(self) -> int:
        if self.method == "VmHWM":
            return _read_hwm() or 0
        self.stop()
        return max(self._sampled_peak, psutil.Process().memory_info().rss)


def round_cost(*, wall: float, cpu: float, threads: int, samples: int, peak_rss: int) -> dict:
    """The cost metrics every round records, whatever the model."""
    measured = wall > 0
    return {
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "effective_cores": cpu / wall if measured else math.nan,
        "utilisation": cpu / (wall * threads) if measured else math.nan,
        "peak_rss_bytes": peak_rss,
        "samples": samples,
        "samples_per_second": samples / wall if measured else math.nan,
    }


def _read_hwm() -> int | None:
    for line in _STATUS.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


PEAK_MEMORY = PeakMemory()
