"""A NumPy MLP for the conformance gate's tests: `correct` follows the contract; `halfway`
has the same math but does only half the updates it is asked for (and so looks twice as fast).
Both support ReLU hidden layers, softmax cross-entropy and plain SGD (dlfs-mlp)."""

import numpy as np

from bench.api import BatchSampler, Trainer, register


@register
class Correct(Trainer):
    name, model, framework = "correct", "mlp", "numpy"

    @classmethod
    def why_unsupported(cls, scenario):
        if scenario.loss != "cross-entropy" or scenario.optimizer.kind != "sgd":
            return "only softmax cross-entropy with plain SGD"
        return None

    def load(self, x_train, y_train):
        self.x, self.y = x_train, y_train
        self.params = {name: value.copy() for name, value in self.initial_parameters.items()}
        self.sampler = BatchSampler(
            len(x_train), self.scenario.batch_size, self.scenario.sampling, self.seed
        )

    def updates(self, steps):
        return steps

    def train(self, steps):
        loss = np.nan
        for _ in range(self.updates(steps)):
            batch = self.sampler.next()
            loss = self.step(self.x[batch], self.y[batch])
        return loss

    def step(self, x, y):
        activations = [x]
        for index in range(1, len(self.scenario.layers) + 1):
            z = activations[-1] @ self.params[f"W{index}"] + self.params[f"b{index}"]
            last = index == len(self.scenario.layers)
            activations.append(z if last else np.maximum(z, 0))
        logits = activations[-1]
        shifted = logits - logits.max(axis=1, keepdims=True)
        probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        loss = -np.log(probabilities[np.arange(len(y)), y]).mean()
        grad = probabilities
        grad[np.arange(len(y)), y] -= 1
        grad /= len(y)
        lr = self.scenario.optimizer.lr
        for index in range(len(self.scenario.layers), 0, -1):
            below = activations[index - 1]
            weight = self.params[f"W{index}"]
            self.params[f"W{index}"] = weight - lr * (below.T @ grad)
            self.params[f"b{index}"] = self.params[f"b{index}"] - lr * grad.sum(axis=0)
            grad = (grad @ weight.T) * (below > 0)
        return float(loss)

    def predict(self, x):
        for index in range(1, len(self.scenario.layers) + 1):
            z = x @ self.params[f"W{index}"] + self.params[f"b{index}"]
            x = z if index == len(self.scenario.layers) else np.maximum(z, 0)
        return x.argmax(axis=1)

    def parameters(self):
        return self.params


@register
class Halfway(Correct):
    name = "halfway"

    def updates(self, steps):
        return steps // 2
