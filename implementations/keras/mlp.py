"""An MLP in idiomatic Keras 3 (TensorFlow backend): `Sequential` of `Dense`, `compile`,
`fit`. Every `train(steps)` is one `fit` over a `tf.data` pipeline of exactly `steps`
batches, drawn from the harness's `BatchSampler` so that Keras sees the same data as the
other implementations."""

from __future__ import annotations

import numpy as np

from bench.api import BatchSampler, Trainer, optional_imports, register

# The Keras subclasses sit under the guard too: without Keras the cases are *skipped*.
with optional_imports():
    import keras
    import tensorflow as tf
    from keras import ops

    class QuadraticCost(keras.losses.Loss):
        """Nielsen's cost: 0.5 * ||a - y||^2 summed over classes (the default reduction
        averages it over the batch). Labels arrive as class indices."""

        def call(self, y_true, y_pred):
            one_hot = ops.one_hot(ops.cast(y_true, "int32"), y_pred.shape[-1], dtype=y_pred.dtype)
            return 0.5 * ops.sum(ops.square(y_pred - one_hot), axis=-1)

    class LastBatchLoss(keras.metrics.Metric):
        """Keras logs the loss averaged over the epoch so far (a running mean weighted by
        batch size); the harness wants the loss of the last mini-batch. This metric keeps
        the loss of the latest step's predictions (made before that step's update)."""

        def __init__(self, loss: keras.losses.Loss) -> None:
            super().__init__(name="last_batch_loss", dtype=loss.dtype)
            self.loss = loss
            self.value = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype)

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.value.assign(self.loss(y_true, y_pred))

        def result(self):
            return ops.convert_to_tensor(self.value)


def build_optimizer(opt) -> keras.optimizers.Optimizer:
    if opt.kind == "sgd":
        return keras.optimizers.SGD(learning_rate=opt.lr)
    if opt.kind == "ema-momentum":
        # Keras keeps m <- beta*m - lr*g and adds m: the EMA rule with lr*(1-beta), as torch.
        return keras.optimizers.SGD(
            learning_rate=opt.lr * (1 - opt.momentum), momentum=opt.momentum
        )
    if opt.kind == "adam":
        return keras.optimizers.Adam(
            learning_rate=opt.lr, beta_1=opt.beta1, beta_2=opt.beta2, epsilon=opt.eps
        )
    raise ValueError(f"unknown optimizer {opt.kind!r}")


ADAM_EPSILON = (
    "Keras's Adam adds epsilon to sqrt(v) before the bias correction (Kingma & Ba's "
    "'efficient' form): the same as epsilon*sqrt(1-beta2^t) in the standard one."
)


@register
class KerasMLP(Trainer):
    name = "keras"
    model = "mlp"
    framework = "keras"
    requires = ("keras", "tensorflow")
    # A GPU needs TensorFlow's CUDA build (tensorflow[and-cuda]); the harness shows
    # TensorFlow only the case's device, so a CPU case stays on the CPU.
    devices = ("cpu", "cuda")

    @classmethod
    def deviations_for(cls, scenario):
        adam = scenario.optimizer is not None and scenario.optimizer.kind == "adam"
        return super().deviations_for(scenario) + ((ADAM_EPSILON,) if adam else ())

    def __init__(self, scenario, parameters, seed, device="cpu"):
        super().__init__(scenario, parameters, seed, device)
        # The dtype is set per layer (not with the global keras.config.set_floatx), so that
        # nielsen-mlp trains in float64 without changing other models in the process.
        dtype = scenario.dtype
        self.net = keras.Sequential(
            [keras.Input(shape=scenario.input_shape, dtype=dtype)]
            + [
                keras.layers.Dense(layer.units_out, activation=layer.activation, dtype=dtype)
                for layer in scenario.layers
            ]
        )
        for i, dense in enumerate(self.net.layers, start=1):
            dense.set_weights([parameters[f"W{i}"], parameters[f"b{i}"]])  # kernel is (in, out)
        if scenario.loss == "cross-entropy":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=dtype)
        else:
            loss = QuadraticCost(dtype=dtype)
        self.net.compile(
            optimizer=build_optimizer(scenario.optimizer),
            loss=loss,
            metrics=[LastBatchLoss(loss)],
        )

    def load(self, x_train, y_train):
        self.x, self.y = tf.constant(x_train), tf.constant(y_train)
        self.batches = BatchSampler(
            len(x_train), self.scenario.batch_size, self.scenario.sampling, self.seed
        )

    def dataset(self, steps: int) -> tf.data.Dataset:
        """The next `steps` batches. The indices are drawn here, not lazily, so that Keras
        peeking at the data cannot advance the sampler. Batches are ragged rows, so the
        short last batch of an epoch has the same (None, ...) signature: no retracing."""
        indices = [self.batches.next() for _ in range(steps)]
        rows = tf.RaggedTensor.from_row_lengths(np.concatenate(indices), [len(i) for i in indices])
        return tf.data.Dataset.from_tensor_slices(rows).map(
            lambda batch: (tf.gather(self.x, batch), tf.gather(self.y, batch))
        )

    def train(self, steps):
        history = self.net.fit(
            self.dataset(steps), steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0
        )
        return float(history.history["last_batch_loss"][-1])

    def predict(self, x):
        # Keras's advice for inputs that fit in one batch: call the model. `predict` builds
        # (and traces) a function for each new model, about half a second every round.
        return np.asarray(self.net(x, training=False)).argmax(axis=1)

    def parameters(self):
        params = {}
        for i, dense in enumerate(self.net.layers, start=1):
            params[f"W{i}"], params[f"b{i}"] = (np.array(w) for w in dense.get_weights())
        return params
