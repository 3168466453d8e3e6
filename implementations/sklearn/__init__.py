"""scikit-learn estimators, used as documented."""

from . import kmeans, mlp  # noqa: F401  (importing registers the implementations)
