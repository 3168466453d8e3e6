"""Trainers that take a fixed time per step, to exercise the per-round time cap: one that
computes for it (too slow for a short cap), one that waits for it (fast, but slowed down
by something else, as a busy machine does)."""

import time

import numpy as np

from bench.api import Trainer, register

STEP_SECONDS = 0.01


@register
class SlowSteps(Trainer):
    """Spends STEP_SECONDS of CPU time per step."""

    name, model, framework = "slow-steps", "mlp", "none"

    def load(self, x_train, y_train):
        pass

    def train(self, steps):
        end = time.process_time() + STEP_SECONDS * steps
        while time.process_time() < end:
            pass
        return 1.0

    def predict(self, x):
        return np.zeros(len(x), dtype=np.int64)

    def parameters(self):
        return dict(self.initial_parameters)


@register
class WaitingSteps(SlowSteps):
    """Waits STEP_SECONDS per step, using no CPU: its time is not its own."""

    name = "waiting-steps"

    def train(self, steps):
        time.sleep(STEP_SECONDS * steps)
        return 1.0


CALL_SECONDS = 0.02


@register
class CostlyCalls(SlowSteps):
    """Free steps, but every `train` call costs CALL_SECONDS (a Keras `fit` costs about 30 ms):
    a round cut into many calls would time the calls."""

    name = "costly-calls"

    def train(self, steps):
        time.sleep(CALL_SECONDS)
        return 1.0
