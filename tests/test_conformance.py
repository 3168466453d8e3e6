"""`bench check`: the float64 reference, and the conformance suite on correct and on
deliberately wrong plugins (each must fail the check that matches its mistake)."""

import dataclasses
import subprocess
import sys
from typing import ClassVar

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from bench import cli, conformance, plugins, reference
from bench.api import BatchSampler, KMeansResult
from bench.execution.weights import initial_centroids, initial_parameters
from bench.scenarios import SCENARIOS, Conv2d, Dense, Flatten, MaxPool2d, Optimizer


def builtin(folder: str, model: str) -> type:
    classes = plugins.load_source(plugins.BUILTIN_DIR / folder).classes
    (cls,) = [c for c in classes if c.model == model]
    return cls


NumpyMLP = builtin("numpy-vectorized", "mlp")
SklearnKMeans = builtin("sklearn", "kmeans")


def bench(*args: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True, timeout=300
    )
    return done.returncode, " ".join((done.stdout + done.stderr).split())


def results_by_check(results) -> dict[str, conformance.CheckResult]:
    return {r.name.split("/", 1)[1]: r for r in results}


# --- the reference -----------------------------------------------------------------------


def test_reference_kmeans_matches_sklearn_centroids_and_n_iter_under_every_stopping_rule():
    stopped_by = set()
    for seed in range(3):
        x, _ = make_blobs(n_samples=400, centers=3, cluster_std=3.0, random_state=seed)
        init = initial_centroids(x, 3, seed)
        strict = reference.kmeans(x, init, 300, 0.0).n_iter  # only the labels rule can stop it
        for max_iter, tol in ((100, 1e-4), (100, 1e-2), (100, 0.5), (2, 1e-4)):
            ours = reference.kmeans(x, init, max_iter, tol)
            theirs = KMeans(3, init=init, n_init=1, max_iter=max_iter, tol=tol).fit(x)
            assert ours.n_iter == theirs.n_iter_, (seed, max_iter, tol)
            np.testing.assert_allclose(ours.centroids, theirs.cluster_centers_, rtol=1e-9)
            np.testing.assert_array_equal(ours.labels, theirs.labels_)
            assert ours.inertia == pytest.approx(theirs.inertia_, rel=1e-9)
            if ours.n_iter == max_iter < strict:
                stopped_by.add("max_iter")
            elif ours.n_iter < strict:
                stopped_by.add("shift")
            else:
                stopped_by.add("labels")
    assert stopped_by == {"labels", "shift", "max_iter"}


def assert_gradients_match_finite_differences(trainer, grads, x, y, h=1e-6):
    """Every entry of the reference's gradients against a central difference of its loss."""
    for name, value in trainer.params.items():
        for index in np.ndindex(value.shape):
            original = value[index]
            value[index] = original + h
            up, _ = trainer.loss_and_gradients(x, y)
            value[index] = original - h
            down, _ = trainer.loss_and_gradients(x, y)
            value[index] = original
            assert grads[name][index] == pytest.approx((up - down) / (2 * h), abs=1e-7)


@pytest.mark.parametrize("name", ["nielsen-mlp", "dlfs-mlp"])
def test_reference_gradients_match_finite_differences(name):
    base = SCENARIOS[name]
    hidden, output = base.layers[0].activation, base.layers[-1].activation
    scenario = dataclasses.replace(
        base,
        layers=(Dense(5, 4, hidden), Dense(4, 3, output)),
        input_shape=(5,),
        dtype="float64",
        init="normal",
    )
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 5)), rng.integers(0, 3, size=6)
    trainer = reference.ReferenceTrainer(scenario, initial_parameters(scenario, 1))
    _, grads = trainer.loss_and_gradients(x, y)
    assert_gradients_match_finite_differences(trainer, grads, x, y)


def test_reference_optimizers_follow_the_scenario_formulas():
    g, w = np.array([0.5, -2.0]), np.zeros(2)
    ema = Optimizer("ema-momentum", lr=0.3, momentum=0.9)
    state: dict = {}
    w1 = reference.ema_momentum(ema, w, g, state, 1)
    w2 = reference.ema_momentum(ema, w1, g, state, 2)
    np.testing.assert_allclose(w2, -0.3 * (0.1 + 0.19) * g)  # v1 = 0.1 g, v2 = 0.19 g
    adam = Optimizer("adam", lr=1e-3)
    # with bias correction, Adam's first step is lr * g / (|g| + eps): about lr * sign(g)
    np.testing.assert_allclose(reference.adam(adam, w, g, {}, 1), -1e-3 * np.sign(g), rtol=1e-6)


def test_reference_cnn_gradients_match_finite_differences():
    """Conv2d with stride and padding, ReLU, max-pooling, flattening in (c, h, w) order."""
    scenario = dataclasses.replace(
        SCENARIOS["dlfs-cnn"],
        layers=(
            Conv2d(2, 3, 3, stride=2, padding=1, activation="relu"),
            MaxPool2d(2, 2),
            Conv2d(3, 2, 2, padding=1),
            Flatten(),
            Dense(2 * 3 * 3, 3, None),
        ),
        input_shape=(2, 7, 7),
        dtype="float64",
        init="normal",
    )
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3, 2, 7, 7)), rng.integers(0, 3, size=3)
    trainer = reference.ReferenceTrainer(scenario, initial_parameters(scenario, 1))
    _, grads = trainer.loss_and_gradients(x, y)
    assert {n: g.shape for n, g in grads.items()} == scenario.parameter_shapes()
    assert_gradients_match_finite_differences(trainer, grads, x, y)


def test_scenarios_with_a_layer_kind_without_reference_math_say_so():
    @dataclasses.dataclass(frozen=True)
    class Dropout:
        rate: float

    scenario = dataclasses.replace(
        SCENARIOS["tch-mlp"], layers=(Dense(784, 128, "relu"), Dropout(0.5), Dense(128, 10, None))
    )
    assert "no reference for Dropout layers" in reference.why_no_reference(scenario)
    with pytest.raises(reference.NoReference, match="no reference for Dropout layers"):
        reference.ReferenceTrainer(scenario, initial_parameters(scenario, 0))
    assert reference.why_no_reference(SCENARIOS["tch-cnn"]) is None


# --- correct plugins pass ----------------------------------------------------------------


def test_bench_check_passes_for_numpy_vectorized():
    code, out = bench("check", "numpy-vectorized")
    assert code == 0, out
    for scenario in ("nielsen-mlp", "dlfs-mlp", "tch-mlp"):
        for check in conformance.CHECKS[:-1]:
            assert f"pass {scenario}/{check}" in out
    assert "tolerance 1e-09 (float64)" in out and "tolerance 0.001 (float32)" in out
    assert "thread-limit: limited to 1 thread" in out


def test_the_suite_passes_for_sklearn_kmeans():
    results = results_by_check(conformance.run_checks(SklearnKMeans))
    assert all(r.passed and not r.skipped for r in results.values()), results
    assert set(results) == {*conformance.CLUSTERER_CHECKS, "thread-limit"}
    assert "same n_iter and labels" in results["matches-reference"].detail
    assert "limited to 1 thread" in results["thread-limit"].detail


def test_bench_check_names_the_closest_implementation_when_unknown(capsys):
    assert cli.main(["check", "numpy-vectorised"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "unknown implementation 'numpy-vectorised'. Did you mean 'numpy-vectorized'?" in err


# --- wrong plugins fail the matching check -----------------------------------------------


class WrongLearningRate(NumpyMLP):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.optimizer.lr *= 1.02


class OneStepTooMany(NumpyMLP):
    def train(self, steps):
        return super().train(steps + 1)


class ForgetsDataOrder(NumpyMLP):
    def train(self, steps):
        self.load(self.x, self.y)  # a fresh sampler on every call: always the first batches
        return super().train(steps)


class CentersInputsInPlace(NumpyMLP):
    def load(self, x_train, y_train):
        x_train -= x_train.mean()
        super().load(x_train, y_train)


class IgnoresSeed(NumpyMLP):
    def load(self, x_train, y_train):
        super().load(x_train, y_train)
        self.batches = BatchSampler(
            len(x_train), self.scenario.batch_size, self.scenario.sampling, 0
        )


class UnseededOrder(NumpyMLP):
    def load(self, x_train, y_train):
        super().load(x_train, y_train)
        seed = int(np.random.default_rng().integers(2**31))
        self.batches = BatchSampler(
            len(x_train), self.scenario.batch_size, self.scenario.sampling, seed
        )


class PredictsScores(NumpyMLP):
    def predict(self, x):
        return self.forward(x)


class TransposedWeights(NumpyMLP):
    def parameters(self):
        return {name: value.T.copy() for name, value in super().parameters().items()}


class OwnInit(NumpyMLP):
    def __init__(self, scenario, parameters, seed, device="cpu"):
        rng = np.random.default_rng(seed)
        mine = {n: rng.normal(size=v.shape).astype(v.dtype) for n, v in parameters.items()}
        super().__init__(scenario, mine, seed, device)


@pytest.mark.parametrize(
    ("plugin", "check", "message"),
    [
        (WrongLearningRate, "matches-reference", "Compare your loss, gradients and sgd update"),
        (OneStepTooMany, "matches-reference", "Compare your loss"),
        (OneStepTooMany, "exact-steps", "must do exactly `steps` updates"),
        (ForgetsDataOrder, "exact-steps", "keep its data order and epoch state between calls"),
        (CentersInputsInPlace, "inputs-unmodified", "modified its inputs: x_train"),
        (IgnoresSeed, "deterministic", "seeds 3 and 4 give identical results"),
        (UnseededOrder, "deterministic", "two fresh instances with seed 3 differ"),
        (PredictsScores, "predict-labels", "expected integer labels of shape (10,)"),
        (TransposedWeights, "parameter-layout", "W1 has shape (50, 784), expected (784, 50)"),
        (OwnInit, "parameter-layout", "start from self.initial_parameters"),
    ],
)
def test_a_wrong_trainer_fails_the_matching_check_with_a_clear_detail(plugin, check, message):
    results = results_by_check(conformance.run_checks(plugin, ["dlfs-mlp"], only=[check]))
    assert not results[check].passed
    assert message in results[check].detail


def test_wrong_trainers_pass_the_checks_their_mistake_does_not_touch():
    results = results_by_check(
        conformance.run_checks(WrongLearningRate, ["tch-mlp"], only=conformance.CHECKS[:-1])
    )
    failed = {name for name, r in results.items() if not r.passed}
    assert failed == {"matches-reference"}
    assert "tolerance 0.001 (float32)" in results["matches-reference"].detail


def test_an_exception_in_the_plugin_is_a_failed_check_pointing_at_its_line():
    class Crashes(NumpyMLP):
        def predict(self, x):
            raise RuntimeError("deliberate")

    results = results_by_check(
        conformance.run_checks(Crashes, ["dlfs-mlp"], only=["predict-labels"])
    )
    detail = results["predict-labels"].detail
    assert "raised RuntimeError: deliberate" in detail and "test_conformance.py" in detail


THREAD_GREEDY = """
import numpy as np
from threadpoolctl import threadpool_limits
from bench.api import Trainer, register


@register
class ThreadGreedy(Trainer):
    name, model, framework = "thread-greedy", "mlp", "numpy"

    def load(self, x_train, y_train):
        threadpool_limits(2)  # overrides the harness's thread setting

    def train(self, steps):
        return 0.0

    def predict(self, x):
        return np.zeros(len(x), dtype=np.int64)

    def parameters(self):
        return dict(self.initial_parameters)
"""


def test_a_plugin_that_changes_the_thread_count_fails_thread_limit(tmp_path):
    (tmp_path / "greedy.py").write_text(THREAD_GREEDY)
    plugin = plugins.discover([tmp_path], builtin=False, installed=False).plugins[0]
    (result,) = conformance.run_checks(plugin.cls, ["dlfs-mlp"], only=["thread-limit"])
    assert not result.passed
    assert "limited to 1 thread, the process has openblas" in result.detail
    assert ": 2" in result.detail


EXTENSION_POOL = """
import os
import numpy as np
from bench.api import Trainer, register


@register
class ExtensionPool(Trainer):
    name, model, framework = "extension-pool", "mlp", "rust"

    @classmethod
    def thread_counts(cls):
        # What a compiled extension's own pool would report: here, what the harness asked.
        return {"rayon": int(os.environ.get("RAYON_NUM_THREADS", 0)), "own-pool": POOL_SIZE}

    def load(self, x_train, y_train):
        pass

    def train(self, steps):
        return 0.0

    def predict(self, x):
        return np.zeros(len(x), dtype=np.int64)

    def parameters(self):
        return dict(self.initial_parameters)
"""


def test_thread_limit_checks_the_pools_an_extension_reports(tmp_path):
    (tmp_path / "pooled.py").write_text("POOL_SIZE = 1\n" + EXTENSION_POOL)
    plugin = plugins.discover([tmp_path], builtin=False, installed=False).plugins[0]
    (result,) = conformance.run_checks(plugin.cls, ["dlfs-mlp"], only=["thread-limit"])
    assert result.passed, result.detail
    assert "rayon: 1" in result.detail and "own-pool: 1" in result.detail
    (tmp_path / "pooled.py").write_text("POOL_SIZE = 4\n" + EXTENSION_POOL)
    plugin = plugins.discover([tmp_path], builtin=False, installed=False).plugins[0]
    (result,) = conformance.run_checks(plugin.cls, ["dlfs-mlp"], only=["thread-limit"])
    assert not result.passed
    assert "own-pool: 4" in result.detail


class CountsOneMore(SklearnKMeans):
    def fit(self, x, init_centroids, max_iter, tol):
        result = super().fit(x, init_centroids, max_iter, tol)
        return dataclasses.replace(result, n_iter=result.n_iter + 1)


class MovesInitInPlace(SklearnKMeans):
    def fit(self, x, init_centroids, max_iter, tol):
        result = super().fit(x, init_centroids, max_iter, tol)
        init_centroids[:] = result.centroids
        return result


class RoundsCentroids(SklearnKMeans):
    def fit(self, x, init_centroids, max_iter, tol):
        result = super().fit(x, init_centroids, max_iter, tol)
        return KMeansResult(result.centroids.round(3), result.labels, result.n_iter, result.inertia)


@pytest.mark.parametrize(
    ("plugin", "check", "message"),
    [
        (CountsOneMore, "matches-reference", "count Lloyd iterations as scikit-learn"),
        (RoundsCentroids, "matches-reference", "relative from the reference"),
        (MovesInitInPlace, "inputs-unmodified", "modified its inputs: init_centroids"),
    ],
)
def test_a_wrong_clusterer_fails_the_matching_check(plugin, check, message):
    results = results_by_check(conformance.run_checks(plugin, only=[check]))
    assert not results[check].passed
    assert message in results[check].detail


def test_unsupported_scenarios_and_missing_requirements_are_reported_not_run():
    class NoQuadratic(NumpyMLP):
        @classmethod
        def why_unsupported(cls, scenario):
            return "no quadratic cost" if scenario.loss == "quadratic" else None

    results = conformance.run_checks(NoQuadratic, ["nielsen-mlp"])
    assert [(r.name, r.passed, r.skipped, r.detail) for r in results] == [
        ("nielsen-mlp/supported", True, True, "not supported: no quadratic cost")
    ]

    class NeedsMissing(NumpyMLP):
        requires = ("a_module_that_is_not_installed",)

    (result,) = conformance.run_checks(NeedsMissing)
    assert not result.passed and "a_module_that_is_not_installed" in result.detail


# --- bench check --device ----------------------------------------------------------------


class RecordsItsDevice(NumpyMLP):
    """NumPy math on any device name: shows which device the checks build it on."""

    devices = ("cpu", "cuda")
    built_on: ClassVar[list[str]] = []

    def __init__(self, scenario, parameters, seed, device="cpu"):
        RecordsItsDevice.built_on.append(device)
        super().__init__(scenario, parameters, seed, "cpu")


def test_checks_build_the_implementation_on_the_device_asked_for():
    RecordsItsDevice.built_on = []
    results = results_by_check(
        conformance.run_checks(RecordsItsDevice, ["tch-mlp"], only=["matches-reference"])
    )
    assert results["matches-reference"].passed and set(RecordsItsDevice.built_on) == {"cpu"}
    RecordsItsDevice.built_on = []
    results = results_by_check(
        conformance.run_checks(
            RecordsItsDevice, ["tch-mlp"], only=["matches-reference"], device="cuda:1"
        )
    )
    assert results["matches-reference"].passed, results
    assert set(RecordsItsDevice.built_on) == {"cuda:1"}


def test_a_device_the_implementation_does_not_declare_is_one_failed_check_saying_so():
    (result,) = conformance.run_checks(NumpyMLP, ["tch-mlp"], device="cuda")
    assert result.name == "device" and not result.passed
    assert "declares devices = (cpu), not cuda" in result.detail


def test_bench_check_on_a_gpu_this_machine_lacks_says_so_instead_of_failing_checks():
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: tests/device/run.sh checks it")
    code, out = bench("check", "torch", "--scenario", "tch-mlp", "--device", "cuda")
    assert code == 2, out
    assert "--device cuda: no CUDA device on this machine" in out and "FAIL" not in out


def test_under_adam_only_a_few_ill_conditioned_elements_are_left_out():
    from bench.conformance.trainers import ADAM_ILL_CONDITIONED_SHARE, _parameter_error

    start = {"W": np.zeros(200_000), "b": np.zeros(10)}
    expected = {"W": np.full(200_000, 1.0), "b": np.full(10, 1.0)}
    one_off = {"W": expected["W"].copy(), "b": expected["b"].copy()}
    one_off["W"][7] += 0.5  # one element, as rounding leaves it under Adam
    share = ADAM_ILL_CONDITIONED_SHARE
    assert _parameter_error(one_off, expected, start) == (0.5, "W")
    assert _parameter_error(one_off, expected, start, share)[0] == 0.0  # 2 of 200 000 left out
    three_off = {**one_off, "W": one_off["W"].copy()}
    three_off["W"][[8, 9]] += 0.25
    assert _parameter_error(three_off, expected, start, share)[0] == 0.25  # the third counts
    small_off = {**expected, "b": expected["b"] + np.eye(10)[3]}  # 10 elements: none left out
    assert _parameter_error(small_off, expected, start, share) == (1.0, "b")
    with_nan = {**expected, "W": expected["W"].copy()}
    with_nan["W"][0] = np.nan
    assert np.isnan(_parameter_error(with_nan, expected, start, share)[0])


def test_a_wrong_adam_trainer_still_fails_matches_reference():
    TorchCNN = builtin("torch", "cnn")

    class WrongBeta(TorchCNN):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            for group in self.optimizer.param_groups:
                group["betas"] = (0.89, group["betas"][1])

    results = results_by_check(
        conformance.run_checks(WrongBeta, ["dlfs-cnn"], only=["matches-reference"])
    )
    assert not results["matches-reference"].passed
    assert "largest differences left out" in results["matches-reference"].detail
