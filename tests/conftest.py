import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGINS = Path(__file__).parent / "plugins"
# The dataset sandbox's fixtures (`isolated`, `fake`, `serve`), for every test that asks.
pytest_plugins = ["fake_datasets"]


def bench_command(
    *args: str, results: Path, timeout: float = 600, **popen
) -> subprocess.CompletedProcess:
    """Run the `bench` CLI in its own process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args, "--results-dir", str(results)],
        capture_output=True,
        text=True,
        timeout=timeout,
        **popen,
    )


def smoke_args(*args: str, check: bool = False) -> list[str]:
    """A fast, offline run: smoke profile on the embedded digits, no peak measurement, and
    (unless `check`) no conformance gate: the test plugins that misbehave on purpose would
    fail it, and the gate has tests of its own (test_gate.py)."""
    gate = [] if check else ["--no-check"]
    return [
        "run", "--profile", "smoke", "--dataset", "mnist-5k", "--offline", "--no-peak", *gate, *args
    ]  # fmt: skip


def stored_cases(results: Path) -> dict[str, dict]:
    (run,) = [p for p in results.iterdir() if (p / "run.json").is_file()]
    return {
        json.loads(f.read_text())["case"]["implementation"]: json.loads(f.read_text())
        for f in (run / "cases").glob("*.json")
    }


@pytest.fixture
def test_state(tmp_path, monkeypatch):
    """Folder where the faulty test plugins keep state between processes."""
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("BENCH_TEST_STATE", str(state))
    return state


@pytest.fixture(autouse=True)
def _no_user_results(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path / "default-results"))
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join(
            filter(None, [str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH")])
        ),
    )
