"""A convolutional network in vectorised NumPy, after Deep Learning from Scratch (ch.7):
`im2col` unrolls every receptive field of the whole mini-batch into one column of a matrix,
so that a convolution is a single matrix product; `col2im` adds the gradients of overlapping
fields back into image shape. Max pooling takes elementwise maxima of strided views. The
dense layers, the loss, the optimizers and the training loop are the MLP's (`mlp.py`)."""

from __future__ import annotations

import numpy as np

from bench.api import Conv2d, Dense, Flatten, MaxPool2d, register

from .mlp import ACTIVATIONS, Affine, NumpyVectorizedMLP

# Images travel through the network batch-last, (c, h, w, n): every window of every image
# is then a run of `ow * n` contiguous numbers, so im2col and col2im copy long runs instead
# of rows of a few pixels (about four times faster for a mini-batch of 512 than (n, c, h, w)).


def window_views(image: np.ndarray, size: int, stride: int) -> list[np.ndarray]:
    """For each offset (p, q) of a size x size window, in (kh, kw) order, the view of
    `image` (c, h, w, n) that the offset reads at every output position: (c, oh, ow, n)."""
    _, h, w, _ = image.shape
    oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
    return [
        image[:, p : p + stride * oh : stride, q : q + stride * ow : stride]
        for p in range(size)
        for q in range(size)
    ]


def im2col(x: np.ndarray, size: int, stride: int, pad: int) -> tuple[np.ndarray, int, int]:
    """(c, h, w, n) -> columns (c * size * size, oh * ow * n): one row per kernel entry, in
    (c, kh, kw) order as a canonical kernel's last three axes, one column per output position
    of every image. (Deep Learning from Scratch builds the transpose, one row per position.)"""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0))) if pad else x
    views = window_views(x, size, stride)
    c, oh, ow, n = views[0].shape
    return np.stack(views, axis=1).reshape(c * size * size, oh * ow * n), oh, ow


def col2im(col: np.ndarray, shape: tuple, size: int, stride: int, pad: int) -> np.ndarray:
    """The inverse of `im2col` for gradients: every column's entries are added back to the
    pixels they were copied from (overlapping fields sum)."""
    c, h, w, n = shape
    image = np.zeros((c, h + 2 * pad, w + 2 * pad, n), dtype=col.dtype)
    views = window_views(image, size, stride)
    fields = col.reshape(c, size * size, *views[0].shape[1:])
    for offset, view in enumerate(views):
        view += fields[:, offset]
    return image[:, pad : pad + h, pad : pad + w]


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
        out = self.W.reshape(out_c, -1) @ self.col + self.b[:, None]
        return out.reshape(out_c, oh, ow, x.shape[-1])

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        out_c, _, k, _ = self.W.shape
        dout = dout.reshape(out_c, -1)
        self.db = dout.sum(axis=1)
        # One product over every position of every image; in this operand order OpenBLAS
        # runs it about 1.5x faster than `dout @ col.T` for these long, thin matrices.
        self.dW = (self.col @ dout.T).T.reshape(self.W.shape)
        if not self.input_gradient:
            return None
        dcol = self.W.reshape(out_c, -1).T @ dout
        return col2im(dcol, self.x_shape, k, self.stride, self.pad)


class Pooling:
    """Max pooling over the `size * size` strided views of the input, one per window pixel:
    elementwise maxima of whole views instead of a reduction over small windows (ten times
    faster in NumPy). The gradient goes to the first pixel holding the maximum, as `argmax`."""

    def __init__(self, size: int, stride: int) -> None:
        self.size, self.stride = size, stride

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        first, *others = window_views(x, self.size, self.stride)
        self.out = first.copy()
        for pixel in others:
            np.maximum(self.out, pixel, out=self.out)
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = np.zeros(self.x.shape, dtype=dout.dtype)
        overlapping = self.stride < self.size
        taken = None
        pixels = zip(
            window_views(self.x, self.size, self.stride),
            window_views(dx, self.size, self.stride),
            strict=True,
        )
        for pixel, gradient in pixels:
            winner = pixel == self.out
            if taken is None:
                taken = winner.copy()
            else:
                winner &= ~taken  # an earlier pixel with the same maximum already won
                taken |= winner
            if overlapping:
                gradient += dout * winner  # a pixel of several windows gets every gradient
            else:
                np.multiply(dout, winner, out=gradient)  # each pixel is in one window at most
        return dx


class BatchLast:
    """(n, c, h, w) images -> (c, h, w, n), the layout of the convolution layers."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x.transpose(1, 2, 3, 0))

    def backward(self, dout: np.ndarray) -> None:
        return None  # the images need no gradient


class Flattening:
    """(c, h, w, n) -> (n, c*h*w) in (c, h, w) order, the canonical feature order."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x_shape = x.shape
        return x.reshape(-1, x.shape[-1]).T

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.T.reshape(self.x_shape)


PREDICT_CHUNK = 1000


@register
class NumpyVectorizedCNN(NumpyVectorizedMLP):
    """The MLP's training loop, with convolution, pooling and flattening layers."""

    name = "numpy-vectorized"
    model = "cnn"
    framework = "numpy"

    def build_layers(self, scenario, parameters) -> list:
        layers: list = [BatchLast()]
        weighted = 0
        for spec in scenario.layers:
            if isinstance(spec, Conv2d | Dense):
                weighted += 1
                W, b = parameters[f"W{weighted}"].copy(), parameters[f"b{weighted}"].copy()
                if isinstance(spec, Conv2d):
                    first = (
                        len(layers) == 1
                    )  # nothing below the first layer needs its input gradient
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

    def predict(self, x):
        # The columns of 10 000 test images would take 0.6 GB: a thousand images at a time.
        labels = [
            self.forward(x[i : i + PREDICT_CHUNK]).argmax(axis=1)
            for i in range(0, len(x), PREDICT_CHUNK)
        ]
        return np.concatenate(labels) if labels else np.empty(0, dtype=np.intp)
