"""The conformance checks of a trainer (mlp, cnn), on 64 mnist-5k digits, or on the first 64
examples of the scenario's own dataset file."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from bench import datasets, reference
from bench.conformance.common import SEED, CheckFailed, device_for, relative
from bench.execution.weights import initial_parameters
from bench.scenarios import Scenario

N_EXAMPLES = 64


REFERENCE_STEPS = 3


# The other trainer checks keep the scenario's sampling with small batches; 6 steps of 16
# out of 64 examples cross an epoch boundary, so the epoch state between calls is exercised.
SAMPLED_BATCH = 16


SAMPLED_STEPS = 6


# Relative tolerance against the float64 reference, for the loss and for the parameters
# (largest difference over the largest change the reference made from the initial values).
# float32: eps is 6e-8; NumPy, torch and Keras measure up to 7e-6 here after 1 to 10 steps
# (784-term dot products, and rounding w0 + dw when |dw| << |w0|). 1e-3 leaves over 100x for
# other BLAS / oneDNN summation orders and still catches a 1% error in a learning rate, a
# momentum or a gradient term. float64: measured 1e-14; 1e-9 is far above rounding and far
# below any real mistake. Comparisons are written `not error <= tol` so that NaN fails.
RTOL = {"float32": 1e-3, "float64": 1e-9}


# Adam divides each update by sqrt(v) + eps. With the scenarios' eps = 1e-8, a gradient
# within a few orders of magnitude of eps (common: dlfs-cnn's 0.01-scaled init gives
# gradients near 1e-8) makes the update g/(|g| + eps), steep in g: float32 rounding of g
# (1e-7 of the larger terms summed into it) becomes a difference of a sizeable fraction of
# lr, and where eps is added (before or after the bias correction, Keras's and
# scikit-learn's declared deviation) changes the update itself. So matches-reference runs
# Adam with a negligible eps: each update is then lr * m_hat / sqrt(v_hat), independent of
# the gradients' scale, and the float32 tolerance above holds (measured: at most 4e-4).
ADAM_CHECK_EPS = 1e-30
# Even so, an element whose gradients are at the level of their own float32 rounding (large
# terms cancelling in its sum) gets an update m_hat / sqrt(v_hat) set by that rounding: Keras's
# oneDNN convolutions on an AVX-512 CPU put 1 element of dlfs-cnn's 432 000 in W2 at 2.7e-3 of
# an update, every other within 3e-5. Under Adam the check leaves out this share of each
# tensor's largest differences (1 element in 100 000; none of a tensor under 100 000
# elements), and says how many it left out; a wrong learning rate, moment or gradient term
# moves far more than that.
ADAM_ILL_CONDITIONED_SHARE = 1e-5


@functools.cache
def _examples(dataset: str) -> datasets.ImageSplit:
    """The images the checks train on: the user's own dataset file when the scenario names
    one (its shape and classes are the scenario's), else mnist-5k's digits."""
    if datasets.is_name(dataset):
        return datasets.load_images(datasets.resolve("mnist-5k", download=False))
    return datasets.load_images(datasets.resolve_file(dataset))


def tiny_data(scenario: Scenario, n: int = N_EXAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """Fresh copies of the first `n` training examples of the scenario's own dataset file,
    or of mnist-5k, scaled, typed and shaped as the scenario says."""
    split = _examples(scenario.dataset)
    n = min(n, len(split.x_train))
    dtype = np.dtype(scenario.dtype)
    x = split.x_train[:n].astype(dtype) * np.asarray(scenario.input_scale, dtype)
    return np.ascontiguousarray(x.reshape(n, *scenario.input_shape)), split.y_train[:n].copy()


def _full_batch(scenario: Scenario) -> Scenario:
    """Every example in every step; Adam with a negligible eps (see ADAM_CHECK_EPS)."""
    full = replace(scenario, sampling="full-batch", batch_size=N_EXAMPLES)
    if scenario.optimizer is not None and scenario.optimizer.kind == "adam":
        full = replace(full, optimizer=replace(scenario.optimizer, eps=ADAM_CHECK_EPS))
    return full


def small_batches(scenario: Scenario) -> Scenario:
    return replace(scenario, batch_size=SAMPLED_BATCH)


def _trained(cls, scenario: Scenario, schedule: Sequence[int], seed: int = SEED):
    """Losses returned by `train(steps)` for each entry of `schedule`, and the parameters
    after them. The initial parameters are always those of SEED; only the plugin's seed varies."""
    trainer = cls(scenario, initial_parameters(scenario, SEED), seed, device_for(cls))
    trainer.load(*tiny_data(scenario))
    losses = [float(trainer.train(steps)) for steps in schedule]
    return losses, _copied(trainer.parameters())


def _copied(params) -> dict[str, np.ndarray]:
    return {name: np.array(value, copy=True) for name, value in params.items()}


def _layout_problems(scenario: Scenario, params) -> list[str]:
    expected = scenario.parameter_shapes()
    problems = [f"missing {name}" for name in expected if name not in params]
    problems += [f"unexpected {name}" for name in params if name not in expected]
    for name, value in params.items():
        if name not in expected:
            continue
        if not isinstance(value, np.ndarray):
            problems.append(f"{name} is a {type(value).__name__}, not a NumPy array")
            continue
        if value.shape != expected[name]:
            problems.append(f"{name} has shape {value.shape}, expected {expected[name]}")
        if value.dtype != np.dtype(scenario.dtype):
            problems.append(f"{name} is {value.dtype}, expected {scenario.dtype}")
    return problems


def _parameter_error(actual, expected, start, left_out_share: float = 0.0) -> tuple[float, str]:
    """Largest |actual - expected| over the largest change `expected` made from `start`,
    and the parameter where it is worst; with `left_out_share`, each tensor's largest
    differences up to that share of its elements (rounded down) are left out."""
    shapes = {n: np.shape(v) for n, v in actual.items()}
    canonical = {n: np.shape(v) for n, v in expected.items()}
    if shapes != canonical:
        raise CheckFailed(f"parameters() returned {shapes}; the canonical layout is {canonical}")
    errors = {}
    for name, value in expected.items():
        scale = np.abs(value - start[name]).max() or np.abs(value).max() or 1.0
        differences = np.abs(np.asarray(actual[name], np.float64) - value).ravel()
        left_out = int(differences.size * left_out_share)
        if left_out and not np.isnan(differences).any():  # a NaN is never left out
            differences = np.partition(differences, differences.size - 1 - left_out)
            differences = differences[: differences.size - left_out]
        errors[name] = float(differences.max() / scale)
    worst = max(errors, key=errors.__getitem__)
    return errors[worst], worst


def _left_out_count(expected, share: float) -> int:
    return sum(int(np.size(value) * share) for value in expected.values())


def check_trainer_reference(cls, scenario: Scenario) -> str:
    full = _full_batch(scenario)
    x, y = tiny_data(full)
    start = initial_parameters(full, SEED)
    ref_losses, ref_params = reference.train_full_batch(full, start, x, y, REFERENCE_STEPS)
    (loss,), params = _trained(cls, full, [REFERENCE_STEPS])
    rtol = RTOL[scenario.dtype]
    loss_error = relative(loss, ref_losses[-1])
    start64 = {n: v.astype(np.float64) for n, v in start.items()}
    left_out_share = ADAM_ILL_CONDITIONED_SHARE if scenario.optimizer.kind == "adam" else 0.0
    param_error, worst = _parameter_error(params, ref_params, start64, left_out_share)
    numbers = (
        f"after {REFERENCE_STEPS} full-batch steps on {len(x)} examples: loss {loss:.6g} vs "
        f"reference {ref_losses[-1]:.6g} (rel. error {loss_error:.1e}); parameters within "
        f"{param_error:.1e} of the reference's update (worst {worst}); "
        f"tolerance {rtol:g} ({scenario.dtype})"
    )
    if full.optimizer.eps != scenario.optimizer.eps:
        numbers += f"; Adam with eps {full.optimizer.eps:g}"
    if left_out := _left_out_count(ref_params, left_out_share):
        numbers += f", its {left_out} largest differences left out (ill-conditioned under Adam)"
    if not (loss_error <= rtol and param_error <= rtol):
        raise CheckFailed(
            f"{numbers}. Compare your loss, gradients and {scenario.optimizer.kind} update with "
            "bench/reference.py"
        )
    return numbers


def check_trainer_deterministic(cls, scenario: Scenario) -> str:
    sampled = small_batches(scenario)
    first = _trained(cls, sampled, [SAMPLED_STEPS])
    second = _trained(cls, sampled, [SAMPLED_STEPS])
    if not _identical(first, second):
        raise CheckFailed(
            f"two fresh instances with seed {SEED} differ after {SAMPLED_STEPS} steps "
            f"({_difference(first, second)}): draw every random number from self.seed"
        )
    if scenario.sampling == "full-batch":
        return f"two fresh instances with seed {SEED} give identical results"
    other = _trained(cls, sampled, [SAMPLED_STEPS], seed=SEED + 1)
    if _identical(first, other):
        raise CheckFailed(
            f"seeds {SEED} and {SEED + 1} give identical results with {scenario.sampling!r} "
            "sampling: the data order must follow self.seed (e.g. "
            "bench.api.BatchSampler(n, batch_size, sampling, self.seed))"
        )
    return (
        f"seed {SEED} twice: identical after {SAMPLED_STEPS} steps; seed {SEED + 1}: "
        "another data order"
    )


def _identical(a, b) -> bool:
    (losses_a, params_a), (losses_b, params_b) = a, b
    return (
        np.array_equal(losses_a, losses_b, equal_nan=True)
        and set(params_a) == set(params_b)
        and all(np.array_equal(params_a[n], params_b[n], equal_nan=True) for n in params_a)
    )


def _difference(a, b) -> str:
    (losses_a, params_a), (losses_b, params_b) = a, b
    diffs = [
        float(np.abs(params_a[n] - params_b[n]).max())
        for n in params_a
        if n in params_b and np.shape(params_a[n]) == np.shape(params_b[n])
    ]
    return (
        f"losses {losses_a} vs {losses_b}, largest parameter difference {max(diffs, default=0):.3g}"
    )


def check_trainer_steps(cls, scenario: Scenario) -> str:
    sampled, k = small_batches(scenario), SAMPLED_STEPS
    rtol = RTOL[scenario.dtype]
    start = initial_parameters(sampled, SEED)
    one_call = _trained(cls, sampled, [k])
    single_steps = _trained(cls, sampled, [1] * k)
    one_more = _trained(cls, sampled, [k + 1])
    split_error, worst = _parameter_error(single_steps[1], one_call[1], start)
    if not (split_error <= rtol and relative(single_steps[0][-1], one_call[0][-1]) <= rtol):
        raise CheckFailed(
            f"train({k}) and {k} calls of train(1) end differently (parameters {split_error:.1e} "
            f"of the update apart, worst {worst}; last losses {one_call[0][-1]:.6g} vs "
            f"{single_steps[0][-1]:.6g}): train(steps) must do exactly `steps` updates and "
            "keep its data order and epoch state between calls"
        )
    more_error, _ = _parameter_error(one_more[1], one_call[1], start)
    if more_error <= rtol:
        raise CheckFailed(
            f"train({k + 1}) ends where train({k}) does: train(steps) must do `steps` updates"
        )
    return f"train({k}) = {k} x train(1) (within {rtol:g}), train({k + 1}) differs"


def check_trainer_inputs(cls, scenario: Scenario) -> str:
    sampled = small_batches(scenario)
    x, y = tiny_data(sampled)
    x_predict = x[:10].copy()
    params = initial_parameters(sampled, SEED)
    originals = {"x_train": x.copy(), "y_train": y.copy(), "predict's x": x_predict.copy()}
    originals.update({f"initial {n}": v.copy() for n, v in params.items()})
    trainer = cls(sampled, params, SEED, device_for(cls))
    trainer.load(x, y)
    trainer.train(SAMPLED_STEPS)
    trainer.predict(x_predict)
    current = {"x_train": x, "y_train": y, "predict's x": x_predict}
    current.update({f"initial {n}": v for n, v in params.items()})
    changed = [
        name for name, value in originals.items() if not np.array_equal(current[name], value)
    ]
    if changed:
        raise CheckFailed(
            f"modified its inputs: {', '.join(changed)}. Copy an array before changing it "
            "in place (the harness reuses them across rounds)"
        )
    return "training data, initial parameters and predict's input unchanged"


def check_trainer_predict(cls, scenario: Scenario) -> str:
    sampled = small_batches(scenario)
    x, y = tiny_data(sampled)
    trainer = cls(sampled, initial_parameters(sampled, SEED), SEED, device_for(cls))
    trainer.load(x, y)
    trainer.train(SAMPLED_STEPS)
    classes = list(scenario.parameter_shapes().values())[-1][0]
    for inputs in (x[:10], x):
        labels = np.asarray(trainer.predict(inputs))
        if labels.shape != (len(inputs),) or labels.dtype.kind not in "iu":
            raise CheckFailed(
                f"predict(x) with {len(inputs)} examples returned {labels.dtype} of shape "
                f"{labels.shape}; expected integer labels of shape ({len(inputs)},), e.g. "
                "outputs.argmax(axis=1)"
            )
        if labels.min() < 0 or labels.max() >= classes:
            raise CheckFailed(f"predict returned labels outside 0..{classes - 1}")
    why = reference.why_no_reference(scenario)
    if why:
        return f"integer labels of shape (n,) in 0..{classes - 1} (argmax not checked: {why})"
    outputs = reference.ReferenceTrainer(scenario, _copied(trainer.parameters())).outputs(x)
    top2 = np.sort(outputs, axis=1)[:, -2:]
    # A near-tie may be broken either way by rounding; such examples are not compared.
    clear = top2[:, 1] - top2[:, 0] > RTOL[scenario.dtype] * np.abs(outputs).max()
    disagree = int((labels != outputs.argmax(axis=1))[clear].sum())
    if disagree:
        raise CheckFailed(
            f"predict disagrees on {disagree} of {int(clear.sum())} examples with the argmax of "
            "the network given by parameters(): predict with the current parameters"
        )
    return f"integer labels of shape (n,), the argmax of the network's outputs on {len(x)} examples"


def check_trainer_layout(cls, scenario: Scenario) -> str:
    sampled = small_batches(scenario)
    params = initial_parameters(sampled, SEED)
    trainer = cls(sampled, {n: v.copy() for n, v in params.items()}, SEED, device_for(cls))
    trainer.load(*tiny_data(sampled))
    for moment in ("before training", "after training"):
        current = trainer.parameters()
        problems = _layout_problems(scenario, current)
        if problems:
            raise CheckFailed(
                f"parameters() {moment}: {'; '.join(problems)}. Canonical layout: "
                f"{scenario.parameter_shapes()} as {scenario.dtype} NumPy arrays"
            )
        if moment == "before training":
            differ = [n for n in params if not np.array_equal(current[n], params[n])]
            if differ:
                raise CheckFailed(
                    f"parameters() before training differ from the initial parameters "
                    f"({', '.join(differ)}): start from self.initial_parameters"
                )
            trainer.train(1)
    shapes = ", ".join(f"{n} {s}" for n, s in scenario.parameter_shapes().items())
    return f"{shapes}, {scenario.dtype}; starts from the initial parameters"


TRAINER_CHECKS: dict[str, Callable[..., str]] = {
    "matches-reference": check_trainer_reference,
    "deterministic": check_trainer_deterministic,
    "exact-steps": check_trainer_steps,
    "inputs-unmodified": check_trainer_inputs,
    "predict-labels": check_trainer_predict,
    "parameter-layout": check_trainer_layout,
}
