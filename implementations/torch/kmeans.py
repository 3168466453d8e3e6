"""K-Means with PyTorch tensors on the case's device (CPU or CUDA), in the scenario's dtype:
Lloyd's algorithm on matrices of distances, a chunk of points at a time so that the
(chunk, k) temporaries stay small whatever the number of points.

As scikit-learn's `KMeans.fit` (the rules are in `bench/reference.py`): the points are centred
by their mean, and a point's distance to centroid c is compared as ‖c‖² − 2·x·c (‖x‖² is the
same for every centroid), the first centroid on an equal value. The clusters' sums are
accumulated in float64.

Convergence and `n_iter` follow scikit-learn's `_kmeans_single_lloyd`: stop when no label
changed (strict convergence), or when the summed squared centroid shift is at most `tol`
times the mean per-feature variance of x; then (unless strict) assign labels once more to the
final centroids. A cluster left empty takes the point farthest from its centroid, which
leaves its old cluster (`_relocate_empty`, the rule of `bench.api.relocate_empty_clusters`).
"""

from __future__ import annotations

from bench.api import Clusterer, KMeansResult, optional_imports, register

with optional_imports():
    import torch


@register
class TorchKMeans(Clusterer):
    name = "torch"
    model = "kmeans"
    framework = "torch"
    requires = ("torch",)
    devices = ("cpu", "cuda")

    def __init__(self, scenario, seed, device="cpu"):
        super().__init__(scenario, seed, device)
        # Points per distance block: bounded memory, and few enough blocks that the
        # per-operation cost (thread-pool start, kernel launch) stays small.
        self.chunk_size = 262_144 if device == "cpu" else 1_048_576
        self.dtype = getattr(torch, scenario.dtype)

    def load(self, x):
        return torch.as_tensor(x, dtype=self.dtype).to(self.device)

    def fit(self, x, init_centroids, max_iter, tol):
        # kmeans_shift_tolerance's formula, computed where the points are (maybe the GPU)
        threshold = tol * x.double().var(dim=0, unbiased=False).mean().item()
        mean = x.mean(dim=0)
        x = x - mean
        centroids = torch.as_tensor(init_centroids, dtype=self.dtype, device=x.device) - mean
        labels = torch.full((len(x),), -1, dtype=torch.int64, device=x.device)
        n_iter, changed = 0, True
        while n_iter < max_iter:
            n_iter += 1
            changed, sums, counts = self._assign(x, centroids, labels, accumulate=True)
            if (counts == 0).any():
                self._relocate_empty(x, centroids, labels, sums, counts)
            updated = self._means(sums, counts).to(self.dtype)
            shift = ((updated - centroids) ** 2).sum().item()
            centroids = updated
            if not changed or shift <= threshold:
                break
        if changed:  # stopped on the tolerance or max_iter: label by the final centroids
            self._assign(x, centroids, labels)
        inertia = sum(
            ((chunk - centroids[chunk_labels]) ** 2).sum().item()
            for chunk, chunk_labels in zip(
                x.split(self.chunk_size), labels.split(self.chunk_size), strict=True
            )
        )
        return KMeansResult((centroids + mean).cpu().numpy(), labels.cpu().numpy(), n_iter, inertia)

    def predict(self, x, centroids):
        mean = x.mean(dim=0)
        labels = torch.empty(len(x), dtype=torch.int64, device=x.device)
        centroids = torch.as_tensor(centroids, dtype=self.dtype, device=x.device)
        self._assign(x - mean, centroids - mean, labels)
        return labels.cpu().numpy()

    def _assign(self, x, centroids, labels, accumulate=False):
        """Write the nearest centroid of every (centred) point into `labels`, chunk by chunk.
        Returns whether any label changed and, with `accumulate`, each cluster's sum (float64)
        and count."""
        squared_norms = (centroids * centroids).sum(dim=1)
        sums = torch.zeros(centroids.shape, dtype=torch.float64, device=x.device)
        counts = torch.zeros(len(centroids), dtype=torch.int64, device=x.device)
        changed = torch.zeros((), dtype=torch.bool, device=x.device)
        for chunk, old in zip(x.split(self.chunk_size), labels.split(self.chunk_size), strict=True):
            nearest = torch.addmm(squared_norms, chunk, centroids.T, alpha=-2).argmin(dim=1)
            changed |= (nearest != old).any()
            old.copy_(nearest)
            if accumulate:
                sums.index_add_(0, nearest, chunk.double())
                counts += torch.bincount(nearest, minlength=len(centroids))
        return bool(changed), sums, counts

    def _relocate_empty(self, x, centroids, labels, sums, counts):
        """The i-th empty cluster takes the i-th farthest point from its centroid (equal
        distances: the lower index), which leaves its old cluster; nothing moves when every
        point sits on its centroid."""
        empty = torch.nonzero(counts == 0).flatten()
        distances = ((x - centroids[labels]) ** 2).sum(dim=1)
        if distances.max() == 0:
            return
        farthest = torch.sort(-distances, stable=True).indices[: len(empty)]
        for cluster, point in zip(empty.tolist(), farthest.tolist(), strict=True):
            old = labels[point]
            sums[old] -= x[point].double()
            counts[old] -= 1
            sums[cluster] = x[point].double()
            counts[cluster] = 1

    def _means(self, sums, counts):
        """Each cluster's mean; a cluster still empty takes the largest cluster's mean."""
        means = sums / counts.clamp(min=1)[:, None]
        return torch.where((counts == 0)[:, None], means[counts.argmax()], means)
