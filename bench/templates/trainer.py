"""template-name: a template_model trainer for the `bench` harness.

Written by `bench new`. The harness owns the loop (data, rounds, timing, evaluation); this
file owns the math. Fill in the two methods marked FILL IN, then run `bench check
template-name`: it trains on a few digits and compares the loss and the weights with the
float64 reference in bench/reference.py, and checks the rest of the plugin contract.
"""

from __future__ import annotations

import numpy as np

from bench.api import BatchSampler, Trainer, register

# A framework other than NumPy is imported inside `bench.api.optional_imports()`, and named
# in `requires`, so that a machine without it shows this implementation as *skipped*:
#
#     with optional_imports():
#         import torch


@register
class TemplateClass(Trainer):
    name = "template-name"  # what `bench run -i` and the summary call it
    model = "template_model"  # "mlp" or "cnn": which scenarios it runs
    framework = "numpy"
    requires = ()  # import names needed beyond the harness's own, e.g. ("torch",)
    # Where your framework departs from a scenario in a way worth knowing, declare
    # `deviations = {"scenario-name": "free text"}` ("*" for every scenario): the report
    # shows it next to your numbers.

    @classmethod
    def why_unsupported(cls, scenario):
        """A reason when this implementation cannot express `scenario` exactly (say, no
        quadratic loss, or no padding): its cases are then shown as *not supported*, never
        approximated."""
        return None

    def load(self, x_train, y_train):
        """Untimed. x_train in scenario.dtype, already scaled: (n, 784) for an MLP, images
        (n, channels, height, width) for a CNN; y_train: (n,) int64."""
        # Copies: the harness's arrays must stay as they are (`bench check` verifies it).
        self.params = {name: value.copy() for name, value in self.initial_parameters.items()}
        self.x, self.y = x_train, y_train
        # The scenario's mini-batch order (shuffled epochs, with replacement, or the full
        # batch), seeded by the round's seed; it keeps its epoch state between train() calls.
        self.batches = BatchSampler(
            len(x_train), self.scenario.batch_size, self.scenario.sampling, self.seed
        )
        self.optimizer_state: dict[str, dict] = {name: {} for name in self.params}
        self.updates = 0  # Adam's bias correction needs the update count

    def train(self, steps):
        """Timed: exactly `steps` optimizer updates; returns the last mini-batch's loss."""
        loss = float("nan")
        for _ in range(steps):
            batch = self.batches.next()
            loss = self.step(self.x[batch], self.y[batch])
        return loss

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One update on the mini-batch (x, y); returns its loss, computed before the update.

        Everything comes from self.scenario:
        - forward, layer by layer through scenario.layers; the layers with weights are
          numbered 1, 2, ... in order, and each is followed by its `activation` ("sigmoid",
          "relu", or None, e.g. for the logits):
          - Dense: z = a @ W{i} + b{i}, with W{i} (units_in, units_out);
          - Conv2d: W{i} (out_channels, in_channels, kernel, kernel), b{i} (out_channels,);
            z[n, o, i, j] = b[o] + Σ over c, p, q of W[o, c, p, q] · a_padded[n, c,
            i·stride + p, j·stride + q], `padding` zeros on each side;
          - MaxPool2d: the largest value of each size × size window, windows `stride`
            apart; its gradient goes to that value (the first one on a tie);
          - Flatten: (n, c, h, w) → (n, c·h·w) in (c, h, w) order;
        - loss (scenario.loss), a mean over the batch: "quadratic" is 0.5·||a − onehot(y)||²
          on the sigmoid outputs a, "cross-entropy" is −log softmax(logits)[y];
        - backward: the gradient g of that mean loss for every parameter;
        - update (scenario.optimizer, lr = optimizer.lr): "sgd": w −= lr·g; "ema-momentum":
          v = β·v + (1 − β)·g, w −= lr·v with β = optimizer.momentum; "adam": Adam with
          the standard bias correction (optimizer.beta1, beta2, eps).
        Work in the dtype of the parameters (scenario.dtype).
        """
        raise NotImplementedError(
            "FILL IN TemplateClass.step: forward pass, loss, backward pass and optimizer "
            "update (its docstring says what; bench/reference.py shows the math)"
        )

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Integer labels of shape (len(x),): the argmax of the network's outputs."""
        raise NotImplementedError("FILL IN TemplateClass.predict: the forward pass, then argmax")

    def parameters(self):
        """Current weights in the canonical layouts above, in scenario.dtype."""
        return {name: value.copy() for name, value in self.params.items()}
