"""Typed fields of a scenario file's TOML tables, with errors that name the file, the field (as
a dotted path), the value found and the values that are valid."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import names


class ScenarioFileError(ValueError):
    """A scenario file cannot be read or holds a mistake; the message names the file, the
    field, the value found and what is valid."""


_REQUIRED = object()


class Fields:
    """One TOML table, its file and its dotted path, and typed getters that raise
    ScenarioFileError naming the field, the value found and what is valid."""

    def __init__(self, data: Any, path: Path, prefix: str) -> None:
        self.data, self.path, self.prefix = data, path, prefix

    def where(self, key: str) -> str:
        return ".".join(part for part in (self.prefix, key) if part) or "the file"

    def error(self, message: str) -> ScenarioFileError:
        return ScenarioFileError(f"{self.path}: {message}")

    def only(self, *valid: str) -> None:
        for key in self.data:
            if key not in valid:
                suggestion = names.closest(key, valid)
                hint = f" Did you mean {suggestion!r}?" if suggestion else ""
                raise self.error(
                    f"{self.where(key)} is not a field here.{hint} Valid fields: {', '.join(valid)}"
                )

    def _get(self, key: str, default: Any, expected: str) -> Any:
        if key in self.data:
            return self.data[key]
        if default is _REQUIRED:
            raise self.error(f"{self.where(key)} is missing: it takes {expected}")
        return default

    def _bad(self, key: str, value: Any, expected: str) -> ScenarioFileError:
        return self.error(f"{self.where(key)} = {_shown(value)} is not valid: it takes {expected}")

    def text(self, key: str, *, required: bool = False, default: str | None = None) -> str:
        value = self._get(key, _REQUIRED if required else default, "text in quotes")
        if not isinstance(value, str):
            raise self._bad(key, value, "text in quotes")
        return value

    def texts(self, key: str) -> list[str]:
        value = self._get(key, [], "a list of texts")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad(key, value, 'a list of texts, e.g. ["…", "…"]')
        return value

    def choice(self, key: str, valid: tuple[str, ...], *, required=False, default=None) -> str:
        expected = f"one of {', '.join(valid)}"
        value = self._get(key, _REQUIRED if required else default, expected)
        if value not in valid:
            suggestion = names.closest(value, valid) if isinstance(value, str) else None
            hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
            raise self.error(
                f"{self.where(key)} = {_shown(value)} is not valid{hint}; valid values: "
                f"{', '.join(valid)}"
            )
        return value

    def integer(self, key: str, *, required=False, default=None, minimum: int) -> int | None:
        expected = f"a whole number of {minimum} or more"
        value = self._get(key, _REQUIRED if required else default, expected)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self._bad(key, value, expected)
        return value

    def integers(self, key: str, *, required=False, minimum: int) -> list[int]:
        expected = f"a list of whole numbers of {minimum} or more, e.g. [1, 28, 28]"
        value = self._get(key, _REQUIRED if required else [], expected)
        if not isinstance(value, list) or not value:
            raise self._bad(key, value, expected)
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int) or item < minimum:
                raise self._bad(key, value, expected)
        return value

    def number(
        self,
        key: str,
        *,
        required: bool = False,
        default: float | None = None,
        above: float | None = None,
        at_least: float | None = None,
        below: float | None = None,
        at_most: float | None = None,
    ) -> float | None:
        bounds = [
            f"above {above:g}" if above is not None else "",
            f"at least {at_least:g}" if at_least is not None else "",
            f"below {below:g}" if below is not None else "",
            f"at most {at_most:g}" if at_most is not None else "",
        ]
        expected = "a number " + " and ".join(b for b in bounds if b)
        value = self._get(key, _REQUIRED if required else default, expected)
        if value is None:
            return None
        checks: list[Callable[[float], bool]] = [
            lambda v: above is None or v > above,
            lambda v: at_least is None or v >= at_least,
            lambda v: below is None or v < below,
            lambda v: at_most is None or v <= at_most,
        ]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not all(check(value) for check in checks)
        ):
            raise self._bad(key, value, expected.strip())
        return float(value)

    def table(self, key: str, *, required: bool = False) -> Fields:
        value = self._get(key, _REQUIRED if required else {}, "a table")
        if not isinstance(value, dict):
            raise self._bad(key, value, f"a table: [{self.where(key)}] or {key} = {{ … }}")
        return Fields(value, self.path, self.where(key))

    def tables(self, key: str, *, required: bool = False) -> list[Fields]:
        expected = "a list of tables, e.g. [{ … }, { … }]"
        value = self._get(key, _REQUIRED if required else [], expected)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self._bad(key, value, expected)
        if required and not value:
            raise self._bad(key, value, expected)
        return [Fields(v, self.path, f"{self.where(key)}[{i}]") for i, v in enumerate(value)]


def _shown(value: Any) -> str:
    """A value as TOML would write it, shortened."""
    if isinstance(value, bool):
        return str(value).lower()
    text = f'"{value}"' if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
