"""The seed-004 design in Python: a central parameter store (`Memory`) owns every tensor,
layers keep only their indexes into it, models implement `forward(mem, x)` (`Compute`), and
the optimizer steps are written by hand over the gradients autograd leaves in the store.
The CNN (`cnn.py`) is the same trainer with another `Compute`."""

from __future__ import annotations

from bench.api import BatchSampler, Trainer, optional_imports, register

with optional_imports():
    import torch
    import torch.nn.functional as F


class Memory:
    """Every trainable tensor of a model, addressed by position. The optimizers live here
    because they walk the whole store (the article's `apply_grads_*`); call them under
    `torch.no_grad()` after `backward()`."""

    def __init__(self) -> None:
        self.values: list[torch.Tensor] = []
        self.velocity: list[torch.Tensor] = []  # optimizer state, one per value, made lazily
        self.moments: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.t = 0

    def push(self, value: torch.Tensor) -> int:
        self.values.append(value.requires_grad_(True))
        return len(self.values) - 1

    def get(self, address: int) -> torch.Tensor:
        return self.values[address]

    def apply_grads_sgd(self, lr: float) -> None:
        for t in self.values:
            t -= lr * t.grad
            t.grad = None

    def apply_grads_sgd_momentum(self, lr: float, beta: float) -> None:
        # The article rebuilt the velocities on every call, which drops the momentum; they
        # are kept here across steps: v <- beta*v + (1-beta)*g ; w <- w - lr*v.
        if not self.velocity:
            self.velocity = [torch.zeros_like(t) for t in self.values]
        for t, v in zip(self.values, self.velocity, strict=True):
            v.mul_(beta).add_(t.grad, alpha=1 - beta)
            t -= lr * v
            t.grad = None

    def apply_grads_adam(self, lr: float, beta1: float, beta2: float, eps: float) -> None:
        if not self.moments:
            self.moments = [(torch.zeros_like(t), torch.zeros_like(t)) for t in self.values]
        self.t += 1
        for t, (m, v) in zip(self.values, self.moments, strict=True):
            m.lerp_(t.grad, 1 - beta1)
            v.mul_(beta2).addcmul_(t.grad, t.grad, value=1 - beta2)
            m_hat, v_hat = m / (1 - beta1**self.t), v / (1 - beta2**self.t)
            t -= lr * m_hat / (v_hat.sqrt() + eps)
            t.grad = None


class Linear:
    """x @ W + b with W (in, out): the store's layout is already the canonical one."""

    def __init__(self, mem: Memory, W: torch.Tensor, b: torch.Tensor) -> None:
        self.params = {"W": mem.push(W), "b": mem.push(b)}

    def forward(self, mem: Memory, x: torch.Tensor) -> torch.Tensor:
        return x @ mem.get(self.params["W"]) + mem.get(self.params["b"])


ACTIVATIONS = {"relu": lambda x: x.relu(), "sigmoid": lambda x: x.sigmoid(), None: lambda x: x}


class MLP:
    """The `Compute` of the scenario's dense layers, each followed by its activation."""

    def __init__(self, mem: Memory, layers, parameters, device: str) -> None:
        # torch.tensor copies and keeps the scenario's dtype (float64 for nielsen-mlp).
        self.weighted = [
            Linear(mem, *(torch.tensor(parameters[f"{n}{i}"], device=device) for n in "Wb"))
            for i in range(1, len(layers) + 1)
        ]
        self.activations = [ACTIVATIONS[layer.activation] for layer in layers]

    def forward(self, mem: Memory, x: torch.Tensor) -> torch.Tensor:
        for linear, activation in zip(self.weighted, self.activations, strict=True):
            x = activation(linear.forward(mem, x))
        return x


def cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.nll_loss(output.log_softmax(-1), target)


def quadratic(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Nielsen's cost: 0.5 * ||a - y||^2 summed over classes, averaged over the batch."""
    one_hot = F.one_hot(target, output.shape[1]).to(output.dtype)
    return 0.5 * (output - one_hot).square().sum(1).mean()


LOSSES = {"cross-entropy": cross_entropy, "quadratic": quadratic}


@register
class TorchStoreMLP(Trainer):
    name = "torch-store"
    model = "mlp"
    framework = "torch"
    requires = ("torch",)
    devices = ("cpu", "cuda")

    def __init__(self, scenario, parameters, seed, device="cpu"):
        super().__init__(scenario, parameters, seed, device)
        self.mem = Memory()
        self.net = self.compute(self.mem, scenario.layers, parameters, device)
        self.loss = LOSSES[scenario.loss]
        opt = scenario.optimizer
        self.step = {
            "sgd": lambda: self.mem.apply_grads_sgd(opt.lr),
            "ema-momentum": lambda: self.mem.apply_grads_sgd_momentum(opt.lr, opt.momentum),
            "adam": lambda: self.mem.apply_grads_adam(opt.lr, opt.beta1, opt.beta2, opt.eps),
        }[opt.kind]

    compute = MLP  # the model's `Compute`: builds its layers into the store

    def load(self, x_train, y_train):
        self.x = torch.tensor(x_train, device=self.device)
        self.y = torch.tensor(y_train, device=self.device)
        self.batches = BatchSampler(
            len(x_train), self.scenario.batch_size, self.scenario.sampling, self.seed
        )

    def train(self, steps):
        for _ in range(steps):
            batch = torch.from_numpy(self.batches.next()).to(self.device)
            error = self.loss(self.net.forward(self.mem, self.x[batch]), self.y[batch])
            error.backward()
            with torch.no_grad():  # the update itself is not part of the graph
                self.step()
        return error.item()

    def predict(self, x):
        with torch.no_grad():
            output = self.net.forward(self.mem, torch.tensor(x, device=self.device))
        return output.argmax(1).cpu().numpy()

    def parameters(self):
        return {
            f"{name}{i}": self.mem.get(address).detach().cpu().numpy().copy()
            for i, layer in enumerate(self.net.weighted, start=1)
            for name, address in layer.params.items()
        }
