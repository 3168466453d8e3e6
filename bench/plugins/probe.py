"""Imports one plugin source in a process of its own and writes what it declares:
`python -m bench.plugins.probe SOURCE OUT.json`, started by discovery with a time limit, so
that a plugin whose import hangs (or kills its process) cannot take the command with it.

OUT.json holds {"declared": [PluginInfo as JSON, ...], "unregistered": ["MyMLP (a Trainer, in
…)", ...]} or, when the import raised,
{"error": "Type: message", "details": traceback}.
"""

from __future__ import annotations

import dataclasses
import sys
import traceback
from pathlib import Path

from bench.execution import launcher
from bench.files import atomic_write_json
from bench.plugins.declarations import PluginInfo
from bench.plugins.loading import load_source, source_target


def declare(source: str) -> dict:
    try:
        collected = load_source(source_target(source))
        infos = [PluginInfo.of(cls, collected.missing_imports) for cls in collected.classes]
    except (Exception, SystemExit, KeyboardInterrupt) as error:
        return {"error": f"{type(error).__name__}: {error}", "details": traceback.format_exc()}
    return {
        "declared": [dataclasses.asdict(info) for info in infos],
        "unregistered": collected.unregistered,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m bench.plugins.probe SOURCE OUT.json", file=sys.stderr)
        return 2
    source, out = argv
    atomic_write_json(Path(out), declare(source))
    return 0


if __name__ == "__main__":
    launcher.exit_child(main())
