"""Every CNN implementation computes what the float64 reference (`bench.reference`) computes:
same initial parameters, same images, same math, so after k full-batch steps the same loss
and weights within a float tolerance. This is what proves each framework's layout
conversions (Keras's channels-last kernels and flattening order, nn.Linear's (out, in)).
Also: exact step counts, state kept between `train` calls, same seed same result."""

from __future__ import annotations

import dataclasses
from functools import cache

import numpy as np
import pytest

from bench import reference
from bench.execution.weights import initial_parameters
from bench.plugins import discover
from bench.scenarios import SCENARIOS, Conv2d, Dense, Flatten, MaxPool2d

IMPLEMENTATIONS = (
    "numpy-pure",
    "numpy-vectorized",
    "torch-store",
    "torch",
    "keras",
    "sklearn",
    "tch-store",
)
CNN_SCENARIOS = [s for s in SCENARIOS.values() if s.model == "cnn"]
# No scenario pads or strides its convolutions or overlaps its pooling windows; this variant
# checks that every implementation would, and that the flattening order holds for more than
# one channel.
STRIDED = dataclasses.replace(
    SCENARIOS["tch-cnn"],
    name="strided-cnn",
    layers=(
        Conv2d(1, 4, 3, stride=2, padding=1, activation="relu"),
        MaxPool2d(3, 2),  # overlapping windows: a pixel's gradient sums over them
        Conv2d(4, 3, 2, padding=1),
        Flatten(),
        Dense(3 * 7 * 7, 10, None),
    ),
)
SCENARIO_LIST = [*CNN_SCENARIOS, STRIDED]
EXPECTED_UNSUPPORTED = {"sklearn"}  # scikit-learn has no convolutional layers

# The comparison runs each scenario in float64 with a negligible Adam epsilon: Adam divides
# by sqrt(v) + eps, which turns float32 rounding of near-zero gradients into lr-sized
# differences, and where epsilon is added (Keras's declared deviation) would otherwise
# matter for small gradients (dlfs-cnn's 0.01-scaled init gives gradients near 1e-8).
# Tolerance on the loss and on max|W - W_ref| / max|W_ref - W_0| for every parameter:
# float64 summation orders differ in the last bits, far below 1e-9. Keras keeps part of
# Adam's arithmetic in float32 even for float64 weights (the learning rate, the betas and
# the bias corrections: 1 - 0.999 is then off by 1.3e-5, relative), which moves every
# update by about 1e-5 of itself, and by up to 2e-4 (measured on dlfs-cnn) on the few
# weights whose gradient changes sign and grows 100-fold between steps, where m_hat/sqrt(v_hat)
# is a near-cancellation. 1e-3 is still far below the 0.3 that one more step makes.
TOLERANCE = 1e-9
KERAS_TOLERANCE = 1e-3
N_IMAGES = 8  # numpy-pure convolves one example at a time: keep it tiny
STEPS = 3
REGISTRY = discover(installed=False)

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def exact(scenario):
    """The scenario in float64 with a negligible Adam epsilon (see above)."""
    optimizer = dataclasses.replace(scenario.optimizer, eps=1e-30)
    return dataclasses.replace(scenario, dtype="float64", optimizer=optimizer)


def implementation(name: str):
    plugin = REGISTRY.find(name, "cnn")
    assert plugin is not None, f"{name} is not registered for cnn"
    if not plugin.available:
        pytest.skip(plugin.unavailable_reason)
    return plugin.cls


def data(scenario, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random images with MNIST's blank border, so that max-pooling sees ties as on digits."""
    rng = np.random.default_rng(7)
    x = np.zeros((n, *scenario.input_shape), dtype=scenario.dtype)
    x[:, :, 4:24, 4:24] = rng.random((n, scenario.input_shape[0], 20, 20))
    return x * np.asarray(scenario.input_scale * 255, scenario.dtype), rng.integers(0, 10, n)


def full_batch(scenario, n: int = N_IMAGES):
    return dataclasses.replace(scenario, sampling="full-batch", batch_size=n), *data(scenario, n)


@cache
def expected(scenario_name: str, steps: int):
    scenario = next(s for s in SCENARIO_LIST if s.name == scenario_name)
    scenario, x, y = full_batch(exact(scenario))
    losses, params = reference.train_full_batch(
        scenario, initial_parameters(scenario, 3), x, y, steps
    )
    return losses[-1], params


def errors(params: dict, want: dict, start: dict) -> dict[str, float]:
    return {
        name: float(np.max(np.abs(params[name] - value)) / np.max(np.abs(value - start[name])))
        for name, value in want.items()
    }


by_case = pytest.mark.parametrize(
    "name, scenario",
    [(name, s) for name in IMPLEMENTATIONS for s in CNN_SCENARIOS],
    ids=lambda v: v if isinstance(v, str) else v.name,
)
by_supported_case = pytest.mark.parametrize(
    "name, scenario",
    [
        (name, s)
        for name in IMPLEMENTATIONS
        if name not in EXPECTED_UNSUPPORTED
        for s in SCENARIO_LIST
    ],
    ids=lambda v: v if isinstance(v, str) else v.name,
)


@by_case
def test_unsupported_cases_give_a_reason(name, scenario):
    reason = implementation(name).why_unsupported(scenario)
    if name in EXPECTED_UNSUPPORTED:
        assert reason == "scikit-learn has no convolutional layers"
    else:
        assert reason is None


@by_supported_case
def test_full_batch_steps_match_the_reference(name, scenario):
    cls = implementation(name)
    scenario, x, y = full_batch(exact(scenario))
    x_before = x.copy()
    initial = initial_parameters(scenario, 3)
    trainer = cls(scenario, initial, 3, "cpu")
    for key, value in trainer.parameters().items():  # starts from the given weights
        np.testing.assert_array_equal(value, initial[key])
    trainer.load(x, y)
    loss = float(trainer.train(STEPS))
    params = trainer.parameters()
    tol = KERAS_TOLERANCE if name == "keras" else TOLERANCE

    want_loss, want = expected(scenario.name, STEPS)
    assert {k: (v.shape, v.dtype) for k, v in params.items()} == {
        k: (v.shape, v.dtype) for k, v in want.items()
    }
    assert loss == pytest.approx(want_loss, rel=tol)
    assert max(errors(params, want, initial).values()) <= tol, errors(params, want, initial)
    # Exactly STEPS updates: one more would be far outside the tolerance.
    _, after_one_more = expected(scenario.name, STEPS + 1)
    assert max(errors(params, after_one_more, initial).values()) > 100 * tol

    labels = trainer.predict(x)
    assert labels.shape == (len(x),) and np.issubdtype(labels.dtype, np.integer)
    outputs = reference.ReferenceTrainer(scenario, params).outputs(x)
    np.testing.assert_array_equal(labels, outputs.argmax(axis=1))
    np.testing.assert_array_equal(x, x_before)


@by_supported_case
def test_chunked_training_keeps_its_place_and_repeats(name, scenario):
    """train(2), train(3), train(1) with the scenario's own sampling and dtype, batches of 4
    from 10 images (an epoch boundary and a short batch), equals train(6); the same seed
    twice is identical, and a seventh step shows."""
    cls = implementation(name)
    scenario = dataclasses.replace(scenario, batch_size=4)
    x, y = data(scenario, 10)

    def trained(chunks):
        trainer = cls(scenario, initial_parameters(scenario, 3), 3, "cpu")
        trainer.load(x, y)
        losses = [float(trainer.train(steps)) for steps in chunks]
        return losses[-1], trainer.parameters()

    start = initial_parameters(scenario, 3)
    loss, params = trained([2, 3, 1])
    whole_loss, whole = trained([6])
    assert loss == pytest.approx(whole_loss, rel=1e-6)
    assert max(errors(params, whole, start).values()) <= 1e-4
    again_loss, again = trained([2, 3, 1])
    assert again_loss == loss
    for key, value in again.items():
        np.testing.assert_array_equal(value, params[key])
    _, seven = trained([7])
    assert max(errors(seven, whole, start).values()) > 0.1


def test_keras_declares_its_adam_epsilon_placement():
    for scenario in CNN_SCENARIOS:
        assert any("epsilon" in text for text in implementation("keras").deviations_for(scenario))
