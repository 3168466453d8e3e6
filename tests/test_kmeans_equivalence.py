"""Every K-Means implementation reproduces scikit-learn's Lloyd from the same initial
centroids: same centroids, labels, inertia and `n_iter` (the convergence rule included)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.datasets import make_blobs
from bench.execution.weights import initial_centroids
from bench.plugins import discover
from bench.scenarios import SCENARIOS

SCENARIO = SCENARIOS["linfa-kmeans"]
IMPLEMENTATIONS = ("numpy-vectorized", "numpy-pure", "torch", "linfa")
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


def clusterer(plugins, name, device="cpu"):
    plugin = plugins.get(name)
    if plugin is None:
        pytest.fail(f"implementation {name!r} was not discovered")
    if not plugin.available:
        pytest.skip(f"{name}: {plugin.unavailable_reason}")
    return plugin.cls(SCENARIO, seed=0, device=device)


def fit(implementation, x, k, seed, max_iter, tol):
    return implementation.fit(
        implementation.load(x), initial_centroids(x, k, seed), max_iter=max_iter, tol=tol
    )


def assert_same_fit(result, reference):
    assert result.n_iter == reference.n_iter
    np.testing.assert_array_equal(np.asarray(result.labels), np.asarray(reference.labels))
    np.testing.assert_allclose(result.centroids, reference.centroids, rtol=RTOL)
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


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_an_empty_cluster_keeps_its_centroid(plugins, blobs, name):
    """Our documented choice (scikit-learn instead moves it to the farthest point)."""
    implementation = clusterer(plugins, name)
    init = np.vstack([[1e6, 1e6], initial_centroids(blobs, 2, seed=0)])
    result = implementation.fit(implementation.load(blobs), init, max_iter=100, tol=1e-4)
    np.testing.assert_array_equal(result.centroids[0], [1e6, 1e6])
    assert 0 not in set(np.asarray(result.labels).tolist())
