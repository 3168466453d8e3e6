"""A trainer that takes a fixed time per step, to exercise the per-round time cap."""

import time

import numpy as np

from bench.api import Trainer, register


@register
class SlowSteps(Trainer):
    name, model, framework = "slow-steps", "mlp", "none"

    def load(self, x_train, y_train):
        pass

    def train(self, steps):
        time.sleep(0.01 * steps)
        return 1.0

    def predict(self, x):
        return np.zeros(len(x), dtype=np.int64)

    def parameters(self):
        return dict(self.initial_parameters)
