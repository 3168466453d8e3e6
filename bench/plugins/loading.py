"""Importing one plugin source (a file, a package folder or an entry point) and collecting
the implementations it registers, with the framework imports it lacked.

A source is imported once per process, under a private module name so that folder names like
`numpy-vectorized` need not be identifiers and two folders may both hold `mlp.py`. Native
libraries' start-up notices written to stderr while it imports are dropped.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import importlib.util
import os
import re
import sys
import tempfile
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from bench import api
from bench.api import Implementation

ENTRY_POINT_GROUP = "bench.implementations"
PRIVATE_PACKAGE = "bench_plugins"  # plugin files are imported as bench_plugins.<name>_<hash>

# What native libraries print to stderr when imported (TensorFlow's oneDNN notice, written by
# absl before any Python logging setting applies): dropped while a plugin is imported.
NATIVE_CHATTER = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
    r"STDERR|I0000 \S+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\..*)$"
)

Source = Path | EntryPoint
# Each source imported in this process: what it registered and the imports it lacked.
_loaded: dict[str, api.Collected] = {}


def load_source(target: Source) -> api.Collected:
    """Import one plugin source; return the classes it registered and the framework imports
    that `optional_imports` caught."""
    key = str(target.resolve()) if isinstance(target, Path) else f"{target.name}={target.value}"
    if key in _loaded:
        return _loaded[key]
    # TensorFlow logs start-up chatter to stderr when a plugin imports it; keep it to errors.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with api.collecting() as collected:
        if isinstance(target, Path):
            module_name = _import_path(target)
            collected.unregistered = _unregistered(module_name, collected.classes)
        else:
            loaded = target.load()
            if isinstance(loaded, type):  # an entry point may name a bare class
                api.register(loaded)
    _loaded[key] = collected
    return collected


def _import_path(path: Path) -> str:
    """Import a plugin file or package under a private name, and return that name."""
    path = path.resolve()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    module_name = f"{PRIVATE_PACKAGE}.{stem}_{digest}"
    sys.modules.setdefault(
        PRIVATE_PACKAGE,
        importlib.util.module_from_spec(
            importlib.machinery.ModuleSpec(PRIVATE_PACKAGE, None, is_package=True)
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
    return module_name


def _unregistered(module_name: str, registered: list[type]) -> list[str]:
    """The Trainer and Clusterer subclasses that the modules of one plugin source define but
    never register: a forgotten `@register` makes an implementation silently absent. A class
    that registered ones derive from is a base, not a mistake."""
    found = []
    for name, module in list(sys.modules.items()):
        if name != module_name and not name.startswith(module_name + "."):
            continue
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, api.Trainer | api.Clusterer)
                and value.__module__ == name
                and value not in registered
                and not any(issubclass(cls, value) for cls in registered)
            ):
                kind = "Trainer" if issubclass(value, api.Trainer) else "Clusterer"
                where = getattr(module, "__file__", None) or name
                found.append(f"{value.__qualname__} (a {kind}, in {where})")
    return sorted(found)


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


def source_target(source: str) -> Source:
    """The importable target of a `Plugin.source`: "path:<file or folder>" or
    "entry-point:<name> (<value>)"."""
    kind, _, rest = source.partition(":")
    if kind == "path":
        return Path(rest)
    name = rest.split(" (", 1)[0]
    return next(ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name)


def load_plugin(source: str, name: str, model: str) -> type[Implementation]:
    """In a worker: import only the source that holds `name`/`model` and return its class."""
    for cls in load_source(source_target(source)).classes:
        if cls.name == name and cls.model == model:
            return cls
    raise LookupError(f"{source} did not register {name!r} for model {model!r}")
