"""Comparing two runs: the statistics, `bench compare` (exit code for CI) and the report's
comparison section, on a plugin made deliberately slower between two runs."""

import math
import os
from pathlib import Path

import pytest
from conftest import bench_command, smoke_args

from bench import cli
from bench.analysis import compare
from bench.analysis.intervals import ratio_interval
from bench.analysis.stats import loglog_fit, mann_whitney_p, pareto_front
from bench.store import RunStore

TIMED_PLUGINS = '''
import os
import time

import numpy as np

from bench.api import Trainer, register


@register
class Slowed(Trainer):
    """Sleeps $SLEEP seconds per `train` call: slower in the second run."""

    name, model, framework = "slowed", "mlp", "none"

    def load(self, x_train, y_train):
        pass

    def train(self, steps):
        time.sleep(float(os.environ["SLEEP"]))
        return 0.0

    def predict(self, x):
        return np.zeros(len(x), dtype=np.int64)

    def parameters(self):
        return dict(self.initial_parameters)


@register
class Steady(Slowed):
    """The same in both runs."""

    name = "steady"

    def train(self, steps):
        time.sleep(0.05)
        return 0.0
'''


def _two_runs(root, sleeps: tuple[str, str], *extra: str) -> list:
    """`slowed` and `steady` measured twice, `slowed` sleeping sleeps[i] in run i; each case
    in several worker processes."""
    plugins = root / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "timed.py").write_text(TIMED_PLUGINS)
    runs = []
    for name, sleep in zip(("before", "after"), sleeps, strict=True):
        results = root / name
        done = bench_command(
            *smoke_args("--plugins", str(plugins), "--impl", "slowed,steady"),
            "--scenario",
            "dlfs-mlp",
            *extra,
            results=results,
            env={**os.environ, "SLEEP": sleep},
        )
        assert done.returncode == 0, done.stderr
        (run,) = [p for p in results.iterdir() if (p / "run.json").is_file()]
        runs.append(run)
    return runs


def test_a_ratio_of_medians_has_a_confidence_interval():
    slow, fast = [1.0, 1.1, 0.9, 1.0, 1.05], [0.2, 0.21, 0.19, 0.2, 0.2]
    ratio = ratio_interval([slow], [fast])
    assert ratio.estimate == pytest.approx(5.0)
    assert 1 < ratio.low <= 5.0 <= ratio.high
    same = ratio_interval([[1.0, 1.2, 0.9, 1.1]], [[1.1, 0.95, 1.0, 1.15]])
    assert same.low < 1 < same.high
    single = ratio_interval([[2.0]], [[1.0]])
    assert single.estimate == 2.0 and math.isnan(single.low)  # one round: no interval


def test_mann_whitney_loglog_fit_and_pareto_front():
    assert mann_whitney_p([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) < 0.01
    assert mann_whitney_p([1, 2, 3], [1, 2, 3]) > 0.5
    fit = loglog_fit([1e3, 1e4, 1e5], [2e-3, 2e-1, 2e1])
    assert fit["exponent"] == pytest.approx(2.0) and fit["scale"] == pytest.approx(2e-9)
    assert math.isnan(loglog_fit([10, 10], [1, 2])["exponent"])
    assert pareto_front([1, 2, 3, 4], [0.5, 0.9, 0.8, 0.95]) == [True, True, False, True]


@pytest.mark.parametrize(("text", "value"), [("5%", 0.05), ("5", 0.05), (" 12.5 % ", 0.125)])
def test_thresholds_are_percentages(text, value):
    assert compare.parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["five", "-1%", "nan"])
def test_bad_thresholds_are_refused(text):
    with pytest.raises(ValueError, match="percentage"):
        compare.parse_threshold(text)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The same two plugins measured twice, each case in two processes; `slowed` sleeps 5x
    longer the second time."""
    root = tmp_path_factory.mktemp("compare")
    return _two_runs(root, ("0.01", "0.05"), "--rounds", "6", "--processes", "2")


def test_compare_fails_on_the_slowed_case_only(two_runs, tmp_path, capsys):
    before, after = map(str, two_runs)
    done = bench_command("compare", before, after, "--fail-above", "5%", results=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = {
        name: next(line for line in done.stdout.splitlines() if f" {name} " in line)
        for name in ("slowed", "steady")
    }
    assert "regressed" in lines["slowed"]
    assert "regressed" not in lines["steady"]
    assert "dlfs-mlp--slowed--" in done.stdout.splitlines()[-1]

    assert cli.main(["compare", before, after, "--fail-above", "900%"]) == 0  # within it
    assert cli.main(["compare", before, after]) == 0  # no threshold: report only
    assert "regressed" in capsys.readouterr().out
    assert cli.main(["compare", after, before, "--fail-above", "5%"]) == 0
    assert "improved" in capsys.readouterr().out


def test_two_runs_of_the_same_code_in_several_processes_flag_no_regression(tmp_path):
    """Nothing changed between the runs: whatever differs is noise between processes, and
    the gate must stay green."""
    before, after = map(
        str, _two_runs(tmp_path, ("0.03", "0.03"), "--rounds", "6", "--processes", "3")
    )
    done = bench_command("compare", before, after, "--fail-above", "5%", results=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "regressed" not in done.stdout and "improved" not in done.stdout
    assert "0 case(s) slower" in done.stdout
    for case in compare.compare_runs(
        RunStore.open(tmp_path, before), RunStore.open(tmp_path, after)
    ).cases:
        assert case.processes == (3, 3)
        assert case.interval_label == "95 % CI"  # the processes' noise is in the interval


def test_report_with_a_baseline_highlights_the_regression(two_runs, tmp_path, capsys):
    before, after = map(str, two_runs)
    common = [after, "--baseline", before, "--reports-dir", str(tmp_path)]
    assert cli.main(["report", *common]) == 0
    html = Path(capsys.readouterr().out.strip()).read_text()
    assert 'id="comparison"' in html
    regressed = [row for row in html.split("<tr") if row.startswith(' class="regressed"')]
    assert len(regressed) == 1 and ">slowed<" in regressed[0]
    assert "1 case(s) slower than" in html  # the banner at the top

    assert cli.main(["report", *common, "--format", "md"]) == 0
    text = Path(capsys.readouterr().out.strip()).read_text()
    assert "1 regression(s)" in text and "**regressed**" in text


def test_compare_names_an_unknown_run(tmp_path, capsys):
    assert cli.main(["compare", "nope-a", "nope-b", "--results-dir", str(tmp_path)]) == 2
    assert "no run 'nope-a'" in capsys.readouterr().err
