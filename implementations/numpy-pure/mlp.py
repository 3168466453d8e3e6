"""An MLP trained one example at a time, as Nielsen's network.py: NumPy column vectors, a
Python loop over the mini-batch, backpropagation per example, the gradients summed and the
update made with their mean. This is the articles' "unoptimised Python" baseline."""

from __future__ import annotations

import numpy as np

from bench.api import BatchSampler, Trainer, register


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


# activation name -> (function, derivative written in terms of z)
ACTIVATIONS = {
    "sigmoid": (sigmoid, lambda z: sigmoid(z) * (1 - sigmoid(z))),
    "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(z.dtype)),
    None: (lambda z: z, lambda z: np.ones_like(z)),
}


def quadratic_cost(output: np.ndarray, label: int) -> tuple[float, np.ndarray]:
    """0.5 * ||a - y||^2 and its derivative with respect to the output a."""
    diff = output.copy()
    diff[label] -= 1
    return 0.5 * float((diff**2).sum()), diff


def softmax_cross_entropy(logits: np.ndarray, label: int) -> tuple[float, np.ndarray]:
    """-log softmax(z)[label] and its derivative with respect to the logits z."""
    shifted = logits - logits.max()
    log_probs = shifted - np.log(np.exp(shifted).sum())
    gradient = np.exp(log_probs)
    gradient[label] -= 1
    return -float(log_probs[label, 0]), gradient


COSTS = {"quadratic": quadratic_cost, "cross-entropy": softmax_cross_entropy}


class SGD:
    def __init__(self, opt):
        self.lr = opt.lr

    def step(self, params, grads):
        for p, g in zip(params, grads, strict=True):
            p -= self.lr * g


class EMAMomentum:
    """v <- beta*v + (1-beta)*g ; w <- w - lr*v"""

    def __init__(self, opt):
        self.lr, self.beta, self.velocity = opt.lr, opt.momentum, None

    def step(self, params, grads):
        if self.velocity is None:
            self.velocity = [np.zeros_like(p) for p in params]
        for p, g, v in zip(params, grads, self.velocity, strict=True):
            v *= self.beta
            v += (1 - self.beta) * g
            p -= self.lr * v


class Adam:
    """Kingma & Ba, with the standard bias correction."""

    def __init__(self, opt):
        self.opt, self.t, self.moments = opt, 0, None

    def step(self, params, grads):
        o = self.opt
        if self.moments is None:
            self.moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
        self.t += 1
        for p, g, (m, v) in zip(params, grads, self.moments, strict=True):
            m += (1 - o.beta1) * (g - m)
            v += (1 - o.beta2) * (g * g - v)
            m_hat, v_hat = m / (1 - o.beta1**self.t), v / (1 - o.beta2**self.t)
            p -= o.lr * m_hat / (np.sqrt(v_hat) + o.eps)


OPTIMIZERS = {"sgd": SGD, "ema-momentum": EMAMomentum, "adam": Adam}


@register
class NumpyPureMLP(Trainer):
    name = "numpy-pure"
    model = "mlp"
    framework = "numpy"

    def __init__(self, scenario, parameters, seed, device="cpu"):
        super().__init__(scenario, parameters, seed, device)
        self.build_layers(scenario, parameters)
        self.cost = COSTS[scenario.loss]
        self.optimizer = OPTIMIZERS[scenario.optimizer.kind](scenario.optimizer)

    def build_layers(self, scenario, parameters) -> None:
        """`weights` and `biases`: the arrays the training loop accumulates gradients for
        and the optimizer updates; network.py's layout, W (out, in) and b as (out, 1)."""
        count = len(scenario.layers)
        self.weights = [parameters[f"W{i}"].T.copy() for i in range(1, count + 1)]
        self.biases = [parameters[f"b{i}"].reshape(-1, 1).copy() for i in range(1, count + 1)]
        self.activations = [ACTIVATIONS[layer.activation] for layer in scenario.layers]

    def load(self, x_train, y_train):
        self.x, self.y = x_train, y_train
        self.batches = BatchSampler(
            len(x_train), self.scenario.batch_size, self.scenario.sampling, self.seed
        )

    def train(self, steps):
        for _ in range(steps):
            loss = self.update_mini_batch(self.batches.next())
        return loss

    def update_mini_batch(self, batch: np.ndarray) -> float:
        nabla_w = [np.zeros_like(w) for w in self.weights]
        nabla_b = [np.zeros_like(b) for b in self.biases]
        total_loss = 0.0
        for i in batch:
            loss, delta_w, delta_b = self.backprop(self.x[i], self.y[i])
            total_loss += loss
            for nw, dnw in zip(nabla_w, delta_w, strict=True):
                nw += dnw
            for nb, dnb in zip(nabla_b, delta_b, strict=True):
                nb += dnb
        # The update uses the mean gradient (lr/len(batch) times the sum, as network.py).
        grads = [g / len(batch) for g in nabla_w + nabla_b]
        self.optimizer.step(self.weights + self.biases, grads)
        return total_loss / len(batch)

    def backprop(self, x: np.ndarray, label: int):
        """Loss and gradients for one example: forward keeping every z, then back."""
        x = x.reshape(-1, 1)  # one example as a column vector, as network.py
        activation, activations, zs = x, [x], []
        for w, b, (function, _) in zip(self.weights, self.biases, self.activations, strict=True):
            z = w @ activation + b
            zs.append(z)
            activation = function(z)
            activations.append(activation)
        # The cost gives dC/da; for cross-entropy a is the logits (softmax is in the cost).
        loss, delta = self.cost(activation, label)
        nabla_w, nabla_b = [None] * len(self.weights), [None] * len(self.biases)
        for layer in reversed(range(len(self.weights))):
            delta = delta * self.activations[layer][1](zs[layer])
            nabla_b[layer] = delta
            nabla_w[layer] = delta @ activations[layer].T
            if layer > 0:
                delta = self.weights[layer].T @ delta
        return loss, nabla_w, nabla_b

    def feedforward(self, a: np.ndarray) -> np.ndarray:
        a = a.reshape(-1, 1)
        for w, b, (function, _) in zip(self.weights, self.biases, self.activations, strict=True):
            a = function(w @ a + b)
        return a

    def predict(self, x):
        return np.array([int(self.feedforward(example).argmax()) for example in x])

    def parameters(self):
        params = {}
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True), start=1):
            params[f"W{i}"], params[f"b{i}"] = w.T.copy(), b.ravel().copy()
        return params
