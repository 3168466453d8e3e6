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
- the case's GPU, for a case that runs on one: its checks run there too, with TF32 off, as
  `bench check --device` runs them,

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
from bench.execution import devices, launcher, threads
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
    The uncached pairs of one implementation are checked in one process, so that its framework
    is imported once. Cases that will not run, cases with a verdict already (`--no-check`'s
    unverified) and serving cases are kept as they are: a serving case's servers are no
    plugins, and the case itself checks their labels against the reference before it measures
    them."""
    cases = list(cases)
    gated = [
        case
        for case in cases
        if case.will_run
        and case.conformance is None
        and not definitions[case.scenario].get("serving")
    ]
    keys = {case.id: cache_key(case, definitions[case.scenario]) for case in gated}
    pairs: dict[str, tuple[Case, dict]] = {}
    for case in gated:
        pairs.setdefault(keys[case.id], (case, definitions[case.scenario]))
    verdicts: dict[str, Verdict] = {}
    unchecked: dict[tuple[str, str], list[tuple[str, Case, dict]]] = {}
    for key, (case, definition) in pairs.items():
        if (cached := _cached(key)) is not None:
            verdicts[key] = cached
            on_verdict(case, cached)
        else:
            plugin = (case.source, case.implementation)
            unchecked.setdefault(plugin, []).append((key, case, definition))
    # One process per implementation, several at once: the checks time nothing.
    for _, found in launcher.in_parallel(_check, list(unchecked.values())):
        for key, verdict in found.items():
            verdicts[key] = verdict
            on_verdict(pairs[key][0], verdict)

    def with_verdict(case: Case) -> Case:
        if case.id not in keys:
            return case
        found = verdicts[keys[case.id]]
        if found.unsupported:
            case = dataclasses.replace(case, status=outcomes.UNSUPPORTED, reason=found.unsupported)
        return dataclasses.replace(case, conformance=found.conformance)

    return [with_verdict(case) for case in cases]


def verdict(case: Case, definition: dict, key: str | None = None) -> Verdict:
    """The verdict on the case's implementation and scenario: from the cache, else checked
    (and then cached)."""
    key = key or cache_key(case, definition)
    cached = _cached(key)
    return cached if cached is not None else _check([(key, case, definition)])[key]


def _cached(key: str) -> Verdict | None:
    try:
        cached = json.loads((CACHE_DIR / f"{key}.json").read_text(encoding="utf-8"))
        conformance = dataclasses.replace(
            Conformance.from_json(cached["conformance"]), cached=True, seconds=0.0
        )
        return Verdict(conformance, cached.get("unsupported"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _check(group: list[tuple[str, Case, dict]]) -> dict[str, Verdict]:
    """Check the pairs of one implementation (key, case, definition) in one process and cache
    every complete verdict. A pair's seconds are its own checks'; the first pair's also
    include starting the process and importing the plugin."""
    started = time.perf_counter()
    found = _check_in_subprocess(group)
    spent = sum(verdict.conformance.seconds for verdict, _ in found.values())
    verdicts = {}
    for index, (key, case, _) in enumerate(group):
        verdict, complete = found[key]
        seconds = verdict.conformance.seconds
        if index == 0:
            seconds += max(0.0, time.perf_counter() - started - spent)
        verdict = dataclasses.replace(
            verdict, conformance=dataclasses.replace(verdict.conformance, seconds=seconds)
        )
        if complete:
            entry = {
                "conformance": verdict.conformance.to_json(),
                "unsupported": verdict.unsupported,
                "implementation": case.implementation,
                "scenario": case.scenario,
            }
            write_cache(
                CACHE_DIR / f"{key}.json", lambda out, e=entry: out.write(json.dumps(e).encode())
            )
        verdicts[key] = verdict
    return verdicts


# Fields of a scenario's definition the checks never read: its budgets (the checks train a
# few steps of their own) and its descriptions. A new quick budget keeps every verdict.
UNCHECKED_FIELDS = frozenset({"budgets", "title", "article", "published", "deviations"})


def cache_key(case: Case, definition: dict) -> str:
    dataset = case.dataset
    parts = [
        source_digest(case.source),
        case.implementation,
        case.model,
        harness_digest(),
        {name: value for name, value in definition.items() if name not in UNCHECKED_FIELDS},
        dataset.files if dataset is not None and dataset.from_file else None,
        *([device] if (device := _checked_device(case)) else []),  # a CPU key as it always was
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _checked_device(case: Case) -> str | None:
    """Where the case's checks run: on its GPU, as `bench check --device` runs them (the
    thread-limit check stays on the CPU); None for the CPU."""
    return None if case.device == "cpu" else case.device


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


def _check_in_subprocess(group: list[tuple[str, Case, dict]]) -> dict[str, tuple[Verdict, bool]]:
    """Run the checks of one implementation's pairs in a fresh 1-thread process; for each
    pair's key, (verdict, whether it is complete and may be cached). The process writes its
    results pair by pair, so a crash or a hang keeps the verdicts of the pairs before it."""
    _, first, _ = group[0]
    spec = {
        "source": first.source,
        "implementation": first.implementation,
        "pairs": [
            {
                "key": key,
                "model": case.model,
                "scenario": definition,
                "dataset": case.dataset.location
                if case.dataset and case.dataset.from_file
                else None,
                "device": _checked_device(case),
            }
            for key, case, definition in group
        ],
    }
    timeout = GATE_TIMEOUT_S * len(group)
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as folder:
        spec_file, out = Path(folder) / "spec.json", Path(folder) / "verdict.json"
        atomic_write_json(spec_file, spec)
        done = launcher.run_python(
            ["-m", "bench.conformance.gate", str(spec_file), str(out)],
            threads=1,
            timeout=timeout,
            python_path=sys.path,  # a plugin (an entry point's package) may live anywhere on it
        )
        try:
            results = json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            results = {}
    if done.timed_out:
        ended = f"the checks did not finish within {timeout:g} s"
    else:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        ended = f"the checks' process ended without a verdict: {tail}"
    found = {}
    for key, _, _ in group:
        result = results.get(key)
        if result is None:
            found[key] = (_failed(ended), False)
        elif "error" in result:
            found[key] = (_failed(result["error"], result.get("seconds", 0.0)), False)
        else:
            conformance = _conformance(result["results"], result.get("seconds", 0.0))
            found[key] = (Verdict(conformance, result.get("unsupported")), True)
    return found


def _failed(detail: str, seconds: float = 0.0) -> Verdict:
    return Verdict(
        Conformance(
            outcomes.NON_CONFORMING, ({"check": "gate", "detail": detail},), seconds=seconds
        )
    )


def _conformance(results: list[dict], seconds: float) -> Conformance:
    failed = tuple({"check": r["name"], "detail": r["detail"]} for r in results if not r["passed"])
    return Conformance(
        outcomes.NON_CONFORMING if failed else outcomes.CONFORMING,
        failed,
        checks=len(results),
        seconds=seconds,
    )


# --- in the gate's process ------------------------------------------------------------------


def _check_here(spec: dict, out: Path) -> None:
    """For each pair, load the plugin of its model (once) and run every check on its
    scenario (on the run's dataset file, if it has one), writing what was found to `out`
    after each pair."""
    from bench import conformance
    from bench.scenarios import scenario_from_json

    results: dict[str, dict] = {}
    started = time.perf_counter()
    for pair in spec["pairs"]:
        try:
            cls = _plugin(spec["source"], spec["implementation"], pair["model"])
            scenario = scenario_from_json(pair["scenario"])
            if pair["dataset"]:
                scenario = dataclasses.replace(scenario, dataset=pair["dataset"])
            if why := cls.why_unsupported(scenario):
                result = {"results": [], "unsupported": why}
            else:
                if device := pair.get("device"):  # held to the CPU's tolerances: TF32 off
                    devices.exact_arithmetic(device)
                checked = conformance.run_checks(cls, [scenario], limited_here=True, device=device)
                result = {"results": [dataclasses.asdict(r) for r in checked]}
        except (Exception, SystemExit, KeyboardInterrupt) as error:
            result = _error(error)
        now = time.perf_counter()
        results[pair["key"]] = {**result, "seconds": now - started}
        started = now
        atomic_write_json(out, results)


@functools.cache
def _plugin(source: str, implementation: str, model: str) -> type:
    """The plugin class for one model, loaded once per process, limited to 1 thread."""
    from bench import plugins

    cls = plugins.load_plugin(source, implementation, model)
    threads.apply_to_frameworks(1)
    return cls


def _error(error: BaseException) -> dict:
    return {"error": f"{type(error).__name__}: {error}", "details": traceback.format_exc()}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m bench.conformance.gate SPEC.json OUT.json", file=sys.stderr)
        return 2
    spec_file, out = map(Path, argv)
    _check_here(json.loads(spec_file.read_text(encoding="utf-8")), out)
    return 0


if __name__ == "__main__":
    launcher.exit_child(main())
