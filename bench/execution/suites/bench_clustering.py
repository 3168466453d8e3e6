"""Timed K-Means fits for `kmeans` scenarios.

One round: fresh clusterer, `load` (untimed), harness-chosen initial centroids for the
round's seed, then the timed `fit`. Quality (inertia, adjusted Rand index against the blob
labels) and `predict` time are measured after the timed part. A short warm-up (of a case's
later processes) fits one iteration.
"""

from __future__ import annotations

import math
import time

import numpy as np
from sklearn.metrics import adjusted_rand_score

from bench.execution import devices
from bench.execution.measure import CLOCK, PEAK_MEMORY
from bench.execution.suites.context import CaseContext, run_rounds
from bench.execution.weights import initial_centroids


class ClusteringRound:
    def __init__(self, context: CaseContext, index: int) -> None:
        self.context, self.index = context, index
        case = context.case
        spec = context.scenario.kmeans
        assert spec is not None
        self.clusterer = context.implementation(context.scenario, case.seed + index, case.device)
        self.points = self.clusterer.load(context.data.x_train)
        # The same initial centroids every round: Lloyd's iteration count depends on them,
        # and rounds measure noise, not the luck of the draw.
        self.init = initial_centroids(context.data.x_train, spec.n_clusters, case.seed)
        self.max_iter, self.tol = (1 if context.short_round(index) else spec.max_iter), spec.tol
        PEAK_MEMORY.reset()
        self.gpu = devices.RoundWatch(case.device, devices.nvml(case.device)).start()

    def run(self) -> None:
        start = CLOCK.start()
        self.result = self.clusterer.fit(self.points, self.init.copy(), self.max_iter, self.tol)
        devices.synchronize(self.context.case.device)  # a GPU's work ends before the clock
        self.wall, self.cpu = CLOCK.since(start)

    def finish(self) -> None:
        context, result = self.context, self.result
        peak = PEAK_MEMORY.peak_bytes()
        gpu = self.gpu.stop()
        n = len(context.data.x_train)
        start = time.perf_counter()
        labels = np.asarray(self.clusterer.predict(self.points, result.centroids))
        predict_seconds = time.perf_counter() - start
        n_iter = int(result.n_iter)
        context.record_round(
            self.index,
            wall=self.wall,
            cpu=self.cpu,
            samples=n,
            peak_rss=peak,
            flops=context.scenario.flops_per_iteration(n) * n_iter,
            inertia=float(result.inertia),
            adjusted_rand_index=float(adjusted_rand_score(context.data.y_train, labels)),
            n_iter=n_iter,
            seconds_per_iteration=self.wall / n_iter if n_iter else math.nan,
            predict_seconds_per_sample=predict_seconds / n,
            **gpu.as_metrics(),
        )


def test_clustering(benchmark, case: CaseContext) -> None:
    run_rounds(benchmark, case, ClusteringRound)
