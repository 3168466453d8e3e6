"""Scenario files: TOML read into the same frozen types as the built-in catalogue, loaded with
--scenarios on every command, $BENCH_SCENARIOS or an entry point, with errors that name the
field, the bad value and the valid values."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from bench import cli, plugins, scenarios
from bench.execution import plan
from bench.scenarios import SCENARIOS, ScenarioFileError, read_scenario_file, scenario_to_json

# dlfs-mlp as a user would write it: the catalogue's definition, field for field.
DLFS_MLP = """
[scenarios.my-dlfs]
title = "784-50-10 ReLU MLP"
citation = "Deep Learning from Scratch, ch. 5"
model = "mlp"
dataset = "mnist"
input_shape = [784]
layers = [
  { type = "dense", units = 50, activation = "relu" },
  { type = "dense", units = 10 },
]
init = "scaled-normal"
init_scale = 0.01
loss = "cross-entropy"
optimizer = { kind = "sgd", lr = 0.1 }
batch_size = 100
sampling = "with-replacement"
target = 0.96
original = "numpy-vectorized"

[scenarios.my-dlfs.budgets]
smoke = { steps = 5 }
quick = { steps = 300, round_cap_s = 2, case_budget_s = 6 }
full = { steps = 10000, timeout_s = 3600, eval_points = 10 }
"""

KMEANS = """
[scenarios.my-kmeans]
model = "kmeans"
dataset = "blobs"
dtype = "float32"
kmeans = { n_clusters = 5, n_features = 3 }
budgets.smoke = { n_samples = 500 }
budgets.quick = { n_samples = 5000 }
budgets.full = { n_samples = 50000 }
"""


def write(folder: Path, text: str, name: str = "scenarios.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_user_scenarios(monkeypatch):
    monkeypatch.delenv(scenarios.ENV_VARIABLE, raising=False)
    yield
    scenarios.use([], environment=False, installed=False)


def test_a_file_maps_onto_the_catalogue_s_own_types(tmp_path):
    (ours,) = read_scenario_file(write(tmp_path, DLFS_MLP))
    theirs = SCENARIOS["dlfs-mlp"]
    for field in ("model", "dataset", "layers", "input_shape", "input_scale", "init", "loss"):
        assert getattr(ours, field) == getattr(theirs, field), field
    for field in ("init_scale", "optimizer", "batch_size", "sampling", "target", "dtype"):
        assert getattr(ours, field) == getattr(theirs, field), field
    # the profiles' own measuring: the same budgets as the catalogue's, field for field
    assert ours.budgets == theirs.budgets
    assert ours.article == "Deep Learning from Scratch, ch. 5"
    assert ours.flops_per_step() == theirs.flops_per_step()
    # stored and read back like any scenario
    assert scenarios.scenario_from_json(scenario_to_json(ours)) == ours


def test_kmeans_and_cnn_scenarios(tmp_path):
    (kmeans,) = read_scenario_file(write(tmp_path, KMEANS))
    assert kmeans.kmeans == scenarios.KMeansSpec(5, 3, 5, 100, 1e-4)
    assert kmeans.dtype == "float32" and kmeans.budget("quick").n_samples == 5_000
    cnn = DLFS_MLP.replace("my-dlfs", "my-cnn").replace('model = "mlp"', 'model = "cnn"')
    cnn = cnn.replace("input_shape = [784]", "input_shape = [1, 28, 28]").replace(
        '{ type = "dense", units = 50, activation = "relu" },',
        '{ type = "conv2d", channels = 6, kernel = 5 }, { type = "maxpool2d", size = 2 },'
        ' { type = "flatten" }, { type = "dense", units = 50, activation = "relu" },',
    )
    (ours,) = read_scenario_file(write(tmp_path, cnn))
    conv, pool, _, dense, _ = ours.layers
    assert conv == scenarios.Conv2d(1, 6, 5) and pool == scenarios.MaxPool2d(2, 2)
    assert dense == scenarios.Dense(6 * 12 * 12, 50, "relu")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('kind = "sgd"', 'kind = "adamw"'),
            'scenarios.my-dlfs.optimizer.kind = "adamw" is not valid (did you mean \'adam\'?); '
            "valid values: sgd, ema-momentum, adam",
        ),
        (
            ("batch_size = 100", "bach_size = 100"),
            "scenarios.my-dlfs.bach_size is not a field here. Did you mean 'batch_size'?",
        ),
        (
            ("batch_size = 100", "batch_size = 0"),
            "scenarios.my-dlfs.batch_size = 0 is not valid: it takes a whole number of 1 or more",
        ),
        (
            ("batch_size = 100", 'batch_size = "100"'),
            'scenarios.my-dlfs.batch_size = "100" is not valid: it takes a whole number',
        ),
        (("loss = ", "losses = "), "scenarios.my-dlfs.losses is not a field here"),
        (
            ('sampling = "with-replacement"', 'sampling = "random"'),
            "valid values: shuffled-epochs, with-replacement",
        ),
        (('units = 10 }', 'units = 10, activation = "relu" }'),
         "cross-entropy takes the last layer's raw outputs"),
        (("full = { steps = 10000, timeout_s = 3600, eval_points = 10 }", ""),
         "scenarios.my-dlfs.budgets has no full: every profile needs a budget"),
        (("smoke = { steps = 5 }", "smoke = { steps = 5, epochs = 1 }"),
         "scenarios.my-dlfs.budgets.smoke needs exactly one of steps or epochs"),
        (("input_shape = [784]", "input_shape = [1, 28, 28]"),
         "an mlp takes one example as [features]"),
        (("dataset = \"mnist\"", "dataset = \"mnsit\""),
         "is neither a built-in dataset (mnist, fashion-mnist, mnist-5k, blobs) nor an existing"),
        (("[scenarios.my-dlfs]", "[scenarios.My_DLFS]"),
         "the scenario name 'My_DLFS' is not valid"),
        (("target = 0.96", "target = 2"),
         "scenarios.my-dlfs.target = 2 is not valid: it takes a number above 0 and at most 1"),
    ],
)  # fmt: skip
def test_every_mistake_names_the_field_the_value_and_what_is_valid(tmp_path, change, expected):
    old, new = change
    assert old in DLFS_MLP
    path = write(
        tmp_path,
        DLFS_MLP.replace(old, new).replace(
            "[scenarios.my-dlfs.budgets]",
            ("[scenarios.My_DLFS.budgets]" if "My_DLFS" in new else "[scenarios.my-dlfs.budgets]"),
        ),
    )
    with pytest.raises(ScenarioFileError) as error:
        read_scenario_file(path)
    assert str(error.value).startswith(f"{path}: ")
    assert expected in str(error.value)


def test_layers_that_do_not_fit_their_input_are_refused(tmp_path):
    text = DLFS_MLP.replace('model = "mlp"', 'model = "cnn"').replace(
        "input_shape = [784]", "input_shape = [1, 28, 28]"
    )
    conv = '{ type = "conv2d", channels = 4, kernel = 3 }, '
    text = text.replace('{ type = "dense", units = 50', conv + '{ type = "dense", units = 50')
    flat = r"'dense' needs flat inputs; here they are \[4, 26, 26\]: put \{ type = \"flatten\" \}"
    with pytest.raises(ScenarioFileError, match=flat):
        read_scenario_file(write(tmp_path, text))
    with pytest.raises(ScenarioFileError, match="is not valid TOML"):
        read_scenario_file(write(tmp_path, "[scenarios.x\nmodel = 1"))
    with pytest.raises(ScenarioFileError, match=r"budgets.smoke.n_samples is missing: blobs"):
        read_scenario_file(write(tmp_path, KMEANS.replace("{ n_samples = 500 }", "{}")))


def test_dataset_paths_are_relative_to_the_file(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "mine.npz").write_bytes(b"")
    folder = tmp_path / "conf"
    folder.mkdir()
    text = DLFS_MLP.replace('dataset = "mnist"', 'dataset = "../data/mine.npz"')
    (ours,) = read_scenario_file(write(folder, text))
    assert ours.dataset == str((folder / "../data/mine.npz").absolute())


def test_scenarios_come_from_the_option_the_variable_and_folders(tmp_path, monkeypatch):
    write(tmp_path, DLFS_MLP, "a.toml")
    write(tmp_path, KMEANS, "b.toml")
    scenarios.use([tmp_path / "a.toml"], installed=False)
    assert [s.name for s in scenarios.named_on_command_line()] == ["my-dlfs"]
    assert "my-dlfs" in scenarios.known() and "dlfs-mlp" in scenarios.known()
    assert [s.name for s in plan.select_scenarios([])] == ["my-dlfs"]  # the file's, by default

    monkeypatch.setenv(scenarios.ENV_VARIABLE, str(tmp_path))
    scenarios.use([], installed=False)
    assert {"my-dlfs", "my-kmeans"} <= set(scenarios.known())
    assert not scenarios.named_on_command_line()
    assert len(plan.select_scenarios([])) == len(SCENARIOS) + 2
    assert scenarios.origin("my-kmeans") == str(tmp_path / "b.toml")

    with pytest.raises(ScenarioFileError, match=r"'my-dlfs' in .*a.toml is already defined by"):
        scenarios.use([tmp_path / "a.toml"], installed=False)
    write(tmp_path, DLFS_MLP.replace("my-dlfs", "dlfs-mlp"), "c.toml")
    with pytest.raises(ScenarioFileError, match="already defined by the built-in catalogue"):
        scenarios.use([tmp_path / "c.toml"], environment=False, installed=False)
    with pytest.raises(ScenarioFileError, match="no such file or folder"):
        scenarios.use([tmp_path / "missing.toml"], environment=False, installed=False)


def test_every_command_takes_scenarios_and_a_bad_file_is_a_clear_error(tmp_path, capsys):
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for command in commands:
        assert "--scenarios" in commands[command].format_help(), command
    path = write(tmp_path, DLFS_MLP.replace("lr = 0.1", "lr = -1"))
    assert cli.main(["list", "--scenarios", str(path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "scenarios.my-dlfs.optimizer.lr = -1 is not valid: it takes a number above 0" in err
    assert "Traceback" not in err
    assert cli.main(["list", "--scenarios", str(write(tmp_path, DLFS_MLP))]) == 0
    assert "my-dlfs" in capsys.readouterr().out


ENTRY_POINT_PACKAGE = """
from pathlib import Path

def scenarios():
    return Path(__file__).with_name("workloads.toml")
"""


def test_an_installed_distribution_provides_scenarios_through_its_entry_point(tmp_path):
    site = tmp_path / "site"
    package = site / "my_workloads"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(ENTRY_POINT_PACKAGE)
    write(package, KMEANS, "workloads.toml")
    info = site / "my_workloads-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-workloads\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[bench.scenarios]\nmine = my_workloads:scenarios\n")
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", "list"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": f"{site}:{Path(__file__).parents[1]}"},
    )
    assert done.returncode == 0, done.stderr
    assert "my-kmeans" in done.stdout and "entry point mine" in " ".join(done.stdout.split())


def test_a_user_scenario_is_planned_and_stored_with_its_definition(tmp_path):
    path = write(tmp_path, KMEANS)
    scenarios.use([path], environment=False, installed=False)
    (chosen,) = plan.select_scenarios(["my-kmeans"])
    assert scenario_to_json(chosen)["kmeans"]["n_features"] == 3
    assert replace(chosen, name="x") != chosen  # frozen data, as the catalogue's


def test_a_users_scenario_gets_the_deviations_an_implementation_declares_for_all(tmp_path):
    scenarios.use([write(tmp_path, KMEANS)], environment=False, installed=False)
    (chosen,) = plan.select_scenarios(["my-kmeans"])
    found = plugins.discover(installed=False)
    (case,) = plan.plan(found, [chosen], implementations=["linfa"], thread_counts=[1])
    assert any("linfa's incremental K-Means step" in text for text in case.deviations)
