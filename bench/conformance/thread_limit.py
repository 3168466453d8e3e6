"""The thread-limit check: the plugin, run in a worker-like process limited to 1 thread,
leaves every pool (BLAS, OpenMP, torch, TensorFlow, its own) at 1 thread."""

from __future__ import annotations

import importlib
import json
import pickle
import sys
import tempfile
from pathlib import Path

from bench import plugins
from bench.api import Clusterer
from bench.conformance.clusterers import tiny_blobs
from bench.conformance.common import SEED, CheckFailed, device_for
from bench.conformance.trainers import small_batches, tiny_data
from bench.execution import launcher, threads
from bench.execution.weights import initial_parameters
from bench.scenarios import Scenario

THREAD_PROBE_TIMEOUT_S = 600


# Same order as the worker: environment first, then the plugin and its framework, then the
# frameworks' own APIs, then the work.
_PROBE = """
import json, sys
from bench.execution import threads
threads.limit_environment(1)
from bench.conformance.thread_limit import thread_probe
spec = json.loads(sys.argv[1])
with open(spec["out"], "w") as out:
    json.dump(thread_probe(spec), out)
"""


def check_thread_limit(cls, scenario: Scenario) -> str:
    _exercise(cls, scenario)  # here first: a plugin that raises fails fast, with its traceback
    return _judged(_probed(cls, scenario))


def check_thread_limit_here(cls, scenario: Scenario) -> str:
    """The same check in this process, which must have been started limited to 1 thread
    before it imported anything (as the conformance gate's process is): no second process
    imports the framework again."""
    _exercise(cls, scenario)
    return _judged(threads.describe(cls.thread_counts()))


def _probed(cls, scenario: Scenario) -> dict:
    """`threads.describe()` of a fresh process limited to 1 thread that did a little work."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "threads.json"
        spec = {**_locate(cls), "scenario": pickle.dumps(scenario).hex(), "out": str(out)}
        done = launcher.run_python(
            ["-c", _PROBE, json.dumps(spec)],
            threads=1,
            timeout=THREAD_PROBE_TIMEOUT_S,
            python_path=sys.path,  # the plugin's module may live anywhere on this path
        )
        if done.timed_out:
            raise CheckFailed(f"the 1-thread worker process took over {THREAD_PROBE_TIMEOUT_S} s")
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise CheckFailed(
                "the 1-thread worker process failed: " + " | ".join(tail or ["no output"])
            )
        return json.loads(out.read_text())


def _judged(info: dict) -> str:
    counts = threads.pool_counts(info)
    text = ", ".join(f"{name}: {n}" for name, n in counts.items()) or "no thread pool loaded"
    if any(n != 1 for n in counts.values()):
        raise CheckFailed(
            f"limited to 1 thread, the process has {text}. Do not set thread counts in the "
            "plugin: the harness sets them before your framework is imported"
        )
    return f"limited to 1 thread: {text}"


def _locate(cls: type) -> dict:
    """How a fresh process finds `cls`: plugin folders and files are imported by path, under
    the same private module name (`bench.plugins.loading`); anything else by module name."""
    spec = {"module": cls.__module__, "qualname": cls.__qualname__, "path": None}
    parts = cls.__module__.split(".")
    if parts[0] == "bench_plugins" and len(parts) > 1:
        top = Path(sys.modules[".".join(parts[:2])].__file__)
        spec["path"] = str(top.parent if top.name == "__init__.py" else top)
    return spec


def _load_class(spec: dict) -> type:
    if spec["path"]:
        plugins.load_source(Path(spec["path"]))
        module = sys.modules[spec["module"]]
    else:
        module = importlib.import_module(spec["module"])
    found: object = module
    for part in spec["qualname"].split("."):
        found = getattr(found, part)
    return found  # type: ignore[return-value]


def thread_probe(spec: dict) -> dict:
    """In the probe process: load the plugin, apply 1 thread, do a little work, and return
    `threads.describe()` with the pools the plugin reports itself."""
    cls = _load_class(spec)
    threads.apply_to_frameworks(1)
    _exercise(cls, pickle.loads(bytes.fromhex(spec["scenario"])))
    return threads.describe(cls.thread_counts())


def _exercise(cls, scenario: Scenario) -> None:
    """A little of everything the plugin does in a round."""
    if issubclass(cls, Clusterer):
        x, init = tiny_blobs(scenario)
        clusterer = cls(scenario, SEED, device_for(cls))
        loaded = clusterer.load(x)
        clusterer.predict(loaded, clusterer.fit(loaded, init, 10, 1e-4).centroids)
    else:
        sampled = small_batches(scenario)
        x, y = tiny_data(sampled)
        trainer = cls(sampled, initial_parameters(sampled, SEED), SEED, device_for(cls))
        trainer.load(x, y)
        trainer.train(2)
        trainer.predict(x)
