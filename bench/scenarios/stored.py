"""A scenario's definition as plain data, and back: a run stores the definitions it ran, so
that its report never depends on the catalogue of the version that reads it."""

from __future__ import annotations

import dataclasses

from bench.scenarios.model import (
    Budget,
    Conv2d,
    Dense,
    Flatten,
    KMeansSpec,
    MaxPool2d,
    Optimizer,
    Published,
    Scenario,
    ServingLoad,
    ServingSpec,
)

_LAYER_TYPES = {cls.__name__: cls for cls in (Dense, Conv2d, MaxPool2d, Flatten)}


def scenario_to_json(scenario: Scenario) -> dict:
    """The whole definition as plain data: a run stores it, so that its report never depends
    on the catalogue of the version that reads it."""
    data = dataclasses.asdict(scenario)
    data["layers"] = [
        {"layer": type(layer).__name__, **dataclasses.asdict(layer)} for layer in scenario.layers
    ]
    return data


def scenario_from_json(data: dict) -> Scenario:
    def build(cls: type, values: dict | None):
        return None if values is None else cls(**values)

    layers = []
    for item in data.get("layers") or ():
        values = dict(item)
        layers.append(_LAYER_TYPES[values.pop("layer")](**values))
    return Scenario(
        **{
            **data,
            "budgets": {p: Budget(**b) for p, b in data["budgets"].items()},
            "published": tuple(Published(**p) for p in data.get("published") or ()),
            "deviations": tuple(data.get("deviations") or ()),
            "layers": tuple(layers),
            "input_shape": tuple(data.get("input_shape") or ()),
            "optimizer": build(Optimizer, data.get("optimizer")),
            "kmeans": build(KMeansSpec, data.get("kmeans")),
            "serving": _serving_from_json(data.get("serving")),
        }
    )


def _serving_from_json(data: dict | None) -> ServingSpec | None:
    if data is None:
        return None
    loads = {
        profile: tuple(
            ServingLoad(
                **{
                    **load,
                    "concurrencies": tuple(load["concurrencies"]),
                    "rates": tuple(load["rates"]),
                }
            )
            for load in levels
        )
        for profile, levels in data["loads"].items()
    }
    return ServingSpec(**{**data, "loads": loads})
