"""An MLP with scikit-learn's `MLPClassifier`, trained with `partial_fit` on the batches of
the harness's `BatchSampler`, so that it makes the same updates on the same data as the
other implementations."""

from __future__ import annotations

import warnings

import numpy as np

from bench.api import BatchSampler, Trainer, optional_imports, register

with optional_imports():
    from sklearn.neural_network import MLPClassifier

    class GivenInitMLPClassifier(MLPClassifier):
        """MLPClassifier that starts from given weights instead of Glorot's. scikit-learn has
        no public way to set them before the first update; `_init_coef(fan_in, fan_out,
        dtype)`, called once per layer in order by the first `partial_fit`, is the hook."""

        def _init_coef(self, fan_in, fan_out, dtype):
            W, b = next(self.given_layers)
            assert W.shape == (fan_in, fan_out), "layers arrive in order"
            return W.astype(dtype), b.astype(dtype)


ACTIVATIONS = {"relu": "relu", "sigmoid": "logistic"}
# partial_fit validates its whole input on every call (milliseconds); handing it up to this
# many batches at once makes that cost small next to the updates, with a bounded copy.
MAX_BATCHES_PER_CALL = 50

ADAM_EPSILON = (
    "scikit-learn's Adam adds epsilon to sqrt(v) before the bias correction (Kingma & Ba's "
    "'efficient' form): the same as epsilon*sqrt(1-beta2^t) in the standard one."
)


def optimizer_settings(opt) -> dict:
    if opt.kind == "sgd":
        return {"solver": "sgd", "learning_rate_init": opt.lr, "momentum": 0.0}
    if opt.kind == "ema-momentum":
        # sklearn keeps v <- beta*v - lr*g and adds v: the EMA rule with lr*(1-beta).
        return {
            "solver": "sgd",
            "learning_rate_init": opt.lr * (1 - opt.momentum),
            "momentum": opt.momentum,
            "nesterovs_momentum": False,
        }
    return {
        "solver": "adam",
        "learning_rate_init": opt.lr,
        "beta_1": opt.beta1,
        "beta_2": opt.beta2,
        "epsilon": opt.eps,
    }


@register
class SklearnMLP(Trainer):
    name = "sklearn"
    model = "mlp"
    framework = "scikit-learn"
    requires = ("sklearn",)

    @classmethod
    def why_unsupported(cls, scenario):
        *hidden, output = scenario.layers
        if scenario.loss != "cross-entropy" or output.activation is not None:
            return (
                "MLPClassifier only minimises the log-loss of softmax outputs; the scenario's "
                f"{scenario.loss} cost on {output.activation} outputs cannot be expressed"
            )
        if len({layer.activation for layer in hidden}) > 1:
            return "MLPClassifier uses one activation for every hidden layer"
        if any(layer.activation not in ACTIVATIONS for layer in hidden):
            return "MLPClassifier's hidden activations are relu, logistic, tanh or identity"
        if scenario.optimizer.kind not in ("sgd", "ema-momentum", "adam"):
            return f"MLPClassifier has no {scenario.optimizer.kind} optimizer"
        return None

    @classmethod
    def deviations_for(cls, scenario):
        adam = scenario.optimizer is not None and scenario.optimizer.kind == "adam"
        return super().deviations_for(scenario) + ((ADAM_EPSILON,) if adam else ())

    def __init__(self, scenario, parameters, seed, device="cpu"):
        super().__init__(scenario, parameters, seed, device)
        *hidden, output = scenario.layers
        self.net = GivenInitMLPClassifier(
            hidden_layer_sizes=[layer.units_out for layer in hidden],
            activation=ACTIVATIONS[hidden[0].activation],
            alpha=0.0,  # no L2 penalty
            learning_rate="constant",
            shuffle=False,  # the order is the harness's
            random_state=seed,
            **optimizer_settings(scenario.optimizer),
        )
        self.net.given_layers = iter(
            (parameters[f"W{i}"], parameters[f"b{i}"]) for i in range(1, len(scenario.layers) + 1)
        )
        self.classes = np.arange(output.units_out)

    def load(self, x_train, y_train):
        self.x, self.y = x_train, y_train
        self.batches = BatchSampler(
            len(x_train), self.scenario.batch_size, self.scenario.sampling, self.seed
        )
        full = self.scenario.sampling == "full-batch"
        self.net.set_params(batch_size=len(x_train) if full else self.scenario.batch_size)

    def train(self, steps):
        with warnings.catch_warnings():
            # Given less than `batch_size` rows (a short last batch of an epoch) sklearn
            # warns that it clips the batch size, which is what we want: one update.
            warnings.filterwarnings("ignore", message="Got `batch_size`", category=UserWarning)
            for group in self.calls([self.batches.next() for _ in range(steps)]):
                rows = np.concatenate(group)
                self.net.partial_fit(self.x[rows], self.y[rows], classes=self.classes)
        return float(self.net.loss_)  # the last call holds only the last batch

    def calls(self, batches: list[np.ndarray]):
        """Batches grouped for partial_fit, which cuts its input into `batch_size` slices in
        order, one update each: a group is full batches, possibly ending with a short one.
        The last batch goes alone, as `loss_` is the mean loss of a whole call."""
        group = []
        for batch in batches[:-1]:
            group.append(batch)
            if len(batch) < self.net.batch_size or len(group) == MAX_BATCHES_PER_CALL:
                yield group
                group = []
        if group:
            yield group
        yield batches[-1:]

    def predict(self, x):
        return self.net.predict(x)

    def parameters(self):
        if not hasattr(self.net, "coefs_"):  # sklearn makes its weights at the first update
            return {name: value.copy() for name, value in self.initial_parameters.items()}
        params = {}
        for i, (W, b) in enumerate(zip(self.net.coefs_, self.net.intercepts_, strict=True), 1):
            params[f"W{i}"], params[f"b{i}"] = W.copy(), b.copy()
        return params
