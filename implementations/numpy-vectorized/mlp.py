"""A multi-layer perceptron in vectorised NumPy, layer by layer as in Deep Learning from
Scratch (ch.5): each layer keeps what its backward pass needs, `backward` returns the
gradient for the layer below. The optimizers are written out below the layers."""

from __future__ import annotations

import numpy as np

from bench.api import BatchSampler, Trainer, register


class Affine:
    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        self.W, self.b = W, b

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.dW = self.x.T @ dout
        self.db = dout.sum(axis=0)
        return dout @ self.W.T


class Relu:
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.positive = x > 0
        return np.maximum(x, 0)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self.positive


class Sigmoid:
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = 1 / (1 + np.exp(-x))
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self.out * (1 - self.out)


ACTIVATIONS = {"relu": Relu, "sigmoid": Sigmoid}


def one_hot(labels: np.ndarray, classes: int, dtype: np.dtype) -> np.ndarray:
    encoded = np.zeros((len(labels), classes), dtype=dtype)
    encoded[np.arange(len(labels)), labels] = 1
    return encoded


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits); log-softmax computed stably."""

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self.probs, self.labels = np.exp(log_probs), labels
        return float(-log_probs[np.arange(len(labels)), labels].mean())

    def backward(self) -> np.ndarray:
        target = one_hot(self.labels, self.probs.shape[1], self.probs.dtype)
        return (self.probs - target) / len(self.labels)


class QuadraticCost:
    """Nielsen's cost: mean over the batch of 0.5 * ||a - y||^2 on the sigmoid outputs."""

    def forward(self, outputs: np.ndarray, labels: np.ndarray) -> float:
        self.diff = outputs - one_hot(labels, outputs.shape[1], outputs.dtype)
        return float(0.5 * (self.diff**2).sum(axis=1).mean())

    def backward(self) -> np.ndarray:
        return self.diff / len(self.diff)


LOSSES = {"cross-entropy": SoftmaxCrossEntropy, "quadratic": QuadraticCost}


class SGD:
    def __init__(self, lr: float, **_: float) -> None:
        self.lr = lr

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        for p, g in zip(params, grads, strict=True):
            p -= self.lr * g


class EMAMomentum:
    """v <- beta*v + (1-beta)*g ; w <- w - lr*v (the tch articles' momentum)."""

    def __init__(self, lr: float, momentum: float, **_: float) -> None:
        self.lr, self.beta, self.velocity = lr, momentum, None

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        if self.velocity is None:
            self.velocity = [np.zeros_like(p) for p in params]
        for p, g, v in zip(params, grads, self.velocity, strict=True):
            v *= self.beta
            v += (1 - self.beta) * g
            p -= self.lr * v


class Adam:
    """Kingma & Ba, with the standard bias correction."""

    def __init__(self, lr: float, beta1: float, beta2: float, eps: float, **_: float) -> None:
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.t, self.m, self.v = 0, None, None

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.t += 1
        correction1, correction2 = 1 - self.beta1**self.t, 1 - self.beta2**self.t
        for p, g, m, v in zip(params, grads, self.m, self.v, strict=True):
            m += (1 - self.beta1) * (g - m)
            v += (1 - self.beta2) * (g * g - v)
            p -= self.lr * (m / correction1) / (np.sqrt(v / correction2) + self.eps)


OPTIMIZERS = {"sgd": SGD, "ema-momentum": EMAMomentum, "adam": Adam}


@register
class NumpyVectorizedMLP(Trainer):
    name = "numpy-vectorized"
    model = "mlp"
    framework = "numpy"

    def __init__(self, scenario, parameters, seed, device="cpu"):
        super().__init__(scenario, parameters, seed, device)
        self.layers = self.build_layers(scenario, parameters)
        # The layers with parameters, in order: W1/b1, W2/b2, ...
        self.weighted = [layer for layer in self.layers if hasattr(layer, "W")]
        self.loss = LOSSES[scenario.loss]()
        opt = scenario.optimizer
        self.optimizer = OPTIMIZERS[opt.kind](
            lr=opt.lr, momentum=opt.momentum, beta1=opt.beta1, beta2=opt.beta2, eps=opt.eps
        )

    def build_layers(self, scenario, parameters) -> list:
        layers: list = []
        for index, spec in enumerate(scenario.layers, start=1):
            layers.append(Affine(parameters[f"W{index}"].copy(), parameters[f"b{index}"].copy()))
            if spec.activation:
                layers.append(ACTIVATIONS[spec.activation]())
        return layers

    def load(self, x_train, y_train):
        self.x, self.y = x_train, y_train
        self.batches = BatchSampler(
            len(x_train), self.scenario.batch_size, self.scenario.sampling, self.seed
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def train(self, steps):
        for _ in range(steps):
            batch = self.batches.next()
            loss = self.loss.forward(self.forward(self.x[batch]), self.y[batch])
            grad = self.loss.backward()
            for layer in reversed(self.layers):
                grad = layer.backward(grad)
            params = [p for layer in self.weighted for p in (layer.W, layer.b)]
            grads = [g for layer in self.weighted for g in (layer.dW, layer.db)]
            self.optimizer.update(params, grads)
        return loss

    def predict(self, x):
        return self.forward(x).argmax(axis=1)

    def parameters(self):
        return {
            name: value
            for index, layer in enumerate(self.weighted, start=1)
            for name, value in ((f"W{index}", layer.W.copy()), (f"b{index}", layer.b.copy()))
        }
