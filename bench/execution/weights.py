"""Initial parameters and centroids, made by the harness so that every implementation of a
scenario starts from exactly the same numbers for a given round seed."""

from __future__ import annotations

import math

import numpy as np

from bench.scenarios import Scenario


def initial_parameters(scenario: Scenario, seed: int) -> dict[str, np.ndarray]:
    """Canonical layout: dense W (in, out), conv W (out_c, in_c, kh, kw), b (out,)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(scenario.dtype)
    params: dict[str, np.ndarray] = {}
    for name, shape in scenario.parameter_shapes().items():
        is_bias = name.startswith("b")
        if scenario.init == "normal":  # Nielsen: weights and biases ~ N(0, 1)
            values = rng.standard_normal(shape)
        elif scenario.init == "scaled-normal":  # Deep Learning from Scratch: 0.01·N(0,1), b=0
            values = (
                np.zeros(shape) if is_bias else scenario.init_scale * rng.standard_normal(shape)
            )
        elif scenario.init == "torch-default":  # nn.Linear/nn.Conv2d: U(±1/√fan_in), W and b
            bound = 1 / math.sqrt(_fan_in(params, name, shape))
            values = rng.uniform(-bound, bound, size=shape)
        else:
            raise ValueError(f"scenario {scenario.name}: unknown init rule {scenario.init!r}")
        params[name] = values.astype(dtype)
    return params


def _fan_in(params: dict[str, np.ndarray], name: str, shape: tuple[int, ...]) -> int:
    if name.startswith("W"):
        return shape[0] if len(shape) == 2 else math.prod(shape[1:])
    weight = params["W" + name[1:]]  # a bias shares its layer's fan-in
    return weight.shape[0] if weight.ndim == 2 else math.prod(weight.shape[1:])


def initial_centroids(x: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    """k distinct points of `x`, chosen at random: the same for every implementation."""
    rng = np.random.default_rng(seed)
    return x[rng.choice(len(x), size=n_clusters, replace=False)].copy()
