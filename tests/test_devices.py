"""GPU handling without a GPU: a fake torch whose CUDA work completes only when synchronised
shows that the harness waits for the device before it reads a clock, resets and reads the
memory peak per round, samples NVML, and turns TF32 off. The real device is exercised by
tests/device/run.sh on a machine with a GPU."""

from __future__ import annotations

import sys
import time
import types

import pytest

from bench.execution import devices


class FakeCuda:
    """An asynchronous device: `queue` returns at once; the work takes `seconds` and is done
    only once `synchronize` has waited for it. Memory is tracked like torch's allocator."""

    def __init__(self) -> None:
        self.pending = 0.0
        self.synchronized: list[str] = []
        self.allocated = self.peak = 0

    def is_available(self) -> bool:
        return True

    def queue(self, seconds: float, allocate: int = 0) -> None:
        self.pending += seconds
        self.allocated += allocate
        self.peak = max(self.peak, self.allocated)
        self.allocated -= allocate

    def synchronize(self, device) -> None:
        time.sleep(self.pending)
        self.pending = 0.0
        self.synchronized.append(str(device))

    def reset_peak_memory_stats(self, device) -> None:
        self.peak = self.allocated

    def max_memory_allocated(self, device) -> int:
        return self.peak


@pytest.fixture
def fake_torch(monkeypatch):
    cuda = FakeCuda()
    torch = types.SimpleNamespace(
        cuda=cuda,
        backends=types.SimpleNamespace(
            cuda=types.SimpleNamespace(matmul=types.SimpleNamespace(allow_tf32=True)),
            cudnn=types.SimpleNamespace(allow_tf32=True),
        ),
    )
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    return torch


def test_a_round_on_the_gpu_is_timed_until_its_kernels_have_finished(fake_torch):
    started = time.perf_counter()
    with devices.RoundWatch("cuda:0"):
        fake_torch.cuda.queue(0.2)  # returns at once, like a kernel launch
    assert time.perf_counter() - started >= 0.2
    assert fake_torch.cuda.synchronized == ["cuda:0"]


def test_synchronize_touches_no_device_for_a_cpu_case(fake_torch):
    fake_torch.cuda.queue(0.2)
    devices.synchronize("cpu")
    with devices.RoundWatch("cpu") as measured:
        pass
    assert fake_torch.cuda.synchronized == []
    assert measured.memory_peak_bytes is None


def test_the_memory_peak_is_reset_for_each_round(fake_torch):
    with devices.RoundWatch("cuda") as first:
        fake_torch.cuda.queue(0, allocate=300)
    with devices.RoundWatch("cuda") as second:
        fake_torch.cuda.queue(0, allocate=100)
    assert (first.memory_peak_bytes, second.memory_peak_bytes) == (300, 100)


def test_nvml_is_sampled_while_the_round_runs(fake_torch):
    class FakeNvml:
        def memory_used_bytes(self):
            return 5_000

        def utilisation_percent(self):
            return 80.0

    with devices.RoundWatch("cuda", FakeNvml()) as measured:
        time.sleep(3 * devices.NVML_SAMPLE_SECONDS)
    metrics = measured.as_metrics()
    assert metrics["gpu_driver_memory_peak_bytes"] == 5_000
    assert metrics["gpu_utilisation"] == 80.0
    assert len(measured._samples) >= 2


def test_tf32_is_turned_off_on_the_gpu_only(fake_torch):
    assert devices.exact_arithmetic("cpu") == {}
    assert fake_torch.backends.cudnn.allow_tf32
    assert devices.exact_arithmetic("cuda:1") == {"torch_tf32": False}
    assert not fake_torch.backends.cuda.matmul.allow_tf32
    assert not fake_torch.backends.cudnn.allow_tf32


@pytest.mark.parametrize(
    ("device", "gpu", "number"), [("cpu", False, None), ("cuda", True, None), ("cuda:3", True, 3)]
)
def test_device_names(device, gpu, number):
    assert devices.is_gpu(device) is gpu
    assert devices.index(device) == number


def test_a_training_round_on_the_gpu_counts_the_work_the_device_finishes_late(fake_torch):
    """A trainer whose `train` only queues 0.1 s of GPU work per call: the round's training
    time includes it, because the harness synchronises before it reads the clock."""
    import numpy as np
    from runs import case

    from bench.api import Trainer
    from bench.execution.suites.bench_training import TrainingRound
    from bench.execution.suites.context import CaseContext, Data
    from bench.scenarios import scenario_for

    class QueuingTrainer(Trainer):
        name, model, framework = "queuing", "mlp", "fake"

        def load(self, x_train, y_train):
            pass

        def train(self, steps):
            fake_torch.cuda.queue(0.1, allocate=1_000)
            return 1.0

        def predict(self, x):
            return np.zeros(len(x), dtype=np.int64)

    scenario = scenario_for("dlfs-mlp", "smoke")
    rng = np.random.default_rng(0)
    data = Data(
        x_train=rng.random((50, 784), dtype=np.float32),
        y_train=rng.integers(0, 10, 50),
        x_test=rng.random((20, 784), dtype=np.float32),
        y_test=rng.integers(0, 10, 20),
    )
    recorded = []
    context = CaseContext(
        case=case("dlfs-mlp", "queuing", device="cuda", profile="smoke", warmup_rounds=0),
        scenario=scenario,
        implementation=QueuingTrainer,
        data=data,
        on_round=recorded.append,
    )
    training = TrainingRound(context, 0)
    training.run()
    training.finish()
    calls = len(training.chunks)
    assert training.wall >= 0.1 * calls
    (record,) = recorded
    assert record.wall_seconds >= 0.1 * calls
    assert record.gpu_memory_peak_bytes == 1_000
    assert fake_torch.cuda.synchronized[:calls] == ["cuda"] * calls


def test_gpu_and_cpu_cases_are_ranked_apart_in_the_report(tmp_path):
    """A scenario run on the CPU and on a GPU gets one glance line per device, and speed-ups
    and "fastest" only within a device; the GPU's memory peak is shown with its case."""
    from runs import case, store_run, training_round

    from bench import report
    from bench.records import CaseRecord

    def record(implementation, device, seconds, **gpu):
        rounds = tuple(training_round(i, seconds + 0.01 * i, **gpu) for i in range(3))
        return CaseRecord(case("tch-mlp", implementation, device=device), "ok", rounds=rounds)

    gpu = {"gpu_memory_peak_bytes": 300 * 2**20, "gpu_utilisation": 85.0}
    store = store_run(
        tmp_path,
        [
            record("torch", "cpu", 1.0),
            record("torch-store", "cpu", 2.0),
            record("torch", "cuda", 0.2, **gpu),
            record("torch-store", "cuda", 0.1, **gpu),
        ],
        machine_peak={"2": {"gemm_gflops": 100.0}, "cuda": {"gemm_gflops": 10_000.0}},
    )
    context = report.build([store])
    lines = {line["device"]: line for line in context["glance"]}
    assert set(lines) == {"cpu", "cuda"}
    assert lines["cpu"]["fastest"].startswith("torch · cpu")
    assert lines["cuda"]["fastest"].startswith("torch-store · cuda")
    (section,) = context["sections"]
    for row in section["rows"]:
        assert row.reference == "torch"  # the scenario's original, on the row's own device
        assert row.group[2] == row.values["device"]
    store_cuda = next(r for r in section["rows"] if r.label.startswith("torch-store · cuda"))
    # against torch on cuda (median 0.21 s), not on the CPU (1.01 s)
    assert store_cuda.speedup.estimate == pytest.approx(0.21 / 0.11)
    assert store_cuda.get("gpu_memory_peak_bytes_median") == 300 * 2**20
    # GFLOP/s as a share of the peak of the device the case ran on
    for row in section["rows"]:
        peak = 10_000.0 if row.values["device"] == "cuda" else 100.0
        assert row.get("peak_share_median") == pytest.approx(row.get("gflops_median") / peak)
    html = report.write([store], tmp_path / "reports").read_text()
    assert 'tch-mlp</a> <span class="note">on cuda</span>' in html
    assert "GPU 300\xa0MiB · 85\xa0% busy" in html


def test_the_gpu_peak_is_measured_on_the_device_or_says_why_not(tmp_path, monkeypatch):
    """The GPU's GEMM rate and bandwidth come from a process of their own, through torch;
    without a GPU the figure is an error that names the device, and is not cached."""
    import torch

    from bench.execution import peak

    monkeypatch.setenv(peak.CACHE_ENV, str(tmp_path / "peak.json"))
    environment = {"gpu": None, "cpu_model": "test"}
    result = peak.machine_peak(1, environment, device="cuda")
    if torch.cuda.is_available():
        assert result["gemm_gflops"] > 0 and result["bandwidth_gbs"] > 0
        assert result["device"] == "cuda" and result["tf32"] is False
    else:
        assert "no CUDA device here for cuda" in result["error"]
        assert not (tmp_path / "peak.json").exists()
    # the GPU's entry is kept apart from the CPU's at any thread count
    assert peak.cache_key(environment, 1, "cuda") != peak.cache_key(environment, 1)
