"""Every MLP implementation computes what the reference (`numpy-vectorized`) computes: same
initial parameters, same batches, same math, so after k steps the same loss and weights
within a float tolerance. Also: exact step counts, state kept between `train` calls, same
seed same result, inputs left alone, integer labels from `predict`."""

from __future__ import annotations

import dataclasses
from functools import cache

import numpy as np
import pytest

from bench.execution.weights import initial_parameters
from bench.plugins import discover
from bench.scenarios import SCENARIOS, Optimizer

REFERENCE = "numpy-vectorized"
IMPLEMENTATIONS = (
    "numpy-pure",
    "numpy-vectorized",
    "torch-store",
    "torch",
    "keras",
    "sklearn",
    "ndarray",
    "tch-store",
)
EXPECTED_UNSUPPORTED = {("sklearn", "nielsen-mlp")}  # scikit-learn has no quadratic cost

# No MLP scenario uses Adam (tch-cnn does); this variant checks the Adam steps too. It runs
# in float64 with a negligible epsilon: Adam divides by sqrt(v), which turns float32
# rounding of near-zero gradients into lr-sized differences, and where epsilon is added
# (before or after the bias correction, a declared deviation of Keras and scikit-learn)
# would otherwise matter for small gradients.
ADAM = dataclasses.replace(
    SCENARIOS["tch-mlp"],
    name="tch-mlp-adam",
    optimizer=Optimizer("adam", lr=1e-3, eps=1e-30),
    dtype="float64",
)
SCENARIO_LIST = [s for s in SCENARIOS.values() if s.model == "mlp"] + [ADAM]

# Tolerance on the loss and on max|W - W_ref| / max|W_ref| for every parameter after a few
# steps. Implementations sum in different orders (BLAS blocking, per-example loops), which
# changes the last bits: a few float32 ulps (eps 1.2e-7) per step, far below 1e-5; in
# float64 (eps 2.2e-16) far below 1e-10. Keras rounds the learning rate and Adam's betas
# to float32 even for float64 weights (1 - 0.999 is then off by 1.3e-5, relative).
# Each tolerance is also checked to be tight enough to tell k steps from k + 1.
TOLERANCE = {"float32": 1e-5, "float64": 1e-10}
KERAS_FLOAT64_TOLERANCE = 1e-4

STEPS = 5
REGISTRY = discover(installed=False)

# Keras turns its logs into floats with np.array(tensor), which NumPy 2.4 flags because
# TensorFlow's tensors lack __array__(copy=...): upstream noise, not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def tolerance(name: str, scenario) -> float:
    if name == "keras" and scenario.dtype == "float64":
        return KERAS_FLOAT64_TOLERANCE
    return TOLERANCE[scenario.dtype]


def implementation(name: str):
    plugin = REGISTRY.find(name, "mlp")
    assert plugin is not None, f"{name} is not registered for mlp"
    if not plugin.available:
        pytest.skip(plugin.unavailable_reason)
    return plugin.cls


def supported(name: str, scenario):
    cls = implementation(name)
    assert cls.why_unsupported(scenario) is None
    return cls


def data(scenario, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.random((n, *scenario.input_shape)).astype(scenario.dtype)
    return x, rng.integers(0, scenario.layers[-1].units_out, size=n)


def full_batch(scenario, n: int = 64):
    return dataclasses.replace(scenario, sampling="full-batch", batch_size=n), *data(scenario, n)


def small_batches(scenario, n: int = 60):
    """The scenario's own sampling with batches of 16 from 60 examples: 4 per epoch, the
    last one short (12)."""
    return dataclasses.replace(scenario, batch_size=16), *data(scenario, n)


def train(cls, scenario, x, y, chunks, seed: int = 3):
    trainer = cls(scenario, initial_parameters(scenario, seed), seed, "cpu")
    trainer.load(x, y)
    loss = None
    for steps in chunks:
        loss = trainer.train(steps)
    return trainer, float(loss)


@cache
def reference(scenario_name: str, batches: str, steps: int):
    scenario = next(s for s in SCENARIO_LIST if s.name == scenario_name)
    scenario, x, y = (full_batch if batches == "full" else small_batches)(scenario)
    trainer, loss = train(implementation(REFERENCE), scenario, x, y, [steps])
    return loss, trainer.parameters()


def relative_errors(params: dict, expected: dict) -> dict[str, float]:
    return {
        name: float(np.max(np.abs(params[name] - want)) / np.max(np.abs(want)))
        for name, want in expected.items()
    }


def assert_equivalent(loss, params, expected_loss, expected_params, tol: float) -> None:
    assert params.keys() == expected_params.keys()
    for name, want in expected_params.items():
        assert params[name].shape == want.shape, name
        assert params[name].dtype == want.dtype, name
    assert loss == pytest.approx(expected_loss, rel=tol)
    errors = relative_errors(params, expected_params)
    assert max(errors.values()) <= tol, errors


CASES = [(name, s) for name in IMPLEMENTATIONS for s in SCENARIO_LIST]
by_case = pytest.mark.parametrize(
    "name, scenario", CASES, ids=lambda v: v if isinstance(v, str) else v.name
)
# The equivalence tests run on every case a framework can express; the others are checked
# above to give a reason.
by_supported_case = pytest.mark.parametrize(
    "name, scenario",
    [(name, s) for name, s in CASES if (name, s.name) not in EXPECTED_UNSUPPORTED],
    ids=lambda v: v if isinstance(v, str) else v.name,
)


@by_case
def test_unsupported_cases_give_a_reason(name, scenario):
    reason = implementation(name).why_unsupported(scenario)
    if (name, scenario.name) in EXPECTED_UNSUPPORTED:
        assert isinstance(reason, str) and reason.strip()
    else:
        assert reason is None


@by_supported_case
def test_full_batch_steps_match_the_reference(name, scenario):
    cls = supported(name, scenario)
    scenario, x, y = full_batch(scenario)
    x_before, y_before = x.copy(), y.copy()
    initial = initial_parameters(scenario, 3)
    initial_before = {key: value.copy() for key, value in initial.items()}
    trainer = cls(scenario, initial, 3, "cpu")
    for key, value in trainer.parameters().items():  # starts from the given weights
        np.testing.assert_array_equal(value, initial[key])
    trainer.load(x, y)
    loss = float(trainer.train(STEPS))
    params, tol = trainer.parameters(), tolerance(name, scenario)

    assert_equivalent(loss, params, *reference(scenario.name, "full", STEPS), tol)
    # Exactly STEPS updates: one more would be outside the tolerance.
    _, after_one_more = reference(scenario.name, "full", STEPS + 1)
    assert max(relative_errors(params, after_one_more).values()) > tol

    labels = trainer.predict(x)
    assert labels.shape == (len(x),)
    assert np.issubdtype(labels.dtype, np.integer)
    assert labels.min() >= 0 and labels.max() < scenario.layers[-1].units_out
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(y, y_before)
    for key, value in initial.items():
        np.testing.assert_array_equal(value, initial_before[key])


@by_supported_case
def test_chunked_training_sees_the_same_batches_and_repeats(name, scenario):
    """train(2), train(5), train(1) with the scenario's sampling (crossing an epoch boundary
    and a short batch) equals the reference's train(8); the same seed twice is identical."""
    cls = supported(name, scenario)
    scenario, x, y = small_batches(scenario)
    first, loss = train(cls, scenario, x, y, [2, 5, 1])
    params = first.parameters()
    assert_equivalent(
        loss, params, *reference(scenario.name, "small", 8), tolerance(name, scenario)
    )

    again, loss_again = train(cls, scenario, x, y, [2, 5, 1])
    assert loss_again == loss
    for key, value in again.parameters().items():
        np.testing.assert_array_equal(value, params[key])


@pytest.mark.parametrize("name", ["keras", "sklearn"])
def test_adam_epsilon_placement_is_declared(name):
    assert implementation(name).deviations_for(ADAM)
    assert not implementation(name).deviations_for(SCENARIOS["tch-mlp"])
