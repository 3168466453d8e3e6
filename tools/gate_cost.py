"""What the conformance gate of `bench run` costs, per implementation and scenario, on a cold
and on a warm cache. Run it on a quiet machine:

    .venv/bin/python tools/gate_cost.py                     # every available implementation
    .venv/bin/python tools/gate_cost.py -i numpy-vectorized -s dlfs-mlp   # one pair

Cold: an empty cache, so the checks run in their own process (start-up, imports of the
plugin's framework, every check). Warm: the verdict read back from the cache, with the
digests of the plugin's files and of the harness computed afresh, as a new `bench run`
does for the first case of each implementation. The cache used is a temporary folder: the
user's own cache is left alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import plugins  # noqa: E402
from bench.cli.options import split  # noqa: E402
from bench.conformance import gate  # noqa: E402
from bench.execution import plan  # noqa: E402
from bench.records import Case  # noqa: E402
from bench.scenarios import known, scenario_to_json  # noqa: E402


def measure(case: Case, definition: dict, warm_repeats: int) -> tuple[float, float, str]:
    """(cold seconds, median warm seconds, verdict) of one pair, from an empty cache."""
    started = time.perf_counter()
    cold = gate.verdict(case, definition)
    cold_seconds = time.perf_counter() - started
    warm = []
    for _ in range(warm_repeats):
        gate.source_digest.cache_clear()
        gate.harness_digest.cache_clear()
        started = time.perf_counter()
        found = gate.verdict(case, definition)
        warm.append(time.perf_counter() - started)
        assert found.conformance.cached, "the second look-up must come from the cache"
    verdict = "unsupported" if cold.unsupported else cold.conformance.verdict
    return cold_seconds, statistics.median(warm), verdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-i", "--impl", action="append", help="implementation(s)")
    parser.add_argument("-s", "--scenario", action="append", help="scenario(s)")
    parser.add_argument("--warm-repeats", type=int, default=5)
    args = parser.parse_args(argv)
    scenarios = known()
    implementations = split(args.impl)
    chosen = split(args.scenario) or list(scenarios)
    found = plugins.discover()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-gate-cost-") as cache:
        gate.CACHE_DIR = Path(cache)
        for plugin in sorted(found.plugins, key=lambda p: (p.name, p.model)):
            if (implementations and plugin.name not in implementations) or not plugin.available:
                continue
            for name in chosen:
                scenario = scenarios[name]
                # A serving case is not gated: its servers are no plugins (conformance/gate.py).
                if scenario.model != plugin.model or scenario.serving is not None:
                    continue
                (case,) = plan.plan(found, [scenario], implementations=[plugin.name],
                                    thread_counts=[1])  # fmt: skip
                if not case.will_run:
                    continue
                cold, warm, verdict = measure(case, scenario_to_json(scenario), args.warm_repeats)
                rows.append((plugin.name, name, cold, warm, verdict))
                print(f"{plugin.name:18} {name:14} cold {cold:7.2f} s   warm {warm * 1e3:7.1f} ms"
                      f"   {verdict}", flush=True)  # fmt: skip
    print("\nper implementation (all its scenarios):")
    for implementation in sorted({row[0] for row in rows}):
        mine = [row for row in rows if row[0] == implementation]
        print(
            f"{implementation:18} {len(mine)} scenario(s)   cold {sum(r[2] for r in mine):7.2f} s"
            f"   warm {sum(r[3] for r in mine) * 1e3:7.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
