import time

import numpy as np

from bench.execution.measure import PeakMemory, TrainingClock, cpu_seconds, round_cost


def test_paused_time_is_excluded_from_both_clocks():
    clock = TrainingClock()
    wall, cpu = clock(), clock.cpu()
    with clock.paused():
        time.sleep(0.3)
        busy_until = time.perf_counter() + 0.2
        while time.perf_counter() < busy_until:  # burn CPU while paused
            pass
    assert clock() - wall < 0.1
    assert clock.cpu() - cpu < 0.1


def test_running_time_is_counted():
    clock = TrainingClock()
    wall, cpu = clock(), clock.cpu()
    # Burn 0.2 s of CPU, however long a busy machine makes that take: a wall-clock loop
    # may get only a fraction of a core under load.
    busy_from = cpu_seconds()
    while cpu_seconds() - busy_from < 0.2:
        pass
    assert clock.cpu() - cpu >= 0.2
    assert clock() - wall >= 0.2  # one thread cannot use more CPU than wall time


def test_peak_memory_sees_an_allocation_after_reset_and_forgets_it_after_the_next():
    peak = PeakMemory()
    peak.reset()
    baseline = peak.peak_bytes()
    block = np.ones(200 * 2**20 // 8)  # 200 MiB, touched
    high = peak.peak_bytes()
    del block
    peak.reset()
    after = peak.peak_bytes()
    assert high - baseline > 150 * 2**20
    assert after < high - 150 * 2**20


def test_peak_memory_falls_back_to_sampling(monkeypatch):
    monkeypatch.setattr(PeakMemory, "_kernel_reset", staticmethod(lambda: False))
    peak = PeakMemory(sample_interval=0.001)
    assert peak.method == "psutil sampling"
    peak.reset()
    baseline = peak.peak_bytes()
    peak.reset()
    block = np.ones(100 * 2**20 // 8)
    time.sleep(0.05)
    del block
    assert peak.peak_bytes() - baseline > 50 * 2**20


def test_round_cost_derives_cores_and_utilisation():
    cost = round_cost(wall=2.0, cpu=3.0, threads=2, samples=1000, peak_rss=1)
    assert cost["effective_cores"] == 1.5
    assert cost["utilisation"] == 0.75
    assert cost["samples_per_second"] == 500
