"""The conformance checks of a clusterer (kmeans), on 500 points of overlapping blobs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from bench import reference
from bench.conformance.common import SEED, CheckFailed, device_for, relative
from bench.execution.weights import initial_centroids
from bench.scenarios import Scenario

# Centroids and inertia within this of the reference's (largest difference over the largest
# centroid coordinate; inertia relative), as the scenario's inertia target. float32 means and
# sums of a few hundred points round at about 1e-7 to 1e-6 of their size (scikit-learn's own
# float32 fit of 5 000 points is up to 8e-7 from the float64 reference, linfa's running mean
# 1.3e-6): 1e-5 leaves room for that and still catches any mistake in the update.
KMEANS_RTOL = {"float64": 1e-6, "float32": 1e-5}


N_POINTS = 500


# Overlapping blobs take several Lloyd iterations, so that both stopping rules are reached.
BLOB_STD = 3.0


# The offset shape: the blobs shrunk by this factor around a point this far from the origin.
# Uncentred, ‖c‖² − 2·x·c loses the digits that separate such close centroids.
OFFSET_SCALE, OFFSET = 3e-4, 1e4


# The grid shape: GRID_POINTS integer points in 0..GRID_SIDE-1 and their mirror images, so
# that the mean is exactly (GRID_SIDE - 1) / 2 and the centred coordinates, their squares and
# products are exact even in float32: many duplicated points, and points exactly equidistant
# from two centroids, which every implementation sees as equal (the first centroid wins).
GRID_SIDE, GRID_POINTS = 8, 256


# The k = n shape: this many distinct points, each its own initial centroid.
ONE_PER_CLUSTER = 16


@dataclass(frozen=True)
class Shape:
    """Points, initial centroids and settings that a clusterer must fit as the reference
    does, and the scenario (the dtype) it is fitted under."""

    scenario: Scenario
    x: np.ndarray
    init: np.ndarray
    max_iter: int
    tol: float


def tiny_blobs(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Fresh overlapping Gaussian blobs with the scenario's features and centers (NumPy, so
    that a worker need not import scikit-learn) in its dtype, and the initial centroids."""
    spec = scenario.kmeans
    rng = np.random.default_rng(scenario.seed)
    centers = rng.uniform(-10, 10, size=(spec.centers, spec.n_features))
    members = rng.integers(spec.centers, size=N_POINTS)
    x = centers[members] + rng.normal(scale=BLOB_STD, size=(N_POINTS, spec.n_features))
    x = x.astype(scenario.dtype)
    return x, initial_centroids(x, spec.n_clusters, SEED)


def reference_shapes(scenario: Scenario) -> dict[str, Shape]:
    """The data every clusterer must fit as the reference does, by name: the scenario's
    blobs under three (max_iter, tol) settings (the tolerance stops it, the labels stop it,
    max_iter cuts it short), then the shapes that tell a careful Lloyd from a careless one."""
    spec = scenario.kmeans
    x, init = tiny_blobs(scenario)
    shapes = {
        f"blobs, max_iter={max_iter}, tol={tol:g}": Shape(scenario, x, init, max_iter, tol)
        for max_iter, tol in _settings(scenario)
    }
    settings = (spec.max_iter, spec.tol)
    offset = (x * OFFSET_SCALE + OFFSET).astype(x.dtype)
    shapes["clusters far from the origin"] = Shape(
        scenario, offset, initial_centroids(offset, spec.n_clusters, SEED), *settings
    )
    half = np.random.default_rng(scenario.seed).integers(
        GRID_SIDE, size=(GRID_POINTS, spec.n_features)
    )
    grid = np.concatenate([half, GRID_SIDE - 1 - half]).astype(scenario.dtype)
    grid_init = initial_centroids(grid, spec.n_clusters, SEED)
    shapes["duplicated points and exact ties"] = Shape(scenario, grid, grid_init, *settings)
    coincident = grid_init.copy()
    coincident[-1] = coincident[0]  # every point is as near one as the other: one is left empty
    shapes["two initial centroids on one point"] = Shape(scenario, grid, coincident, *settings)
    far = init.copy()
    far[-1] = x.max(axis=0) + 10 * (x.max(axis=0) - x.min(axis=0))
    shapes["an initial centroid that gets no point"] = Shape(scenario, x, far, *settings)
    shapes["k = 1"] = Shape(scenario, x, init[:1], *settings)
    distinct = np.unique(x, axis=0)[:ONE_PER_CLUSTER]
    shapes[f"k = n = {len(distinct)}"] = Shape(scenario, distinct, distinct.copy(), *settings)
    if scenario.dtype != "float32":
        single = replace(scenario, dtype="float32")
        x32, init32 = tiny_blobs(single)
        shapes["the scenario in float32"] = Shape(single, x32, init32, *settings)
    return shapes


def _settings(scenario: Scenario) -> list[tuple[int, float]]:
    """The scenario's (max_iter, tol); a loose tol that stops on the centroid shift; a
    max_iter that cuts the iterations short."""
    spec = scenario.kmeans
    return [(spec.max_iter, spec.tol), (spec.max_iter, 1e-2), (3, spec.tol)]


def _fit(cls, shape: Shape):
    clusterer = cls(shape.scenario, SEED, device_for(cls))
    return clusterer.fit(
        clusterer.load(shape.x.copy()), shape.init.copy(), shape.max_iter, shape.tol
    )


def _problems(got, expected, shape: Shape) -> list[str]:
    """How a fit differs from the reference's, in words; empty when it does not."""
    dtype = shape.scenario.dtype
    rtol = KMEANS_RTOL[dtype]
    centroids = np.asarray(got.centroids)
    if centroids.shape != expected.centroids.shape:
        return [f"centroids of shape {centroids.shape}, expected {expected.centroids.shape}"]
    problems = []
    if centroids.dtype != np.dtype(dtype):
        problems.append(
            f"centroids are {centroids.dtype}: compute in the scenario's dtype, {dtype}"
        )
    if int(got.n_iter) != expected.n_iter:
        problems.append(
            f"n_iter {got.n_iter}, reference {expected.n_iter} (count Lloyd iterations "
            "as scikit-learn: stop when labels repeat or the summed squared shift "
            "<= bench.api.kmeans_shift_tolerance(x, tol))"
        )
    scale = np.abs(expected.centroids).max() or 1.0
    error = float(np.abs(centroids.astype(np.float64) - expected.centroids).max() / scale)
    if not error <= rtol:
        problems.append(f"centroids {error:.1e} relative from the reference")
    if not relative(float(got.inertia), expected.inertia) <= rtol:
        problems.append(f"inertia {got.inertia:.10g}, reference {expected.inertia:.10g}")
    labels = np.asarray(got.labels)
    if labels.shape != expected.labels.shape:
        problems.append(f"labels of shape {labels.shape}, expected ({len(shape.x)},)")
    elif (labels != expected.labels).any():
        wrong = int((labels != expected.labels).sum())
        problems.append(f"labels differ from the reference's on {wrong} of {len(shape.x)} points")
    return problems


def check_clusterer_reference(cls, scenario: Scenario) -> str:
    failures, reached = [], []
    for name, shape in reference_shapes(scenario).items():
        expected = reference.kmeans(shape.x, shape.init, shape.max_iter, shape.tol)
        problems = _problems(_fit(cls, shape), expected, shape)
        if problems:
            failures.append(f"{name}: " + "; ".join(problems))
        reached.append(f"{name} ({expected.n_iter} it.)")
    if failures:
        raise CheckFailed(
            " | ".join(failures) + ". The rules (centred distances, ties, empty clusters, "
            "stopping) are in bench/reference.py"
        )
    rtol = KMEANS_RTOL[scenario.dtype]
    return (
        f"same n_iter and labels as the reference, centroids and inertia within {rtol:g} "
        f"relative, on: {', '.join(reached)}"
    )


def check_clusterer_deterministic(cls, scenario: Scenario) -> str:
    shape = next(iter(reference_shapes(scenario).values()))
    first, second = (_fit(cls, shape) for _ in range(2))
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
