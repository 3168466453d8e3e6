"""Where user scenarios come from, and the scenarios a command knows: the built-in catalogue
and those loaded from

1. `$BENCH_SCENARIOS`: files or folders of `*.toml`, separated by the path separator (`:`);
2. `--scenarios PATH` on the command line (a file or a folder, repeatable);
3. installed distributions exposing the entry-point group `bench.scenarios`: the entry point
   names a `Scenario`, a list of them, the path of a TOML file or folder (a `str` or a
   `Path`, e.g. `importlib.resources.files(__package__) / "scenarios.toml"`), or a function
   returning one of these.

A scenario name is defined once: a second definition (or one of a built-in's name) is an
error naming both sources. The CLI loads them once per command (`use`); a run stores every
definition it ran, so its report never needs them again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from bench.scenarios.catalogue import SCENARIOS
from bench.scenarios.files import ScenarioFileError, read_scenario_file
from bench.scenarios.model import Scenario

ENV_VARIABLE = "BENCH_SCENARIOS"
ENTRY_POINT_GROUP = "bench.scenarios"

COMMAND_LINE = "--scenarios"

# The user scenarios this process loaded (`use`), by name: each with where it came from and
# whether the command line named its file.
_loaded: dict[str, tuple[Scenario, str, bool]] = {}


def known() -> dict[str, Scenario]:
    """Every scenario this command knows: the built-in catalogue, then the loaded ones."""
    return {**SCENARIOS, **{name: loaded[0] for name, loaded in _loaded.items()}}


def named_on_command_line() -> list[Scenario]:
    """The scenarios of the files given with --scenarios, in the order they were read."""
    return [scenario for scenario, _, named in _loaded.values() if named]


def origin(name: str) -> str:
    """Where a scenario came from: "built-in", a file, or an entry point."""
    return _loaded[name][1] if name in _loaded else "built-in"


def use(paths: Sequence[Path] = (), *, environment: bool = True, installed: bool = True) -> None:
    """Load the user scenarios of this command (replacing any loaded before): from
    `$BENCH_SCENARIOS`, then `paths`, then the `bench.scenarios` entry points."""
    _loaded.clear()
    sources: list[tuple[str, Iterable[Scenario], bool]] = []
    if environment:
        for text in filter(None, os.environ.get(ENV_VARIABLE, "").split(os.pathsep)):
            sources += [(*found, False) for found in _from_path(Path(text), f"${ENV_VARIABLE}")]
    for path in paths:
        sources += [(*found, True) for found in _from_path(Path(path), COMMAND_LINE)]
    if installed:
        for point in entry_points(group=ENTRY_POINT_GROUP):
            where = f"entry point {point.name} ({point.value})"
            sources.append((where, _from_entry_point(point.load, where), False))
    found: dict[str, tuple[Scenario, str, bool]] = {}
    for where, scenarios, named in sources:
        for scenario in scenarios:
            first = (
                "the built-in catalogue" if scenario.name in SCENARIOS
                else found[scenario.name][1] if scenario.name in found else None
            )  # fmt: skip
            if first:
                raise ScenarioFileError(
                    f"scenario {scenario.name!r} in {where} is already defined by {first}; "
                    "rename one of them"
                )
            found[scenario.name] = (scenario, where, named)
    _loaded.update(found)


def _from_path(path: Path, given_by: str) -> list[tuple[str, list[Scenario]]]:
    """The scenarios of a TOML file, or of every `*.toml` directly in a folder."""
    path = path.expanduser()
    if path.is_dir():
        files = sorted(path.glob("*.toml"))
        if not files:
            raise ScenarioFileError(f"{given_by} {path}: the folder holds no *.toml file")
        return [(str(file), read_scenario_file(file)) for file in files]
    if not path.is_file():
        raise ScenarioFileError(
            f"{given_by} {path}: no such file or folder; give a scenario file (*.toml) or a "
            "folder of them"
        )
    return [(str(path), read_scenario_file(path))]


def _from_entry_point(load, where: str) -> list[Scenario]:
    try:
        value = load()
        if callable(value) and not isinstance(value, Scenario):
            value = value()
    except ScenarioFileError:
        raise
    except Exception as error:
        raise ScenarioFileError(f"{where} failed: {type(error).__name__}: {error}") from None
    return _scenarios_of(value, where)


def _scenarios_of(value: Any, where: str) -> list[Scenario]:
    if isinstance(value, Scenario):
        return [value]
    if isinstance(value, str | os.PathLike):
        return [s for _, found in _from_path(Path(value), where) for s in found]
    if isinstance(value, Iterable):
        found = []
        for item in value:
            found += _scenarios_of(item, where)
        return found
    raise ScenarioFileError(
        f"{where} gave a {type(value).__name__}; it must give a Scenario, a list of them, or the "
        "path of a scenario file or folder"
    )
