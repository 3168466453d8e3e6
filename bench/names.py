"""The one rule for the names users and plugins choose, and the one "unknown name" message.

Implementation names become folder names (`bench new`), class names and case ids, so they
are lowercase words joined by '-', starting with a letter: `numpy-vectorized`, `my-torch`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
NAME_RULE = "lowercase words joined by '-', starting with a letter, e.g. 'my-numpy'"
# How alike an unknown name must be to a valid one to be suggested (difflib's ratio).
SUGGESTION_CUTOFF = 0.5


class UnknownName(ValueError):
    """An unknown scenario, implementation, profile or dataset; says what is valid."""


def is_valid(name: str) -> bool:
    return bool(NAME.match(name))


def closest(name: str, valid: Iterable[str]) -> str | None:
    """The valid name most like `name`, if one is alike enough to suggest."""
    found = difflib.get_close_matches(name.lower(), list(valid), n=1, cutoff=SUGGESTION_CUTOFF)
    return found[0] if found else None


def unknown_name_message(kind: str, name: str, valid: Iterable[str]) -> str:
    valid = sorted(valid)
    suggestion = closest(name, valid)
    hint = f" Did you mean {suggestion!r}?" if suggestion else ""
    return f"unknown {kind} {name!r}.{hint} Valid: {', '.join(valid)}."


def check_name(kind: str, name: str, valid: Iterable[str]) -> None:
    """Raise `UnknownName` unless `name` is one of `valid`."""
    valid = list(valid)
    if name not in valid:
        raise UnknownName(unknown_name_message(kind, name, valid))
