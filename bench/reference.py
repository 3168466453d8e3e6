"""The math every implementation must reproduce, in float64 NumPy, independent of any plugin.

`bench check` (`bench.conformance`) compares a plugin with this module: an MLP or CNN trained
with full-batch steps (`train_full_batch`) and Lloyd's K-Means (`kmeans`). It reads top to bottom:
layers (forward and backward), losses, optimizers, the trainer, then K-Means.

A layer kind is added by writing its forward/backward pair and listing it in `LAYERS`;
a scenario using a kind not listed there raises `NoReference` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.api import (
    KMeansResult,
    cluster_means,
    kmeans_shift_tolerance,
    relocate_empty_clusters,
)
from bench.scenarios import Conv2d, Dense, Flatten, MaxPool2d, Optimizer, Scenario


class NoReference(Exception):
    """This module has no math for (part of) a scenario yet; the message says which."""


# --- layers: forward(layer, params, x) -> (out, cache); backward(...) -> (dx, grads) -------

ACTIVATIONS: dict[str | None, tuple[Callable, Callable]] = {
    # name: (f(z), f'(z) expressed with z and a = f(z))
    None: (lambda z: z, lambda z, a: np.ones_like(z)),
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z, a: a * (1 - a)),
    "relu": (lambda z: np.maximum(z, 0), lambda z, a: (z > 0).astype(z.dtype)),
}


def dense_forward(layer: Dense, params: tuple[np.ndarray, ...], x: np.ndarray):
    W, b = params
    z = x @ W + b
    a = ACTIVATIONS[layer.activation][0](z)
    return a, (x, z, a)


def dense_backward(layer: Dense, params: tuple[np.ndarray, ...], cache, da: np.ndarray):
    W, _ = params
    x, z, a = cache
    dz = da * ACTIVATIONS[layer.activation][1](z, a)
    return dz @ W.T, (x.T @ dz, dz.sum(axis=0))


def conv2d_forward(layer: Conv2d, params: tuple[np.ndarray, ...], x: np.ndarray):
    """x (n, in_c, h, w), W (out_c, in_c, k, k): z[n, o, i, j] = b[o] +
    sum over c, p, q of W[o, c, p, q] * xpad[n, c, i*stride + p, j*stride + q].
    One term per kernel offset (p, q), each a sum over the input channels."""
    W, b = params
    xpad = _pad(x, layer.padding)
    _, oh, ow = layer.out_shape(x.shape[1:])
    z = np.zeros((len(x), layer.out_channels, oh, ow)) + b[:, None, None]
    for p, q in np.ndindex(layer.kernel, layer.kernel):
        z += np.einsum("ncij,oc->noij", _shifted(xpad, p, q, oh, ow, layer.stride), W[:, :, p, q])
    a = ACTIVATIONS[layer.activation][0](z)
    return a, (xpad, z, a)


def conv2d_backward(layer: Conv2d, params: tuple[np.ndarray, ...], cache, da: np.ndarray):
    W, _ = params
    xpad, z, a = cache
    dz = da * ACTIVATIONS[layer.activation][1](z, a)
    _, _, oh, ow = dz.shape
    dW, dxpad = np.zeros_like(W), np.zeros_like(xpad)
    for p, q in np.ndindex(layer.kernel, layer.kernel):
        dW[:, :, p, q] = np.einsum("noij,ncij->oc", dz, _shifted(xpad, p, q, oh, ow, layer.stride))
        _shifted(dxpad, p, q, oh, ow, layer.stride)[...] += np.einsum(
            "noij,oc->ncij", dz, W[:, :, p, q]
        )
    pad = layer.padding
    dx = dxpad[:, :, pad : dxpad.shape[2] - pad, pad : dxpad.shape[3] - pad]
    return dx, (dW, dz.sum(axis=(0, 2, 3)))


def _pad(x: np.ndarray, padding: int) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


def _shifted(x: np.ndarray, p: int, q: int, oh: int, ow: int, stride: int) -> np.ndarray:
    """The view x[:, :, i*stride + p, j*stride + q] for every output position (i, j)."""
    return x[:, :, p : p + stride * (oh - 1) + 1 : stride, q : q + stride * (ow - 1) + 1 : stride]


def maxpool_forward(layer: MaxPool2d, params: tuple[np.ndarray, ...], x: np.ndarray):
    """The largest value of every window; the backward pass sends the gradient to it (the
    first one on a tie, as the frameworks do)."""
    _, oh, ow = layer.out_shape(x.shape[1:])
    windows = np.stack(
        [_shifted(x, p, q, oh, ow, layer.stride) for p, q in np.ndindex(layer.size, layer.size)]
    )
    winner = windows.argmax(axis=0)
    return windows.max(axis=0), (x.shape, winner)


def maxpool_backward(layer: MaxPool2d, params: tuple[np.ndarray, ...], cache, dout: np.ndarray):
    shape, winner = cache
    _, _, oh, ow = dout.shape
    dx = np.zeros(shape)
    for offset, (p, q) in enumerate(np.ndindex(layer.size, layer.size)):
        _shifted(dx, p, q, oh, ow, layer.stride)[...] += np.where(winner == offset, dout, 0)
    return dx, ()


def flatten_forward(layer: Flatten, params: tuple[np.ndarray, ...], x: np.ndarray):
    """(n, c, h, w) -> (n, c*h*w) in (c, h, w) order: the canonical feature order."""
    return x.reshape(len(x), -1), x.shape


def flatten_backward(layer: Flatten, params: tuple[np.ndarray, ...], shape, dout: np.ndarray):
    return dout.reshape(shape), ()


@dataclass(frozen=True)
class LayerMath:
    forward: Callable
    backward: Callable
    parameters: tuple[str, ...]  # canonical name prefixes, numbered per layer: W1, b1, ...


LAYERS: dict[type, LayerMath] = {
    Dense: LayerMath(dense_forward, dense_backward, ("W", "b")),
    Conv2d: LayerMath(conv2d_forward, conv2d_backward, ("W", "b")),
    MaxPool2d: LayerMath(maxpool_forward, maxpool_backward, ()),
    Flatten: LayerMath(flatten_forward, flatten_backward, ()),
}


def why_no_reference(scenario: Scenario) -> str | None:
    """None when every layer of `scenario` has reference math, else the reason."""
    missing = sorted(
        {type(layer).__name__ for layer in scenario.layers} - {t.__name__ for t in LAYERS}
    )
    if not missing:
        return None
    return f"no reference for {', '.join(missing)} layers (bench.reference.LAYERS lacks them)"


# --- losses: (outputs of the last layer, labels) -> (mean loss, d loss / d outputs) ------


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes)[labels]


def quadratic_loss(outputs: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Nielsen: mean over the batch of 0.5·||a − onehot(y)||² on the sigmoid outputs a."""
    diff = outputs - one_hot(labels, outputs.shape[1])
    return 0.5 * float((diff**2).sum(axis=1).mean()), diff / len(labels)


def cross_entropy_loss(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean of −log softmax(logits)[y]; the gradient is (softmax − onehot(y)) / n."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -float(log_probs[np.arange(len(labels)), labels].mean())
    return loss, (np.exp(log_probs) - one_hot(labels, logits.shape[1])) / len(labels)


LOSSES = {"quadratic": quadratic_loss, "cross-entropy": cross_entropy_loss}


# --- optimizers: one update of one parameter, with its own state -------------------------


def sgd(opt: Optimizer, w: np.ndarray, g: np.ndarray, state: dict, t: int) -> np.ndarray:
    return w - opt.lr * g


def ema_momentum(opt: Optimizer, w: np.ndarray, g: np.ndarray, state: dict, t: int) -> np.ndarray:
    state["v"] = opt.momentum * state.get("v", 0.0) + (1 - opt.momentum) * g
    return w - opt.lr * state["v"]


def adam(opt: Optimizer, w: np.ndarray, g: np.ndarray, state: dict, t: int) -> np.ndarray:
    state["m"] = opt.beta1 * state.get("m", 0.0) + (1 - opt.beta1) * g
    state["v"] = opt.beta2 * state.get("v", 0.0) + (1 - opt.beta2) * g**2
    m_hat, v_hat = state["m"] / (1 - opt.beta1**t), state["v"] / (1 - opt.beta2**t)
    return w - opt.lr * m_hat / (np.sqrt(v_hat) + opt.eps)


OPTIMIZERS = {"sgd": sgd, "ema-momentum": ema_momentum, "adam": adam}


# --- the trainer -------------------------------------------------------------------------


class ReferenceTrainer:
    """The scenario's network in float64, from the given initial parameters."""

    def __init__(self, scenario: Scenario, initial_parameters: dict[str, np.ndarray]) -> None:
        reason = why_no_reference(scenario)
        if reason:
            raise NoReference(reason)
        self.scenario = scenario
        self.params = {
            k: np.asarray(v, dtype=np.float64).copy() for k, v in initial_parameters.items()
        }
        self.state: dict[str, dict] = {name: {} for name in self.params}
        self.t = 0
        self.layer_parameters: list[tuple[str, ...]] = []
        index = 0  # layers with parameters are numbered 1, 2, ... in order
        for layer in scenario.layers:
            prefixes = LAYERS[type(layer)].parameters
            if prefixes:
                index += 1
            self.layer_parameters.append(tuple(f"{p}{index}" for p in prefixes))

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, list]:
        caches = []
        for layer, names in zip(self.scenario.layers, self.layer_parameters, strict=True):
            x, cache = LAYERS[type(layer)].forward(layer, tuple(self.params[n] for n in names), x)
            caches.append(cache)
        return x, caches

    def loss_and_gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
        outputs, caches = self._forward(np.asarray(x, dtype=np.float64))
        loss, grad = LOSSES[self.scenario.loss](outputs, y)
        grads: dict[str, np.ndarray] = {}
        layers = zip(self.scenario.layers, self.layer_parameters, caches, strict=True)
        for layer, names, cache in reversed(list(layers)):
            params = tuple(self.params[n] for n in names)
            grad, layer_grads = LAYERS[type(layer)].backward(layer, params, cache, grad)
            grads.update(zip(names, layer_grads, strict=True))
        return loss, grads

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One optimizer update; returns the loss before it, as `Trainer.train` does."""
        loss, grads = self.loss_and_gradients(x, y)
        self.t += 1
        update = OPTIMIZERS[self.scenario.optimizer.kind]
        for name, g in grads.items():
            self.params[name] = update(
                self.scenario.optimizer, self.params[name], g, self.state[name], self.t
            )
        return loss

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """The last layer's outputs (sigmoid activations or logits)."""
        return self._forward(np.asarray(x, dtype=np.float64))[0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.outputs(x).argmax(axis=1)


def train_full_batch(
    scenario: Scenario,
    initial_parameters: dict[str, np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    steps: int,
) -> tuple[list[float], dict[str, np.ndarray]]:
    """`steps` updates on all of (x, y): the loss of every step and the final parameters."""
    trainer = ReferenceTrainer(scenario, initial_parameters)
    losses = [trainer.step(x, y) for _ in range(steps)]
    return losses, trainer.params


# --- K-Means -----------------------------------------------------------------------------
#
# Lloyd's algorithm exactly as scikit-learn's `KMeans(algorithm="lloyd").fit` computes it, so
# that its `n_iter_`, labels and centroids are the ones every implementation must reproduce:
#
# - Centred data. The points and the centroids are shifted by the mean of the points, and a
#   point's distance to centroid c is compared as ‖c‖² − 2·x·c (‖x‖² is the same for every
#   centroid). Far from the origin, the uncentred form loses the digits that tell close
#   centroids apart; centred, it does not.
# - Ties. The smallest computed ‖c‖² − 2·x·c wins, the lowest index on an equal value. A
#   point equidistant from two centroids in exact arithmetic (grid data, duplicated points)
#   is thus decided by how this expression rounds, which is what `KMeans.fit` does.
# - Empty clusters. A cluster left without points takes the point farthest from the centroid
#   it was assigned to (the i-th empty cluster, in index order, the i-th farthest point), and
#   that point's contribution leaves its old cluster; its label stays until the next
#   iteration. When every point sits on its centroid there is nothing to move: an empty
#   cluster then takes the centroid of the largest cluster.
# - Stopping. Stop when the labels equal those of the iteration before (strict convergence),
#   or when the summed squared centroid shift is at most `kmeans_shift_tolerance(x, tol)`, or
#   after `max_iter` iterations; in the last two cases the points are labelled once more, by
#   the returned centroids.


def centred_scores(x_centred: np.ndarray, centroids_centred: np.ndarray) -> np.ndarray:
    """‖c‖² − 2·x·c for every point and centroid, on centred data: the squared distance up
    to ‖x‖², which does not change which centroid is nearest."""
    norms = np.einsum("ij,ij->i", centroids_centred, centroids_centred)
    return norms[None, :] - 2 * (x_centred @ centroids_centred.T)


def nearest_centroid(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid of every point, by the rule above (data centred by the
    mean of `x`; the lowest index on an equal score)."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    scores = centred_scores(x - mean, np.asarray(centroids, dtype=np.float64) - mean)
    return scores.argmin(axis=1)


def kmeans(x: np.ndarray, init_centroids: np.ndarray, max_iter: int, tol: float) -> KMeansResult:
    """Lloyd from `init_centroids` by the rules above, in float64, counting iterations as
    scikit-learn's `n_iter_`."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    x_centred = x - mean
    centroids = np.asarray(init_centroids, dtype=np.float64) - mean
    k = len(centroids)
    threshold = kmeans_shift_tolerance(x, tol)
    previous = np.full(len(x), -1)
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        labels = centred_scores(x_centred, centroids).argmin(axis=1)
        counts = np.bincount(labels, minlength=k)
        sums = np.stack([x_centred[labels == j].sum(axis=0) for j in range(k)])
        relocate_empty_clusters(x_centred, centroids, labels, sums, counts)
        new = cluster_means(sums, counts)
        shift = float(((new - centroids) ** 2).sum())
        centroids = new
        if np.array_equal(labels, previous):  # the means did not move: labels match centroids
            return _kmeans_result(x_centred, centroids, labels, n_iter, mean)
        if shift <= threshold:
            break
        previous = labels
    labels = centred_scores(x_centred, centroids).argmin(axis=1)
    return _kmeans_result(x_centred, centroids, labels, n_iter, mean)


def _kmeans_result(x_centred, centroids, labels, n_iter, mean) -> KMeansResult:
    inertia = float(((x_centred - centroids[labels]) ** 2).sum())
    return KMeansResult(centroids + mean, labels, n_iter, inertia)
