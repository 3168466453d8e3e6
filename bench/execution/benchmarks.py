"""pytest-benchmark's own JSON of a case whose rounds ran in several worker processes.

Each process writes the JSON of its own rounds. The case keeps one file, so that
`pytest-benchmark compare results/<run>/benchmarks/*.json` shows one row per case: the first
process's file, with its benchmark's statistics recomputed by pytest-benchmark's own `Stats`
over the rounds in the statistics of every process (measured, not replaced by a re-run of a
disturbed round), the rounds of all of them in `extra_info`, and
the number of processes in `extra_info["processes"]`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from bench.files import atomic_write_json
from bench.records import RoundRecord


def merge(files: Sequence[Path], target: Path, rounds: Sequence[RoundRecord]) -> None:
    """Write the JSON of `files` (one per process, in order) as `target`; nothing if none."""
    if not files:
        return
    if len(files) == 1:
        os.replace(files[0], target)
        return
    from pytest_benchmark.stats import Stats

    merged = json.loads(files[0].read_text(encoding="utf-8"))
    replaced = {r.replaces for r in rounds if r.replaces is not None}
    stats = Stats()
    for record in rounds:
        if not record.warmup and record.round not in replaced:
            stats.update(record.wall_seconds)
    for benchmark in merged.get("benchmarks", [])[:1]:
        if stats:
            benchmark["stats"] = {**benchmark.get("stats", {}), **stats.as_dict()}
        extra = benchmark.setdefault("extra_info", {})
        extra["rounds"] = [r.to_json() for r in rounds]
        extra["replaced_rounds"] = sorted(replaced)
        extra["processes"] = len(files)
    atomic_write_json(target, merged)
    for file in files:
        file.unlink()
