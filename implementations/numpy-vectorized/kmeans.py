"""K-Means with NumPy, vectorised: Lloyd's algorithm on matrices of distances.

As scikit-learn's `KMeans.fit` (the rules are in `bench/reference.py`): the points are centred
by their mean, and a point's distance to centroid c is compared as ‖c‖² − 2·x·c (‖x‖² is the
same for every centroid), computed for a chunk of points at a time: the temporaries are
(chunk, k) whatever the number of points, so 10 million points fit in memory. Everything is
in the scenario's dtype; the clusters' sums are accumulated in float64 (`np.bincount`).

The loop, `n_iter` and the empty clusters (`relocate_empty_clusters`) are scikit-learn's
`_kmeans_single_lloyd`'s.
"""

from __future__ import annotations

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
class NumpyVectorizedKMeans(Clusterer):
    name = "numpy-vectorized"
    model = "kmeans"
    framework = "numpy"
    chunk_size = 65_536  # points per distance block: (chunk, k) floats stay in cache

    def load(self, x):
        return np.ascontiguousarray(x, dtype=self.scenario.dtype)

    def fit(self, x, init_centroids, max_iter, tol):
        threshold = kmeans_shift_tolerance(x, tol, chunk_rows=self.chunk_size)
        mean = x.mean(axis=0)
        x = x - mean
        centroids = np.asarray(init_centroids, dtype=x.dtype) - mean
        labels = np.full(len(x), -1, dtype=np.int32)
        n_iter, changed = 0, True
        while n_iter < max_iter:
            n_iter += 1
            changed, sums, counts = self._assign(x, centroids, labels, accumulate=True)
            relocate_empty_clusters(x, centroids, labels, sums, counts)
            updated = cluster_means(sums, counts).astype(x.dtype)
            shift = float(((updated - centroids) ** 2).sum())
            centroids = updated
            if not changed or shift <= threshold:
                break
        if changed:  # stopped on the tolerance or max_iter: label by the final centroids
            self._assign(x, centroids, labels)
        inertia = self._inertia(x, centroids, labels)
        return KMeansResult(centroids + mean, labels, n_iter, inertia)

    def predict(self, x, centroids):
        mean = x.mean(axis=0)
        labels = np.empty(len(x), dtype=np.int32)
        self._assign(x - mean, np.asarray(centroids, dtype=x.dtype) - mean, labels)
        return labels

    def _assign(self, x, centroids, labels, accumulate=False):
        """Write the nearest centroid of every (centred) point into `labels`, chunk by chunk.
        Returns whether any label changed and, with `accumulate`, each cluster's sum (float64)
        and count."""
        k, d = centroids.shape
        squared_norms = np.einsum("ij,ij->i", centroids, centroids)
        sums, counts = np.zeros((k, d)), np.zeros(k, dtype=np.int64)
        changed = False
        for part in self._parts(len(x)):
            chunk, old = x[part], labels[part]
            nearest = (squared_norms - 2 * (chunk @ centroids.T)).argmin(axis=1)
            changed = changed or not np.array_equal(nearest, old)
            old[:] = nearest
            if accumulate:
                counts += np.bincount(nearest, minlength=k)
                for feature in range(d):
                    sums[:, feature] += np.bincount(nearest, chunk[:, feature], minlength=k)
        return changed, sums, counts

    def _inertia(self, x, centroids, labels):
        return sum(
            float(((x[part] - centroids[labels[part]]) ** 2).sum()) for part in self._parts(len(x))
        )

    def _parts(self, n):
        """Consecutive slices of `chunk_size` points covering all `n`."""
        return [slice(start, start + self.chunk_size) for start in range(0, n, self.chunk_size)]
