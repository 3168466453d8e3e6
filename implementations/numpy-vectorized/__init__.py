"""NumPy, vectorised over the mini-batch: every layer works on whole (batch, features) matrices."""

from . import cnn, kmeans, mlp  # noqa: F401  (importing registers the implementations)
