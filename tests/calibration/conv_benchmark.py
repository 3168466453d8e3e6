"""Times one convolution forward + backward, numpy-vectorized (im2col) against torch, on the
same batch: `python tests/calibration/conv_benchmark.py [REPETITIONS]` prints the median
time of each and their ratio for tch-cnn's first conv and dlfs-cnn's conv, at the
scenarios' batch sizes. A ratio far above the whole-case gap in a report points at the
convolution itself rather than at the rest of the training step."""

import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from bench import plugins
from bench.scenarios import SCENARIOS, Conv2d

Convolution = sys.modules[
    plugins.discover(installed=False).find("numpy-vectorized", "cnn").cls.__module__
].Convolution


def median_seconds(work, repetitions: int) -> float:
    """Median time of `work` over a block of repetitions after one warm-up call. The two
    frameworks are timed in separate blocks, not alternately: torch's OpenMP threads spin
    after each call and would compete with OpenBLAS's, slowing torch about threefold."""
    work()  # warm-up: allocations, oneDNN/BLAS kernel selection
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare(scenario_name: str, repetitions: int) -> None:
    scenario = SCENARIOS[scenario_name]
    conv = next(layer for layer in scenario.layers if isinstance(layer, Conv2d))
    rng = np.random.default_rng(0)
    n = scenario.batch_size
    x = rng.random((n, *scenario.input_shape), dtype=np.float32)
    W = rng.standard_normal((conv.out_channels, conv.in_channels, conv.kernel, conv.kernel))
    W, b = W.astype(np.float32), np.zeros(conv.out_channels, np.float32)
    # The first layer of both networks: its input is the images, which need no gradient.
    layer = Convolution(W, b, conv.stride, conv.padding, input_gradient=False)
    dout = np.ones((n, *conv.out_shape(scenario.input_shape)), np.float32)
    # numpy-vectorized's convolutions take images batch-last, (c, h, w, n).
    x_last, dout_last = (np.ascontiguousarray(a.transpose(1, 2, 3, 0)) for a in (x, dout))

    def numpy_step():
        layer.forward(x_last)
        layer.backward(dout_last)

    tx, tdout = torch.from_numpy(x), torch.from_numpy(dout)
    tW = torch.from_numpy(W).requires_grad_(True)
    tb = torch.from_numpy(b).requires_grad_(True)

    def torch_step():
        F.conv2d(tx, tW, tb, conv.stride, conv.padding).backward(tdout)
        tW.grad = tb.grad = None

    numpy_s = median_seconds(numpy_step, repetitions)
    torch_s = median_seconds(torch_step, repetitions)
    print(
        f"{scenario_name} conv {conv.in_channels}->{conv.out_channels} k{conv.kernel}, batch {n}: "
        f"numpy-vectorized {numpy_s * 1e3:.1f} ms, torch {torch_s * 1e3:.1f} ms, "
        f"ratio {numpy_s / torch_s:.1f}x (median of {repetitions}, "
        f"{torch.get_num_threads()} torch threads)"
    )


repetitions = int(sys.argv[1]) if len(sys.argv) > 1 else 20
for name in ("tch-cnn", "dlfs-cnn"):
    compare(name, repetitions)
