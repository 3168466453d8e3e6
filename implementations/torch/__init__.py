from . import cnn, kmeans, mlp  # noqa: F401
