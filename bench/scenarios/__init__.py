"""The five workloads of the articles, as frozen data, and the profiles that size them.

A scenario fixes everything an implementation must reproduce: data, architecture, init rule,
loss, optimizer, batch sampling, budget per profile, quality target, and what the article
published. Nothing here runs anything; the FLOP counts are derived from the layer list.
"""

from bench.scenarios.catalogue import SCENARIOS, TORCH_INIT_DEVIATION, scenario_for
from bench.scenarios.model import (
    MODELS,
    OVERRIDABLE,
    PROFILES,
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
    ServingLoad,
    ServingSpec,
    smoke_budget,
)
from bench.scenarios.stored import scenario_from_json, scenario_to_json

__all__ = [
    "MODELS",
    "OVERRIDABLE",
    "PROFILES",
    "SCENARIOS",
    "TORCH_INIT_DEVIATION",
    "Budget",
    "Conv2d",
    "Dense",
    "Flatten",
    "KMeansSpec",
    "Layer",
    "MaxPool2d",
    "Optimizer",
    "Published",
    "Scenario",
    "ServingLoad",
    "ServingSpec",
    "scenario_for",
    "scenario_from_json",
    "scenario_to_json",
    "smoke_budget",
]
