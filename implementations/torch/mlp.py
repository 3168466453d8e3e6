"""An MLP in idiomatic PyTorch: `nn.Sequential` of `nn.Linear` and activations, a
`torch.optim` optimizer, `zero_grad / backward / step`. The CNN (`cnn.py`) is the same
trainer: `build_modules` turns any of the scenarios' layer lists into modules."""

from __future__ import annotations

from bench.api import BatchSampler, Conv2d, Dense, MaxPool2d, Trainer, optional_imports, register

with optional_imports():
    import torch
    import torch.nn.functional as F
    from torch import nn


def quadratic_cost(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Nielsen's cost: 0.5 * ||a - y||^2 summed over classes, averaged over the batch."""
    one_hot = F.one_hot(target, output.shape[1]).to(output.dtype)
    return 0.5 * F.mse_loss(output, one_hot, reduction="sum") / len(target)


def build_optimizer(params, opt) -> torch.optim.Optimizer:
    if opt.kind == "sgd":
        return torch.optim.SGD(params, lr=opt.lr)
    if opt.kind == "ema-momentum":
        # torch keeps buf <- beta*buf + g, i.e. buf = v/(1-beta) for the EMA velocity v, so
        # the EMA rule w <- w - lr*v is SGD(momentum=beta) with lr*(1-beta).
        return torch.optim.SGD(params, lr=opt.lr * (1 - opt.momentum), momentum=opt.momentum)
    if opt.kind == "adam":
        return torch.optim.Adam(params, lr=opt.lr, betas=(opt.beta1, opt.beta2), eps=opt.eps)
    raise ValueError(f"unknown optimizer {opt.kind!r}")


def torch_layout(module: nn.Module, weight):
    """The canonical weight in the module's layout, or back: nn.Linear keeps W as (out, in),
    the transpose of the canonical (in, out); nn.Conv2d's (out_c, in_c, kh, kw) is canonical."""
    return weight.T if isinstance(module, nn.Linear) else weight


@register
class TorchMLP(Trainer):
    name = "torch"
    model = "mlp"
    framework = "torch"
    requires = ("torch",)
    devices = ("cpu", "cuda")

    def __init__(self, scenario, parameters, seed, device="cpu"):
        super().__init__(scenario, parameters, seed, device)
        self.dtype = getattr(torch, scenario.dtype)  # float64 for nielsen-mlp, as network.py
        self.weighted: list[nn.Module] = []  # the modules holding W1/b1, W2/b2, ... in order
        self.net = nn.Sequential(*self.build_modules(scenario.layers))
        with torch.no_grad():
            for i, module in enumerate(self.weighted, start=1):
                module.weight.copy_(torch.from_numpy(torch_layout(module, parameters[f"W{i}"])))
                module.bias.copy_(torch.from_numpy(parameters[f"b{i}"]))
        self.loss_fn = F.cross_entropy if scenario.loss == "cross-entropy" else quadratic_cost
        self.optimizer = build_optimizer(self.net.parameters(), scenario.optimizer)

    def build_modules(self, layers) -> list[nn.Module]:
        activations = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}
        modules = []
        for layer in layers:
            if isinstance(layer, MaxPool2d):
                modules.append(nn.MaxPool2d(layer.size, layer.stride))
                continue
            if not isinstance(layer, Conv2d | Dense):
                modules.append(nn.Flatten())  # (c, h, w) order, the canonical one
                continue
            if isinstance(layer, Conv2d):
                module = nn.Conv2d(
                    layer.in_channels,
                    layer.out_channels,
                    layer.kernel,
                    layer.stride,
                    layer.padding,
                    device=self.device,
                    dtype=self.dtype,
                )
            else:
                module = nn.Linear(
                    layer.units_in, layer.units_out, device=self.device, dtype=self.dtype
                )
            self.weighted.append(module)
            modules.append(module)
            if layer.activation:
                modules.append(activations[layer.activation]())
        return modules

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
            loss = self.loss_fn(self.net(self.x[batch]), self.y[batch])
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
            params[f"W{i}"] = torch_layout(module, weight).copy()
            params[f"b{i}"] = module.bias.detach().cpu().numpy().copy()
        return params
