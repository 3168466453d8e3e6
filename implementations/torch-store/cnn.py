"""The seed-001 CNN on the seed-004 parameter store: the `Memory` of `mlp.py` owns every
tensor, `Conv2d` and `Linear` keep only their addresses in it, the model's `forward(mem, x)`
calls the functional ops (`F.conv2d`, `F.max_pool2d`), and the Adam step is the store's own,
written by hand over the gradients autograd leaves there. The trainer is the MLP's."""

from __future__ import annotations

from bench.api import Conv2d, Dense, MaxPool2d, optional_imports, register

from .mlp import ACTIVATIONS, Linear, Memory, TorchStoreMLP

with optional_imports():
    import torch
    import torch.nn.functional as F


class Conv:
    """Kernel (out_c, in_c, kh, kw) and bias: the store's layout is the canonical one."""

    def __init__(self, mem: Memory, spec: Conv2d, W: torch.Tensor, b: torch.Tensor) -> None:
        self.spec = spec
        self.params = {"W": mem.push(W), "b": mem.push(b)}

    def forward(self, mem: Memory, x: torch.Tensor) -> torch.Tensor:
        W, b = mem.get(self.params["W"]), mem.get(self.params["b"])
        return F.conv2d(x, W, b, stride=self.spec.stride, padding=self.spec.padding)


class CNN:
    """The `Compute` of the scenario's layers, in order."""

    def __init__(self, mem: Memory, layers, parameters, device: str) -> None:
        self.steps: list = []  # (kind, layer or spec, activation)
        self.weighted: list = []
        for spec in layers:
            if isinstance(spec, Conv2d | Dense):
                i = len(self.weighted) + 1
                W, b = (torch.tensor(parameters[f"{n}{i}"], device=device) for n in "Wb")
                layer = Conv(mem, spec, W, b) if isinstance(spec, Conv2d) else Linear(mem, W, b)
                self.weighted.append(layer)
                self.steps.append((layer, ACTIVATIONS[spec.activation]))
            elif isinstance(spec, MaxPool2d):
                self.steps.append((spec, None))
            else:
                self.steps.append((None, None))  # flatten, in (c, h, w) order

    def forward(self, mem: Memory, x: torch.Tensor) -> torch.Tensor:
        for layer, activation in self.steps:
            if isinstance(layer, MaxPool2d):
                x = F.max_pool2d(x, layer.size, layer.stride)
            elif layer is None:
                x = x.flatten(1)
            else:
                x = activation(layer.forward(mem, x))
        return x


@register
class TorchStoreCNN(TorchStoreMLP):
    model = "cnn"
    compute = CNN
