"""What a machine would run a case with (harness, Python, frameworks, plugin sources, the
machine itself), and how a worker's differs from the coordinator's: the check before any
case runs on a cluster."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import platform
import socket
from collections.abc import Sequence
from pathlib import Path

from bench import plugins
from bench.execution import environment

HARNESS_DIR = Path(__file__).resolve().parents[2]
# Facts of a machine that make its times differ from another's: `machine_id` digests them.
MACHINE_KEYS = ("cpu_model", "cores_logical", "cores_allowed", "memory_total_bytes", "os", "gpu")


def harness_digest() -> str:
    """SHA-256 of the harness's own files (the `bench` package), by relative path and
    content: two machines measure alike only if they run the same harness code."""
    digest = hashlib.sha256()
    for path in sorted(HARNESS_DIR.rglob("*")):
        relative = path.relative_to(HARNESS_DIR)
        if not path.is_file() or "__pycache__" in relative.parts:
            continue
        digest.update(f"{relative.as_posix()}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def worker_identity(sources: Sequence[str], builtin_dir: str) -> dict:
    """What this machine would run a case with: the harness, Python and the frameworks, the
    plugins the run uses (`sources`, as planned on a machine whose implementations/ folder
    is `builtin_dir`), and the machine itself. Called on every worker, and on the
    coordinator to compare."""
    try:
        version = importlib.metadata.version("bench")
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {
        **this_machine(),
        "harness": {"version": version, "digest": harness_digest()},
        "python": platform.python_version(),
        "packages": environment.package_versions(),
        "plugins": {
            source: plugins.source_digest(plugins.relocated_source(source, builtin_dir))
            for source in sources
        },
    }


def this_machine() -> dict:
    """This machine's name, the facts that make its times differ from another's, and a
    short digest of them."""
    facts = environment.machine_facts()
    machine = {key: facts.get(key) for key in MACHINE_KEYS}
    digest = hashlib.sha256("|".join(map(str, machine.values())).encode()).hexdigest()[:12]
    return {"host": socket.gethostname(), "machine": machine, "machine_id": digest}


def differences(mine: dict, theirs: dict, builtin_dir: str) -> list[str]:
    """How a worker's identity differs from the coordinator's, in words."""
    found = []
    harness, their_harness = mine["harness"], theirs["harness"]
    if harness != their_harness:
        found.append(
            f"harness bench {their_harness['version']} (source digest "
            f"{their_harness['digest'][:12]}) there, bench {harness['version']} "
            f"({harness['digest'][:12]}) here"
        )
    if mine["python"] != theirs["python"]:
        found.append(f"Python {theirs['python']} there, {mine['python']} here")
    for name, version in mine["packages"].items():
        other = theirs["packages"].get(name)
        if other != version:
            found.append(
                f"{name} {other or 'not installed'} there, {version or 'not installed'} here"
            )
    for source, digest in mine["plugins"].items():
        other = theirs["plugins"].get(source)
        if other == digest:
            continue
        name = _source_name(source, builtin_dir)
        found.append(
            f"plugin {name} is missing there"
            if other is None
            else f"plugin {name} differs (sha256 {other[:12]} there, {(digest or '-')[:12]} here)"
        )
    return found


def _source_name(source: str, builtin_dir: str) -> str:
    """A plugin source as a person knows it: implementations/NAME, or its path."""
    location = source.removeprefix("path:")
    with contextlib.suppress(ValueError):
        return f"implementations/{Path(location).relative_to(builtin_dir).as_posix()}"
    return location
