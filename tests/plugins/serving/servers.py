"""Clusterers for the serving tests: a predict that is slow now and then, one whose server
process exits mid-level, one that stops answering. Each computes the right labels while it
answers, so that the server passes its label check and its faults come later."""

import os
import threading
import time

from bench.api import Clusterer, register


class Counting(Clusterer):
    model, framework = "kmeans", "numpy (serving test)"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0
        self.lock = threading.Lock()

    def fit(self, x, init_centroids, max_iter, tol):
        raise NotImplementedError("serving tests only predict")

    def predict(self, x, centroids):
        with self.lock:
            self.calls += 1
            calls = self.calls
        self.before_answer(calls)
        return ((x[:, None, :] - centroids[None]) ** 2).sum(axis=2).argmin(axis=1)

    def before_answer(self, calls):
        pass


@register
class SlowNowAndThen(Counting):
    """One call in 10 takes 200 ms longer: its p99 rises, its p50 does not."""

    name = "slow-now-and-then"

    def before_answer(self, calls):
        if calls % 10 == 0:
            time.sleep(0.2)


@register
class ExitsMidLevel(Counting):
    """The server process exits at its 150th request: after the label check and the warm-up,
    during the first level."""

    name = "exits-mid-level"

    def before_answer(self, calls):
        if calls == 150:
            os._exit(7)


@register
class StopsAnswering(Counting):
    """From its 150th request on, every answer waits an hour: the server hangs."""

    name = "stops-answering"

    def before_answer(self, calls):
        if calls >= 150:
            time.sleep(3600)


@register
class FailsToStart(Counting):
    """Cannot be made: the server exits before it listens."""

    name = "fails-to-start"

    def __init__(self, *args, **kwargs):
        raise RuntimeError("deliberately unable to start")
