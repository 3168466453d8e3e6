"""What every conformance check shares: its result, its failure, the seed and the device."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from bench.api import Implementation

SEED = 3  # every check's seed; SEED + 1 checks that the data order follows the seed


CHECKS = (
    "matches-reference",
    "deterministic",
    "exact-steps",
    "inputs-unmodified",
    "predict-labels",
    "parameter-layout",
    "thread-limit",
)


@dataclass(frozen=True)
class CheckResult:
    name: str  # "<scenario>/<check>"
    passed: bool
    detail: str
    skipped: bool = False  # did not apply (unsupported scenario, no reference yet): not a failure


class CheckFailed(Exception):
    """A check found a contract violation; the message says what and how to fix it."""


# The device `bench check --device` asked for; None: the implementation's CPU if it has one.
_CHOSEN_DEVICE: ContextVar[str | None] = ContextVar("chosen_device", default=None)


@contextlib.contextmanager
def on_device(device: str | None) -> Iterator[None]:
    """Every check inside builds its implementations on `device` (None: the default)."""
    token = _CHOSEN_DEVICE.set(device)
    try:
        yield
    finally:
        _CHOSEN_DEVICE.reset(token)


def device_for(cls: type[Implementation]) -> str:
    if (chosen := _CHOSEN_DEVICE.get()) is not None:
        return chosen
    return "cpu" if "cpu" in cls.devices else cls.devices[0]


def relative(a: float, b: float) -> float:
    return abs(a - b) / (abs(b) or 1.0)
