"""A convolutional network in idiomatic Keras 3: `Sequential` of `Conv2D`, `MaxPooling2D`,
`Flatten` and `Dense`, `compile`, `fit`, with the training loop of `mlp.py`.

Keras works channels-last, so three layouts differ from the canonical ones: images are
(h, w, c) (transposed in `load` and `predict`, untimed), kernels are (kh, kw, in_c, out_c),
and `Flatten` after channels-last pooling orders features (h, w, c), so the rows of the first
`Dense` after it are permuted from the canonical (c, h, w) order on the way in and back in
`parameters()`."""

from __future__ import annotations

import numpy as np

from bench.api import Conv2d, Dense, Flatten, MaxPool2d, Trainer, optional_imports, register

from .mlp import KerasMLP, LastBatchLoss, build_optimizer

with optional_imports():
    import keras


def channels_last(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


@register
class KerasCNN(KerasMLP):
    model = "cnn"

    def __init__(self, scenario, parameters, seed, device="cpu"):
        Trainer.__init__(self, scenario, parameters, seed, device)  # not the MLP's layers
        dtype = scenario.dtype
        c, h, w = scenario.input_shape
        layers = [keras.Input(shape=(h, w, c), dtype=dtype)]
        # For each weighted layer: its Keras layer, and how canonical weights become Keras's.
        self.weighted: list[tuple[keras.layers.Layer, np.ndarray | None]] = []
        shape, rows = scenario.input_shape, None
        for spec in scenario.layers:
            if isinstance(spec, Conv2d):
                if spec.padding:  # zeros on every side, as torch ("same" is only for stride 1)
                    layers.append(keras.layers.ZeroPadding2D(spec.padding, dtype=dtype))
                layer = keras.layers.Conv2D(
                    spec.out_channels,
                    spec.kernel,
                    strides=spec.stride,
                    activation=spec.activation,
                    dtype=dtype,
                )
                self.weighted.append((layer, None))
            elif isinstance(spec, Dense):
                layer = keras.layers.Dense(spec.units_out, activation=spec.activation, dtype=dtype)
                self.weighted.append((layer, rows))
                rows = None
            elif isinstance(spec, MaxPool2d):
                layer = keras.layers.MaxPooling2D(spec.size, spec.stride, dtype=dtype)
            elif isinstance(spec, Flatten):
                layer = keras.layers.Flatten(dtype=dtype)
                # Keras's feature f is the canonical feature rows[f]: (h, w, c) vs (c, h, w).
                rows = np.arange(np.prod(shape)).reshape(shape).transpose(1, 2, 0).ravel()
            layers.append(layer)
            shape = spec.out_shape(shape)
        self.net = keras.Sequential(layers)
        for i, (layer, rows) in enumerate(self.weighted, start=1):
            W = parameters[f"W{i}"]
            if W.ndim == 4:
                W = W.transpose(2, 3, 1, 0)  # (out_c, in_c, kh, kw) -> (kh, kw, in_c, out_c)
            elif rows is not None:
                W = W[rows]
            layer.set_weights([W, parameters[f"b{i}"]])
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=dtype)
        self.net.compile(
            optimizer=build_optimizer(scenario.optimizer), loss=loss, metrics=[LastBatchLoss(loss)]
        )

    def load(self, x_train, y_train):
        super().load(channels_last(x_train), y_train)

    def predict(self, x):
        return super().predict(channels_last(x))

    def parameters(self):
        params = {}
        for i, (layer, rows) in enumerate(self.weighted, start=1):
            W, b = (np.array(w) for w in layer.get_weights())
            if W.ndim == 4:
                W = W.transpose(3, 2, 0, 1)
            elif rows is not None:
                W = W[np.argsort(rows)]
            params[f"W{i}"], params[f"b{i}"] = np.ascontiguousarray(W), b
        return params
