"""Finding implementations: the `implementations/` folder, `--plugins DIR` folders, and
installed distributions exposing the entry-point group `bench.implementations`.

Each plugin source is imported on its own; one that fails is kept as a `BrokenPlugin` with
its file and error while the others load. A declared requirement that is not installed makes
the implementation *unavailable, with the reason* rather than absent.

Importing a plugin imports its framework (TensorFlow alone takes seconds), so what a plugin
folder declares is cached, keyed by its files' sizes and modification times: listing and
planning then import nothing, and only the worker of a case imports its own plugin.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import re
import sys
import tempfile
import traceback
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

import platformdirs

from bench.api import Implementation
from bench.files import write_cache
from bench.scenarios import SCENARIOS, Scenario

ENTRY_POINT_GROUP = "bench.implementations"
BUILTIN_DIR = Path(__file__).resolve().parent.parent / "implementations"
CACHE_FILE = Path(platformdirs.user_cache_dir("bench")) / "plugins.json"
# Files whose change alters what a plugin declares (its scenarios' support, the contract).
_HARNESS_FILES = ("api.py", "scenarios.py", "registry.py")

# What native libraries print to stderr when imported (TensorFlow's oneDNN notice, written by
# absl before any Python logging setting applies): dropped while a plugin is imported.
NATIVE_CHATTER = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
    r"STDERR|I0000 \S+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\..*)$"
)

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
class PluginInfo:
    """What an implementation class declares, in plain data (cacheable, no import needed)."""

    name: str
    model: str
    framework: str
    requires: tuple[str, ...]
    devices: tuple[str, ...]
    unsupported: dict[str, str]  # scenario -> why the framework cannot express it
    deviations: dict[str, tuple[str, ...]]  # scenario -> declared deviations
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
            deviations={s.name: impl.deviations_for(s) for s in scenarios},
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
        return load_plugin(self.source, self.name, self.model)

    def why_unsupported(self, scenario: Scenario) -> str | None:
        return self.info.unsupported.get(scenario.name)

    def deviations_for(self, scenario: Scenario) -> tuple[str, ...]:
        return self.info.deviations.get(scenario.name, ())

    @property
    def available(self) -> bool:
        return not self.missing

    @property
    def unavailable_reason(self) -> str | None:
        if not self.missing:
            return None
        extras = sorted({EXTRA_FOR[m] for m in self.missing if m in EXTRA_FOR})
        hint = self.info.install_hint or (
            f"pip install 'bench[{','.join(extras)}]'" if extras else "install it"
        )
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
    cache = _read_cache()
    cache_changed = False
    seen: dict[tuple[str, str], str] = {}
    for source, target in sources:
        key = _cache_key(source, target)
        if key in cache:
            infos = [PluginInfo.from_json(item) for item in cache[key]]
        else:
            try:
                classes, missing_imports = load_source(target)
            except Exception as error:
                registry.broken.append(
                    BrokenPlugin(source, f"{type(error).__name__}: {error}", traceback.format_exc())
                )
                continue
            infos = [PluginInfo.of(cls, missing_imports) for cls in classes]
            if key is not None:
                cache[key] = [asdict(info) for info in infos]
                cache_changed = True
        for info in infos:
            identity = (info.name, info.model)
            if identity in seen:
                registry.broken.append(
                    BrokenPlugin(
                        source,
                        f"duplicate implementation {info.name!r} for model {info.model!r} "
                        f"(already registered by {seen[identity]}); rename one",
                        "",
                    )
                )
                continue
            seen[identity] = source
            registry.plugins.append(Plugin(info, source, _missing(info)))
    if cache_changed:
        write_cache(CACHE_FILE, lambda out: out.write(json.dumps(cache).encode()))
    return registry


def _cache_key(source: str, target: object) -> str | None:
    """Changes whenever a file of the plugin folder, the harness contract or the Python
    environment changes. Entry points are not cached: their code lives elsewhere."""
    if not isinstance(target, Path):
        return None
    files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    harness = [Path(__file__).parent / name for name in _HARNESS_FILES]
    stamp = [(str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in [*files, *harness]]
    return hashlib.sha256(json.dumps([source, sys.executable, stamp]).encode()).hexdigest()


def _read_cache() -> dict:
    try:
        return json.loads(CACHE_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


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
    # TensorFlow logs start-up chatter to stderr when a plugin imports it; keep it to errors.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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
        with _without_native_chatter():
            spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise


@contextlib.contextmanager
def _without_native_chatter():
    """Run the block with file descriptor 2 in a temporary file, then pass on to stderr
    every line written there except the known start-up notices of native libraries."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable descriptor 2 (embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                if not NATIVE_CHATTER.match(line.rstrip("\n"))
            ]
            if kept:
                sys.stderr.write("".join(kept))


def _missing(info: PluginInfo) -> tuple[str, ...]:
    """Requirements not importable here: declared ones, and framework imports that failed
    without being declared. Checked on every discovery: installing one makes it available."""
    candidates = [*info.requires, *info.missing_imports]
    missing = [name for name in dict.fromkeys(candidates) if not _importable(name)]
    return tuple(missing)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


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
