"""Do-nothing implementations: what the harness itself costs per round (`make bench-overhead`)."""

import numpy as np

from bench.api import Clusterer, KMeansResult, Trainer, register


@register
class NoopTrainer(Trainer):
    name, model, framework = "noop", "mlp", "none"

    def load(self, x_train, y_train):
        pass

    def train(self, steps):
        return 0.0

    def predict(self, x):
        return np.zeros(len(x), dtype=np.int64)

    def parameters(self):
        return dict(self.initial_parameters)


@register
class NoopClusterer(Clusterer):
    name, model, framework = "noop", "kmeans", "none"

    def fit(self, x, init_centroids, max_iter, tol):
        return KMeansResult(init_centroids, np.zeros(len(x), dtype=np.int64), 1, 0.0)

    def predict(self, x, centroids):
        return np.zeros(len(x), dtype=np.int64)
