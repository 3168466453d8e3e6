"""K-Means the unoptimised way: Lloyd's algorithm with a Python loop over the points, NumPy
only for each point's small vectors (as Nielsen's network.py loops over examples).

As scikit-learn's `KMeans.fit` (the rules are in `bench/reference.py`): the points are centred
by their mean, and each point goes to the centroid c with the smallest ‖c‖² − 2·x·c (‖x‖² is
the same for every centroid), the first one on an equal value. Everything is in the
scenario's dtype.

Stopping, `n_iter` and empty clusters follow scikit-learn's `_kmeans_single_lloyd` too
(`relocate_empty_clusters` moves the farthest point into an empty cluster).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from bench.api import (
    Clusterer,
    KMeansResult,
    cluster_means,
    kmeans_shift_tolerance,
    register,
    relocate_empty_clusters,
)


@register
class NumpyPureKMeans(Clusterer):
    name = "numpy-pure"
    model = "kmeans"
    framework = "numpy"
    deviations: ClassVar = {
        "*": "Exact ties: a point as far from two centroids in real arithmetic (an integer "
        "grid whose mean is not a short binary fraction) goes where its per-point product "
        "c·x rounds, which may differ from scikit-learn's matrix product; the iterations may "
        "then take another path. Ties that are exact in floating point (duplicated points, "
        "coincident centroids, a grid with a short binary mean) go to the first centroid, "
        "as in every implementation."
    }

    def load(self, x):
        return np.asarray(x, dtype=self.scenario.dtype)

    def fit(self, x, init_centroids, max_iter, tol):
        threshold = kmeans_shift_tolerance(x, tol)
        mean = x.mean(axis=0)
        x = x - mean
        centroids = np.asarray(init_centroids, dtype=x.dtype) - mean
        labels = np.full(len(x), -1, dtype=np.int64)
        n_iter, changed = 0, True
        while n_iter < max_iter:
            n_iter += 1
            sums = np.zeros(centroids.shape)
            counts = np.zeros(len(centroids), dtype=np.int64)
            norms = squared_norms(centroids)
            changed = False
            for i, point in enumerate(x):
                label = nearest(point, centroids, norms)
                changed = changed or label != labels[i]
                labels[i] = label
                sums[label] += point
                counts[label] += 1
            relocate_empty_clusters(x, centroids, labels, sums, counts)
            updated = cluster_means(sums, counts).astype(x.dtype)
            shift = float(((updated - centroids) ** 2).sum())
            centroids = updated
            if not changed or shift <= threshold:
                break
        if changed:  # stopped on the tolerance or max_iter: label by the final centroids
            labels = self._labels(x, centroids)
        inertia = 0.0
        for point, label in zip(x, labels, strict=True):
            inertia += float(((point - centroids[label]) ** 2).sum())
        return KMeansResult(centroids + mean, labels, n_iter, inertia)

    def predict(self, x, centroids):
        mean = x.mean(axis=0)
        return self._labels(x - mean, np.asarray(centroids, dtype=x.dtype) - mean)

    def _labels(self, x, centroids):
        norms = squared_norms(centroids)
        return np.array([nearest(point, centroids, norms) for point in x], dtype=np.int64)


def squared_norms(centroids):
    return np.einsum("ij,ij->i", centroids, centroids)


def nearest(point, centroids, norms):
    """Index of the centroid closest to `point`: the smallest ‖c‖² − 2·x·c, the first one on
    an equal value."""
    return int((norms - 2 * (centroids @ point)).argmin())
