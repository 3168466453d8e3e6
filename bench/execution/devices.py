"""What a case on a GPU needs beyond a CPU case, for the frameworks that drive one.

A GPU runs work asynchronously: a framework call returns once the kernels are queued, so a
clock read after `train(steps)` would stop before the work is done. `synchronize` waits for
the device, and the round's clock is read only after it. Each round also records the
device's memory peak as the framework's allocator sees it (reset per round), and, where NVML
can be read (`nvidia-ml-py`), the driver's view: memory in use and GPU utilisation, sampled
while the round runs.

Nothing here imports a framework: it uses those the plugin already imported (`sys.modules`),
so a CPU case, or a worker whose plugin uses neither torch nor TensorFlow, pays nothing.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

# NVML's utilisation counter covers the last sample period of the driver (1/6 s to 1 s):
# sampling faster than this repeats values.
NVML_SAMPLE_SECONDS = 0.1


def is_gpu(device: str) -> bool:
    return device.partition(":")[0] == "cuda"


def declared(device: str, accepted: tuple[str, ...]) -> bool:
    """Whether an implementation declaring `accepted` devices runs on `device`: `cuda:1` is a
    `cuda` device."""
    return device.partition(":")[0] in accepted


def index(device: str) -> int | None:
    """The GPU index of `cuda:N`; None for `cuda` (the current GPU) and for the CPU."""
    _, _, number = device.partition(":")
    return int(number) if number.isdigit() else None


def _torch():
    return sys.modules.get("torch")


def _tensorflow():
    return sys.modules.get("tensorflow")


def _tf_device(device: str) -> str:
    return "GPU:0"  # `place` leaves TensorFlow only the case's GPU, which it then calls GPU:0


def unavailable(device: str) -> str | None:
    """Why `device` cannot be used by the frameworks this worker's plugin imported, or None.
    Checked in the worker after the plugin is loaded, so that the planner imports nothing."""
    if not is_gpu(device):
        return None
    torch, tf = _torch(), _tensorflow()
    if torch is None and tf is None:
        return f"device {device}: the implementation drives no GPU framework this harness knows"
    if torch is not None:
        if not torch.cuda.is_available():
            build = (
                "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            )
            return (
                f"no CUDA device on this machine (torch {torch.__version__}, {build}); "
                "run on a machine with a GPU, or use --device cpu"
            )
        count = torch.cuda.device_count()
    else:
        count = len(tf.config.list_physical_devices("GPU"))
        if not count:
            return (
                f"TensorFlow {tf.__version__} sees no GPU here (tensorflow-cpu, or no CUDA "
                "driver): on a machine with an NVIDIA GPU install tensorflow[and-cuda], or use "
                "--device cpu"
            )
    if (number := index(device)) is not None and number >= count:
        return f"{device} does not exist: this machine has {count} GPU(s)"
    return None


def place(device: str) -> None:
    """Keep the case on its device. torch and LibTorch put work where the plugin says;
    TensorFlow puts it on the first GPU it sees, even for a CPU case, so it is shown only the
    case's GPU, or none. Called before the data is loaded."""
    tf = _tensorflow()
    if tf is None:
        return
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return
    tf.config.set_visible_devices([gpus[index(device) or 0]] if is_gpu(device) else [], "GPU")


def synchronize(device: str) -> None:
    """Wait until every kernel queued on `device` by this process has finished: torch's
    (also LibTorch driven from a compiled extension in the same process, which shares its
    CUDA context) and TensorFlow's."""
    if not is_gpu(device):
        return
    torch = _torch()
    if torch is not None and torch.cuda.is_available():
        torch.cuda.synchronize(device)
    tf = _tensorflow()
    if tf is not None:
        tf.test.experimental.sync_devices()


def exact_arithmetic(device: str) -> dict[str, bool]:
    """Turn TF32 off for matrix products and convolutions, so that float32 on the GPU is
    float32 as on the CPU and the conformance tolerances hold. Returns what was set."""
    if not is_gpu(device):
        return {}
    settings = {}
    torch = _torch()
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        settings["torch_tf32"] = False
    tf = _tensorflow()
    if tf is not None:
        tf.config.experimental.enable_tensor_float_32_execution(False)
        settings["tensorflow_tf32"] = False
    return settings


def describe(device: str) -> dict[str, Any] | None:
    """The GPU a case ran on, read in the worker through its framework: name, compute
    capability, memory, CUDA, cuDNN and driver versions, and the TF32 settings."""
    if not is_gpu(device):
        return None
    info: dict[str, Any] = {"device": device}
    torch = _torch()
    if torch is not None and torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(device)
        info |= {
            "name": properties.name,
            "compute_capability": f"{properties.major}.{properties.minor}",
            "memory_total_bytes": int(properties.total_memory),
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "torch_tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
            "torch_tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
        }
    tf = _tensorflow()
    if tf is not None:
        build = tf.sysconfig.get_build_info()
        info |= {
            "tensorflow_cuda": build.get("cuda_version"),
            "tensorflow_cudnn": build.get("cudnn_version"),
            "tensorflow_tf32": bool(tf.config.experimental.tensor_float_32_execution_enabled()),
        }
    if (nvml := Nvml.open(device)) is not None:
        info["driver"] = nvml.driver_version()
        info.setdefault("name", nvml.name())
    return info


class Nvml:
    """The driver's view of one GPU through NVML (`pynvml`, from `nvidia-ml-py`)."""

    def __init__(self, pynvml, handle) -> None:
        self._nvml, self._handle = pynvml, handle

    @classmethod
    def open(cls, device: str) -> Nvml | None:
        try:
            import pynvml

            pynvml.nvmlInit()
            return cls(pynvml, pynvml.nvmlDeviceGetHandleByIndex(index(device) or 0))
        except Exception:  # not installed, no driver, no such GPU: NVML is optional
            return None

    def _text(self, value) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    def driver_version(self) -> str:
        return self._text(self._nvml.nvmlSystemGetDriverVersion())

    def name(self) -> str:
        return self._text(self._nvml.nvmlDeviceGetName(self._handle))

    def memory_used_bytes(self) -> int:
        return int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used)

    def utilisation_percent(self) -> float:
        return float(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)


@dataclass
class DeviceRound:
    """What one round used of the GPU. None where it could not be read."""

    memory_peak_bytes: int | None = None  # the framework allocator's high-water mark
    driver_memory_peak_bytes: int | None = None  # NVML: the most memory in use on the GPU
    utilisation_percent: float | None = None  # NVML: mean GPU utilisation while it ran
    _samples: list[float] = field(default_factory=list, repr=False)

    def as_metrics(self) -> dict[str, Any]:
        return {
            "gpu_memory_peak_bytes": self.memory_peak_bytes,
            "gpu_driver_memory_peak_bytes": self.driver_memory_peak_bytes,
            "gpu_utilisation": self.utilisation_percent,
        }


def _reset_peak(device: str) -> None:
    torch = _torch()
    if torch is not None and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats(device)
    tf = _tensorflow()
    if tf is not None:
        with contextlib.suppress(ValueError, RuntimeError):
            tf.config.experimental.reset_memory_stats(_tf_device(device))


def _read_peak(device: str) -> int | None:
    torch = _torch()
    peaks = []
    if torch is not None and torch.cuda.is_available():
        peaks.append(int(torch.cuda.max_memory_allocated(device)))
    tf = _tensorflow()
    if tf is not None:
        with contextlib.suppress(ValueError, RuntimeError):
            peaks.append(int(tf.config.experimental.get_memory_info(_tf_device(device))["peak"]))
    return max(peaks) if peaks else None


class RoundWatch:
    """The GPU over one round: the allocator's peak (reset by `start`) and, with NVML, memory
    in use and utilisation sampled in a background thread. `stop` synchronises first, so
    that the peak includes the round's last kernels. On the CPU it measures nothing."""

    def __init__(self, device: str, nvml: Nvml | None = None) -> None:
        self.device, self.nvml = device, nvml
        self.measured = DeviceRound()
        self._stop = threading.Event()
        self._memory: list[int] = []
        self._sampler: threading.Thread | None = None

    def start(self) -> RoundWatch:
        if not is_gpu(self.device):
            return self
        _reset_peak(self.device)
        if self.nvml is not None:
            self._sampler = threading.Thread(target=self._sample, daemon=True, name="nvml")
            self._sampler.start()
        return self

    def _sample(self) -> None:
        while True:
            self._memory.append(self.nvml.memory_used_bytes())
            self.measured._samples.append(self.nvml.utilisation_percent())
            if self._stop.wait(NVML_SAMPLE_SECONDS):
                return

    def stop(self) -> DeviceRound:
        if not is_gpu(self.device):
            return self.measured
        synchronize(self.device)
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
        measured = self.measured
        measured.memory_peak_bytes = _read_peak(self.device)
        if self._memory:
            measured.driver_memory_peak_bytes = max(self._memory)
        if measured._samples:
            measured.utilisation_percent = sum(measured._samples) / len(measured._samples)
        return measured

    def __enter__(self) -> DeviceRound:
        return self.start().measured

    def __exit__(self, *exc_info) -> None:
        self.stop()


@functools.cache
def nvml(device: str) -> Nvml | None:
    """NVML for the case's GPU, opened once per worker; None on the CPU or without NVML."""
    return Nvml.open(device) if is_gpu(device) else None
