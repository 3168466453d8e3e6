"""Scenario files: a user's workloads in TOML, read with `tomllib` into the same frozen types
as the built-in catalogue (`docs/scenario-files.md` is the schema).

    [scenarios.digits-mlp]
    model = "mlp"
    dataset = "digits.npz"            # a built-in dataset, or a path relative to this file
    input_shape = [64]
    layers = [{ type = "dense", units = 32, activation = "relu" }, { type = "dense", units = 10 }]
    ...

Every mistake is a `ScenarioFileError` naming the file, the field (as a dotted path), the
value found and the values that are valid.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

from bench import names
from bench.scenarios.fields import Fields, ScenarioFileError
from bench.scenarios.model import (
    FULL_MEASURING,
    MODELS,
    PROFILES,
    QUICK_MEASURING,
    Budget,
    Conv2d,
    Dense,
    Flatten,
    KMeansSpec,
    Layer,
    MaxPool2d,
    Optimizer,
    Published,
    Scenario,
)

ACTIVATIONS = ("relu", "sigmoid", "none")
INITS = ("torch-default", "normal", "scaled-normal")
LOSSES = ("cross-entropy", "quadratic")
OPTIMIZERS = ("sgd", "ema-momentum", "adam")
SAMPLINGS = ("shuffled-epochs", "with-replacement")
DTYPES = ("float32", "float64")
LAYER_TYPES = ("dense", "conv2d", "maxpool2d", "flatten")

# What a profile's budget is when the file leaves a field out: how the built-in scenarios of
# that profile are measured (smoke: seconds per case on a slice of the data, the tests'
# size; quick and full: `QUICK_MEASURING`, `FULL_MEASURING`), with a bound on the extra
# rounds of a quick case.
BUDGET_DEFAULTS: dict[str, dict[str, Any]] = {
    "smoke": dict(
        rounds=2, warmup_rounds=1, timeout_s=120, eval_points=2, train_samples=300, test_samples=200
    ),
    "quick": dict(eval_points=3, test_samples=2_000, case_budget_s=30, **QUICK_MEASURING),
    "full": dict(eval_points=5, timeout_s=3_600, **FULL_MEASURING),
}
# The fields of a budget that say how a case is measured rather than how big a round is.
MEASURING = ("rounds", "warmup_rounds", "timeout_s", "processes", "max_rounds",
             "interval_target", "case_budget_s")  # fmt: skip


def read_scenario_file(path: Path) -> list[Scenario]:
    """Every scenario defined in the TOML file at `path`, validated."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ScenarioFileError(f"cannot read scenario file {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ScenarioFileError(f"{path} is not a UTF-8 text file: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ScenarioFileError(f"{path} is not valid TOML: {error}") from None
    return scenarios_from_toml(data, path)


def scenarios_from_toml(data: Mapping[str, Any], path: Path) -> list[Scenario]:
    """The scenarios of a parsed file; `path` names it in errors and anchors relative paths."""
    root = Fields(data, path, "")
    root.only("scenarios")
    tables = root.table("scenarios", required=True)
    if not tables.data:
        raise ScenarioFileError(f"{path}: [scenarios] defines no scenario; add [scenarios.NAME]")
    return [_scenario(name, tables.table(name, required=True)) for name in tables.data]


# --- one scenario ---------------------------------------------------------------------------

SCENARIO_FIELDS = (
    "title",
    "citation",
    "model",
    "dataset",
    "dtype",
    "target",
    "original",
    "seed",
    "deviations",
    "published",
    "budgets",
    # trainers
    "input_shape",
    "input_scale",
    "layers",
    "init",
    "init_scale",
    "loss",
    "optimizer",
    "batch_size",
    "sampling",
    "train_limit",
    # clusterers
    "kmeans",
)
TRAINER_ONLY = SCENARIO_FIELDS[
    SCENARIO_FIELDS.index("input_shape") : SCENARIO_FIELDS.index("kmeans")
]


def _scenario(name: str, fields: Fields) -> Scenario:
    if not names.is_valid(name):
        raise fields.error(f"the scenario name {name!r} is not valid: use {names.NAME_RULE}")
    fields.only(*SCENARIO_FIELDS)
    model = fields.choice("model", MODELS, required=True)
    common = dict(
        name=name,
        title=fields.text("title", default=name),
        article=fields.text("citation", default=""),
        model=model,
        dataset=_dataset(fields),
        dtype=fields.choice("dtype", DTYPES, default="float32"),
        original=_implementation_name(fields, "original"),
        seed=fields.integer("seed", default=0, minimum=0),
        deviations=tuple(fields.texts("deviations")),
        published=tuple(_published(item) for item in fields.tables("published")),
        budgets=_budgets(fields.table("budgets", required=True), model),
    )
    if model == "kmeans":
        misplaced = [f for f in TRAINER_ONLY if f in fields.data]
        if misplaced:
            raise fields.error(
                f"{fields.where(misplaced[0])} belongs to trainers (mlp, cnn), not to a kmeans "
                "scenario; a kmeans scenario takes: kmeans, budgets, dataset, dtype, target, …"
            )
        if common["dataset"] == "blobs":
            for profile, budget in common["budgets"].items():
                if budget.n_samples is None:
                    raise fields.error(
                        f"{fields.where('budgets')}.{profile}.n_samples is missing: blobs are "
                        "generated, so each profile says how many points, e.g. n_samples = 10000"
                    )
        return Scenario(
            **common,
            target=fields.number("target", default=1e-6, above=0),
            kmeans=_kmeans(fields.table("kmeans", required=True)),
        )
    if "kmeans" in fields.data:
        raise fields.error(f"{fields.where('kmeans')} belongs to kmeans scenarios, not to {model}")
    input_shape = tuple(fields.integers("input_shape", required=True, minimum=1))
    if model == "mlp" and len(input_shape) != 1:
        raise fields.error(
            f"{fields.where('input_shape')} = {list(input_shape)}: an mlp takes one example as "
            "[features], e.g. [784]"
        )
    if model == "cnn" and len(input_shape) != 3:
        raise fields.error(
            f"{fields.where('input_shape')} = {list(input_shape)}: a cnn takes one example as "
            "[channels, height, width], e.g. [1, 28, 28]"
        )
    layers = _layers(fields, input_shape, model)
    loss = fields.choice("loss", LOSSES, required=True)
    last = layers[-1]
    if loss == "cross-entropy" and last.activation is not None:
        raise fields.error(
            f"{fields.where('layers')}: cross-entropy takes the last layer's raw outputs (the "
            f'logits); its activation is {last.activation!r}, use "none"'
        )
    init = fields.choice("init", INITS, required=True)
    return Scenario(
        **common,
        target=fields.number("target", required=True, above=0, at_most=1),
        layers=tuple(layers),
        input_shape=input_shape,
        input_scale=fields.number("input_scale", default=1 / 255, above=0),
        init=init,
        init_scale=fields.number("init_scale", default=1.0, above=0),
        loss=loss,
        optimizer=_optimizer(fields.table("optimizer", required=True)),
        batch_size=fields.integer("batch_size", required=True, minimum=1),
        sampling=fields.choice("sampling", SAMPLINGS, default="shuffled-epochs"),
        train_limit=fields.integer("train_limit", default=None, minimum=1),
    )


def _dataset(fields: Fields) -> str:
    """A built-in dataset's name, or the absolute path of a file or folder (relative paths
    are relative to the scenario file)."""
    from bench.datasets.catalogue import NAMES as DATASET_NAMES  # not at import: bench.api is light

    value = fields.text("dataset", required=True)
    if value in DATASET_NAMES:
        return value
    path = Path(value).expanduser()
    path = path if path.is_absolute() else fields.path.parent / path
    if not path.exists():
        raise fields.error(
            f"{fields.where('dataset')} = {value!r} is neither a built-in dataset "
            f"({', '.join(DATASET_NAMES)}) nor an existing file or folder (looked for "
            f"{path.absolute()}): give a folder of IDX files or an .npz holding x_train, "
            "y_train, x_test and y_test"
        )
    return str(path.absolute())


def _implementation_name(fields: Fields, key: str) -> str:
    value = fields.text(key, default="")
    if value and not names.is_valid(value):
        raise fields.error(
            f"{fields.where(key)} = {value!r} is not an implementation name ({names.NAME_RULE})"
        )
    return value


def _published(fields: Fields) -> Published:
    fields.only("implementation", "metric", "value", "versus", "answered_by")
    return Published(
        implementation=fields.text("implementation", required=True),
        metric=fields.text("metric", required=True),
        value=fields.text("value", required=True),
        versus=fields.text("versus", default=""),
        answered_by=fields.text("answered_by", default=""),
    )


def _budgets(fields: Fields, model: str) -> dict[str, Budget]:
    fields.only(*PROFILES)
    missing = [p for p in PROFILES if p not in fields.data]
    if missing:
        raise fields.error(
            f"{fields.where('')} has no {', '.join(missing)}: every profile needs a budget "
            f"({', '.join(PROFILES)}), e.g. {missing[0]} = "
            + ("{ n_samples = 10000 }" if model == "kmeans" else "{ steps = 100 }")
        )
    return {profile: _budget(fields.table(profile), profile, model) for profile in PROFILES}


def _budget(fields: Fields, profile: str, model: str) -> Budget:
    amounts = ("n_samples",) if model == "kmeans" else ("steps", "epochs")
    sizes = () if model == "kmeans" else ("train_samples", "test_samples", "eval_points")
    capped = () if model == "kmeans" else ("round_cap_s",)
    fields.only(*MEASURING, *amounts, *sizes, *capped)
    given = [key for key in amounts if key in fields.data]
    if model != "kmeans" and len(given) != 1:
        raise fields.error(
            f"{fields.where('')} needs exactly one of steps or epochs (found "
            f"{', '.join(given) or 'neither'})"
        )
    defaults = BUDGET_DEFAULTS[profile]
    rounds = fields.integer("rounds", default=defaults["rounds"], minimum=1)
    values = dict(
        rounds=rounds,
        warmup_rounds=fields.integer("warmup_rounds", default=defaults["warmup_rounds"], minimum=0),
        timeout_s=fields.number("timeout_s", default=defaults["timeout_s"], above=0),
        processes=fields.integer("processes", default=defaults.get("processes", 1), minimum=1),
        max_rounds=fields.integer("max_rounds", default=defaults.get("max_rounds"), minimum=rounds),
        interval_target=fields.number(
            "interval_target", default=defaults.get("interval_target"), above=0, below=1
        ),
        case_budget_s=fields.number(
            "case_budget_s", default=defaults.get("case_budget_s"), above=0
        ),
    )
    if model == "kmeans":
        return Budget(**values, n_samples=fields.integer("n_samples", default=None, minimum=1))
    return Budget(
        **values,
        steps=fields.integer("steps", default=None, minimum=1),
        epochs=fields.number("epochs", default=None, above=0),
        train_samples=fields.integer(
            "train_samples", default=defaults.get("train_samples"), minimum=1
        ),
        test_samples=fields.integer(
            "test_samples", default=defaults.get("test_samples"), minimum=1
        ),
        eval_points=fields.integer("eval_points", default=defaults["eval_points"], minimum=1),
        round_cap_s=fields.number("round_cap_s", default=None, above=0),
    )


def _kmeans(fields: Fields) -> KMeansSpec:
    fields.only("n_clusters", "n_features", "centers", "max_iter", "tol")
    n_clusters = fields.integer("n_clusters", required=True, minimum=1)
    return KMeansSpec(
        n_clusters=n_clusters,
        n_features=fields.integer("n_features", required=True, minimum=1),
        centers=fields.integer("centers", default=n_clusters, minimum=1),
        max_iter=fields.integer("max_iter", default=100, minimum=1),
        tol=fields.number("tol", default=1e-4, at_least=0),
    )


def _optimizer(fields: Fields) -> Optimizer:
    kind = fields.choice("kind", OPTIMIZERS, required=True)
    allowed = {"sgd": (), "ema-momentum": ("momentum",), "adam": ("beta1", "beta2", "eps")}[kind]
    fields.only("kind", "lr", *allowed)
    values: dict[str, float] = {"lr": fields.number("lr", required=True, above=0)}
    if kind == "ema-momentum":
        values["momentum"] = fields.number("momentum", required=True, at_least=0, below=1)
    if kind == "adam":
        values["beta1"] = fields.number("beta1", default=0.9, at_least=0, below=1)
        values["beta2"] = fields.number("beta2", default=0.999, at_least=0, below=1)
        values["eps"] = fields.number("eps", default=1e-8, above=0)
    return Optimizer(kind, **values)


def _layers(fields: Fields, input_shape: tuple[int, ...], model: str) -> list[Layer]:
    """The layer list, with each layer's input size taken from the one before it."""
    items = fields.tables("layers", required=True)
    layers: list[Layer] = []
    shape = input_shape
    for item in items:
        kind = item.choice("type", LAYER_TYPES, required=True)
        if kind in ("conv2d", "maxpool2d") and len(shape) != 3:
            raise item.error(
                f"{item.where('type')} = {kind!r} needs [channels, height, width] inputs; "
                f"here they are {list(shape)}"
                + (" (an mlp has no convolutions)" * (model == "mlp"))
            )
        if kind == "dense" and len(shape) != 1:
            raise item.error(
                f"{item.where('type')} = 'dense' needs flat inputs; here they are {list(shape)}: "
                'put { type = "flatten" } before it'
            )
        layer = _layer(item, kind, shape)
        out = layer.out_shape(shape)
        if min(out) < 1:
            raise item.error(f"{item.where('')} turns inputs {list(shape)} into {list(out)}")
        layers.append(layer)
        shape = out
    if not isinstance(layers[-1], Dense):
        raise fields.error(f"{fields.where('layers')}: the last layer must be dense (the outputs)")
    if model == "cnn" and not any(isinstance(layer, Conv2d) for layer in layers):
        raise fields.error(f"{fields.where('layers')}: a cnn has at least one conv2d layer")
    return layers


def _layer(item: Fields, kind: str, shape: tuple[int, ...]) -> Layer:
    if kind == "flatten":
        item.only("type")
        return Flatten()
    if kind == "maxpool2d":
        item.only("type", "size", "stride")
        size = item.integer("size", required=True, minimum=1)
        return MaxPool2d(size, item.integer("stride", default=size, minimum=1))
    activation = item.choice("activation", ACTIVATIONS, default="none")
    activation = None if activation == "none" else activation
    if kind == "dense":
        item.only("type", "units", "activation")
        return Dense(shape[0], item.integer("units", required=True, minimum=1), activation)
    item.only("type", "channels", "kernel", "stride", "padding", "activation")
    return Conv2d(
        in_channels=shape[0],
        out_channels=item.integer("channels", required=True, minimum=1),
        kernel=item.integer("kernel", required=True, minimum=1),
        stride=item.integer("stride", default=1, minimum=1),
        padding=item.integer("padding", default=0, minimum=0),
        activation=activation,
    )
