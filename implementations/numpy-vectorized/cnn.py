"""A convolutional network in vectorised NumPy, as Deep Learning from Scratch (ch.7): `im2col`
unrolls every receptive field of the whole mini-batch into one row of a matrix, so that a
convolution is a single matrix product and pooling a single `max` over rows; `col2im` adds
the gradients of overlapping rows back into image shape. The dense layers, the loss and the
optimizers are the MLP's (`mlp.py`)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from bench.api import Conv2d, Dense, Flatten, MaxPool2d, register

from .mlp import ACTIVATIONS, Affine, NumpyVectorizedMLP


def im2col(x: np.ndarray, size: int, stride: int, pad: int) -> tuple[np.ndarray, int, int]:
    """(n, c, h, w) -> rows (n * oh * ow, c * size * size), one per output position, each the
    receptive field in (c, kh, kw) order: the order of a canonical kernel's last three axes."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x
    windows = sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]
    n, _, oh, ow = windows.shape[:4]
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, -1), oh, ow


def col2im(col: np.ndarray, shape: tuple, size: int, stride: int, pad: int) -> np.ndarray:
    """The inverse of `im2col` for gradients: every row's entries are added back to the
    pixels they were copied from (overlapping fields sum)."""
    n, c, h, w = shape
    oh, ow = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
    fields = col.reshape(n, oh, ow, c, size, size).transpose(0, 3, 4, 5, 1, 2)
    image = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=col.dtype)
    for p in range(size):
        for q in range(size):
            image[:, :, p : p + stride * oh : stride, q : q + stride * ow : stride] += fields[
                :, :, p, q
            ]
    return image[:, :, pad : pad + h, pad : pad + w]


class Convolution:
    def __init__(
        self, W: np.ndarray, b: np.ndarray, stride: int, pad: int, input_gradient: bool = True
    ) -> None:
        self.W, self.b, self.stride, self.pad = W, b, stride, pad
        # The first layer's input is the images: its gradient (a col2im) would be thrown away.
        self.input_gradient = input_gradient

    def forward(self, x: np.ndarray) -> np.ndarray:
        out_c, _, k, _ = self.W.shape
        self.x_shape = x.shape
        self.col, oh, ow = im2col(x, k, self.stride, self.pad)
        self.col_W = self.W.reshape(out_c, -1).T
        out = self.col @ self.col_W + self.b
        return out.reshape(len(x), oh, ow, out_c).transpose(0, 3, 1, 2)

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        out_c, _, k, _ = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, out_c)
        self.db = dout.sum(axis=0)
        self.dW = (self.col.T @ dout).T.reshape(self.W.shape)
        if not self.input_gradient:
            return None
        dcol = dout @ self.col_W.T
        return col2im(dcol, self.x_shape, k, self.stride, self.pad)


class Pooling:
    def __init__(self, size: int, stride: int) -> None:
        self.size, self.stride = size, stride

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, c = x.shape[:2]
        self.x_shape = x.shape
        # im2col per channel: one row per (example, position, channel), one column per pixel.
        col, oh, ow = im2col(x.reshape(n * c, 1, *x.shape[2:]), self.size, self.stride, 0)
        self.arg_max = col.argmax(axis=1)
        return np.take_along_axis(col, self.arg_max[:, None], axis=1).reshape(n, c, oh, ow)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        n, c, h, w = self.x_shape
        dcol = np.zeros((dout.size, self.size * self.size), dtype=dout.dtype)
        dcol[np.arange(dout.size), self.arg_max] = dout.ravel()
        return col2im(dcol, (n * c, 1, h, w), self.size, self.stride, 0).reshape(self.x_shape)


class Flattening:
    """(n, c, h, w) -> (n, c*h*w) in (c, h, w) order, the canonical feature order."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x_shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.reshape(self.x_shape)


@register
class NumpyVectorizedCNN(NumpyVectorizedMLP):
    """The MLP's training loop, with convolution, pooling and flattening layers."""

    name = "numpy-vectorized"
    model = "cnn"
    framework = "numpy"

    def build_layers(self, scenario, parameters) -> list:
        layers: list = []
        weighted = 0
        for spec in scenario.layers:
            if isinstance(spec, Conv2d | Dense):
                weighted += 1
                W, b = parameters[f"W{weighted}"].copy(), parameters[f"b{weighted}"].copy()
                if isinstance(spec, Conv2d):
                    first = not layers  # nothing below the first layer needs its input gradient
                    layers.append(
                        Convolution(W, b, spec.stride, spec.padding, input_gradient=not first)
                    )
                else:
                    layers.append(Affine(W, b))
                if spec.activation:
                    layers.append(ACTIVATIONS[spec.activation]())
            elif isinstance(spec, MaxPool2d):
                layers.append(Pooling(spec.size, spec.stride))
            elif isinstance(spec, Flatten):
                layers.append(Flattening())
        return layers
