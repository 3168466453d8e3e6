"""K-Means with scikit-learn: Lloyd's algorithm from the harness's initial centroids, one init."""

from __future__ import annotations

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

    def fit(self, x, init_centroids, max_iter, tol):
        model = KMeans(
            n_clusters=len(init_centroids),
            init=init_centroids,
            n_init=1,
            max_iter=max_iter,
            tol=tol,
            algorithm="lloyd",
            random_state=self.seed,
        ).fit(x)
        return KMeansResult(model.cluster_centers_, model.labels_, model.n_iter_, model.inertia_)

    def predict(self, x, centroids):
        return pairwise_distances_argmin(x, centroids)
