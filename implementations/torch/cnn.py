"""A convolutional network in idiomatic PyTorch: `nn.Sequential` of `nn.Conv2d`,
`nn.MaxPool2d`, `nn.Flatten` and `nn.Linear`, a `torch.optim` optimizer,
`zero_grad / backward / step`. PyTorch's layouts are the canonical ones, except that
`nn.Linear` keeps W as (out, in)."""

from __future__ import annotations

from bench.api import BatchSampler, Conv2d, Dense, MaxPool2d, Trainer, optional_imports, register

from .mlp import build_optimizer

with optional_imports():
    import torch
    import torch.nn.functional as F
    from torch import nn


@register
class TorchCNN(Trainer):
    name = "torch"
    model = "cnn"
    framework = "torch"
    requires = ("torch",)
    devices = ("cpu", "cuda")

    def __init__(self, scenario, parameters, seed, device="cpu"):
        super().__init__(scenario, parameters, seed, device)
        dtype = getattr(torch, scenario.dtype)
        modules, self.weighted = [], []
        for layer in scenario.layers:
            if isinstance(layer, Conv2d):
                module = nn.Conv2d(
                    layer.in_channels,
                    layer.out_channels,
                    layer.kernel,
                    layer.stride,
                    layer.padding,
                    device=device,
                    dtype=dtype,
                )
                weight = parameters[f"W{len(self.weighted) + 1}"]  # (out_c, in_c, kh, kw) as is
            elif isinstance(layer, Dense):
                module = nn.Linear(layer.units_in, layer.units_out, device=device, dtype=dtype)
                weight = parameters[f"W{len(self.weighted) + 1}"].T  # nn.Linear is (out, in)
            elif isinstance(layer, MaxPool2d):
                modules.append(nn.MaxPool2d(layer.size, layer.stride))
                continue
            else:
                modules.append(nn.Flatten())  # (c, h, w) order, the canonical one
                continue
            self.weighted.append(module)
            with torch.no_grad():
                module.weight.copy_(torch.from_numpy(weight))
                module.bias.copy_(torch.from_numpy(parameters[f"b{len(self.weighted)}"]))
            modules.append(module)
            if layer.activation == "relu":
                modules.append(nn.ReLU())
        self.net = nn.Sequential(*modules)
        self.optimizer = build_optimizer(self.net.parameters(), scenario.optimizer)

    def load(self, x_train, y_train):
        self.x = torch.tensor(x_train, device=self.device)
        self.y = torch.tensor(y_train, device=self.device)
        self.batches = BatchSampler(
            len(x_train), self.scenario.batch_size, self.scenario.sampling, self.seed
        )

    def train(self, steps):
        self.net.train()
        for _ in range(steps):
            batch = torch.from_numpy(self.batches.next()).to(self.device)
            self.optimizer.zero_grad()
            loss = F.cross_entropy(self.net(self.x[batch]), self.y[batch])
            loss.backward()
            self.optimizer.step()
        return loss.item()

    def predict(self, x):
        self.net.eval()
        with torch.no_grad():
            return self.net(torch.tensor(x, device=self.device)).argmax(1).cpu().numpy()

    def parameters(self):
        params = {}
        for i, module in enumerate(self.weighted, start=1):
            weight = module.weight.detach().cpu().numpy()
            params[f"W{i}"] = (weight.T if isinstance(module, nn.Linear) else weight).copy()
            params[f"b{i}"] = module.bias.detach().cpu().numpy().copy()
        return params
