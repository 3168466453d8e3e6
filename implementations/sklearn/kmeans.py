"""K-Means with scikit-learn: Lloyd's algorithm from the harness's initial centroids, one init,
in the scenario's dtype (scikit-learn computes in the dtype of the points it is given).

`KMeans.fit` is the definition the other implementations follow (`bench/reference.py`): it
centres the points by their mean before computing distances, and relocates empty clusters."""

from __future__ import annotations

import numpy as np

from bench.api import Clusterer, KMeansResult, optional_imports, register

with optional_imports():
    from sklearn.cluster import KMeans
    from sklearn.metrics import pairwise_distances_argmin


@register
class SklearnKMeans(Clusterer):
    name = "sklearn"
    model = "kmeans"
    framework = "scikit-learn"
    requires = ("sklearn",)

    def load(self, x):
        return np.ascontiguousarray(x, dtype=self.scenario.dtype)

    def fit(self, x, init_centroids, max_iter, tol):
        model = KMeans(
            n_clusters=len(init_centroids),
            init=np.asarray(init_centroids, dtype=x.dtype),
            n_init=1,
            max_iter=max_iter,
            tol=tol,
            algorithm="lloyd",
            random_state=self.seed,
        ).fit(x)
        return KMeansResult(model.cluster_centers_, model.labels_, model.n_iter_, model.inertia_)

    def predict(self, x, centroids):
        # Centred as `fit` computes: far from the origin, uncentred distances lose the digits
        # that tell close centroids apart.
        mean = x.mean(axis=0)
        return pairwise_distances_argmin(x - mean, np.asarray(centroids, dtype=x.dtype) - mean)
