"""What an implementation declares, in plain data that can be cached and listed without
importing it, and whether it can run here: its requirements checked with the one rule
(`missing_requirements`), the reason it is skipped otherwise."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bench.api import Implementation
from bench.scenarios import SCENARIOS, Scenario

# Where `pip install` can fix a missing requirement.
EXTRA_FOR = {"torch": "torch", "tensorflow": "tensorflow", "keras": "tensorflow"}


def importable(module: str) -> bool:
    """Whether `module` (dotted names included) can be imported here, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package, or a bad name
        return False


def missing_requirements(modules: Iterable[str]) -> tuple[str, ...]:
    """The modules of `modules` that cannot be imported here, each once, in order."""
    return tuple(name for name in dict.fromkeys(modules) if not importable(name))


@dataclass(frozen=True)
class PluginInfo:
    """What an implementation class declares, in plain data (cacheable, no import needed)."""

    name: str
    model: str
    framework: str
    requires: tuple[str, ...]
    devices: tuple[str, ...]
    unsupported: dict[str, str]  # scenario -> why the framework cannot express it
    deviations: dict[str, tuple[str, ...]]  # scenario ("*": any other) -> declared deviations
    missing_imports: tuple[str, ...]  # framework imports `optional_imports` caught
    install_hint: str | None = None

    @classmethod
    def of(cls, impl: type[Implementation], missing_imports: Iterable[str]) -> PluginInfo:
        scenarios = [s for s in SCENARIOS.values() if s.model == impl.model]
        return cls(
            name=impl.name,
            model=impl.model,
            framework=impl.framework,
            requires=tuple(impl.requires),
            devices=tuple(impl.devices),
            unsupported={
                s.name: why for s in scenarios if (why := impl.why_unsupported(s)) is not None
            },
            deviations={
                **{s.name: impl.deviations_for(s) for s in scenarios},
                # what applies to a scenario discovery does not know (a user's)
                "*": tuple(text for key, text in impl.deviations.items() if key == "*"),
            },
            missing_imports=tuple(missing_imports),
            install_hint=impl.install_hint,
        )

    @classmethod
    def from_json(cls, data: dict) -> PluginInfo:
        return cls(
            **{
                **data,
                "requires": tuple(data["requires"]),
                "devices": tuple(data["devices"]),
                "deviations": {k: tuple(v) for k, v in data["deviations"].items()},
                "missing_imports": tuple(data["missing_imports"]),
            }
        )


@dataclass(frozen=True)
class Plugin:
    """One registered implementation and whether it can run here."""

    info: PluginInfo
    source: str  # "path:<file or folder>" or "entry-point:<name> (<value>)"
    missing: tuple[str, ...] = ()  # requirements not importable here

    @classmethod
    def found(cls, info: PluginInfo, source: str) -> Plugin:
        """Requirements are checked on every discovery: installing one makes it available.
        Undeclared framework imports that failed count as requirements too."""
        return cls(info, source, missing_requirements([*info.requires, *info.missing_imports]))

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def model(self) -> str:
        return self.info.model

    @property
    def framework(self) -> str:
        return self.info.framework

    @property
    def devices(self) -> tuple[str, ...]:
        return self.info.devices

    @property
    def cls(self) -> type[Implementation]:
        """The class itself: imports the plugin (and its framework)."""
        from bench.plugins.loading import load_plugin

        return load_plugin(self.source, self.name, self.model)

    def why_unsupported(self, scenario: Scenario) -> str | None:
        return self.info.unsupported.get(scenario.name)

    def deviations_for(self, scenario: Scenario) -> tuple[str, ...]:
        known = self.info.deviations
        return known[scenario.name] if scenario.name in known else known.get("*", ())

    @property
    def available(self) -> bool:
        return not self.missing

    @property
    def unavailable_reason(self) -> str | None:
        return requirements_reason(self.missing, self.info.install_hint)


def requirements_reason(missing: Sequence[str], install_hint: str | None = None) -> str | None:
    """Why an implementation with these missing requirements cannot run, and the fix."""
    if not missing:
        return None
    extras = sorted({EXTRA_FOR[m] for m in missing if m in EXTRA_FOR})
    hint = install_hint or (f"pip install 'bench[{','.join(extras)}]'" if extras else "install it")
    return f"requires {', '.join(missing)}, not installed ({hint})"


@dataclass(frozen=True)
class BrokenPlugin:
    source: str
    error: str  # one line: exception type and message
    details: str  # traceback, for --verbose output and the results store


@dataclass(frozen=True)
class Unregistered:
    """A Trainer or Clusterer subclass a plugin source defines but never registers."""

    source: str
    what: str  # "MyMLP (a Trainer, in path/to/file.py)"


@dataclass
class Registry:
    plugins: list[Plugin] = field(default_factory=list)
    broken: list[BrokenPlugin] = field(default_factory=list)
    unregistered: list[Unregistered] = field(default_factory=list)

    def names(self) -> list[str]:
        return sorted({p.name for p in self.plugins})

    def for_model(self, model: str) -> list[Plugin]:
        return [p for p in self.plugins if p.model == model]

    def find(self, name: str, model: str) -> Plugin | None:
        return next((p for p in self.plugins if p.name == name and p.model == model), None)
