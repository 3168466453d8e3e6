"""Finding implementations: the `implementations/` folder, `--plugins DIR` folders, and
installed distributions exposing the entry-point group `bench.implementations`.

Each plugin source is imported on its own; one that fails is kept as a `BrokenPlugin` with
its file and error while the others load. A declared requirement that is not installed makes
the implementation *unavailable, with the reason* rather than absent.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

from bench.api import Implementation

ENTRY_POINT_GROUP = "bench.implementations"
BUILTIN_DIR = Path(__file__).resolve().parent.parent / "implementations"

# Where `pip install` can fix a missing requirement.
EXTRA_FOR = {"torch": "torch", "tensorflow": "tensorflow", "keras": "tensorflow"}

_collected: list[type[Implementation]] = []
_missing_imports: list[str] = []
# A source is imported once per process; later discoveries reuse what it registered.
_loaded: dict[str, tuple[list[type[Implementation]], list[str]]] = {}


def collect(cls: type[Implementation]) -> None:
    """Called by `bench.api.register`."""
    _collected.append(cls)


def note_missing_import(error: ImportError) -> None:
    """Called by `bench.api.optional_imports` when a framework import fails."""
    _missing_imports.append(error.name or str(error))


@dataclass(frozen=True)
class Plugin:
    """One registered implementation class and whether it can run here."""

    cls: type[Implementation]
    source: str  # "path:<file or folder>" or "entry-point:<name>"
    missing: tuple[str, ...] = ()  # requirements not importable here

    @property
    def name(self) -> str:
        return self.cls.name

    @property
    def model(self) -> str:
        return self.cls.model

    @property
    def available(self) -> bool:
        return not self.missing

    @property
    def unavailable_reason(self) -> str | None:
        if not self.missing:
            return None
        extras = sorted({EXTRA_FOR[m] for m in self.missing if m in EXTRA_FOR})
        hint = f"pip install 'bench[{','.join(extras)}]'" if extras else "install it"
        return f"requires {', '.join(self.missing)}, not installed ({hint})"


@dataclass(frozen=True)
class BrokenPlugin:
    source: str
    error: str  # one line: exception type and message
    details: str  # traceback, for --verbose output and the results store


@dataclass
class Registry:
    plugins: list[Plugin] = field(default_factory=list)
    broken: list[BrokenPlugin] = field(default_factory=list)

    def names(self) -> list[str]:
        return sorted({p.name for p in self.plugins})

    def for_model(self, model: str) -> list[Plugin]:
        return [p for p in self.plugins if p.model == model]

    def find(self, name: str, model: str) -> Plugin | None:
        return next((p for p in self.plugins if p.name == name and p.model == model), None)


def discover(
    plugin_dirs: Iterable[Path] = (),
    *,
    builtin: bool = True,
    installed: bool = True,
) -> Registry:
    registry = Registry()
    sources: list[tuple[str, object]] = []
    for folder in ([BUILTIN_DIR] if builtin else []) + [Path(d).resolve() for d in plugin_dirs]:
        if not folder.is_dir():
            registry.broken.append(BrokenPlugin(f"path:{folder}", "not a folder", ""))
            continue
        sources += [(f"path:{path}", path) for path in plugin_paths(folder)]
    if installed:
        sources += [
            (f"entry-point:{ep.name} ({ep.value})", ep)
            for ep in entry_points(group=ENTRY_POINT_GROUP)
        ]
    seen: dict[tuple[str, str], str] = {}
    for source, target in sources:
        try:
            classes, missing_imports = load_source(target)
        except Exception as error:
            registry.broken.append(
                BrokenPlugin(source, f"{type(error).__name__}: {error}", traceback.format_exc())
            )
            continue
        for cls in classes:
            key = (cls.name, cls.model)
            if key in seen:
                registry.broken.append(
                    BrokenPlugin(
                        source,
                        f"duplicate implementation {cls.name!r} for model {cls.model!r} "
                        f"(already registered by {seen[key]}); rename one",
                        "",
                    )
                )
                continue
            seen[key] = source
            registry.plugins.append(Plugin(cls, source, _missing(cls, missing_imports)))
    return registry


def plugin_paths(folder: Path) -> list[Path]:
    """Modules (`*.py`) and packages (sub-folders with `__init__.py`) directly in `folder`."""
    found = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(("_", ".")):
            continue
        if (path.is_file() and path.suffix == ".py") or (path / "__init__.py").is_file():
            found.append(path)
    return found


def load_source(target: object) -> tuple[list[type[Implementation]], list[str]]:
    """Import one plugin source; return the classes it registered and the framework imports
    that `optional_imports` caught."""
    key = str(target.resolve()) if isinstance(target, Path) else f"{target.name}={target.value}"
    if key in _loaded:
        return _loaded[key]
    start, start_missing = len(_collected), len(_missing_imports)
    if isinstance(target, Path):
        _import_path(target)
    else:
        loaded = target.load()  # an importlib.metadata.EntryPoint
        if isinstance(loaded, type) and loaded not in _collected:
            from bench.api import register

            register(loaded)
    _loaded[key] = list(_collected[start:]), list(_missing_imports[start_missing:])
    return _loaded[key]


def _import_path(path: Path) -> None:
    """Import a plugin file or package under a unique private module name, so that folder
    names like `numpy-vectorized` need not be valid identifiers and two plugin folders may
    both contain `mlp.py`."""
    path = path.resolve()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    module_name = f"bench_plugins.{stem}_{digest}"
    sys.modules.setdefault(
        "bench_plugins",
        importlib.util.module_from_spec(
            importlib.machinery.ModuleSpec("bench_plugins", None, is_package=True)
        ),
    )
    if path.is_dir():
        spec = importlib.util.spec_from_file_location(
            module_name, path / "__init__.py", submodule_search_locations=[str(path)]
        )
    else:
        spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise


def _missing(cls: type[Implementation], missing_imports: list[str]) -> tuple[str, ...]:
    declared = [r for r in cls.requires if importlib.util.find_spec(r) is None]
    undeclared = [m for m in missing_imports if m.split(".")[0] not in cls.requires]
    return tuple(declared + undeclared)


def load_plugin(source: str, name: str, model: str) -> type[Implementation]:
    """In a worker: import only the source that holds `name`/`model` and return its class."""
    kind, _, rest = source.partition(":")
    if kind == "path":
        target: object = Path(rest)
    else:
        ep_name = rest.split(" (", 1)[0]
        target = next(ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == ep_name)
    classes, _ = load_source(target)
    for cls in classes:
        if cls.name == name and cls.model == model:
            return cls
    raise LookupError(f"{source} did not register {name!r} for model {model!r}")
