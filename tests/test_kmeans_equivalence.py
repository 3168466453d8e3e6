"""Every K-Means implementation reproduces scikit-learn's Lloyd from the same initial
centroids: same centroids, labels, inertia and `n_iter` (the convergence rule included), on
the scenario's blobs and on the shapes where a careless Lloyd goes wrong: clusters far from
the origin, float32, exact ties among duplicated points, clusters left empty, k = 1, k = n."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest

from bench import reference
from bench.datasets import make_blobs
from bench.execution.weights import initial_centroids
from bench.plugins import discover
from bench.scenarios import SCENARIOS

SCENARIO = SCENARIOS["linfa-kmeans"]
IMPLEMENTATIONS = ("numpy-vectorized", "numpy-pure", "torch", "linfa")
EVERY_IMPLEMENTATION = ("sklearn", *IMPLEMENTATIONS)
RTOL = 1e-6

# (k, seed of the initial centroids, max_iter, tol, how the reference stops)
FITS = {
    "k3-random-init": (3, 0, 100, 1e-4),  # converges in a few iterations, no label changes
    "k8-tolerance-stop": (8, 1, 100, 1e-4),  # stops on the centroid shift: labels re-assigned
    "k8-many-iterations-tolerance": (8, 1, 100, 1e-6),
    "k8-many-iterations-strict": (8, 1, 100, 0.0),  # only unchanged labels can stop it
    "k8-max-iter": (8, 1, 5, 1e-4),
}


@pytest.fixture(scope="module")
def plugins():
    return {p.name: p for p in discover([]).for_model("kmeans")}


@pytest.fixture(scope="module")
def blobs():
    x, _ = make_blobs(5_000, 2, 3, seed=42)
    return x


def clusterer(plugins, name, device="cpu", scenario=SCENARIO):
    plugin = plugins.get(name)
    if plugin is None:
        pytest.fail(f"implementation {name!r} was not discovered")
    if not plugin.available:
        pytest.skip(f"{name}: {plugin.unavailable_reason}")
    return plugin.cls(scenario, seed=0, device=device)


def fit(implementation, x, k, seed, max_iter, tol):
    return implementation.fit(
        implementation.load(x), initial_centroids(x, k, seed), max_iter=max_iter, tol=tol
    )


def assert_same_fit(result, reference):
    assert result.n_iter == reference.n_iter
    np.testing.assert_array_equal(np.asarray(result.labels), np.asarray(reference.labels))
    scale = np.abs(reference.centroids).max()
    error = np.abs(np.asarray(result.centroids, np.float64) - reference.centroids).max() / scale
    assert error <= RTOL, f"centroids {error:.1e} relative from the reference"
    assert result.inertia == pytest.approx(reference.inertia, rel=RTOL)


@pytest.fixture(scope="module")
def references(plugins, blobs):
    sklearn = clusterer(plugins, "sklearn")
    return {label: fit(sklearn, blobs, *args) for label, args in FITS.items()}


def test_the_fits_cover_every_way_to_stop(references):
    assert references["k3-random-init"].n_iter < 10
    assert references["k8-many-iterations-strict"].n_iter >= 30
    assert references["k8-tolerance-stop"].n_iter < references["k8-many-iterations-strict"].n_iter
    assert references["k8-max-iter"].n_iter == 5


@pytest.mark.parametrize("fit_label", FITS)
@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_same_fit_as_sklearn(plugins, blobs, references, name, fit_label):
    result = fit(clusterer(plugins, name), blobs, *FITS[fit_label])
    assert_same_fit(result, references[fit_label])


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_predict_labels_by_nearest_centroid(plugins, blobs, references, name):
    implementation = clusterer(plugins, name)
    reference = references["k8-tolerance-stop"]
    labels = implementation.predict(implementation.load(blobs), reference.centroids)
    np.testing.assert_array_equal(np.asarray(labels), reference.labels)


@pytest.mark.parametrize("name", ["numpy-vectorized", "torch"])
def test_tiny_chunks_give_the_single_chunk_result(plugins, blobs, name):
    results = []
    for chunk_size in (7, len(blobs)):
        implementation = clusterer(plugins, name)
        implementation.chunk_size = chunk_size
        results.append(fit(implementation, blobs, *FITS["k8-many-iterations-tolerance"]))
    chunked, whole = results
    assert chunked.n_iter == whole.n_iter
    np.testing.assert_array_equal(np.asarray(chunked.labels), np.asarray(whole.labels))
    np.testing.assert_allclose(chunked.centroids, whole.centroids, rtol=1e-12)
    assert chunked.inertia == pytest.approx(whole.inertia, rel=1e-12)


def _torch_devices() -> list[str]:
    """Every device torch can use here: the GPU case runs where one is present."""
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", _torch_devices())
def test_torch_matches_the_reference_on_every_available_device(plugins, blobs, references, device):
    result = fit(clusterer(plugins, "torch", device), blobs, *FITS["k8-many-iterations-strict"])
    assert_same_fit(result, references["k8-many-iterations-strict"])


# --- the held-out shapes -------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    x: np.ndarray
    init: np.ndarray
    max_iter: int = 100
    tol: float = 1e-4


def overlapping_blobs(n: int, std: float, seed: int, offset: float = 0.0) -> np.ndarray:
    """Three blobs whose centres are drawn in ±std around `offset`: they overlap."""
    rng = np.random.default_rng(seed)
    centres = offset + rng.uniform(-std, std, size=(3, 2))
    return centres[rng.integers(3, size=n)] + rng.normal(scale=std, size=(n, 2))


def grid_with_duplicates(n: int, seed: int) -> np.ndarray:
    """Integer points 0..7 and their mirror images: every point is many times in the data,
    the mean is exactly 3.5, and many points are exactly as far from two centroids."""
    half = np.random.default_rng(seed).integers(8, size=(n // 2, 2))
    return np.concatenate([half, 7 - half]).astype(np.float64)


def _shapes() -> dict[str, Shape]:
    # Centred at 1e4 and 3e-3 across: computed uncentred, ‖c‖² − 2·x·c mislabels points and
    # takes 32 iterations instead of 11 here.
    offset = overlapping_blobs(1_000, 3e-3, seed=2, offset=1e4)
    # Well-separated blobs in float32: every implementation computes in float32.
    single = make_blobs(1_000, 2, 3, seed=7)[0].astype(np.float32)
    grid = grid_with_duplicates(2_048, seed=6)
    blobs = make_blobs(500, 2, 3, seed=4)[0]
    far = np.vstack([initial_centroids(blobs, 2, 0), [[100.0, 100.0]]])
    coincident = initial_centroids(grid, 4, 0)
    coincident[3] = coincident[0]
    return {
        "clusters far from the origin": Shape(offset, initial_centroids(offset, 3, 3)),
        "float32": Shape(single, initial_centroids(single, 3, 0)),
        "exact ties among duplicated points": Shape(grid, initial_centroids(grid, 8, 6), tol=0),
        "an initial centroid that gets no point": Shape(blobs, far),
        "two initial centroids on one point": Shape(grid, coincident),
        "k = 1": Shape(blobs, blobs[:1].copy()),
        "k = n": Shape(blobs[:40], blobs[:40].copy()),
    }


SHAPES = _shapes()


@pytest.fixture(scope="module")
def shape_references():
    return {name: reference.kmeans(s.x, s.init, s.max_iter, s.tol) for name, s in SHAPES.items()}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", EVERY_IMPLEMENTATION)
def test_every_implementation_fits_each_held_out_shape_as_the_reference(
    plugins, shape_references, name, shape
):
    chosen = SHAPES[shape]
    scenario = replace(SCENARIO, dtype=str(chosen.x.dtype))
    implementation = clusterer(plugins, name, scenario=scenario)
    result = implementation.fit(
        implementation.load(chosen.x.copy()), chosen.init.copy(), chosen.max_iter, chosen.tol
    )
    assert np.asarray(result.centroids).dtype == chosen.x.dtype, "computes in the scenario's dtype"
    assert_same_fit(result, shape_references[shape])


def test_the_shapes_hold_what_they_are_named_for(shape_references):
    offset = SHAPES["clusters far from the origin"]
    assert np.abs(offset.x).min() > 9_999 and np.ptp(offset.x, axis=0).max() < 0.1
    grid = SHAPES["exact ties among duplicated points"].x
    assert len(np.unique(grid, axis=0)) < len(grid) / 10
    # An empty cluster is relocated onto the farthest point: no centroid is left at (100, 100)
    # and every cluster has points.
    empty = shape_references["an initial centroid that gets no point"]
    assert not np.isclose(empty.centroids, 100.0).any()
    assert set(empty.labels.tolist()) == {0, 1, 2}
    assert set(shape_references["two initial centroids on one point"].labels.tolist()) == {
        0,
        1,
        2,
        3,
    }
    assert shape_references["k = n"].inertia == 0


def test_on_rounding_decided_ties_the_matrix_products_break_them_as_kmeans_fit(plugins):
    """Points equidistant from two centroids in real arithmetic, on a grid whose mean is not
    a short binary fraction: scikit-learn decides them by how ‖c‖² − 2·x·c rounds in its BLAS
    matrix product, and so do the reference and the implementations that use one. numpy-pure
    (a product per point) and linfa (differences) declare that they may decide otherwise."""
    x = np.random.default_rng(0).integers(0, 20, size=(3_000, 2)).astype(np.float64)
    init = initial_centroids(x, 8, 0)
    expected = reference.kmeans(x, init, 100, 0.0)
    for name in ("sklearn", "numpy-vectorized", "torch"):
        implementation = clusterer(plugins, name)
        assert_same_fit(implementation.fit(implementation.load(x), init.copy(), 100, 0.0), expected)
    for name in ("numpy-pure", "linfa"):
        assert any("tie" in text for text in plugins[name].info.deviations["linfa-kmeans"])
