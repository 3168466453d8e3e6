"""template-name: FILL IN one line on how this implementation works. Written by `bench new`:
a thin Python face over the Rust extension module `template_module` (`src/lib.rs`), which
does all the math. The harness owns the loop; this class hands Rust the data, the harness's
initial parameters and, for each `train` call, every mini-batch at once."""

from __future__ import annotations

import numpy as np

from bench.api import BatchSampler, Trainer, optional_imports, register

with optional_imports():
    import template_module


@register
class TemplateClass(Trainer):
    name = "template-name"
    model = "template_model"
    framework = "FILL IN (Rust)"
    requires = ("template_module",)
    install_hint = "a Rust extension: build it with `make setup` (see docs/rust.md)"

    def __init__(self, scenario, parameters, seed, device="cpu"):
        super().__init__(scenario, parameters, seed, device)
        # FILL IN: pass Rust what it needs of the scenario (layers, loss, optimizer)
        self.names = list(scenario.parameter_shapes())
        self.network = template_module.Model(
            [np.ascontiguousarray(parameters[name], dtype=np.float64) for name in self.names]
        )

    def load(self, x_train, y_train):
        self.x = np.ascontiguousarray(x_train, dtype=np.float64)
        self.y = np.ascontiguousarray(y_train, dtype=np.int64)
        self.batches = BatchSampler(
            len(x_train), self.scenario.batch_size, self.scenario.sampling, self.seed
        )

    def train(self, steps):
        return self.network.train(self.x, self.y, *self.batches.take(steps))

    def predict(self, x):
        return self.network.predict(np.ascontiguousarray(x, dtype=np.float64))

    def parameters(self):
        dtype = np.dtype(self.scenario.dtype)
        values = self.network.parameters()
        return {name: value.astype(dtype) for name, value in zip(self.names, values, strict=True)}
