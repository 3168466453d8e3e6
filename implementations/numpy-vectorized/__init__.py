"""NumPy, vectorised over the mini-batch: every layer works on whole (batch, features) matrices."""

from . import kmeans, mlp  # noqa: F401  (importing registers the implementations)
