"""Keras 3 on TensorFlow, used as documented: Sequential, compile, fit."""

from . import cnn, mlp  # noqa: F401  (importing registers the implementations)
