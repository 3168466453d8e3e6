"""A trainer that keeps one thread busy for a fixed CPU time per step and learns nothing: a
case whose rounds are long enough to be disturbed, and whose only threads are its own."""

import time

import numpy as np

from bench.api import Trainer, register

CPU_SECONDS_PER_STEP = 0.04


@register
class SpinTrainer(Trainer):
    name, model, framework = "spin", "mlp", "none"

    def load(self, x_train, y_train):
        pass

    def train(self, steps):
        for _ in range(steps):
            until = time.thread_time() + CPU_SECONDS_PER_STEP
            while time.thread_time() < until:
                pass
        return 0.0

    def predict(self, x):
        return np.zeros(len(x), dtype=np.int64)

    def parameters(self):
        return dict(self.initial_parameters)
