"""A convolutional network in idiomatic PyTorch: the MLP's trainer (`mlp.py`), whose
`nn.Sequential` then holds `nn.Conv2d`, `nn.MaxPool2d`, `nn.Flatten` and `nn.Linear`;
`torch.optim.Adam`, `zero_grad / backward / step`. PyTorch's layouts are the canonical
ones, except that `nn.Linear` keeps W as (out, in)."""

from __future__ import annotations

from bench.api import register

from .mlp import TorchMLP


@register
class TorchCNN(TorchMLP):
    model = "cnn"
