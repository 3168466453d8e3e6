"""The types a scenario is made of, as frozen data: layers, optimizer, budgets per profile,
the K-Means specification, published numbers, and the scenario itself. Nothing here runs
anything; the FLOP counts are derived from the layer list."""

from __future__ import annotations

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
    """How much work one round does under a profile, and how a case's rounds are measured.

    Trainers: exactly one of `steps` or `epochs` (epochs count mini-batches of the training
    set actually used, the last one short). `train_samples`/`test_samples` cap the data.
    Clusterers: `n_samples` points. `eval_points` is how many times per round the harness
    measures test accuracy (untimed) for the accuracy-vs-time curve. `round_cap_s` caps a
    training round's time for an implementation too slow for it: the round stops after the
    `train` call that passes it, if its CPU time says that even with every thread busy it
    could not have finished in time, and is marked *capped* with the steps it did.

    Measuring: the case's rounds run in `processes` worker processes or more, each with
    `warmup_rounds` warm-up rounds first; `rounds` measured rounds in all at least, and, when
    `max_rounds` is set, more until the interval of the case's median is within
    +-`interval_target` (relative), the rounds reach `max_rounds`, or another process would
    end after `case_budget_s` seconds of the case (`bench.analysis.stopping`).
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
    processes: int = 1
    max_rounds: int | None = None  # None: exactly `rounds`
    interval_target: float | None = None
    case_budget_s: float | None = None


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


# How the quick profile measures every scenario: two worker processes per case sharing at
# least four measured rounds, more (up to twelve) until the median's interval is within
# +-10 %, within the case's time budget. Why 10 %: on a 2-core machine, processes of one case
# differ by about 3 % (standard deviation, pooled over a quick run), so two processes give
# about +-6 % and +-5 % needs a third for most cases, which the 8-minute matrix cannot
# afford; the ratios quick is for (2x, 20x) need far less. Accuracy is taken on at most
# 2 000 test images at three points of a round, so that per-example implementations
# evaluate briefly.
QUICK_MEASURING = dict(
    processes=2,
    rounds=4,
    max_rounds=12,
    interval_target=0.10,
    warmup_rounds=1,
    timeout_s=600,
)
# The full profile: the articles' budgets; one round in each of three processes or more (a
# warm-up is cheap beside a round of this size), until +-3 %.
FULL_MEASURING = dict(processes=3, rounds=3, max_rounds=10, interval_target=0.03, warmup_rounds=1)


def quick_budget(*, case_budget_s: float, **work: float) -> Budget:
    """The quick profile of a scenario: `work` sizes a round (steps, epochs, n_samples,
    eval_points, round_cap_s), `case_budget_s` bounds the extra rounds of a case."""
    defaults = dict(eval_points=3, test_samples=2_000) if "n_samples" not in work else {}
    return Budget(**{**QUICK_MEASURING, **defaults, **work}, case_budget_s=case_budget_s)


def full_budget(*, timeout_s: float, **work: float) -> Budget:
    """The full profile of a scenario: the article's budget in `work`."""
    return Budget(**{**FULL_MEASURING, **work}, timeout_s=timeout_s)


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

    `implementation` names its source as the article did; `answered_by` is the
    implementation here whose number answers it, when it is not the same name (Nielsen's
    network.py is `numpy-pure`). A ratio names the implementation it is against (`versus`):
    the report answers it with the ratio of the two measured here."""

    implementation: str
    metric: str
    value: str
    versus: str = ""
    answered_by: str = ""

    @property
    def measured_by(self) -> str:
        return self.answered_by or self.implementation


# --- serving -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ServingLoad:
    """The load levels one profile puts on a server, for one request size.

    Closed loop: `concurrencies` requests in flight, each sent when the previous answer
    arrives. Open loop: requests started at Poisson arrival times of each of `rates` (offered
    requests per second), answered or not. Every level stops after `seconds_per_level` or
    `max_requests_per_level`, whichever comes first; every request has a deadline. The report
    compares implementations at `common_rate` (one of `rates`) and finds the highest
    throughput whose p99 latency stays within `p99_bound_s` (MLPerf's Server scenario)."""

    batch: int  # points per request
    concurrencies: tuple[int, ...]
    rates: tuple[float, ...]
    seconds_per_level: float
    max_requests_per_level: int
    common_rate: float
    p99_bound_s: float
    warmup_requests: int = 100  # sent before the first level of this size, not recorded
    deadline_s: float = 1.0

    @property
    def level_count(self) -> int:
        return len(self.concurrencies) + len(self.rates)


# A level's worst case beyond its own seconds and one deadline: starting the load generator
# and its grace, and asking the server whether it still answers afterwards.
LEVEL_OVERHEAD_S = 20.0
# Levels per request size whose backlog a case's time limit leaves time to work through.
OVERLOADS_PER_SIZE = 2


@dataclass(frozen=True)
class ServingSpec:
    """A model served over gRPC (Palmieri 2019's second half): fitted once, untimed, on the
    scenario's data, then loaded level by level for each request size."""

    loads: dict[str, tuple[ServingLoad, ...]]  # profile -> one per request size
    query_points: int = 8_192  # points the requests are cut from, drawn from the data
    fit_allowance_s: float = 120.0  # for the untimed fit of the model (1M points in full)
    start_timeout_s: float = 120.0  # for a server to import its framework and listen
    # After a level, for an overloaded server to work through its backlog and answer again.
    recovery_limit_s: float = 120.0

    def longest_case_seconds(self, profile: str) -> float:
        """The most one case may take under `profile`: fitting, starting the server, then
        every level (and the warm-up before them) to its time bound and its worst-case
        overhead, and two recoveries from overload per request size."""
        return (
            self.fit_allowance_s
            + self.start_timeout_s
            + sum(
                (load.level_count + 1)
                * (load.seconds_per_level + load.deadline_s + LEVEL_OVERHEAD_S)
                + OVERLOADS_PER_SIZE * self.recovery_limit_s
                for load in self.loads[profile]
            )
        )


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
    # serving (a served model instead of a timed fit or training)
    serving: ServingSpec | None = None

    def budget(self, profile: str) -> Budget:
        return self.budgets[profile]

    @property
    def trains(self) -> bool:
        return self.model in ("mlp", "cnn")

    @property
    def classes(self) -> int:
        """How many classes a trainer tells apart: its last layer's outputs."""
        last = self.layers[-1] if self.layers else None
        return last.units_out if isinstance(last, Dense) else 0

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

    def training_flops(self, samples: int) -> int:
        """Analytic FLOPs of training on `samples` examples: forward + backward (~2x forward:
        gradients w.r.t. inputs and weights). Activations, loss and the update are ignored."""
        return 3 * self.forward_flops_per_sample() * samples

    def flops_per_step(self) -> int:
        """Training FLOPs of one full mini-batch step."""
        return self.training_flops(self.batch_size)

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
