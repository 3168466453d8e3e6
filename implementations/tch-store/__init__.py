"""Rust-ML parts 1 and 2, compiled: the central parameter store ("Memory") written in Rust
with tch-rs over LibTorch, layers that keep only their addresses in it, the `Compute` trait,
and hand-written SGD, EMA-momentum and Adam steps over the gradients autograd leaves in the
store. The Rust is in `src/`, built into the extension module `bench_tch_store` by
`make setup` against the LibTorch inside the installed torch wheel (`torch-store` is the same
design in Python).

Each `train(steps)` draws its `steps` mini-batches from the harness's `BatchSampler` and
hands them to Rust at once, which runs the article's loop over them without Python.
"""

from __future__ import annotations

import numpy as np

from bench.api import BatchSampler, Trainer, optional_imports, register

with optional_imports():
    # First: the extension links the wheel's LibTorch, so loading torch makes it that one
    # (one LibTorch, whose thread pools the harness sets through torch).
    import torch  # noqa: F401

    # isort: split
    import bench_tch_store


@register
class TchStoreMLP(Trainer):
    name = "tch-store"
    model = "mlp"
    framework = "tch (Rust, LibTorch)"
    requires = ("torch", "bench_tch_store")
    # On a GPU, LibTorch must be the torch wheel's CUDA build (see docs/rust.md).
    devices = ("cpu", "cuda")
    install_hint = (
        "a Rust extension over the torch wheel's LibTorch: install torch (pip install "
        "'bench[torch]') and Rust (cargo, https://rustup.rs), then run `make setup`, which "
        "builds implementations/tch-store into .venv"
    )

    def __init__(self, scenario, parameters, seed, device="cpu"):
        super().__init__(scenario, parameters, seed, device)
        count = len(scenario.parameter_shapes()) // 2
        weights = [(parameters[f"W{i}"], parameters[f"b{i}"]) for i in range(1, count + 1)]
        self.store = bench_tch_store.Trainer(
            list(scenario.layers),
            [tuple(np.ascontiguousarray(p) for p in pair) for pair in weights],
            scenario.loss,
            scenario.optimizer,
            device,
        )

    @classmethod
    def thread_counts(cls):
        return bench_tch_store.thread_counts()

    def load(self, x_train, y_train):
        self.store.load(
            np.ascontiguousarray(x_train, dtype=self.scenario.dtype),
            np.ascontiguousarray(y_train, dtype=np.int64),
        )
        self.batches = BatchSampler(
            len(x_train), self.scenario.batch_size, self.scenario.sampling, self.seed
        )

    def train(self, steps):
        return self.store.train(*self.batches.take(steps))

    def predict(self, x):
        return self.store.predict(np.ascontiguousarray(x, dtype=self.scenario.dtype))

    def parameters(self):
        # The canonical names in layer order, as the extension returns the arrays.
        return dict(zip(self.scenario.parameter_shapes(), self.store.parameters(), strict=True))


@register
class TchStoreCNN(TchStoreMLP):
    model = "cnn"
