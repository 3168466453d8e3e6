"""The conformance gate of `bench run`: before an implementation is timed on a scenario, the
conformance checks of that pair run, and their verdict goes with every case of the pair.

A pair that fails a check is *non-conforming*: its cases still run, and their numbers are
shown with the failed check, but never ranked, charted as fastest or used as the reference of
speed-ups (`outcomes.NON_CONFORMING`). `bench run --no-check` skips the gate and every number
of its cases is flagged *unverified*. A scenario the implementation turns out not to support
(a user's scenario, which discovery did not know) makes its cases *unsupported*.

The checks run in a process of their own, started limited to 1 thread as a worker is, so the
thread-limit check looks at that process instead of starting another. Verdicts are cached in
`<user cache dir>/conformance/`, keyed by

- the plugin's source: a digest of every file of its folder, or its distribution's name and
  version (`plugins.source_digest`, which a cluster compares between machines too),
- the harness: its version and a digest of the checks, the reference math and the contract,
- the scenario's definition as the run stored it, with the digests of a dataset file,

so that a warm cache costs a few file digests per pair. A check that could not finish (the
process timed out or died) is a failed check too, and is not cached.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

import platformdirs

import bench
from bench import outcomes, plugins
from bench.execution import launcher, threads
from bench.files import atomic_write_json, write_cache
from bench.records import Case, Conformance

CACHE_DIR = Path(platformdirs.user_cache_dir("bench")) / "conformance"
# Loading TensorFlow and running every check on a busy 2-core machine takes a minute; far
# more means the plugin is stuck.
GATE_TIMEOUT_S = 600.0
HARNESS_ROOT = Path(bench.__file__).resolve().parent
# The harness files a verdict depends on: the checks, the reference math, the contract, the
# initial parameters, the thread limits and the checks' own data. (Not the whole package, as
# a cluster compares it: a change to the report must not run every check again.)
HARNESS_FILES = (
    "conformance",
    "reference.py",
    "api.py",
    "execution/weights.py",
    "execution/threads.py",
    "datasets",
    "scenarios/model.py",
    "scenarios/stored.py",
)
# Harness files that are not its source.
IGNORED_PARTS = {"__pycache__"}


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What the gate decided for one implementation on one scenario."""

    conformance: Conformance
    unsupported: str | None = None  # the implementation's reason, when it cannot run it


def gate_cases(
    cases: Iterable[Case],
    definitions: dict[str, dict],
    *,
    on_verdict: Callable[[Case, Verdict], None] = lambda case, verdict: None,
) -> list[Case]:
    """The cases with the gate's verdict set, each pair checked once (or read from the cache).
    Cases that will not run, cases with a verdict already (`--no-check`'s unverified) and
    serving cases are kept as they are: a serving case's servers are no plugins, and the case
    itself checks their labels against the reference before it measures them."""
    verdicts: dict[str, Verdict] = {}
    gated = []
    for case in cases:
        if not case.will_run or case.conformance is not None:
            gated.append(case)
            continue
        definition = definitions[case.scenario]
        if definition.get("serving"):
            gated.append(case)
            continue
        key = cache_key(case, definition)
        if key not in verdicts:
            verdicts[key] = verdict(case, definition, key)
            on_verdict(case, verdicts[key])
        found = verdicts[key]
        if found.unsupported:
            case = dataclasses.replace(case, status=outcomes.UNSUPPORTED, reason=found.unsupported)
        gated.append(dataclasses.replace(case, conformance=found.conformance))
    return gated


def verdict(case: Case, definition: dict, key: str | None = None) -> Verdict:
    """The verdict on the case's implementation and scenario: from the cache, else checked
    (and then cached)."""
    key = key or cache_key(case, definition)
    path = CACHE_DIR / f"{key}.json"
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        conformance = dataclasses.replace(
            Conformance.from_json(cached["conformance"]), cached=True, seconds=0.0
        )
        return Verdict(conformance, cached.get("unsupported"))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    started = time.perf_counter()
    found, complete = _check_in_subprocess(case, definition)
    seconds = time.perf_counter() - started
    found = dataclasses.replace(
        found, conformance=dataclasses.replace(found.conformance, seconds=seconds)
    )
    if complete:
        entry = {
            "conformance": found.conformance.to_json(),
            "unsupported": found.unsupported,
            "implementation": case.implementation,
            "scenario": case.scenario,
        }
        write_cache(path, lambda out: out.write(json.dumps(entry).encode()))
    return found


def cache_key(case: Case, definition: dict) -> str:
    dataset = case.dataset
    parts = [
        source_digest(case.source),
        case.implementation,
        case.model,
        harness_digest(),
        definition,
        dataset.files if dataset is not None and dataset.from_file else None,
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@functools.cache
def harness_digest() -> str:
    """The harness version and the content of the files a verdict depends on."""
    try:
        version = importlib.metadata.version("bench")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        version = "not installed"
    digest = hashlib.sha256(version.encode())
    for name in HARNESS_FILES:
        for path in _files(HARNESS_ROOT / name):
            digest.update(str(path.relative_to(HARNESS_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def source_digest(source: str) -> str | None:
    """The digest of a plugin's files (`plugins.source_digest`), once per command."""
    return plugins.source_digest(source)


def _files(target: Path) -> list[Path]:
    if target.is_file():
        return [target]
    return sorted(
        path
        for path in target.rglob("*")
        if path.is_file()
        and not IGNORED_PARTS & set(path.relative_to(target).parts)
        and not path.name.startswith(".")
        and path.suffix != ".pyc"
    )


def _check_in_subprocess(case: Case, definition: dict) -> tuple[Verdict, bool]:
    """Run the checks in a fresh 1-thread process; (verdict, whether it is complete and may
    be cached)."""
    spec = {
        "source": case.source,
        "implementation": case.implementation,
        "model": case.model,
        "scenario": definition,
        "dataset": case.dataset.location if case.dataset and case.dataset.from_file else None,
    }
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as folder:
        spec_file, out = Path(folder) / "spec.json", Path(folder) / "verdict.json"
        atomic_write_json(spec_file, spec)
        done = launcher.run_python(
            ["-m", "bench.conformance.gate", str(spec_file), str(out)],
            threads=1,
            timeout=GATE_TIMEOUT_S,
            python_path=sys.path,  # a plugin (an entry point's package) may live anywhere on it
        )
        if done.timed_out:
            return _failed(f"the checks did not finish within {GATE_TIMEOUT_S:g} s"), False
        try:
            result = json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            return _failed(f"the checks' process ended without a verdict: {tail}"), False
    if "error" in result:
        return _failed(result["error"]), False
    return Verdict(_conformance(result["results"]), result.get("unsupported")), True


def _failed(detail: str) -> Verdict:
    return Verdict(Conformance(outcomes.NON_CONFORMING, ({"check": "gate", "detail": detail},)))


def _conformance(results: list[dict]) -> Conformance:
    failed = tuple({"check": r["name"], "detail": r["detail"]} for r in results if not r["passed"])
    return Conformance(
        outcomes.NON_CONFORMING if failed else outcomes.CONFORMING, failed, checks=len(results)
    )


# --- in the gate's process ------------------------------------------------------------------


def _check_here(spec: dict) -> dict:
    """Load the plugin, run every check on the scenario (on the run's dataset file, if it
    has one), and say what was found."""
    from bench import conformance, plugins
    from bench.scenarios import scenario_from_json

    cls = plugins.load_plugin(spec["source"], spec["implementation"], spec["model"])
    threads.apply_to_frameworks(1)
    scenario = scenario_from_json(spec["scenario"])
    if spec["dataset"]:
        scenario = dataclasses.replace(scenario, dataset=spec["dataset"])
    if why := cls.why_unsupported(scenario):
        return {"results": [], "unsupported": why}
    results = conformance.run_checks(cls, [scenario], limited_here=True)
    return {"results": [dataclasses.asdict(r) for r in results]}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m bench.conformance.gate SPEC.json OUT.json", file=sys.stderr)
        return 2
    spec_file, out = map(Path, argv)
    try:
        result = _check_here(json.loads(spec_file.read_text(encoding="utf-8")))
    except (Exception, SystemExit, KeyboardInterrupt) as error:
        result = {"error": f"{type(error).__name__}: {error}", "details": traceback.format_exc()}
    atomic_write_json(out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
