"""An MLP in idiomatic PyTorch: `nn.Sequential` of `nn.Linear` and activations, a
`torch.optim` optimizer, `zero_grad / backward / step`."""

from __future__ import annotations

from bench.api import BatchSampler, Trainer, optional_imports, register

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


@register
class TorchMLP(Trainer):
    name = "torch"
    model = "mlp"
    framework = "torch"
    requires = ("torch",)
    devices = ("cpu", "cuda")

    def __init__(self, scenario, parameters, seed, device="cpu"):
        super().__init__(scenario, parameters, seed, device)
        activations = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}
        dtype = getattr(torch, scenario.dtype)  # float64 for nielsen-mlp, as network.py
        modules = []
        for i, layer in enumerate(scenario.layers, start=1):
            linear = nn.Linear(layer.units_in, layer.units_out, device=device, dtype=dtype)
            with torch.no_grad():  # nn.Linear keeps W as (out, in): transpose the canonical one
                linear.weight.copy_(torch.from_numpy(parameters[f"W{i}"].T))
                linear.bias.copy_(torch.from_numpy(parameters[f"b{i}"]))
            modules.append(linear)
            if layer.activation:
                modules.append(activations[layer.activation]())
        self.net = nn.Sequential(*modules)
        self.loss_fn = F.cross_entropy if scenario.loss == "cross-entropy" else quadratic_cost
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
            loss = self.loss_fn(self.net(self.x[batch]), self.y[batch])
            loss.backward()
            self.optimizer.step()
        return loss.item()

    def predict(self, x):
        self.net.eval()
        with torch.no_grad():
            return self.net(torch.tensor(x, device=self.device)).argmax(1).cpu().numpy()

    def parameters(self):
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        params = {}
        for i, linear in enumerate(linears, start=1):
            params[f"W{i}"] = linear.weight.detach().cpu().numpy().T.copy()
            params[f"b{i}"] = linear.bias.detach().cpu().numpy().copy()
        return params
