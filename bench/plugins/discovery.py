"""Finding implementations: the `implementations/` folder, `--plugins DIR` folders, and
installed distributions exposing the entry-point group `bench.implementations`.

Each plugin source is imported on its own; one that fails is kept as a `BrokenPlugin` with
its file and error while the others load. A declared requirement that is not installed makes
the implementation *unavailable, with the reason* rather than absent.

Importing a plugin imports its framework (TensorFlow alone takes seconds), so what a plugin
folder declares is cached, keyed by its files' and the harness contract's sizes and
modification times: listing and planning then import nothing, and only the worker of a case
imports its own plugin. A source that is not cached is imported in a process of its own
(`bench.plugins.probe`) with a time limit, `$BENCH_PLUGIN_IMPORT_TIMEOUT`: a plugin whose
import hangs or crashes is reported broken, and the command goes on without it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import asdict
from importlib.metadata import entry_points
from pathlib import Path

import platformdirs

from bench import api
from bench.execution import launcher
from bench.files import write_cache
from bench.plugins import declarations
from bench.plugins.declarations import BrokenPlugin, Plugin, PluginInfo, Registry, Unregistered
from bench.plugins.loading import ENTRY_POINT_GROUP, Source
from bench.scenarios import catalogue, model


def _builtin_dir() -> Path:
    """The bundled implementations: a checkout's `implementations/` beside `bench/`, else
    the copy a wheel or sdist installed as the data-only package `bench_implementations`."""
    checkout = Path(__file__).resolve().parents[2] / "implementations"
    if checkout.is_dir():
        return checkout
    installed = importlib.util.find_spec("bench_implementations")
    if installed is not None and installed.submodule_search_locations:
        return Path(next(iter(installed.submodule_search_locations))).resolve()
    return checkout  # neither: reported as "not a folder" by discovery


BUILTIN_DIR = _builtin_dir()
CACHE_FILE = Path(platformdirs.user_cache_dir("bench")) / "plugins.json"
# The harness modules whose change alters what a plugin declares: the contract, the scenarios
# support is declared for, and how declarations are read.
_CONTRACT = (api, model, catalogue, declarations, sys.modules[__name__])
IMPORT_TIMEOUT_VARIABLE = "BENCH_PLUGIN_IMPORT_TIMEOUT"
# TensorFlow takes 5-20 s to import on a busy 2-core machine; a plugin that needs far more
# is waiting for something.
IMPORT_TIMEOUT_S = 120.0
# Folders inside a plugin that hold what was built or cached from its sources, not sources.
_NOT_SOURCE = {"__pycache__", "target", "build", "dist"}


def discover(
    plugin_dirs: Iterable[Path] = (),
    *,
    builtin: bool = True,
    installed: bool = True,
) -> Registry:
    registry = Registry()
    sources: list[tuple[str, Source]] = []
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
    keys = {source: _cache_key(source, target) for source, target in sources}
    # The sources not cached are imported, each in a process of its own, several at once.
    uncached = [source for source, _ in sources if keys[source] not in cache]
    probed = dict(launcher.in_parallel(_declare_in_subprocess, uncached))
    seen: dict[tuple[str, str], str] = {}
    for source, _ in sources:
        key = keys[source]
        if key in cache:
            infos = [PluginInfo.from_json(item) for item in cache[key]["declared"]]
            unregistered = cache[key]["unregistered"]
        else:
            declared = probed[source]
            if isinstance(declared, BrokenPlugin):
                registry.broken.append(declared)
                continue
            infos, unregistered = declared
            if key is not None:
                cache[key] = {
                    "declared": [asdict(info) for info in infos],
                    "unregistered": unregistered,
                }
                cache_changed = True
        registry.unregistered += [Unregistered(source, what) for what in unregistered]
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
            registry.plugins.append(Plugin.found(info, source))
    if cache_changed:
        write_cache(CACHE_FILE, lambda out: out.write(json.dumps(cache).encode()))
    return registry


def _declare_in_subprocess(source: str) -> tuple[list[PluginInfo], list[str]] | BrokenPlugin:
    """What `source` declares (and the classes it forgot to register), imported in a fresh
    process that gets the import time limit; what it prints is passed on."""
    try:
        limit = _import_timeout()
    except ValueError as error:  # every source not cached is then reported with the fix
        return BrokenPlugin(source, str(error), "")
    with tempfile.TemporaryDirectory(prefix="bench-plugin-") as folder:
        out = Path(folder) / "declared.json"
        done = launcher.run_python(
            ["-m", "bench.plugins.probe", source, str(out)],
            threads=1,
            timeout=limit,
            python_path=sys.path,  # a plugin (an entry point's package) may live anywhere on it
        )
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        if done.timed_out:
            return BrokenPlugin(
                source,
                f"import did not finish in {limit:g} s: does it wait for something when "
                f"imported? ({IMPORT_TIMEOUT_VARIABLE} sets the limit)",
                done.stderr,
            )
        try:
            result = json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            ended = (
                f"killed by {launcher.signal_name(done.returncode)}"
                if done.returncode is not None and done.returncode < 0
                else f"exit code {done.returncode}"
            )
            return BrokenPlugin(
                source, f"its import ended the process ({ended}) before it declared anything",
                done.stderr,
            )  # fmt: skip
    if "error" in result:
        return BrokenPlugin(source, result["error"], result["details"])
    return [PluginInfo.from_json(item) for item in result["declared"]], result["unregistered"]


def _import_timeout() -> float:
    text = os.environ.get(IMPORT_TIMEOUT_VARIABLE)
    try:
        value = float(text) if text else IMPORT_TIMEOUT_S
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ValueError(
            f"{IMPORT_TIMEOUT_VARIABLE}={text!r} is not a number of seconds above 0; "
            f"set it to e.g. {IMPORT_TIMEOUT_S:g} or unset it"
        )
    return value


def _cache_key(source: str, target: Source) -> str | None:
    """Changes whenever a file of the plugin folder, the harness contract or the Python
    environment changes. Entry points are not cached: their code lives elsewhere."""
    if not isinstance(target, Path):
        return None
    files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    contract = [Path(module.__file__) for module in _CONTRACT]
    stamp = [(str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in [*files, *contract]]
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


def relocated_source(source: str, builtin_dir: str) -> str:
    """`source` as this machine finds it, when `builtin_dir` is where the machine that planned
    it keeps its `implementations/` folder: a plugin of that folder is looked for in this
    checkout's own (each machine of a cluster may keep its checkout elsewhere); any other
    source is the same everywhere."""
    kind, _, location = source.partition(":")
    if kind != "path":
        return source
    try:
        inside = Path(location).relative_to(builtin_dir)
    except ValueError:
        return source
    return f"path:{BUILTIN_DIR / inside}"


def source_digest(source: str) -> str | None:
    """SHA-256 of a plugin source as this machine has it, or None when it has none: every
    file of a plugin folder (by relative path and content, build outputs left out), or an
    entry point's distribution and version."""
    kind, _, location = source.partition(":")
    digest = hashlib.sha256()
    if kind != "path":
        name = location.split(" (", 1)[0]
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if not found or found[0].dist is None:
            return None
        digest.update(f"{found[0].value} {found[0].dist.name} {found[0].dist.version}".encode())
        return digest.hexdigest()
    root = Path(location)
    if not root.exists():
        return None
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    for path in files:
        relative = path.relative_to(root) if root.is_dir() else Path(path.name)
        if any(part in _NOT_SOURCE or part.startswith(".") for part in relative.parts):
            continue
        digest.update(f"{relative.as_posix()}\0".encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()
