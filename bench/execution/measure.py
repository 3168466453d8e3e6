"""What one round costs: training-only wall and CPU time, and the round's peak memory.

Evaluation (accuracy curves) runs between training chunks inside `CLOCK.paused()`, so it is
subtracted from both clocks. pytest-benchmark times rounds with `training_clock` (passed as
`--benchmark-timer`), so its statistics are training time only, like ours.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from bench.execution import contention

# getrusage is exact for the calling thread, but the kernel brings another thread's CPU time
# up to date only at its scheduler tick (4 ms at the HZ=250 of common distribution kernels), so
# each other busy thread can be up to a tick behind or ahead at a round's edges. A round
# shorter than this much wall time per extra thread would show a CPU share more than 10 % off
# (smoke rounds of a few ms showed 155 %): its utilisation and effective cores are not
# reported (NaN, shown as "–"), its CPU seconds are.
SHORTEST_ROUND_PER_EXTRA_THREAD_S = 0.04
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def cpu_seconds() -> float:
    """User + system CPU seconds of this process, all threads included."""
    return contention.usage()[0]


class TrainingClock:
    """Wall and CPU clocks that stand still while paused, with the run-queue wait and the
    involuntary context switches of the process's threads, which stand still with them.

    The order of the reads matters, because each read costs CPU time (getrusage about a
    microsecond): the CPU clock's span always lies inside the wall clock's. A timed span reads
    the wall clock first and last (`start`, `since`); a pause reads the CPU clock first and
    last, so the reads' own cost is paused CPU time, never training CPU time without its wall
    time. A round that does nothing then cannot show more than 100 % utilisation of a thread.
    """

    def __init__(self) -> None:
        self._paused_wall = 0.0
        self._paused_cpu = 0.0
        self._paused_wait = 0.0
        self._paused_switches = 0

    def __call__(self) -> float:
        return time.perf_counter() - self._paused_wall

    def cpu(self) -> float:
        return cpu_seconds() - self._paused_cpu

    def waited(self) -> float:
        """Run-queue wait of this process's threads, in seconds, pauses left out."""
        return contention.run_queue_wait() - self._paused_wait

    def switches(self) -> int:
        """Involuntary context switches of this process, pauses left out."""
        return contention.usage()[1] - self._paused_switches

    def start(self) -> tuple[float, float]:
        """(wall, CPU) at the start of a timed span."""
        wall = self()
        return wall, self.cpu()

    def since(self, start: tuple[float, float]) -> tuple[float, float]:
        """(wall, CPU) seconds of the span begun at `start`, paused time left out."""
        cpu = self.cpu()
        return self() - start[0], cpu - start[1]

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        cpu, switches = contention.usage()
        wall = time.perf_counter()
        waited = contention.run_queue_wait()
        try:
            yield
        finally:
            self._paused_wait += contention.run_queue_wait() - waited
            self._paused_wall += time.perf_counter() - wall
            cpu_now, switches_now = contention.usage()
            self._paused_cpu += cpu_now - cpu
            self._paused_switches += switches_now - switches

    def snapshot(self) -> contention.Snapshot:
        """The contention counters now, for a round's edge (never inside its timed part)."""
        return contention.snapshot(self.waited(), self.switches())


CLOCK = TrainingClock()


def training_clock() -> float:
    """The timer pytest-benchmark uses in the worker (`--benchmark-timer`)."""
    return CLOCK()


class PeakMemory:
    """Peak resident memory of this process since the last `reset()`.

    On Linux, writing 5 to /proc/self/clear_refs resets the kernel's high-water mark of
    resident memory (VmHWM), which costs nothing while the round runs and misses no peak,
    however short. It is not exact: the kernel counts resident pages in per-thread or per-CPU
    batches and folds them in now and then, so the mark is accurate to about 0.1-0.3 MiB.
    Where the reset is not allowed, a background thread samples RSS with psutil every few
    milliseconds instead (a shorter peak can be missed).
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
    cpu_share_measured = measured and wall >= (threads - 1) * SHORTEST_ROUND_PER_EXTRA_THREAD_S
    return {
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "effective_cores": cpu / wall if cpu_share_measured else math.nan,
        "utilisation": cpu / (wall * threads) if cpu_share_measured else math.nan,
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
