"""template-name: K-Means (Lloyd) for the `bench` harness.

Written by `bench new`. The harness chooses the data and the initial centroids; this file
owns the math. Fill in the two methods marked FILL IN, then run `bench check template-name`:
it compares centroids, labels and the iteration count with bench/reference.py.
"""

from __future__ import annotations

import numpy as np

from bench.api import Clusterer, KMeansResult, kmeans_shift_tolerance, register

# A framework other than NumPy is imported inside `bench.api.optional_imports()`, and named
# in `requires`, so that a machine without it shows this implementation as *skipped*.


@register
class TemplateClass(Clusterer):
    name = "template-name"  # what `bench run -i` and the summary call it
    model = "kmeans"
    framework = "numpy"
    requires = ()  # import names needed beyond the harness's own, e.g. ("torch",)

    def load(self, x: np.ndarray) -> object:
        """Untimed: the points (n, features), in the scenario's dtype (compute in it too), as
        your framework's array, given to fit/predict."""
        return x

    def fit(self, x, init_centroids: np.ndarray, max_iter: int, tol: float) -> KMeansResult:
        """Timed: Lloyd's algorithm from `init_centroids` (do not modify it; copy), as
        scikit-learn's KMeans.fit computes it (docs/plugins.md#clusterers has every rule).

        Centre the points and the centroids by the mean of the points; a point goes to the
        centroid c with the smallest ‖c‖² − 2·x·c (the first one on an equal value). Then move
        every centroid to the mean of its points; a cluster left empty takes the farthest
        point (bench.api.relocate_empty_clusters and cluster_means do it for NumPy arrays).
        Stop when the labels equal those of iteration i − 1, or when the summed squared
        centroid shift is ≤ kmeans_shift_tolerance(x, tol), or after max_iter iterations;
        n_iter counts the iterations done (as scikit-learn's n_iter_). When it stops on the
        shift or on max_iter, assign the labels once more so that they match the returned
        centroids (shifted back). inertia: the summed squared distance to them.
        """
        raise NotImplementedError(
            "FILL IN TemplateClass.fit: Lloyd iterations until the labels repeat or the "
            f"summed squared shift is <= {kmeans_shift_tolerance(x, tol):.3g} (see docstring)"
        )

    def predict(self, x, centroids: np.ndarray) -> np.ndarray:
        """Integer label of the nearest centroid for every point, shape (n,)."""
        raise NotImplementedError("FILL IN TemplateClass.predict: the nearest centroid")
