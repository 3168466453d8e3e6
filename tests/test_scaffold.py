"""`bench new`: a skeleton that loads, fails `bench check` until its math is written, and
passes once it is; and a plugin published through the `bench.implementations` entry point."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import bench_command, smoke_args, stored_cases

from bench import cli, scaffold

# What a plugin author writes in the generated mlp.py: forward, loss, backward, update.
MLP_MATH = """
    def forward(self, x):
        activations = [x]
        for i, layer in enumerate(self.scenario.layers, start=1):
            z = activations[-1] @ self.params[f"W{i}"] + self.params[f"b{i}"]
            if layer.activation == "sigmoid":
                z = 1 / (1 + np.exp(-z))
            elif layer.activation == "relu":
                z = np.maximum(z, 0)
            activations.append(z)
        return activations

    def step(self, x, y):
        activations = self.forward(x)
        out = activations[-1]
        target = np.eye(out.shape[1], dtype=out.dtype)[y]
        if self.scenario.loss == "quadratic":
            loss = 0.5 * ((out - target) ** 2).sum(axis=1).mean()
            delta = (out - target) / len(y)
        else:
            shifted = out - out.max(axis=1, keepdims=True)
            probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
            loss = -np.log(probs[np.arange(len(y)), y]).mean()
            delta = (probs - target) / len(y)
        opt = self.scenario.optimizer
        for i in range(len(self.scenario.layers), 0, -1):
            activation, a = self.scenario.layers[i - 1].activation, activations[i]
            if activation == "sigmoid":
                delta = delta * a * (1 - a)
            elif activation == "relu":
                delta = delta * (a > 0)
            grads = {f"W{i}": activations[i - 1].T @ delta, f"b{i}": delta.sum(axis=0)}
            delta = delta @ self.params[f"W{i}"].T
            for name, g in grads.items():
                if opt.kind == "ema-momentum":
                    v = self.optimizer_state[name].get("v", 0)
                    g = self.optimizer_state[name]["v"] = opt.momentum * v + (1 - opt.momentum) * g
                self.params[name] -= opt.lr * g
        return float(loss)

    def predict(self, x):
        return self.forward(x)[-1].argmax(axis=1)

"""

# A CNN author's math, built here from the reference's layer functions for brevity.
CNN_MATH = """
    def forward(self, x):
        from bench import reference

        a, caches, index = x, [], 0
        for layer in self.scenario.layers:
            math = reference.LAYERS[type(layer)]
            index += bool(math.parameters)
            keys = [f"{prefix}{index}" for prefix in math.parameters]
            a, cache = math.forward(layer, tuple(self.params[k] for k in keys), a)
            caches.append((layer, math, keys, cache))
        return a, caches

    def step(self, x, y):
        from bench import reference

        outputs, caches = self.forward(x)
        loss, grad = reference.LOSSES[self.scenario.loss](outputs, y)
        opt, update = self.scenario.optimizer, reference.OPTIMIZERS[self.scenario.optimizer.kind]
        self.updates += 1
        for layer, math, keys, cache in reversed(caches):
            grad, grads = math.backward(layer, tuple(self.params[k] for k in keys), cache, grad)
            for key, g in zip(keys, grads):
                state = self.optimizer_state[key]
                self.params[key][...] = update(opt, self.params[key], g, state, self.updates)
        return float(loss)

    def predict(self, x):
        return self.forward(x)[0].argmax(axis=1)

"""

KMEANS_MATH = """
    def fit(self, x, init_centroids, max_iter, tol):
        from bench.api import cluster_means, relocate_empty_clusters

        mean = x.mean(axis=0)
        x = x - mean
        centroids, previous = init_centroids - mean, None
        for n_iter in range(1, max_iter + 1):
            labels = self.nearest(x, centroids)
            counts = np.bincount(labels, minlength=len(centroids))
            sums = np.stack([x[labels == k].sum(axis=0) for k in range(len(centroids))])
            relocate_empty_clusters(x, centroids, labels, sums, counts)
            new = cluster_means(sums, counts).astype(x.dtype)
            shift, centroids = ((new - centroids) ** 2).sum(), new
            if previous is not None and (labels == previous).all():
                break
            if shift <= kmeans_shift_tolerance(x, tol):
                labels = self.nearest(x, centroids)
                break
            previous = labels
        else:
            labels = self.nearest(x, centroids)
        inertia = float(((x - centroids[labels]) ** 2).sum())
        return KMeansResult(centroids + mean, labels, n_iter, inertia)

    def predict(self, x, centroids):
        mean = x.mean(axis=0)
        return self.nearest(x - mean, np.asarray(centroids, x.dtype) - mean)

    def nearest(self, x, centroids):
        norms = np.einsum("ij,ij->i", centroids, centroids)
        return (norms - 2 * (x @ centroids.T)).argmin(axis=1)
"""


def bench(*args) -> tuple[int, str]:
    """`bench` in a fresh process: needed once a plugin file has changed since it was imported."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, " ".join((done.stdout + done.stderr).split())


def bench_here(capsys, *args) -> tuple[int, str]:
    """`bench` in this process: fast, for commands on files that will not change afterwards."""
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


def fill_in(module: Path, first_method: str, math: str) -> None:
    """Replace the skeleton's methods from `first_method` up to `parameters` (or the end)."""
    text = module.read_text()
    pattern = rf"\n    def {first_method}\(.*?(?=\n    def parameters\(|\Z)"
    filled, count = re.subn(pattern, lambda _: math, text, flags=re.DOTALL)
    assert count == 1
    module.write_text(filled)


def test_bench_new_writes_a_plugin_that_loads_fails_check_then_passes_once_filled(tmp_path, capsys):
    plugins = tmp_path / "plugins"
    code, out = bench_here(capsys, "new", "my-numpy", "--model", "mlp", "--dir", plugins)
    assert code == 0, out
    module = plugins / "my-numpy" / "mlp.py"
    assert module.is_file() and (plugins / "my-numpy" / "__init__.py").is_file()
    assert f"bench check my-numpy --plugins {plugins}" in out
    assert 'name = "my-numpy"' in module.read_text()
    assert "class MyNumpyMLP(Trainer)" in module.read_text()

    code, out = bench_here(capsys, "list", "--plugins", plugins)
    assert code == 0 and "my-numpy" in out and "broken plugin" not in out

    code, out = bench_here(capsys, "check", "my-numpy", "--plugins", plugins, "-s", "dlfs-mlp")
    assert code == 1
    assert (
        "FAIL dlfs-mlp/matches-reference: raised NotImplementedError: FILL IN MyNumpyMLP.step"
        in out
    )
    assert str(module) in out  # points at the line to fill in
    assert out.count("FAIL") == 7 and "conformance: failed" in out

    fill_in(module, "step", MLP_MATH)
    code, out = bench("check", "my-numpy", "--plugins", plugins)
    assert code == 0, out
    assert "FAIL" not in out and "conformance: passed" in out
    assert out.count("/matches-reference:") == 3  # nielsen, dlfs and tch MLPs


def test_bench_new_cnn_skeleton_documents_the_layers_and_passes_check_once_filled(tmp_path, capsys):
    plugins = tmp_path / "plugins"
    code, out = bench_here(capsys, "new", "my-conv", "--model", "cnn", "--dir", plugins)
    assert code == 0, out
    module = plugins / "my-conv" / "cnn.py"
    text = module.read_text()
    assert "class MyConvCNN(Trainer)" in text and 'model = "cnn"' in text
    assert "Conv2d: W{i} (out_channels, in_channels, kernel, kernel)" in text

    code, out = bench_here(capsys, "check", "my-conv", "--plugins", plugins, "-s", "tch-cnn")
    assert code == 1 and "FILL IN MyConvCNN.step" in out

    fill_in(module, "step", CNN_MATH)
    code, out = bench("check", "my-conv", "--plugins", plugins)
    assert code == 0, out
    assert "FAIL" not in out and "conformance: passed" in out
    assert out.count("/matches-reference:") == 2  # tch-cnn and dlfs-cnn


def test_bench_new_refuses_to_overwrite_and_checks_the_name(tmp_path, capsys):
    assert bench_here(capsys, "new", "mine", "--dir", tmp_path)[0] == 0
    written = (tmp_path / "mine" / "mlp.py").read_text()
    code, out = bench_here(capsys, "new", "mine", "--dir", tmp_path)
    assert code == 2 and "already exists" in out
    assert (tmp_path / "mine" / "mlp.py").read_text() == written
    for bad in ("My_Plugin", "2fast", "a--b", "trailing-"):
        code, out = bench_here(capsys, "new", bad, "--dir", tmp_path)
        assert code == 2 and "lowercase words joined by '-'" in out
        assert not (tmp_path / bad).exists()


def test_bench_new_kmeans_skeleton_passes_check_once_lloyd_is_written(tmp_path, capsys):
    code, out = bench_here(capsys, "new", "my-kmeans", "--model", "kmeans", "--dir", tmp_path)
    assert code == 0, out
    module = tmp_path / "my-kmeans" / "kmeans.py"
    code, out = bench_here(capsys, "check", "my-kmeans", "--plugins", tmp_path)
    assert code == 1 and "NotImplementedError: FILL IN MyKmeansKMeans.fit" in out
    fill_in(module, "fit", KMEANS_MATH)
    code, out = bench("check", "my-kmeans", "--plugins", tmp_path)
    assert code == 0, out
    assert "pass linfa-kmeans/matches-reference" in out


@pytest.fixture
def installed_example(tmp_path, monkeypatch) -> str:
    """A distribution exposing a filled-in skeleton through the entry point group, installed
    offline into a folder that is then put on PYTHONPATH."""
    pytest.importorskip("setuptools")
    module = scaffold.new_plugin("example-mlp", "mlp", tmp_path / "draft")
    fill_in(module, "step", MLP_MATH)
    source = tmp_path / "dist"
    (source / "bench_example").mkdir(parents=True)
    (source / "bench_example" / "__init__.py").write_text("")
    (source / "bench_example" / "mlp.py").write_text(module.read_text())
    (source / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "bench-example"
            version = "0.1"

            [project.entry-points."bench.implementations"]
            example-mlp = "bench_example.mlp:ExampleMlpMLP"

            [tool.setuptools]
            packages = ["bench_example"]
            """
        )
    )
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*pip, "--no-index", "--quiet", "--target", str(site), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(site), str(Path(__file__).parent.parent)])
    )
    return "example-mlp"


def test_a_plugin_installed_through_the_entry_point_is_listed_checked_and_run(
    installed_example, tmp_path
):
    code, out = bench("list")
    assert code == 0 and "example-mlp" in out and "entry-point:example-mlp" in out

    code, out = bench("check", installed_example, "-s", "dlfs-mlp")
    assert code == 0, out
    assert "pass dlfs-mlp/thread-limit" in out  # found again in a fresh process

    results = tmp_path / "results"
    done = bench_command(
        *smoke_args("-s", "dlfs-mlp", "-i", installed_example, "--rounds", "1", "--warmup", "0"),
        results=results,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    case = stored_cases(results)[installed_example]
    assert case["status"] == "ok", case.get("reason")
    assert case["case"]["source"].startswith("entry-point:example-mlp")
