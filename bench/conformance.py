"""The conformance suite behind `bench check IMPL`: the plugin contract, executable.

`run_checks(plugin_class)` exercises one implementation on tiny data for every scenario of its
model that it supports, and returns one `CheckResult` per check. Trainers (mlp, cnn):

  matches-reference  after 3 full-batch steps on 64 MNIST digits from the initial
                     parameters: the same loss and parameters as `bench.reference`
  deterministic      two fresh instances with one seed give identical results; another
                     seed gives another data order
  exact-steps        train(6) equals 6 x train(1) (data order kept between calls) and
                     differs from train(7)
  inputs-unmodified  the training data, the initial parameters and predict's input
  predict-labels     integer labels of shape (n,), the argmax of the plugin's own network
  parameter-layout   canonical names, shapes and dtype; equal to the initial parameters
                     before training
  thread-limit       in a worker-like process limited to 1 thread, every pool has 1 thread

Clusterers (kmeans): matches-reference (centroids, labels, n_iter, inertia from the same
initial centroids, for three max_iter/tol settings), deterministic, inputs-unmodified,
predict-labels, thread-limit. A scenario the plugin declares unsupported is reported as
"not supported: <reason>", which is not a failure.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import json
import pickle
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bench import datasets, plugins, reference
from bench.api import Clusterer, Implementation, Trainer
from bench.execution import launcher, threads
from bench.execution.weights import initial_centroids, initial_parameters
from bench.scenarios import SCENARIOS, Scenario

SEED = 3  # every check's seed; SEED + 1 checks that the data order follows the seed
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
# Clusterers run in float64 on 500 points: the same centroids as the reference to 1e-6
# relative (the scenario's inertia target), identical labels and iteration counts.
KMEANS_RTOL = 1e-6
N_POINTS = 500
THREAD_PROBE_TIMEOUT_S = 600
# Overlapping blobs take several Lloyd iterations, so that both stopping rules are reached.
BLOB_STD = 3.0

CHECKS = (
    "matches-reference",
    "deterministic",
    "exact-steps",
    "inputs-unmodified",
    "predict-labels",
    "parameter-layout",
    "thread-limit",
)


@dataclass(frozen=True)
class CheckResult:
    name: str  # "<scenario>/<check>"
    passed: bool
    detail: str
    skipped: bool = False  # did not apply (unsupported scenario, no reference yet): not a failure


class CheckFailed(Exception):
    """A check found a contract violation; the message says what and how to fix it."""


def run_checks(
    plugin_class: type[Implementation],
    scenarios: Iterable[Scenario | str] | None = None,
    *,
    only: Sequence[str] | None = None,
) -> list[CheckResult]:
    """Every check (or those named in `only`) for every scenario of the plugin's model."""
    missing = plugins.missing_requirements(plugin_class.requires)
    if missing:
        reason = plugins.requirements_reason(missing, plugin_class.install_hint)
        return [CheckResult("requirements", False, reason or "")]
    chosen = [SCENARIOS[s] if isinstance(s, str) else s for s in scenarios or SCENARIOS.values()]
    checks = TRAINER_CHECKS if issubclass(plugin_class, Trainer) else CLUSTERER_CHECKS
    results, supported = [], []
    for scenario in (s for s in chosen if s.model == plugin_class.model):
        why = plugin_class.why_unsupported(scenario)
        if why:
            results.append(
                CheckResult(f"{scenario.name}/supported", True, f"not supported: {why}", True)
            )
            continue
        supported.append(scenario)
        for slug, check in checks.items():
            if only is None or slug in only:
                results.append(_run(f"{scenario.name}/{slug}", check, plugin_class, scenario))
    if supported and (only is None or "thread-limit" in only):
        scenario = supported[0]
        results.append(
            _run(f"{scenario.name}/thread-limit", check_thread_limit, plugin_class, scenario)
        )
    return results


def _run(name: str, check: Callable, cls: type[Implementation], scenario: Scenario):
    try:
        return CheckResult(name, True, check(cls, scenario))
    except reference.NoReference as why:
        return CheckResult(name, True, str(why), skipped=True)
    except CheckFailed as failure:
        return CheckResult(name, False, str(failure))
    except Exception as error:
        return CheckResult(name, False, f"raised {_describe_error(error, cls)}")


def _describe_error(error: BaseException, cls: type) -> str:
    """`Type: message (file:line)`, pointing into the plugin's own code where possible."""
    frames = traceback.extract_tb(error.__traceback__)
    try:
        folder = str(Path(inspect.getfile(cls)).parent)
    except TypeError:  # defined interactively
        folder = "<none>"
    ours = [f for f in frames if f.filename.startswith(folder)] or frames
    where = f" ({ours[-1].filename}:{ours[-1].lineno})" if ours else ""
    return f"{type(error).__name__}: {error}{where}"


def _device(cls: type[Implementation]) -> str:
    return "cpu" if "cpu" in cls.devices else cls.devices[0]


# --- trainers ----------------------------------------------------------------------------


@functools.cache
def _digits() -> datasets.ImageSplit:
    return datasets.load_images(datasets.resolve("mnist-5k", download=False))


def tiny_data(scenario: Scenario, n: int = N_EXAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """Fresh copies of the first `n` mnist-5k digits, scaled and shaped as the scenario says."""
    split = _digits()
    dtype = np.dtype(scenario.dtype)
    x = split.x_train[:n].astype(dtype) * np.asarray(scenario.input_scale, dtype)
    return np.ascontiguousarray(x.reshape(n, *scenario.input_shape)), split.y_train[:n].copy()


def _full_batch(scenario: Scenario) -> Scenario:
    """Every example in every step; Adam with a negligible eps (see ADAM_CHECK_EPS)."""
    full = replace(scenario, sampling="full-batch", batch_size=N_EXAMPLES)
    if scenario.optimizer is not None and scenario.optimizer.kind == "adam":
        full = replace(full, optimizer=replace(scenario.optimizer, eps=ADAM_CHECK_EPS))
    return full


def _sampled(scenario: Scenario) -> Scenario:
    return replace(scenario, batch_size=SAMPLED_BATCH)


def _trained(cls, scenario: Scenario, schedule: Sequence[int], seed: int = SEED):
    """Losses returned by `train(steps)` for each entry of `schedule`, and the parameters
    after them. The initial parameters are always those of SEED; only the plugin's seed varies."""
    trainer = cls(scenario, initial_parameters(scenario, SEED), seed, _device(cls))
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


def _parameter_error(actual, expected, start) -> tuple[float, str]:
    """Largest |actual - expected| over the largest change `expected` made from `start`,
    and the parameter where it is worst."""
    shapes = {n: np.shape(v) for n, v in actual.items()}
    canonical = {n: np.shape(v) for n, v in expected.items()}
    if shapes != canonical:
        raise CheckFailed(f"parameters() returned {shapes}; the canonical layout is {canonical}")
    errors = {}
    for name, value in expected.items():
        scale = np.abs(value - start[name]).max() or np.abs(value).max() or 1.0
        errors[name] = float(np.abs(np.asarray(actual[name], np.float64) - value).max() / scale)
    worst = max(errors, key=errors.__getitem__)
    return errors[worst], worst


def _relative(a: float, b: float) -> float:
    return abs(a - b) / (abs(b) or 1.0)


def check_trainer_reference(cls, scenario: Scenario) -> str:
    full = _full_batch(scenario)
    x, y = tiny_data(full)
    start = initial_parameters(full, SEED)
    ref_losses, ref_params = reference.train_full_batch(full, start, x, y, REFERENCE_STEPS)
    (loss,), params = _trained(cls, full, [REFERENCE_STEPS])
    rtol = RTOL[scenario.dtype]
    loss_error = _relative(loss, ref_losses[-1])
    start64 = {n: v.astype(np.float64) for n, v in start.items()}
    param_error, worst = _parameter_error(params, ref_params, start64)
    numbers = (
        f"after {REFERENCE_STEPS} full-batch steps on {N_EXAMPLES} examples: loss {loss:.6g} vs "
        f"reference {ref_losses[-1]:.6g} (rel. error {loss_error:.1e}); parameters within "
        f"{param_error:.1e} of the reference's update (worst {worst}); "
        f"tolerance {rtol:g} ({scenario.dtype})"
    )
    if full.optimizer.eps != scenario.optimizer.eps:
        numbers += f"; Adam with eps {full.optimizer.eps:g}"
    if not (loss_error <= rtol and param_error <= rtol):
        raise CheckFailed(
            f"{numbers}. Compare your loss, gradients and {scenario.optimizer.kind} update with "
            "bench/reference.py"
        )
    return numbers


def check_trainer_deterministic(cls, scenario: Scenario) -> str:
    sampled = _sampled(scenario)
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
    sampled, k = _sampled(scenario), SAMPLED_STEPS
    rtol = RTOL[scenario.dtype]
    start = initial_parameters(sampled, SEED)
    one_call = _trained(cls, sampled, [k])
    single_steps = _trained(cls, sampled, [1] * k)
    one_more = _trained(cls, sampled, [k + 1])
    split_error, worst = _parameter_error(single_steps[1], one_call[1], start)
    if not (split_error <= rtol and _relative(single_steps[0][-1], one_call[0][-1]) <= rtol):
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
    sampled = _sampled(scenario)
    x, y = tiny_data(sampled)
    x_predict = x[:10].copy()
    params = initial_parameters(sampled, SEED)
    originals = {"x_train": x.copy(), "y_train": y.copy(), "predict's x": x_predict.copy()}
    originals.update({f"initial {n}": v.copy() for n, v in params.items()})
    trainer = cls(sampled, params, SEED, _device(cls))
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
    sampled = _sampled(scenario)
    x, y = tiny_data(sampled)
    trainer = cls(sampled, initial_parameters(sampled, SEED), SEED, _device(cls))
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
    sampled = _sampled(scenario)
    params = initial_parameters(sampled, SEED)
    trainer = cls(sampled, {n: v.copy() for n, v in params.items()}, SEED, _device(cls))
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


# --- clusterers --------------------------------------------------------------------------


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
    clusterer = cls(scenario, SEED, _device(cls))
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
        if not _relative(float(got.inertia), expected.inertia) <= KMEANS_RTOL:
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
    clusterer = cls(scenario, SEED, _device(cls))
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
    clusterer = cls(scenario, SEED, _device(cls))
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


# --- thread limit: a worker-like process -------------------------------------------------

# Same order as the worker: environment first, then the plugin and its framework, then the
# frameworks' own APIs, then the work.
_PROBE = """
import json, sys
from bench.execution import threads
threads.limit_environment(1)
from bench.conformance import thread_probe
spec = json.loads(sys.argv[1])
with open(spec["out"], "w") as out:
    json.dump(thread_probe(spec), out)
"""


def check_thread_limit(cls, scenario: Scenario) -> str:
    _exercise(cls, scenario)  # here first: a plugin that raises fails fast, with its traceback
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "threads.json"
        spec = {**_locate(cls), "scenario": pickle.dumps(scenario).hex(), "out": str(out)}
        done = launcher.run_python(
            ["-c", _PROBE, json.dumps(spec)],
            threads=1,
            timeout=THREAD_PROBE_TIMEOUT_S,
            python_path=sys.path,  # the plugin's module may live anywhere on this path
        )
        if done.timed_out:
            raise CheckFailed(f"the 1-thread worker process took over {THREAD_PROBE_TIMEOUT_S} s")
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise CheckFailed(
                "the 1-thread worker process failed: " + " | ".join(tail or ["no output"])
            )
        info = json.loads(out.read_text())
    counts = {
        f"{p['internal_api']} ({Path(p['filepath'] or '?').name})": p["num_threads"]
        for p in info["threadpools"]
    }
    counts.update(info.get("extension_pools") or {})
    if "torch" in info:
        counts["torch intra-op"] = info["torch"]["num_threads"]
        counts["torch inter-op"] = info["torch"]["num_interop_threads"]
    if "tensorflow" in info:
        # 0 means "TF's default", which is then the TF_NUM_*_THREADS variables set before import.
        for key in ("intra_op", "inter_op"):
            variable = f"TF_NUM_{key.replace('_', '').upper()}_THREADS"
            value = info["tensorflow"][key] or int(info["environment"].get(variable) or 0)
            counts[f"tensorflow {key.replace('_', '-')}"] = value
    text = ", ".join(f"{name}: {n}" for name, n in counts.items()) or "no thread pool loaded"
    if any(n != 1 for n in counts.values()):
        raise CheckFailed(
            f"limited to 1 thread, the process has {text}. Do not set thread counts in the "
            "plugin: the harness sets them before your framework is imported"
        )
    return f"limited to 1 thread: {text}"


def _locate(cls: type) -> dict:
    """How a fresh process finds `cls`: plugin folders and files are imported by path, under
    the same private module name (`bench.plugins.loading`); anything else by module name."""
    spec = {"module": cls.__module__, "qualname": cls.__qualname__, "path": None}
    parts = cls.__module__.split(".")
    if parts[0] == "bench_plugins" and len(parts) > 1:
        top = Path(sys.modules[".".join(parts[:2])].__file__)
        spec["path"] = str(top.parent if top.name == "__init__.py" else top)
    return spec


def _load_class(spec: dict) -> type:
    if spec["path"]:
        plugins.load_source(Path(spec["path"]))
        module = sys.modules[spec["module"]]
    else:
        module = importlib.import_module(spec["module"])
    found: object = module
    for part in spec["qualname"].split("."):
        found = getattr(found, part)
    return found  # type: ignore[return-value]


def thread_probe(spec: dict) -> dict:
    """In the probe process: load the plugin, apply 1 thread, do a little work, and return
    `threads.describe()` with the pools the plugin reports itself."""
    cls = _load_class(spec)
    threads.apply_to_frameworks(1)
    _exercise(cls, pickle.loads(bytes.fromhex(spec["scenario"])))
    return {**threads.describe(), "extension_pools": cls.thread_counts()}


def _exercise(cls, scenario: Scenario) -> None:
    """A little of everything the plugin does in a round."""
    if issubclass(cls, Clusterer):
        x, init = tiny_blobs(scenario)
        clusterer = cls(scenario, SEED, _device(cls))
        loaded = clusterer.load(x)
        clusterer.predict(loaded, clusterer.fit(loaded, init, 10, 1e-4).centroids)
    else:
        sampled = _sampled(scenario)
        x, y = tiny_data(sampled)
        trainer = cls(sampled, initial_parameters(sampled, SEED), SEED, _device(cls))
        trainer.load(x, y)
        trainer.train(2)
        trainer.predict(x)
