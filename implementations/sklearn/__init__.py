"""scikit-learn estimators, used as documented."""

from . import kmeans  # noqa: F401  (importing registers the implementation)
