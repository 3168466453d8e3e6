"""The public plugin API: the only harness module an implementation imports.

An implementation is a class registered with `@register`. The harness owns the loop (data,
rounds, timing, evaluation); the implementation owns the math:

    from bench.api import Trainer, register

    with optional_imports():        # a missing framework makes the case *skipped*, not broken
        import torch

    @register
    class MyMLP(Trainer):
        name, model, framework, requires = "my-torch", "mlp", "torch", ("torch",)

        def load(self, x_train, y_train): ...        # untimed: into framework tensors
        def train(self, steps): ...                  # timed: exactly `steps` updates
        def predict(self, x): ...                    # integer labels
        def parameters(self): ...                    # {"W1": (in, out), "b1": (out,), ...}
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from bench import names
from bench.scenarios import (
    MODELS,
    Budget,
    Conv2d,
    Dense,
    Flatten,
    KMeansSpec,
    MaxPool2d,
    Optimizer,
    Scenario,
)

__all__ = [
    "BatchSampler",
    "Budget",
    "Clusterer",
    "Conv2d",
    "Dense",
    "Flatten",
    "KMeansResult",
    "KMeansSpec",
    "MaxPool2d",
    "Optimizer",
    "PluginError",
    "Scenario",
    "Trainer",
    "cluster_means",
    "kmeans_shift_tolerance",
    "optional_imports",
    "register",
    "relocate_empty_clusters",
]


class PluginError(Exception):
    """A plugin breaks the contract; the message says what to change."""


class Implementation:
    """What every implementation declares. Subclass `Trainer` or `Clusterer`, not this."""

    name: ClassVar[str]
    model: ClassVar[str]
    framework: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()  # import names, e.g. ("torch",)
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    # Free text shown in the report where this implementation departs from a scenario,
    # keyed by scenario name ("*" applies to all).
    deviations: ClassVar[Mapping[str, str]] = {}
    # What to do when a `requires` module is missing, when `pip install` is not the answer
    # (a compiled extension, say): shown with the *skipped* reason.
    install_hint: ClassVar[str | None] = None

    @classmethod
    def thread_counts(cls) -> dict[str, int]:
        """Threads in force in pools the harness cannot inspect itself (a compiled
        extension's rayon or GEMM pool), by pool name. The thread-limit check and every
        case's record include them. Called after the case's thread limit is applied."""
        return {}

    @classmethod
    def why_unsupported(cls, scenario: Scenario) -> str | None:
        """Return a reason when this framework cannot express `scenario` exactly.
        Such cases are shown as *not supported*, never approximated silently."""
        return None

    @classmethod
    def deviations_for(cls, scenario: Scenario) -> tuple[str, ...]:
        return tuple(text for key, text in cls.deviations.items() if key in ("*", scenario.name))


class Trainer(Implementation):
    """Trains an `mlp` or `cnn` scenario from the harness's initial parameters."""

    def __init__(
        self,
        scenario: Scenario,
        parameters: Mapping[str, np.ndarray],
        seed: int,
        device: str = "cpu",
    ) -> None:
        self.scenario = scenario
        self.initial_parameters = parameters
        self.seed = seed
        self.device = device

    def load(self, x_train: np.ndarray, y_train: np.ndarray) -> None:
        """Untimed: convert the training data into the framework's own tensors."""
        raise NotImplementedError

    def train(self, steps: int) -> float:
        """Timed: exactly `steps` optimizer updates; return the last mini-batch loss.
        Keep data order and epoch state between calls."""
        raise NotImplementedError

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Integer class labels, shape (len(x),)."""
        raise NotImplementedError

    def parameters(self) -> dict[str, np.ndarray]:
        """Current weights as NumPy arrays in canonical layout (same names as given)."""
        raise NotImplementedError


@dataclass(frozen=True)
class KMeansResult:
    centroids: np.ndarray  # (k, n_features)
    labels: np.ndarray  # (n_samples,)
    n_iter: int
    inertia: float


class Clusterer(Implementation):
    """Fits a `kmeans` scenario from the harness's initial centroids."""

    def __init__(self, scenario: Scenario, seed: int, device: str = "cpu") -> None:
        self.scenario = scenario
        self.seed = seed
        self.device = device

    def load(self, x: np.ndarray) -> object:
        """Untimed: convert the points into the framework's own array; passed to `fit`."""
        return x

    def fit(self, x: object, init_centroids: np.ndarray, max_iter: int, tol: float) -> KMeansResult:
        """Timed: Lloyd iterations from `init_centroids` until the labels stop changing or
        the summed squared centroid shift is at most `kmeans_shift_tolerance(x, tol)`."""
        raise NotImplementedError

    def predict(self, x: object, centroids: np.ndarray) -> np.ndarray:
        """Label of the nearest centroid for every point."""
        raise NotImplementedError


def kmeans_shift_tolerance(x: np.ndarray, tol: float, chunk_rows: int = 65_536) -> float:
    """scikit-learn's convergence threshold: `tol` times the mean per-feature variance.
    Two passes over row chunks, so that no temporary as large as `x` is made."""
    x = np.asarray(x)
    mean = x.sum(axis=0, dtype=np.float64) / len(x)
    squares = sum(
        ((x[start : start + chunk_rows] - mean) ** 2).sum(axis=0)
        for start in range(0, len(x), chunk_rows)
    )
    return float(tol * np.mean(squares / len(x)))


def relocate_empty_clusters(
    x_centred: np.ndarray,
    centroids: np.ndarray,
    labels: np.ndarray,
    sums: np.ndarray,
    counts: np.ndarray,
) -> None:
    """scikit-learn's rule for clusters an assignment left empty, in place on the clusters'
    `sums` and `counts`: the i-th empty cluster (in index order) takes the i-th farthest point
    from the centroid it was assigned to (equal distances: the lower index first), and that
    point leaves its old cluster; `labels` keep the old cluster until the next assignment.
    Nothing moves when every point sits on its centroid. `centroids` are those the points
    were assigned to, in the same (centred) coordinates as `x_centred`."""
    empty = np.flatnonzero(counts == 0)
    if not len(empty):
        return
    distances = ((x_centred - centroids[labels]) ** 2).sum(axis=1)
    if distances.max() == 0:
        return
    farthest = np.argsort(-distances, kind="stable")[: len(empty)]
    for cluster, point in zip(empty, farthest, strict=True):
        old = labels[point]
        sums[old] -= x_centred[point]
        counts[old] -= 1
        sums[cluster] = x_centred[point]
        counts[cluster] = 1


def cluster_means(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each cluster's mean from its sum and count; a cluster still empty (nothing could be
    moved into it) takes the mean of the largest cluster, the first one if several are."""
    means = sums / np.maximum(counts, 1)[:, None]
    means[counts == 0] = means[np.argmax(counts)]
    return means


class BatchSampler:
    """The order of mini-batches, shared so that every implementation can see the same data.

    `shuffled-epochs`: a fresh permutation each epoch, cut in batches, the last one short.
    `with-replacement`: `batch_size` indices drawn uniformly each step (Deep Learning from
    Scratch's `np.random.choice`). `full-batch`: every example, in order, every step.
    """

    def __init__(self, n: int, batch_size: int, sampling: str, seed: int) -> None:
        if sampling not in ("shuffled-epochs", "with-replacement", "full-batch"):
            raise ValueError(f"unknown sampling {sampling!r}")
        self.n, self.batch_size, self.sampling = n, batch_size, sampling
        self.epoch = 0
        self._rng = np.random.default_rng(seed)
        self._pending: Iterator[np.ndarray] = iter(())

    def _epoch_batches(self) -> Iterator[np.ndarray]:
        order = self._rng.permutation(self.n)
        self.epoch += 1
        for start in range(0, self.n, self.batch_size):
            yield order[start : start + self.batch_size]

    def take(self, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """The next `steps` mini-batches at once, for code that trains on all of them without
        returning to Python (a compiled extension): their indices one batch after another,
        and each batch's size."""
        batches = [self.next() for _ in range(steps)]
        sizes = np.array([len(batch) for batch in batches], dtype=np.int64)
        return np.concatenate(batches).astype(np.int64, copy=False), sizes

    def next(self) -> np.ndarray:
        if self.sampling == "full-batch":
            return np.arange(self.n)
        if self.sampling == "with-replacement":
            return self._rng.integers(0, self.n, size=self.batch_size)
        batch = next(self._pending, None)
        if batch is None:
            self._pending = self._epoch_batches()
            batch = next(self._pending)
        return batch


# --- registration ------------------------------------------------------------------------


@dataclass
class Collected:
    """What importing one plugin source registered, and the framework imports it lacked."""

    classes: list[type[Implementation]] = field(default_factory=list)
    missing_imports: list[str] = field(default_factory=list)
    # Trainer or Clusterer subclasses the source defines but never registers, described as
    # "MyMLP (a Trainer, in path/to/file.py)"; found by the harness's loader, not by `register`.
    unregistered: list[str] = field(default_factory=list)


_collecting: contextvars.ContextVar[Collected | None] = contextvars.ContextVar(
    "bench_plugin_source", default=None
)


@contextlib.contextmanager
def collecting() -> Iterator[Collected]:
    """For the harness's plugin loader: gather what is registered while a source imports."""
    collected = Collected()
    token = _collecting.set(collected)
    try:
        yield collected
    finally:
        _collecting.reset(token)


def register(cls: type[Implementation]) -> type[Implementation]:
    """Class decorator: validate the declaration and make the class discoverable."""
    _validate(cls)
    collected = _collecting.get()
    if collected is not None and cls not in collected.classes:
        collected.classes.append(cls)
    return cls


def _validate(cls: type) -> None:
    where = f"{cls.__module__}.{cls.__qualname__}"
    if not (isinstance(cls, type) and issubclass(cls, Trainer | Clusterer)):
        raise PluginError(f"{where}: subclass bench.api.Trainer or bench.api.Clusterer")
    for attribute in ("name", "model", "framework"):
        if not isinstance(getattr(cls, attribute, None), str):
            raise PluginError(f'{where}: declare `{attribute} = "..."` as a class attribute')
    if not names.is_valid(cls.name):
        raise PluginError(f"{where}: name {cls.name!r} must be {names.NAME_RULE}")
    if cls.model not in MODELS:
        raise PluginError(f"{where}: model {cls.model!r} is not one of {', '.join(MODELS)}")
    expected = Clusterer if cls.model == "kmeans" else Trainer
    if not issubclass(cls, expected):
        raise PluginError(f"{where}: a {cls.model} implementation subclasses {expected.__name__}")
    if isinstance(cls.requires, str) or not all(isinstance(r, str) for r in cls.requires):
        raise PluginError(f"{where}: `requires` is a tuple of import names, e.g. ('torch',)")


@contextlib.contextmanager
def optional_imports() -> Iterator[None]:
    """Wrap a plugin's framework imports: when one is missing, the plugin still loads and
    its cases are reported *skipped* (if the module is in `requires`) instead of crashing
    discovery. The error is kept and shown by `bench list`."""
    try:
        yield
    except ImportError as error:
        collected = _collecting.get()
        if collected is not None:
            collected.missing_imports.append(error.name or str(error))
