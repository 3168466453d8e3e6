"""The MLPs of Goldbaum 2018 (Nielsen's network.py ported to Rust ndarray) and Qiita 2020
(Deep Learning from Scratch ch.5 in Rust ndarray), compiled: the layers, costs and optimizers
are Rust in `src/`, built into the extension module `bench_ndarray` by `make setup`.

Whole mini-batches are matrices, multiplied by ndarray's own GEMM (matrixmultiply), as the
articles did. The batches are the harness's: each `train(steps)` draws its `steps` batches
from `BatchSampler` here, and hands them to Rust at once, which trains on all of them without
returning to Python.
"""

from __future__ import annotations

import numpy as np

from bench.api import BatchSampler, Trainer, optional_imports, register

with optional_imports():
    import bench_ndarray


@register
class NdarrayMLP(Trainer):
    name = "ndarray"
    model = "mlp"
    framework = "ndarray (Rust)"
    requires = ("bench_ndarray",)
    install_hint = (
        "a Rust extension: install Rust (cargo) from https://rustup.rs, then run `make setup`, "
        "which builds implementations/ndarray into .venv"
    )

    def __init__(self, scenario, parameters, seed, device="cpu"):
        super().__init__(scenario, parameters, seed, device)
        layers = [
            (parameters[f"W{i}"], parameters[f"b{i}"], layer.activation)
            for i, layer in enumerate(scenario.layers, start=1)
        ]
        self.mlp = bench_ndarray.Mlp(layers, scenario.loss, scenario.optimizer)

    @classmethod
    def thread_counts(cls):
        return bench_ndarray.thread_counts()

    def load(self, x_train, y_train):
        self.mlp.load(
            np.ascontiguousarray(x_train, dtype=self.scenario.dtype),
            np.ascontiguousarray(y_train, dtype=np.int64),
        )
        self.batches = BatchSampler(
            len(x_train), self.scenario.batch_size, self.scenario.sampling, self.seed
        )

    def train(self, steps):
        return self.mlp.train(*self.batches.take(steps))

    def predict(self, x):
        return self.mlp.predict(np.ascontiguousarray(x, dtype=self.scenario.dtype))

    def parameters(self):
        # The canonical names in layer order, as the extension returns the arrays.
        return dict(zip(self.scenario.parameter_shapes(), self.mlp.parameters(), strict=True))
