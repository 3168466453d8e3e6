"""A convolutional network trained one example at a time, in the style of `mlp.py`: a Python
loop over the mini-batch, and inside each example a direct convolution, a Python loop over
every output position (each a dot product of one receptive field with every kernel) and a
max-pooling loop over every channel and window. This is the articles' point made concrete:
convolution done naively costs millions of tiny operations per batch."""

from __future__ import annotations

import numpy as np

from bench.api import Conv2d, Dense, MaxPool2d, register

from .mlp import ACTIVATIONS, NumpyPureMLP


class Conv:
    """Kernel (out_c, in_c, k, k) kept flat as (out_c, in_c*k*k): one row per output channel."""

    def __init__(self, spec: Conv2d, W: np.ndarray, b: np.ndarray) -> None:
        self.spec, self.shape = spec, W.shape
        self.W, self.b = W.reshape(len(W), -1).copy(), b.copy()
        self.activation = ACTIVATIONS[spec.activation]

    def fields(self, x: np.ndarray):
        """Every output position (i, j) with its receptive field (in_c, k, k) of padded x."""
        k, s, pad = self.spec.kernel, self.spec.stride, self.spec.padding
        _, oh, ow = self.spec.out_shape(x.shape)
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad))) if pad else x
        for i in range(oh):
            for j in range(ow):
                yield i, j, x[:, i * s : i * s + k, j * s : j * s + k]

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, tuple]:
        z = np.empty(self.spec.out_shape(x.shape), dtype=x.dtype)
        for i, j, field in self.fields(x):
            z[:, i, j] = self.W @ field.ravel() + self.b
        return self.activation[0](z), (x, z)

    def backward(self, cache: tuple, delta: np.ndarray):
        """Gradients of the kernel and bias for one example, and of the layer's input."""
        x, z = cache
        k, s, pad = self.spec.kernel, self.spec.stride, self.spec.padding
        dz = delta * self.activation[1](z)
        dW = np.zeros_like(self.W)
        dx = np.zeros((x.shape[0], x.shape[1] + 2 * pad, x.shape[2] + 2 * pad), dtype=x.dtype)
        for i, j, field in self.fields(x):
            dW += np.outer(dz[:, i, j], field.ravel())
            dx[:, i * s : i * s + k, j * s : j * s + k] += (dz[:, i, j] @ self.W).reshape(
                field.shape
            )
        dx = dx[:, pad : dx.shape[1] - pad, pad : dx.shape[2] - pad]
        return dx, dW, dz.sum(axis=(1, 2))


class MaxPool:
    def __init__(self, spec: MaxPool2d) -> None:
        self.spec = spec

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, tuple]:
        size, s = self.spec.size, self.spec.stride
        out = np.empty(self.spec.out_shape(x.shape), dtype=x.dtype)
        winners = {}
        for c, i, j in np.ndindex(out.shape):
            window = x[c, i * s : i * s + size, j * s : j * s + size]
            p, q = divmod(int(window.argmax()), size)  # the first largest value
            winners[c, i, j] = (c, i * s + p, j * s + q)
            out[c, i, j] = window[p, q]
        return out, (x.shape, winners)

    def backward(self, cache: tuple, delta: np.ndarray) -> np.ndarray:
        shape, winners = cache
        dx = np.zeros(shape, dtype=delta.dtype)
        for position, winner in winners.items():
            dx[winner] += delta[position]
        return dx


class Linear:
    """As network.py: W (out, in), b and activations as column vectors."""

    def __init__(self, spec: Dense, W: np.ndarray, b: np.ndarray) -> None:
        self.W, self.b = W.T.copy(), b.reshape(-1, 1).copy()
        self.activation = ACTIVATIONS[spec.activation]

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, tuple]:
        x = x.reshape(-1, 1)  # flattening in (c, h, w) order, the canonical one
        z = self.W @ x + self.b
        return self.activation[0](z), (x, z)

    def backward(self, cache: tuple, delta: np.ndarray):
        x, z = cache
        dz = delta * self.activation[1](z)
        return self.W.T @ dz, dz @ x.T, dz


@register
class NumpyPureCNN(NumpyPureMLP):
    """The MLP's training loop (`mlp.py`: a mini-batch is a Python loop over its examples),
    with layer objects whose backward passes `backprop` chains."""

    model = "cnn"

    def build_layers(self, scenario, parameters) -> None:
        self.layers: list = []
        self.weighted: list = []  # Conv and Linear, numbered 1, 2, ... as the parameters
        for spec in scenario.layers:
            if isinstance(spec, Conv2d | Dense):
                i = len(self.weighted) + 1
                kind = Conv if isinstance(spec, Conv2d) else Linear
                self.weighted.append(kind(spec, parameters[f"W{i}"], parameters[f"b{i}"]))
                self.layers.append(self.weighted[-1])
            elif isinstance(spec, MaxPool2d):
                self.layers.append(MaxPool(spec))
            # Flatten needs no layer: Linear reads its input as one column.
        self.weights = [layer.W for layer in self.weighted]  # the layers' own arrays
        self.biases = [layer.b for layer in self.weighted]

    def backprop(self, x: np.ndarray, label: int):
        """Loss and gradients for one example (c, h, w): forward keeping every cache, then back."""
        caches = []
        for layer in self.layers:
            x, cache = layer.forward(x)
            caches.append((cache, x.shape))
        loss, delta = self.cost(x, label)
        nabla_w, nabla_b = [], []
        for layer, (cache, out_shape) in zip(reversed(self.layers), reversed(caches), strict=True):
            delta = delta.reshape(out_shape)  # back through the flattening before a Linear
            if isinstance(layer, MaxPool):
                delta = layer.backward(cache, delta)
                continue
            delta, dW, db = layer.backward(cache, delta)
            nabla_w.insert(0, dW)
            nabla_b.insert(0, db)
        return loss, nabla_w, nabla_b

    def feedforward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x, _ = layer.forward(x)
        return x

    def parameters(self):
        params = {}
        for i, layer in enumerate(self.weighted, start=1):
            W = layer.W.reshape(layer.shape) if isinstance(layer, Conv) else layer.W.T
            params[f"W{i}"], params[f"b{i}"] = W.copy(), layer.b.ravel().copy()
        return params
