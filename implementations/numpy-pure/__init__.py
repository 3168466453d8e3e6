from . import kmeans, mlp  # noqa: F401
