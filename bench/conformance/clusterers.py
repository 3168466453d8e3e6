"""The conformance checks of a clusterer (kmeans), on 500 points of overlapping blobs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bench import reference
from bench.conformance.common import SEED, CheckFailed, device_for, relative
from bench.execution.weights import initial_centroids
from bench.scenarios import Scenario

# Clusterers run in float64 on 500 points: the same centroids as the reference to 1e-6
# relative (the scenario's inertia target), identical labels and iteration counts.
KMEANS_RTOL = 1e-6


N_POINTS = 500


# Overlapping blobs take several Lloyd iterations, so that both stopping rules are reached.
BLOB_STD = 3.0


def tiny_blobs(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Fresh overlapping Gaussian blobs with the scenario's features and centers (NumPy, so
    that a worker need not import scikit-learn), and the initial centroids."""
    spec = scenario.kmeans
    rng = np.random.default_rng(scenario.seed)
    centers = rng.uniform(-10, 10, size=(spec.centers, spec.n_features))
    members = rng.integers(spec.centers, size=N_POINTS)
    x = centers[members] + rng.normal(scale=BLOB_STD, size=(N_POINTS, spec.n_features))
    return x, initial_centroids(x, spec.n_clusters, SEED)


def _settings(scenario: Scenario) -> list[tuple[int, float]]:
    """The scenario's (max_iter, tol); a loose tol that stops on the centroid shift; a
    max_iter that cuts the iterations short."""
    spec = scenario.kmeans
    return [(spec.max_iter, spec.tol), (spec.max_iter, 1e-2), (3, spec.tol)]


def _fit(cls, scenario: Scenario, max_iter: int, tol: float):
    x, init = tiny_blobs(scenario)
    clusterer = cls(scenario, SEED, device_for(cls))
    return clusterer.fit(clusterer.load(x), init, max_iter, tol)


def check_clusterer_reference(cls, scenario: Scenario) -> str:
    x, init = tiny_blobs(scenario)
    reached = []
    for max_iter, tol in _settings(scenario):
        expected = reference.kmeans(x, init, max_iter, tol)
        got = _fit(cls, scenario, max_iter, tol)
        centroids = np.asarray(got.centroids, np.float64)
        setting = f"max_iter={max_iter}, tol={tol:g}"
        if centroids.shape != expected.centroids.shape:
            raise CheckFailed(
                f"{setting}: centroids of shape {centroids.shape}, expected "
                f"{expected.centroids.shape}"
            )
        error = float(
            np.abs(centroids - expected.centroids).max() / np.abs(expected.centroids).max()
        )
        problems = []
        if int(got.n_iter) != expected.n_iter:
            problems.append(
                f"n_iter {got.n_iter}, reference {expected.n_iter} (count Lloyd iterations "
                "as scikit-learn: stop when labels repeat or the summed squared shift "
                "<= bench.api.kmeans_shift_tolerance(x, tol))"
            )
        if not error <= KMEANS_RTOL:
            problems.append(f"centroids {error:.1e} relative from the reference")
        if not relative(float(got.inertia), expected.inertia) <= KMEANS_RTOL:
            problems.append(f"inertia {got.inertia:.10g}, reference {expected.inertia:.10g}")
        labels = np.asarray(got.labels)
        if labels.shape != expected.labels.shape:
            problems.append(f"labels of shape {labels.shape}, expected ({len(x)},)")
        elif (labels != expected.labels).any():
            wrong = int((labels != expected.labels).sum())
            problems.append(f"labels differ from the reference's on {wrong} of {len(x)} points")
        if problems:
            raise CheckFailed(f"{setting}: " + "; ".join(problems))
        reached.append(f"{max_iter}/{tol:g} -> {expected.n_iter} it.")
    return (
        f"{N_POINTS} points, max_iter/tol {', '.join(reached)}: same n_iter and labels, "
        f"centroids and inertia within {KMEANS_RTOL:g} relative"
    )


def check_clusterer_deterministic(cls, scenario: Scenario) -> str:
    max_iter, tol = _settings(scenario)[0]
    first, second = (_fit(cls, scenario, max_iter, tol) for _ in range(2))
    same = (
        np.array_equal(first.centroids, second.centroids)
        and np.array_equal(first.labels, second.labels)
        and first.n_iter == second.n_iter
    )
    if not same:
        raise CheckFailed(
            "two fresh instances fitted from the same initial centroids differ: "
            "draw every random number from self.seed"
        )
    return "two fresh instances give identical centroids, labels and n_iter"


def check_clusterer_inputs(cls, scenario: Scenario) -> str:
    x, init = tiny_blobs(scenario)
    originals = {"x": x.copy(), "init_centroids": init.copy()}
    clusterer = cls(scenario, SEED, device_for(cls))
    loaded = clusterer.load(x)
    max_iter, tol = _settings(scenario)[0]
    result = clusterer.fit(loaded, init, max_iter, tol)
    clusterer.predict(loaded, result.centroids)
    changed = [
        n for n, v in (("x", x), ("init_centroids", init)) if not np.array_equal(v, originals[n])
    ]
    if changed:
        raise CheckFailed(f"modified its inputs: {', '.join(changed)}. Copy before changing")
    return "points and initial centroids unchanged"


def check_clusterer_predict(cls, scenario: Scenario) -> str:
    x, init = tiny_blobs(scenario)
    k, d = init.shape
    clusterer = cls(scenario, SEED, device_for(cls))
    loaded = clusterer.load(x)
    max_iter, tol = _settings(scenario)[0]
    result = clusterer.fit(loaded, init, max_iter, tol)
    centroids = np.asarray(result.centroids)
    for what, labels in (
        ("fit(...).labels", np.asarray(result.labels)),
        ("predict(x, centroids)", np.asarray(clusterer.predict(loaded, centroids))),
    ):
        if labels.shape != (len(x),) or labels.dtype.kind not in "iu":
            raise CheckFailed(
                f"{what} is {labels.dtype} of shape {labels.shape}; expected integer labels of "
                f"shape ({len(x)},)"
            )
    if centroids.shape != (k, d):
        raise CheckFailed(f"fit(...).centroids has shape {centroids.shape}, expected {(k, d)}")
    nearest = reference.nearest_centroid(x, centroids.astype(np.float64))
    if not np.array_equal(labels, nearest):
        raise CheckFailed(
            f"predict(x, centroids) differs from the nearest centroid on "
            f"{int((labels != nearest).sum())} of {len(x)} points"
        )
    return f"integer labels of shape ({len(x)},), the nearest of the given centroids"


CLUSTERER_CHECKS: dict[str, Callable[..., str]] = {
    "matches-reference": check_clusterer_reference,
    "deterministic": check_clusterer_deterministic,
    "inputs-unmodified": check_clusterer_inputs,
    "predict-labels": check_clusterer_predict,
}
