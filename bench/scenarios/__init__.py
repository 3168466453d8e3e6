"""The workloads, as frozen data, and the profiles that size them: the articles' catalogue
(`catalogue`) and the user's scenario files and entry points (`files`, `sources`).

A scenario fixes everything an implementation must reproduce: data, architecture, init rule,
loss, optimizer, batch sampling, budget per profile, quality target, and what the article
published. Nothing here runs anything; the FLOP counts are derived from the layer list.
"""

from bench.scenarios.catalogue import SCENARIOS, TORCH_INIT_DEVIATION
from bench.scenarios.files import ScenarioFileError, read_scenario_file
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
from bench.scenarios.sources import ENV_VARIABLE, known, named_on_command_line, origin, use
from bench.scenarios.stored import scenario_from_json, scenario_to_json

__all__ = [
    "ENV_VARIABLE",
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
    "ScenarioFileError",
    "ServingLoad",
    "ServingSpec",
    "known",
    "named_on_command_line",
    "origin",
    "read_scenario_file",
    "scenario_for",
    "scenario_from_json",
    "scenario_to_json",
    "smoke_budget",
    "use",
]


def scenario_for(name: str, profile: str, overrides: dict[str, float] | None = None) -> Scenario:
    """The scenario a case runs: the named one (built-in or loaded) with the case's sweep
    overrides applied."""
    return known()[name].with_overrides(profile, overrides or {})
