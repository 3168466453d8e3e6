"""The conformance gate of `bench run`: an implementation that fails a check on a scenario is
timed but non-conforming, never ranked, charted as fastest or used as the reference; its
failed check is in the run and the report; verdicts are cached by plugin source, harness and
scenario definition; `--no-check` flags every number unverified."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
import runs
from conftest import PLUGINS, bench_command, smoke_args, stored_cases

from bench import outcomes, report
from bench.conformance import gate
from bench.execution import launcher, threads
from bench.records import Case, Conformance
from bench.scenarios import SCENARIOS, scenario_to_json
from bench.store import RunStore

HALFWAY = PLUGINS / "halfway"


@pytest.fixture
def gate_cache(tmp_path, monkeypatch):
    """A conformance cache of the test's own, in this process and in `bench` children."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setattr(gate, "CACHE_DIR", cache / "bench" / "conformance")
    return cache / "bench" / "conformance"


def only_run(results: Path) -> RunStore:
    (run,) = [p for p in results.iterdir() if (p / "run.json").is_file()]
    return RunStore(run)


def test_a_plugin_doing_half_the_updates_is_non_conforming_and_never_ranked(tmp_path, gate_cache):
    results = tmp_path / "results"
    args = ["--plugins", str(HALFWAY), "-s", "dlfs-mlp", "-i", "halfway,correct", "--rounds", "3"]
    done = bench_command(*smoke_args(*args, check=True), results=results)
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert "conformance: halfway on dlfs-mlp: FAILED matches-reference, exact-steps" in out
    assert "conformance: correct on dlfs-mlp: passed 7 checks" in out

    cases = stored_cases(results)
    halfway, correct = cases["halfway"], cases["correct"]
    assert halfway["status"] == outcomes.NON_CONFORMING
    assert (
        "exact-steps" in halfway["reason"] and "train(steps) must do exactly" in halfway["reason"]
    )
    assert halfway["case"]["conformance"]["verdict"] == outcomes.NON_CONFORMING
    assert len([r for r in halfway["rounds"] if not r["warmup"]]) == 3  # timed all the same
    assert correct["status"] == outcomes.OK
    assert correct["case"]["conformance"]["verdict"] == outcomes.CONFORMING
    assert "non-conforming" in out and "exact-steps" in out.split("non-conforming", 1)[1]

    store = only_run(results)
    context = report.build([store])
    (section,) = context["sections"]
    rows = {row.implementation: row for row in section["rows"]}
    assert not rows["halfway"].ok
    assert "non-conforming: failed matches-reference, exact-steps" in rows["halfway"].flags
    # Whatever its time, it is never the fastest, tied or the reference of the speed-ups.
    assert context["glance"][0]["fastest"] == "correct"
    assert {row.reference for row in section["rows"]} == {"correct"}
    css = {row["cells"][0].main: row["css"] for row in section["table"].rows}
    assert "fastest" not in css["halfway"] and "tied" not in css["halfway"]
    assert [p["implementation"] for p in context["problems"]] == ["halfway"]
    html = report.write([store], tmp_path / "reports").read_text()
    assert "non-conforming" in html and "exact-steps" in html
    assert "train(steps) must do exactly" in html

    # The verdicts are cached: a second run checks nothing again.
    again = bench_command(*smoke_args(*args, check=True), results=tmp_path / "again")
    assert again.returncode == 0, again.stderr
    again_out = " ".join(again.stdout.split())
    assert "FAILED matches-reference, exact-steps (cached)" in again_out
    # the cached passes are one line, however many pairs: a failure keeps a line of its own
    assert "1 pair(s) passed every check, as cached (correct on dlfs-mlp)" in again_out
    assert stored_cases(tmp_path / "again")["halfway"]["case"]["conformance"]["cached"]


def test_no_check_skips_the_gate_and_flags_every_number_unverified(tmp_path, gate_cache):
    results = tmp_path / "results"
    args = ["--plugins", str(HALFWAY), "-s", "dlfs-mlp", "-i", "halfway"]
    done = bench_command(*smoke_args(*args), results=results)
    assert done.returncode == 0, done.stderr
    assert "conformance:" not in done.stdout
    assert "unverified" in done.stdout
    assert not gate_cache.exists()
    (halfway,) = stored_cases(results).values()
    assert halfway["status"] == outcomes.OK
    assert halfway["case"]["conformance"]["verdict"] == outcomes.UNVERIFIED
    (section,) = report.build([only_run(results)])["sections"]
    (row,) = section["rows"]
    assert "unverified: conformance not checked (--no-check)" in row.flags
    # --resume keeps the run as it was planned: no check either
    assert (
        "--no-check"
        in json.loads((only_run(results).directory / "run.json").read_text())["command"]
    )


def _case(source: Path, scenario: str = "dlfs-mlp") -> Case:
    return runs.case(scenario, "halfway", source=f"path:{source}")


@pytest.fixture
def fresh_digests():
    gate.source_digest.cache_clear()
    gate.harness_digest.cache_clear()
    yield
    gate.source_digest.cache_clear()
    gate.harness_digest.cache_clear()


def test_the_cache_key_follows_the_plugin_source_the_harness_and_the_definition(
    tmp_path, monkeypatch, fresh_digests
):
    plugin = tmp_path / "halfway"
    shutil.copytree(HALFWAY, plugin)
    definition = {"name": "dlfs-mlp", "batch_size": 100}
    key = gate.cache_key(_case(plugin), definition)
    assert gate.cache_key(_case(plugin), dict(definition)) == key
    assert gate.cache_key(_case(plugin), {**definition, "batch_size": 50}) != key
    # the checks run no budget: a new profile budget keeps the verdict
    assert gate.cache_key(_case(plugin), {**definition, "budgets": {"quick": {}}}) == key

    (plugin / "halfway.py").write_text((plugin / "halfway.py").read_text() + "\n# changed\n")
    gate.source_digest.cache_clear()
    changed_source = gate.cache_key(_case(plugin), definition)
    assert changed_source != key

    monkeypatch.setattr(gate, "HARNESS_FILES", (*gate.HARNESS_FILES, "names.py"))
    gate.harness_digest.cache_clear()
    assert gate.cache_key(_case(plugin), definition) not in (key, changed_source)


def test_a_gate_that_cannot_finish_makes_the_case_non_conforming_uncached(
    tmp_path, gate_cache, monkeypatch
):
    monkeypatch.setattr(gate, "GATE_TIMEOUT_S", 0.01)
    found = gate.verdict(_case(HALFWAY), {"name": "dlfs-mlp"})
    assert found.conformance.verdict == outcomes.NON_CONFORMING
    assert "did not finish within 0.01 s" in found.conformance.reason
    assert not gate_cache.exists()


def test_a_non_conforming_record_keeps_a_failure_of_its_own():
    failing = Conformance(outcomes.NON_CONFORMING, ({"check": "s/exact-steps", "detail": "d"},))
    assert outcomes.gated(outcomes.OK, failing.verdict) == outcomes.NON_CONFORMING
    assert outcomes.gated(outcomes.TIMEOUT, failing.verdict) == outcomes.TIMEOUT
    assert outcomes.gated(outcomes.OK, outcomes.UNVERIFIED) == outcomes.OK


def _two_implementations() -> tuple[list[Case], dict[str, dict]]:
    cases = [runs.case("dlfs-mlp", name, source=f"path:{HALFWAY}") for name in ("one", "two")]
    return cases, {"dlfs-mlp": {"name": "dlfs-mlp"}}


def test_the_gate_checks_two_implementations_at_once_on_two_cores(gate_cache, monkeypatch):
    # Each group waits for the other at a barrier: checked one after the other, the first
    # would wait alone and break it.
    both_started = threading.Barrier(2, timeout=10)

    def check(group):
        both_started.wait()
        (key, _, _), *_ = group
        return {key: gate.Verdict(Conformance(outcomes.CONFORMING, (), checks=1))}

    monkeypatch.setattr(gate, "_check", check)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    cases, definitions = _two_implementations()
    gated = gate.gate_cases(cases, definitions)
    assert [c.conformance.verdict for c in gated] == [outcomes.CONFORMING] * 2


def test_ctrl_c_during_the_gate_kills_the_checks_still_running(gate_cache, monkeypatch):
    ended: list[launcher.Finished] = []

    def check(group):
        (key, case, _), *_ = group
        if case.implementation == "one":  # Ctrl-C, once the other's process has started
            while not launcher._RUNNING:
                time.sleep(0.01)
            raise KeyboardInterrupt
        ended.append(
            launcher.run_python(["-c", "import time; time.sleep(60)"], threads=1, timeout=60)
        )
        return {key: gate.Verdict(Conformance(outcomes.CONFORMING, ()))}

    monkeypatch.setattr(gate, "_check", check)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    cases, definitions = _two_implementations()
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        gate.gate_cases(cases, definitions)
    assert time.perf_counter() - started < 30  # not the sleeping check's 60 s
    (killed,) = ended
    assert killed.returncode is not None and killed.returncode < 0
    assert not launcher._RUNNING


def test_a_child_that_skips_the_interpreter_s_teardown_still_runs_its_atexit_handlers(tmp_path):
    marker = tmp_path / "cleaned-up"
    code = (
        "import atexit, pathlib, sys\n"
        "from bench.execution import launcher\n"
        f"atexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')\n"
        "sys.stdout.write('its output')\n"
        "launcher.exit_child(3)\n"
    )
    done = launcher.run_python(["-c", code], threads=1, timeout=60)
    assert done.returncode == 3
    assert done.stdout == "its output"
    assert marker.read_text() == "yes"


def test_a_gpu_case_is_checked_on_its_gpu_under_a_key_of_its_own(tmp_path, monkeypatch):
    from bench import conformance
    from bench.execution import devices

    definition = {"name": "dlfs-mlp"}
    on_cpu = _case(HALFWAY)
    on_gpu = runs.case("dlfs-mlp", "halfway", source=f"path:{HALFWAY}", device="cuda:1")
    assert gate.cache_key(on_gpu, definition) != gate.cache_key(on_cpu, definition)
    # In the gate's process: the checks of the GPU pair run there, TF32 off first; the CPU
    # pair's on the CPU, as before.
    ran, exact = [], []

    def run_checks(cls, scenarios, limited_here, device):
        ran.append(device)
        return []

    monkeypatch.setattr(conformance, "run_checks", run_checks)
    monkeypatch.setattr(devices, "exact_arithmetic", exact.append)
    supported = type("Supported", (), {"why_unsupported": staticmethod(lambda scenario: None)})
    monkeypatch.setattr(gate, "_plugin", lambda source, name, model: supported)
    spec = {
        "source": on_cpu.source,
        "implementation": "halfway",
        "pairs": [
            {
                "key": key,
                "model": "mlp",
                "scenario": scenario_to_json(SCENARIOS["dlfs-mlp"]),
                "dataset": None,
                "device": device,
            }
            for key, device in (("cpu-pair", None), ("gpu-pair", "cuda:1"))
        ],
    }
    gate._check_here(spec, tmp_path / "verdicts.json")
    assert ran == [None, "cuda:1"]
    assert exact == ["cuda:1"]
