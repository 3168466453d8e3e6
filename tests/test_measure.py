import math
import time

import numpy as np
from conftest import PLUGINS, bench_command, smoke_args, stored_cases

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


def test_a_round_too_short_for_other_threads_cpu_clocks_has_no_cpu_share():
    """Other threads' CPU time lags by up to a scheduler tick: a 2 ms round on 2 threads
    showed 155 % utilisation. Such a round keeps its CPU seconds but reports no share."""
    short = round_cost(wall=0.002, cpu=0.006, threads=2, samples=10, peak_rss=1)
    assert math.isnan(short["utilisation"]) and math.isnan(short["effective_cores"])
    assert short["cpu_seconds"] == 0.006 and short["samples_per_second"] == 5000
    # One thread: getrusage is exact for the calling thread, whatever the round's length.
    alone = round_cost(wall=0.002, cpu=0.002, threads=1, samples=10, peak_rss=1)
    assert alone["utilisation"] == 1.0


def test_pauses_never_charge_their_own_reads_to_training_cpu():
    """Each pause reads the clocks; the CPU those reads cost is paused CPU time, so a span of
    nothing but pauses shows no more CPU than wall time (it did, by ~2 µs a pause)."""
    clock = TrainingClock()
    start = clock.start()
    for _ in range(2000):
        with clock.paused():
            pass
    wall, cpu = clock.since(start)
    assert cpu <= wall, (cpu, wall)


def test_paused_run_queue_wait_and_switches_are_left_out():
    clock = TrainingClock()
    waited, switches = clock.waited(), clock.switches()
    with clock.paused():
        busy_until = time.perf_counter() + 0.1
        while time.perf_counter() < busy_until:
            pass
        time.sleep(0.05)
    assert clock.waited() - waited < 0.01
    assert clock.switches() - switches <= 1


def test_a_do_nothing_trainer_never_shows_more_than_full_use_of_its_thread(tmp_path):
    """The do-nothing plugin's rounds are a few microseconds of training between pauses:
    any CPU that the clock's own reads charged to training would show as more than 100 %."""
    done = bench_command(
        *smoke_args(
            *("--plugins", str(PLUGINS / "noop"), "--impl", "noop", "--scenario", "dlfs-mlp"),
            *("--threads", "1", "--rounds", "30"),
        ),
        results=tmp_path / "results",
    )
    assert done.returncode == 0, done.stderr
    (record,) = stored_cases(tmp_path / "results").values()
    measured = [r for r in record["rounds"] if not r["warmup"]]
    assert len(measured) == 30
    assert all(0 <= r["utilisation"] <= 1.0 for r in measured), [r["utilisation"] for r in measured]
