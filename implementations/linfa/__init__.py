"""K-Means with linfa-clustering, the crate Palmieri 2019 measured against scikit-learn,
compiled: the extension module `bench_linfa` (Rust in `src/`, built by `make setup`) runs
the whole fit, from the harness's initial centroids (`KMeansInit::Precomputed`).

linfa's own `KMeans::fit` is not Lloyd's algorithm (see `deviations`); the extension drives
linfa's one-batch K-Means step instead, which is one Lloyd iteration, and stops by
scikit-learn's rule. linfa assigns the points in parallel on rayon's global pool
(`RAYON_NUM_THREADS`); it moves the centroids on one thread.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from bench.api import Clusterer, KMeansResult, optional_imports, register

with optional_imports():
    import bench_linfa

NOT_KMEANS_FIT = (
    "Lloyd iterations by linfa's incremental K-Means step (fit_with on the whole data, from "
    "the current centroids), not linfa's KMeans::fit: fit updates the centroids as m_k-means "
    "(the old centroid counts as one more member of its cluster), stops on an absolute "
    "tolerance of the centroid shift, and reports neither n_iter nor the final labels. The "
    "stopping rule here is scikit-learn's."
)

DISTANCES = (
    "Exact ties: linfa compares distances as ‖x − c‖², computed by differences, not as "
    "scikit-learn's ‖c‖² − 2·x·c: a point as far from two centroids in real arithmetic (an "
    "integer grid whose mean is not a short binary fraction) may go to the other one, and the "
    "iterations may then take another path. Ties that are exact in floating point (duplicated "
    "points, coincident centroids) go to the first centroid, as in every implementation."
)


@register
class LinfaKMeans(Clusterer):
    name = "linfa"
    model = "kmeans"
    framework = "linfa (Rust)"
    requires = ("bench_linfa",)
    install_hint = (
        "a Rust extension: install Rust (cargo) from https://rustup.rs, then run `make setup`, "
        "which builds implementations/linfa into .venv"
    )
    deviations: ClassVar = {"*": f"{NOT_KMEANS_FIT} {DISTANCES}"}

    @classmethod
    def thread_counts(cls):
        return bench_linfa.thread_counts()

    def load(self, x):
        return np.ascontiguousarray(x, dtype=self.scenario.dtype)

    def fit(self, x, init_centroids, max_iter, tol):
        fit = bench_linfa.fit_f32 if x.dtype == np.float32 else bench_linfa.fit_f64
        centroids, labels, n_iter, inertia = fit(
            x, np.ascontiguousarray(init_centroids, dtype=x.dtype), max_iter, tol
        )
        return KMeansResult(centroids, labels, n_iter, inertia)

    def predict(self, x, centroids):
        predict = bench_linfa.predict_f32 if x.dtype == np.float32 else bench_linfa.predict_f64
        return predict(x, np.ascontiguousarray(centroids, dtype=x.dtype))
