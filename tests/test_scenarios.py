import numpy as np
import pytest

from bench.execution.weights import initial_centroids, initial_parameters
from bench.scenarios import PROFILES, SCENARIOS


def test_the_scenarios_of_the_articles_with_every_profile():
    assert set(SCENARIOS) == {
        "nielsen-mlp",
        "dlfs-mlp",
        "tch-mlp",
        "tch-cnn",
        "dlfs-cnn",
        "linfa-kmeans",
        "linfa-kmeans-serving",
    }
    for scenario in SCENARIOS.values():
        assert set(scenario.budgets) == set(PROFILES)
        assert scenario.published, scenario.name
        for profile in PROFILES:
            budget = scenario.budget(profile)
            assert budget.rounds >= 1 and budget.timeout_s > 0
            if scenario.trains:
                assert (budget.steps is None) != (budget.epochs is None)
            else:
                assert budget.n_samples


def test_full_profile_is_the_articles_budget():
    assert SCENARIOS["dlfs-mlp"].steps_for("full", 60_000) == 10_000
    assert SCENARIOS["nielsen-mlp"].steps_for("full", 50_000) == 30 * 5_000
    # 60 000 / 128 leaves a short last batch: 469 steps per epoch
    assert SCENARIOS["tch-mlp"].steps_for("full", 60_000) == 100 * 469
    assert SCENARIOS["tch-cnn"].steps_for("full", 60_000) == 20 * 118
    assert SCENARIOS["dlfs-cnn"].steps_for("full", 60_000) == 20 * 600
    assert SCENARIOS["linfa-kmeans"].budget("full").n_samples == 1_000_000


def test_analytic_flops():
    # forward 2*(784*50 + 50*10) per sample, backward twice that, batch 100
    assert SCENARIOS["dlfs-mlp"].flops_per_step() == 3 * 2 * (784 * 50 + 50 * 10) * 100
    cnn = SCENARIOS["tch-cnn"]
    conv1 = 2 * 10 * 1 * 25 * 24 * 24
    conv2 = 2 * 20 * 10 * 25 * 8 * 8
    dense = 2 * (320 * 64 + 64 * 10)
    assert cnn.forward_flops_per_sample() == conv1 + conv2 + dense


def test_parameter_shapes_use_the_canonical_layout():
    assert SCENARIOS["nielsen-mlp"].parameter_shapes() == {
        "W1": (784, 30),
        "b1": (30,),
        "W2": (30, 10),
        "b2": (10,),
    }
    dlfs_cnn = SCENARIOS["dlfs-cnn"]
    assert dlfs_cnn.parameter_shapes()["W2"] == (30 * 12 * 12, 100)
    assert dlfs_cnn.forward_flops_per_sample() == 2 * 30 * 25 * 24 * 24 + 2 * (4320 * 100 + 1000)
    cnn = SCENARIOS["tch-cnn"].parameter_shapes()
    assert cnn["W1"] == (10, 1, 5, 5) and cnn["W2"] == (20, 10, 5, 5) and cnn["W3"] == (320, 64)


@pytest.mark.parametrize("name", ["nielsen-mlp", "dlfs-mlp", "tch-mlp", "tch-cnn", "dlfs-cnn"])
def test_initial_parameters_follow_the_init_rule(name):
    scenario = SCENARIOS[name]
    params = initial_parameters(scenario, seed=3)
    again = initial_parameters(scenario, seed=3)
    other = initial_parameters(scenario, seed=4)
    assert {k: v.shape for k, v in params.items()} == scenario.parameter_shapes()
    for key, value in params.items():
        assert value.dtype == np.dtype(scenario.dtype)
        np.testing.assert_array_equal(value, again[key])
    assert not np.array_equal(params["W1"], other["W1"])
    if scenario.init == "scaled-normal":
        assert not params["b1"].any() and abs(params["W1"].std() - 0.01) < 0.001
    if scenario.init == "normal":
        assert abs(params["W1"].std() - 1) < 0.05 and params["b1"].any()
    if scenario.init == "torch-default":
        fan_in = np.prod(params["W1"].shape[1:]) if params["W1"].ndim == 4 else 784
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(params["W1"]).max() <= bound and np.abs(params["b1"]).max() <= bound


def test_initial_centroids_are_distinct_points_of_the_data():
    x = np.arange(40.0).reshape(20, 2)
    centroids = initial_centroids(x, 3, seed=0)
    assert centroids.shape == (3, 2)
    assert len({tuple(c) for c in centroids}) == 3
    assert all(any((c == row).all() for row in x) for c in centroids)
    np.testing.assert_array_equal(centroids, initial_centroids(x, 3, seed=0))


def test_overrides_change_one_profile_for_sweeps():
    base = SCENARIOS["dlfs-mlp"]
    swept = base.with_overrides("quick", {"batch_size": 256, "steps": 50})
    assert swept.batch_size == 256 and swept.steps_for("quick", 4000) == 50
    assert swept.budget("full") == base.budget("full")
    assert swept.flops_per_step() == base.flops_per_step() * 256 // 100
    kmeans = SCENARIOS["linfa-kmeans"].with_overrides("quick", {"n_samples": 10_000})
    assert kmeans.budget("quick").n_samples == 10_000
    with pytest.raises(ValueError, match="sweepable"):
        base.with_overrides("quick", {"lr": 1.0})
