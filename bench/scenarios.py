"""The five workloads of the articles, as frozen data, and the profiles that size them.

A scenario fixes everything an implementation must reproduce: data, architecture, init rule,
loss, optimizer, batch sampling, budget per profile, quality target, and what the article
published. Nothing here runs anything; the FLOP counts are derived from the layer list.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, replace

PROFILES = ("smoke", "quick", "full")
OVERRIDABLE = ("batch_size", "steps", "n_samples")
MODELS = ("mlp", "cnn", "kmeans")


# --- architecture ------------------------------------------------------------------------


@dataclass(frozen=True)
class Dense:
    """Fully connected layer; parameters `W` (in, out) and `b` (out,) in canonical layout."""

    units_in: int
    units_out: int
    activation: str | None  # "sigmoid", "relu" or None (logits)

    def forward_flops(self, in_shape: tuple[int, ...]) -> int:
        return 2 * self.units_in * self.units_out

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.units_out,)


@dataclass(frozen=True)
class Conv2d:
    """2-D convolution; kernel (out_c, in_c, kh, kw) and bias (out_c,) in canonical layout."""

    in_channels: int
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    activation: str | None = None

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        _, h, w = in_shape
        side = lambda n: (n + 2 * self.padding - self.kernel) // self.stride + 1  # noqa: E731
        return (self.out_channels, side(h), side(w))

    def forward_flops(self, in_shape: tuple[int, ...]) -> int:
        _, oh, ow = self.out_shape(in_shape)
        return 2 * self.out_channels * self.in_channels * self.kernel**2 * oh * ow


@dataclass(frozen=True)
class MaxPool2d:
    size: int
    stride: int

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        c, h, w = in_shape
        return (c, (h - self.size) // self.stride + 1, (w - self.size) // self.stride + 1)

    def forward_flops(self, in_shape: tuple[int, ...]) -> int:
        return 0  # comparisons, not floating-point multiply-adds


@dataclass(frozen=True)
class Flatten:
    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(in_shape),)

    def forward_flops(self, in_shape: tuple[int, ...]) -> int:
        return 0


Layer = Dense | Conv2d | MaxPool2d | Flatten


# --- optimisation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Optimizer:
    """`sgd`: w -= lr*g.  `ema-momentum`: v = beta*v + (1-beta)*g; w -= lr*v.
    `adam`: standard Adam with bias correction (Kingma & Ba)."""

    kind: str
    lr: float
    momentum: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8


# --- budgets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """How much work one round does under a profile.

    Trainers: exactly one of `steps` or `epochs` (epochs count mini-batches of the training
    set actually used, the last one short). `train_samples`/`test_samples` cap the data.
    Clusterers: `n_samples` points. `eval_points` is how many times per round the harness
    measures test accuracy (untimed) for the accuracy-vs-time curve. `round_cap_s` caps a
    training round's time: the round stops after the `train` call that passes it and is
    marked *capped* with the steps it did.
    """

    rounds: int
    warmup_rounds: int
    timeout_s: float
    steps: int | None = None
    epochs: float | None = None
    train_samples: int | None = None
    test_samples: int | None = None
    eval_points: int = 5
    n_samples: int | None = None
    round_cap_s: float | None = None  # stop a training round at the next `train` call after this


def smoke_budget(steps: int) -> Budget:
    """The smoke profile of a training scenario: seconds per case, for the tests."""
    return Budget(
        rounds=2,
        warmup_rounds=1,
        timeout_s=120,
        steps=steps,
        train_samples=300,
        test_samples=200,
        eval_points=2,
    )


@dataclass(frozen=True)
class KMeansSpec:
    n_clusters: int
    n_features: int
    centers: int
    max_iter: int
    tol: float


@dataclass(frozen=True)
class Published:
    """One number an article published, kept verbatim for the "articles vs here" table.
    A ratio names the implementation it is against (`versus`): the report answers it with
    the ratio of the two measured here."""

    implementation: str
    metric: str
    value: str
    versus: str = ""


# --- scenario ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    article: str
    model: str
    dataset: str
    budgets: dict[str, Budget]
    target: float  # test accuracy to reach (trainers) or max relative inertia error (kmeans)
    original: str = ""  # the implementation the article started from: speed-ups are relative to it
    published: tuple[Published, ...] = ()
    deviations: tuple[str, ...] = ()
    # trainers
    layers: tuple[Layer, ...] = ()
    input_shape: tuple[int, ...] = ()
    input_scale: float = 1 / 255
    init: str = ""  # "normal", "scaled-normal", "torch-default"
    init_scale: float = 1.0
    loss: str = ""  # "quadratic" (sigmoid outputs) or "cross-entropy" (softmax of logits)
    optimizer: Optimizer | None = None
    batch_size: int = 0
    sampling: str = ""  # "shuffled-epochs" or "with-replacement"
    train_limit: int | None = None  # the scenario trains on the first N training examples
    dtype: str = "float32"
    # clusterers
    kmeans: KMeansSpec | None = None
    seed: int = 0

    def budget(self, profile: str) -> Budget:
        return self.budgets[profile]

    @property
    def trains(self) -> bool:
        return self.model in ("mlp", "cnn")

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Canonical parameter names and shapes: W1, b1, W2, b2, ... in layer order."""
        shapes: dict[str, tuple[int, ...]] = {}
        index = 0
        for layer in self.layers:
            if isinstance(layer, Dense):
                index += 1
                shapes[f"W{index}"] = (layer.units_in, layer.units_out)
                shapes[f"b{index}"] = (layer.units_out,)
            elif isinstance(layer, Conv2d):
                index += 1
                k = layer.kernel
                shapes[f"W{index}"] = (layer.out_channels, layer.in_channels, k, k)
                shapes[f"b{index}"] = (layer.out_channels,)
        return shapes

    def forward_flops_per_sample(self) -> int:
        shape, total = self.input_shape, 0
        for layer in self.layers:
            total += layer.forward_flops(shape)
            shape = layer.out_shape(shape)
        return total

    def flops_per_step(self) -> int:
        """Analytic training FLOPs of one full mini-batch step: forward + backward (~2x forward:
        gradients w.r.t. inputs and weights). Activations, loss and the update are ignored."""
        return 3 * self.forward_flops_per_sample() * self.batch_size

    def flops_per_iteration(self, n_samples: int) -> int:
        """K-Means (Lloyd): distances (3 flops per point, centre, feature) and the mean update."""
        assert self.kmeans is not None
        k, d = self.kmeans.n_clusters, self.kmeans.n_features
        return 3 * n_samples * k * d + n_samples * d

    def with_overrides(self, profile: str, overrides: dict[str, float]) -> Scenario:
        """This scenario with some sizes changed for one profile, for sweeps: `batch_size`
        (trainers), `steps` (trainers) or `n_samples` (clusterers)."""
        if not overrides:
            return self
        unknown = set(overrides) - set(OVERRIDABLE)
        if unknown:
            raise ValueError(
                f"cannot override {', '.join(sorted(unknown))}; sweepable: {', '.join(OVERRIDABLE)}"
            )
        scenario = self
        if "batch_size" in overrides:
            scenario = replace(scenario, batch_size=int(overrides["batch_size"]))
        budget_changes = {k: int(v) for k, v in overrides.items() if k in ("steps", "n_samples")}
        if budget_changes:
            budget = replace(self.budget(profile), **budget_changes)
            if "steps" in budget_changes:
                budget = replace(budget, epochs=None)
            scenario = replace(scenario, budgets={**scenario.budgets, profile: budget})
        return scenario

    def steps_for(self, profile: str, n_train: int) -> int:
        """Optimizer updates in one round, given how many training examples are used."""
        budget = self.budget(profile)
        if budget.steps is not None:
            return budget.steps
        assert budget.epochs is not None
        return math.ceil(budget.epochs * math.ceil(n_train / self.batch_size))


TORCH_INIT_DEVIATION = (
    "The article initialised every weight with U[0,1) (Tensor::rand), which does not learn "
    "(measured: 10% accuracy); this scenario uses PyTorch's default layer init "
    "U(±1/√fan_in) for W and b."
)

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="nielsen-mlp",
            original="numpy-pure",
            title="Nielsen network.py: 784-30-10 sigmoid MLP, quadratic cost, SGD",
            article="seed 000: Nielsen, Neural Networks and Deep Learning ch.1 (Python vs Rust)",
            model="mlp",
            dataset="mnist",
            layers=(Dense(784, 30, "sigmoid"), Dense(30, 10, "sigmoid")),
            input_shape=(784,),
            init="normal",
            loss="quadratic",
            optimizer=Optimizer("sgd", lr=3.0),
            batch_size=10,
            sampling="shuffled-epochs",
            train_limit=50_000,
            dtype="float64",
            budgets={
                "smoke": smoke_budget(steps=5),
                "quick": Budget(
                    rounds=3, warmup_rounds=1, timeout_s=900, steps=5_000, eval_points=5
                ),
                "full": Budget(
                    rounds=3, warmup_rounds=1, timeout_s=7_200, epochs=30, eval_points=30
                ),
            },
            target=0.94,
            published=(
                Published("book (Nielsen)", "test accuracy", "95.42% best epoch of 3 runs"),
                Published("numpy-pure", "time vs Rust ndarray", "about 2x slower", "ndarray"),
                Published("numpy-vectorized", "time vs Rust ndarray", "about 2x faster", "ndarray"),
            ),
            deviations=(
                "Nielsen's 95.42% is the best epoch of three runs; we report final-epoch accuracy.",
                "float64 throughout, as network.py (NumPy's default dtype).",
                "The update is eta/batch times the summed gradient; the loss reported is the "
                "mean over the batch of 0.5*||a - y||^2.",
            ),
        ),
        Scenario(
            name="dlfs-mlp",
            original="numpy-vectorized",
            title="Deep Learning from Scratch ch.5: 784-50-10 ReLU MLP, softmax cross-entropy",
            article="seed 002: Zero kara tsukuru Deep Learning (Deep Learning from Scratch) "
            "re-implemented in Rust, vs Python and Keras",
            model="mlp",
            dataset="mnist",
            layers=(Dense(784, 50, "relu"), Dense(50, 10, None)),
            input_shape=(784,),
            init="scaled-normal",
            init_scale=0.01,
            loss="cross-entropy",
            optimizer=Optimizer("sgd", lr=0.1),
            batch_size=100,
            sampling="with-replacement",
            budgets={
                "smoke": smoke_budget(steps=5),
                "quick": Budget(
                    rounds=3, warmup_rounds=1, timeout_s=900, steps=1_000, eval_points=5
                ),
                "full": Budget(
                    rounds=3, warmup_rounds=1, timeout_s=3_600, steps=10_000, eval_points=10
                ),
            },
            target=0.96,
            published=(
                Published("numpy-vectorized", "train time", "about 10 s"),
                Published("numpy-vectorized", "train / test accuracy", "0.9809 / 0.9708"),
                Published("numpy-vectorized", "CPU use", "about 80%"),
                Published("keras", "train time", "about 10 s"),
                Published("keras", "train / test accuracy", "0.9813 / 0.9709"),
                Published("keras", "CPU use", "about 70%"),
                Published("Rust ndarray", "train time", "about 10 s"),
                Published("Rust ndarray", "train / test accuracy", "0.9479 / 0.9422"),
                Published("Rust ndarray", "CPU use", "about 20%"),
            ),
        ),
        Scenario(
            name="tch-mlp",
            original="torch",
            title="Rust+LibTorch parameter store: 784-128-10 ReLU MLP, EMA-momentum SGD",
            article="seed 004: a LibTorch 'Memory' parameter store in Rust vs Python+PyTorch",
            model="mlp",
            dataset="mnist",
            layers=(Dense(784, 128, "relu"), Dense(128, 10, None)),
            input_shape=(784,),
            init="torch-default",
            loss="cross-entropy",
            optimizer=Optimizer("ema-momentum", lr=0.3, momentum=0.9),
            batch_size=128,
            sampling="shuffled-epochs",
            budgets={
                "smoke": smoke_budget(steps=5),
                "quick": Budget(rounds=3, warmup_rounds=1, timeout_s=900, steps=469, eval_points=5),
                "full": Budget(
                    rounds=3, warmup_rounds=1, timeout_s=7_200, epochs=100, eval_points=20
                ),
            },
            target=0.97,
            published=(Published("Rust+LibTorch", "time vs torch", "5.5x faster"),),
            deviations=(TORCH_INIT_DEVIATION,),
        ),
        Scenario(
            name="tch-cnn",
            original="torch",
            title="Rust+LibTorch parameter store: two-conv CNN, Adam",
            article="seed 001: the same LibTorch parameter store, CNN on MNIST",
            model="cnn",
            dataset="mnist",
            layers=(
                Conv2d(1, 10, 5),
                MaxPool2d(2, 2),
                Conv2d(10, 20, 5),
                MaxPool2d(2, 2),
                Flatten(),
                Dense(320, 64, "relu"),
                Dense(64, 10, None),
            ),
            input_shape=(1, 28, 28),
            input_scale=1 / 250,
            init="torch-default",
            loss="cross-entropy",
            optimizer=Optimizer("adam", lr=1e-4),
            batch_size=512,
            sampling="shuffled-epochs",
            budgets={
                "smoke": smoke_budget(steps=3),
                # numpy-pure convolves one example at a time (about 7 s per step): capped, with
                # room for numpy-vectorized (about 8 s here) to finish uncapped.
                "quick": Budget(
                    rounds=3,
                    warmup_rounds=1,
                    timeout_s=900,
                    steps=118,
                    eval_points=4,
                    round_cap_s=25,
                ),
                "full": Budget(
                    rounds=3, warmup_rounds=1, timeout_s=7_200, epochs=20, eval_points=20
                ),
            },
            target=0.97,
            published=(Published("Rust+LibTorch", "time vs torch", "1.6x faster"),),
            deviations=(
                TORCH_INIT_DEVIATION,
                "The article's Adam had a broken bias correction; we use the standard one.",
                "Inputs are x/250 and the convolutions have no activation, as in the article.",
            ),
        ),
        Scenario(
            name="dlfs-cnn",
            original="numpy-vectorized",
            title="Deep Learning from Scratch ch.7: SimpleConvNet, one conv + two affine, Adam",
            article="Deep Learning from Scratch ch.7 (the book behind seed 002), SimpleConvNet",
            model="cnn",
            dataset="mnist",
            layers=(
                Conv2d(1, 30, 5, activation="relu"),
                MaxPool2d(2, 2),
                Flatten(),
                Dense(30 * 12 * 12, 100, "relu"),
                Dense(100, 10, None),
            ),
            input_shape=(1, 28, 28),
            init="scaled-normal",
            init_scale=0.01,
            loss="cross-entropy",
            optimizer=Optimizer("adam", lr=0.001),
            batch_size=100,
            sampling="shuffled-epochs",
            budgets={
                "smoke": smoke_budget(steps=3),
                # As tch-cnn: numpy-pure is capped (2 s per step), numpy-vectorized takes 15 s.
                "quick": Budget(
                    rounds=3,
                    warmup_rounds=1,
                    timeout_s=900,
                    steps=600,
                    eval_points=4,
                    round_cap_s=25,
                ),
                "full": Budget(
                    rounds=3, warmup_rounds=1, timeout_s=14_400, epochs=20, eval_points=20
                ),
            },
            target=0.98,
            published=(
                Published("book (SimpleConvNet)", "test accuracy", "about 98.9% after 20 epochs"),
            ),
        ),
        Scenario(
            name="linfa-kmeans",
            original="sklearn",
            title="linfa vs scikit-learn: K-Means k=3 on 2-D blobs, Lloyd",
            article="seed 003: linfa (Rust) vs scikit-learn, measured with pytest-benchmark",
            model="kmeans",
            dataset="blobs",
            kmeans=KMeansSpec(n_clusters=3, n_features=2, centers=3, max_iter=100, tol=1e-4),
            seed=42,
            dtype="float64",
            budgets={
                "smoke": Budget(rounds=2, warmup_rounds=1, timeout_s=120, n_samples=2_000),
                "quick": Budget(rounds=5, warmup_rounds=1, timeout_s=900, n_samples=100_000),
                "full": Budget(rounds=10, warmup_rounds=1, timeout_s=3_600, n_samples=1_000_000),
            },
            target=1e-6,
            published=(
                Published("sklearn", "fit time (1M points)", "604.7 ms"),
                Published("linfa (Rust)", "fit time (1M points)", "467.2 ms"),
                Published("linfa (Rust)", "served over gRPC", "25x the requests/s of sklearn"),
            ),
            deviations=(
                "Init: k random points chosen by the harness, identical for every "
                "implementation (the article used each library's own default init).",
            ),
        ),
    )
}


def scenario_for(name: str, profile: str, overrides: dict[str, float] | None = None) -> Scenario:
    """The scenario a case runs: the named one with the case's sweep overrides applied."""
    return SCENARIOS[name].with_overrides(profile, overrides or {})


# --- stored definitions ------------------------------------------------------------------

_LAYER_TYPES = {cls.__name__: cls for cls in (Dense, Conv2d, MaxPool2d, Flatten)}


def scenario_to_json(scenario: Scenario) -> dict:
    """The whole definition as plain data: a run stores it, so that its report never depends
    on the catalogue of the version that reads it."""
    data = dataclasses.asdict(scenario)
    data["layers"] = [
        {"layer": type(layer).__name__, **dataclasses.asdict(layer)} for layer in scenario.layers
    ]
    return data


def scenario_from_json(data: dict) -> Scenario:
    def build(cls: type, values: dict | None):
        return None if values is None else cls(**values)

    layers = []
    for item in data.get("layers") or ():
        values = dict(item)
        layers.append(_LAYER_TYPES[values.pop("layer")](**values))
    return Scenario(
        **{
            **data,
            "budgets": {p: Budget(**b) for p, b in data["budgets"].items()},
            "published": tuple(Published(**p) for p in data.get("published") or ()),
            "deviations": tuple(data.get("deviations") or ()),
            "layers": tuple(layers),
            "input_shape": tuple(data.get("input_shape") or ()),
            "optimizer": build(Optimizer, data.get("optimizer")),
            "kmeans": build(KMeansSpec, data.get("kmeans")),
        }
    )
