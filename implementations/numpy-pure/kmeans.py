"""K-Means the unoptimised way: Lloyd's algorithm with a Python loop over the points, NumPy
only for each point's small vectors (as Nielsen's network.py loops over examples).

Convergence and `n_iter` follow scikit-learn's `_kmeans_single_lloyd`: stop when no label
changed (strict convergence), or when the summed squared centroid shift is at most
`kmeans_shift_tolerance(x, tol)`; then (unless strict) assign labels once more to the final
centroids. A cluster left empty keeps its previous centroid (scikit-learn instead moves it
to the point farthest from its centroid; blobs do not leave clusters empty).
"""

from __future__ import annotations

import numpy as np

from bench.api import Clusterer, KMeansResult, kmeans_shift_tolerance, register


@register
class NumpyPureKMeans(Clusterer):
    name = "numpy-pure"
    model = "kmeans"
    framework = "numpy"

    def fit(self, x, init_centroids, max_iter, tol):
        threshold = kmeans_shift_tolerance(x, tol)
        centroids = np.array(init_centroids, dtype=np.float64)
        labels = np.full(len(x), -1, dtype=np.int64)
        n_iter, changed = 0, True
        while n_iter < max_iter:
            n_iter += 1
            sums = np.zeros_like(centroids)
            counts = np.zeros(len(centroids), dtype=np.int64)
            changed = False
            for i, point in enumerate(x):
                label = nearest(point, centroids)
                changed = changed or label != labels[i]
                labels[i] = label
                sums[label] += point
                counts[label] += 1
            updated = centroids.copy()
            for j in range(len(centroids)):
                if counts[j]:
                    updated[j] = sums[j] / counts[j]
            shift = float(((updated - centroids) ** 2).sum())
            centroids = updated
            if not changed or shift <= threshold:
                break
        if changed:  # stopped on the tolerance or max_iter: label by the final centroids
            labels = self.predict(x, centroids)
        inertia = 0.0
        for point, label in zip(x, labels, strict=True):
            inertia += float(((point - centroids[label]) ** 2).sum())
        return KMeansResult(centroids, labels, n_iter, inertia)

    def predict(self, x, centroids):
        centroids = np.asarray(centroids, dtype=np.float64)
        return np.array([nearest(point, centroids) for point in x], dtype=np.int64)


def nearest(point, centroids):
    """Index of the centroid closest to `point` (the first one on a tie)."""
    return int(((centroids - point) ** 2).sum(axis=1).argmin())
