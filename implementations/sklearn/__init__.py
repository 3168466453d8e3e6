"""scikit-learn estimators, used as documented."""

from . import cnn, kmeans, mlp  # noqa: F401  (importing registers the implementations)
