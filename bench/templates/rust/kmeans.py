"""template-name: FILL IN one line on how this implementation works. Written by `bench new`:
a thin Python face over the Rust extension module `template_module` (`src/lib.rs`), which
does the whole fit."""

from __future__ import annotations

import numpy as np

from bench.api import Clusterer, KMeansResult, kmeans_shift_tolerance, optional_imports, register

with optional_imports():
    import template_module


@register
class TemplateClass(Clusterer):
    name = "template-name"
    model = "kmeans"
    framework = "FILL IN (Rust)"
    requires = ("template_module",)
    install_hint = "a Rust extension: build it with `make setup` (see docs/rust.md)"

    @classmethod
    def why_unsupported(cls, scenario):
        # The extension is written for f64; make it generic over the float type (as
        # implementations/linfa is) to run float32 scenarios in float32.
        return "computes in float64 only" if scenario.dtype != "float64" else None

    def load(self, x):
        return np.ascontiguousarray(x, dtype=np.float64)

    def fit(self, x, init_centroids, max_iter, tol):
        centroids, labels, n_iter, inertia = template_module.fit(
            x,
            np.ascontiguousarray(init_centroids, dtype=np.float64),
            max_iter,
            kmeans_shift_tolerance(x, tol),
        )
        return KMeansResult(centroids, labels, n_iter, inertia)

    def predict(self, x, centroids):
        return template_module.predict(x, np.ascontiguousarray(centroids, dtype=np.float64))
