"""What every record's JSON shares: known fields kept, unknown ones carried in `extra`."""

from __future__ import annotations

import dataclasses
import math


def _known(cls: type, data: dict) -> tuple[dict, dict]:
    """Split `data` into the fields of dataclass `cls` and the rest."""
    names = {f.name for f in dataclasses.fields(cls)}
    return (
        {k: v for k, v in data.items() if k in names},
        {k: v for k, v in data.items() if k not in names},
    )


def _without_none(data: dict) -> dict:
    return {k: v for k, v in data.items() if v is not None}


class _Flat:
    """JSON of a record whose fields are all plain values."""

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict):
        known, _ = _known(cls, data)
        return cls(**known)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
