"""K-Means with PyTorch tensors on the case's device (CPU or CUDA), float64: Lloyd's
algorithm on matrices of distances ‖c‖² − 2·x·c, a chunk of points at a time so that the
(chunk, k) temporaries stay small whatever the number of points.

Convergence and `n_iter` follow scikit-learn's `_kmeans_single_lloyd`: stop when no label
changed (strict convergence), or when the summed squared centroid shift is at most `tol`
times the mean per-feature variance of x; then (unless strict) assign labels once more to
the final centroids. A cluster left empty keeps its previous centroid (scikit-learn instead
moves it to the point farthest from its centroid; blobs do not leave clusters empty).
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

    def load(self, x):
        return torch.as_tensor(x, dtype=torch.float64).to(self.device)

    def fit(self, x, init_centroids, max_iter, tol):
        # kmeans_shift_tolerance's formula, computed where the points are (maybe the GPU)
        threshold = tol * x.var(dim=0, unbiased=False).mean().item()
        centroids = torch.as_tensor(init_centroids, dtype=torch.float64, device=x.device)
        labels = torch.full((len(x),), -1, dtype=torch.int64, device=x.device)
        n_iter, changed = 0, True
        while n_iter < max_iter:
            n_iter += 1
            changed, sums, counts = self._assign(x, centroids, labels, accumulate=True)
            filled = counts > 0
            updated = torch.where(filled[:, None], sums / counts.clamp(min=1)[:, None], centroids)
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
        return KMeansResult(centroids.cpu().numpy(), labels.cpu().numpy(), n_iter, inertia)

    def predict(self, x, centroids):
        labels = torch.empty(len(x), dtype=torch.int64, device=x.device)
        self._assign(x, torch.as_tensor(centroids, dtype=torch.float64, device=x.device), labels)
        return labels.cpu().numpy()

    def _assign(self, x, centroids, labels, accumulate=False):
        """Write the nearest centroid of every point into `labels`, chunk by chunk. Returns
        whether any label changed and, with `accumulate`, each cluster's sum and count."""
        squared_norms = (centroids**2).sum(dim=1)
        sums = torch.zeros_like(centroids)
        counts = torch.zeros(len(centroids), dtype=torch.float64, device=x.device)
        changed = torch.zeros((), dtype=torch.bool, device=x.device)
        for chunk, old in zip(x.split(self.chunk_size), labels.split(self.chunk_size), strict=True):
            nearest = (squared_norms - 2 * chunk @ centroids.T).argmin(dim=1)
            changed |= (nearest != old).any()
            old.copy_(nearest)
            if accumulate:
                sums.index_add_(0, nearest, chunk)
                counts += torch.bincount(nearest, minlength=len(centroids))
        return bool(changed), sums, counts
