"""Implementations that misbehave in every way a case can, for the runner's tests.
Each is a variant of a tiny working trainer, so only its fault differs."""

import math
import os
import signal
import sys
import time

import numpy as np

from bench.api import Trainer, register


@register
class Healthy(Trainer):
    name, model, framework = "healthy", "mlp", "none"

    def load(self, x_train, y_train):
        self.steps_done = 0

    def train(self, steps):
        self.steps_done += steps
        return 1.0 / (1 + self.steps_done)

    def predict(self, x):
        return np.zeros(len(x), dtype=np.int64)

    def parameters(self):
        return dict(self.initial_parameters)


@register
class Crashing(Healthy):
    name = "crashing"

    def train(self, steps):
        raise RuntimeError("deliberate failure in train")


@register
class Hanging(Healthy):
    name = "hanging"

    def train(self, steps):
        time.sleep(3600)
        return 0.0


@register
class Diverging(Healthy):
    name = "diverging"

    def train(self, steps):
        return math.nan


@register
class OutOfMemory(Healthy):
    name = "out-of-memory"

    def train(self, steps):
        raise MemoryError("Unable to allocate 64.0 GiB for an array")


@register
class Exits(Healthy):
    name = "exits"

    def train(self, steps):
        sys.exit(0)


@register
class Interrupts(Healthy):
    name = "interrupts"

    def train(self, steps):
        raise KeyboardInterrupt


@register
class Killed(Healthy):
    name = "killed"

    def train(self, steps):
        os.kill(os.getpid(), signal.SIGKILL)


def first_time(name: str) -> bool:
    """True the first time `name` asks, in any process of a test (state in $BENCH_TEST_STATE)."""
    marker = os.path.join(os.environ["BENCH_TEST_STATE"], name)
    if os.path.exists(marker):
        return False
    open(marker, "w").close()
    return True


@register
class HangsAfterFirstRound(Healthy):
    """Finishes its first round, then hangs: a timeout must keep the finished round."""

    name = "hangs-later"

    def load(self, x_train, y_train):
        super().load(x_train, y_train)
        self.hang = not first_time(self.name)

    def train(self, steps):
        if self.hang:
            time.sleep(3600)
        return super().train(steps)


@register
class HangsInTchMlp(Healthy):
    """Healthy, except in tch-mlp, where it hangs after its first round: a run stopped by a
    signal then has a finished case and an interrupted one with a measured round."""

    name = "hangs-in-tch-mlp"

    def load(self, x_train, y_train):
        super().load(x_train, y_train)
        self.hang = self.scenario.name == "tch-mlp" and not first_time(self.name)

    def train(self, steps):
        if self.hang:
            first_time(f"{self.name}-hanging")  # the test's cue to send the signal
            time.sleep(3600)
        return super().train(steps)


@register
class HangsOnce(Healthy):
    """Hangs the first time it trains, works when run again (to interrupt and resume a run)."""

    name = "hangs-once"

    def train(self, steps):
        if first_time(self.name):
            time.sleep(3600)
        return super().train(steps)


@register
class NeedsMissing(Healthy):
    name = "needs-missing"
    requires = ("a_module_that_is_not_installed",)


@register
class HangsOnceTellingItsParent(Healthy):
    """Hangs the first time it trains, after writing the PID of the process that started its
    worker (a Dask worker, on a cluster) to $BENCH_TEST_STATE/<name>.parent: the test's cue
    to kill that process. Works when run again."""

    name = "hangs-once-telling-its-parent"

    def train(self, steps):
        if first_time(self.name):
            parent = os.path.join(os.environ["BENCH_TEST_STATE"], f"{self.name}.parent")
            with open(parent + ".tmp", "w") as out:
                out.write(str(os.getppid()))
            os.replace(parent + ".tmp", parent)
            time.sleep(3600)
        return super().train(steps)
