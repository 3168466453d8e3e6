"""The compiled implementations without their toolchain: the build is a note, not a failure,
and their cases are *skipped* with what is missing and how to fix it. Also what a run records
about them (`bench.execution.environment.rust_builds`)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import smoke_args, stored_cases

from bench.execution import environment

ROOT = Path(__file__).resolve().parent.parent
EXTENSIONS = {"ndarray": "bench_ndarray", "linfa": "bench_linfa", "tch-store": "bench_tch_store"}
SCENARIOS = "dlfs-mlp,tch-cnn,linfa-kmeans"


def test_without_cargo_the_build_is_a_note_and_succeeds(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_rust.py")],
        capture_output=True,
        text=True,
        env={"PATH": str(tmp_path)},  # an empty folder: no cargo, no rustc
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "cargo not found" in done.stdout
    assert "https://rustup.rs" in done.stdout


def test_an_extension_crate_is_installed_as_a_module_that_python_imports(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    import build_rust

    # What the workspace build leaves for a crate whose library is `bench_fake`, named as
    # cargo names a cdylib (a stand-in: the install only copies it).
    release = tmp_path / "target" / "release"
    release.mkdir(parents=True)
    (release / "libbench_fake.so").write_bytes(b"built")
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.setattr(build_rust.sysconfig, "get_path", lambda name: str(site))
    crate = {
        "crate": "bench-fake",
        "module": "bench_fake",
        "binaries": [],
        "target": tmp_path / "target",
    }
    assert not build_rust.installed(crate)
    build_rust.install(crate)
    suffix = build_rust.sysconfig.get_config_var("EXT_SUFFIX")
    assert [p.name for p in site.iterdir()] == [f"bench_fake{suffix}"]  # nothing staged left
    assert (site / f"bench_fake{suffix}").read_bytes() == b"built"
    assert build_rust.installed(crate)


def test_the_built_extensions_are_modules_in_site_packages_not_wheels():
    for module in EXTENSIONS.values():
        spec = importlib.util.find_spec(module)
        if spec is None and shutil.which("cargo") is None:
            pytest.skip("no cargo here: the Rust implementations were not built")
        assert spec is not None and spec.origin.endswith(sysconfig.get_config_var("EXT_SUFFIX"))
        assert Path(spec.origin).parent == Path(sysconfig.get_path("platlib"))
        with pytest.raises(importlib.metadata.PackageNotFoundError):  # no stale wheel hides it
            importlib.metadata.distribution(module.replace("_", "-"))


# The extensions made unimportable in the harness process, as in an environment where they
# were never built: `None` in sys.modules makes importlib.util.find_spec say "not installed".
HIDDEN_RUN = """
import sys
for module in {modules!r}:
    sys.modules[module] = None
from bench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_the_built_extensions_their_cases_are_skipped_with_the_fix(tmp_path):
    results = tmp_path / "results"
    script = HIDDEN_RUN.format(modules=list(EXTENSIONS.values()))
    arguments = smoke_args("--scenario", SCENARIOS, "--impl", ",".join(EXTENSIONS))
    done = subprocess.run(
        [sys.executable, "-c", script, *arguments, "--results-dir", str(results)],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(Path(sys.executable).parent)},  # no cargo either
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    cases = stored_cases(results)
    assert set(cases) == set(EXTENSIONS)
    for name, module in EXTENSIONS.items():
        record = cases[name]
        assert record["status"] == "skipped", record
        assert f"requires {module}" in record["reason"]
        assert "https://rustup.rs" in record["reason"]
        assert "make setup" in record["reason"]
    assert "skipped" in done.stdout


def test_rust_builds_reads_cargo_lock_and_the_build_records(tmp_path, monkeypatch):
    (tmp_path / "Cargo.lock").write_text(
        "version = 4\n\n"
        '[[package]]\nname = "ndarray"\nversion = "0.16.1"\n\n'
        '[[package]]\nname = "ndarray"\nversion = "0.15.6"\n\n'
        '[[package]]\nname = "serde"\nversion = "1.0.0"\n\n'
        '[[package]]\nname = "tch"\nversion = "0.26.0"\ndependencies = ["torch-sys"]\n'
    )
    prefix = tmp_path / "venv"
    (prefix / "bench-rust").mkdir(parents=True)
    record = {"rustc": "rustc 1.95.0", "rustflags": "-C target-cpu=native", "libtorch": "2.13.0"}
    (prefix / "bench-rust" / "json.json").write_text(json.dumps(record))  # an importable name
    (prefix / "bench-rust" / "not_installed_anymore.json").write_text(json.dumps(record))
    monkeypatch.setattr(sys, "prefix", str(prefix))

    found = environment.rust_builds(tmp_path)

    assert found["crates"] == {"ndarray": "0.16.1, 0.15.6", "tch": "0.26.0"}
    assert found["builds"] == {"json": record}  # a record whose module is gone is left out
    assert environment.rust_builds(tmp_path / "elsewhere") is None


def test_the_fingerprint_records_this_workspace():
    rust = environment.fingerprint(1, ROOT)["rust"]
    assert rust["crates"]["ndarray"] == "0.16.1"
    for crate in ("matrixmultiply", "linfa", "linfa-clustering", "tch", "pyo3", "numpy"):
        assert rust["crates"][crate], crate
    for module, build in rust["builds"].items():
        assert build["rustc"].startswith("rustc "), module
        assert build["cargo"].startswith("cargo "), module
        assert "rustflags" in build and "target_cpu" in build, module
    if "bench_tch_store" in rust["builds"]:
        assert rust["builds"]["bench_tch_store"]["libtorch"].startswith(_version("torch"))


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{distribution} is not installed")


def test_bench_new_rust_in_implementations_joins_the_cargo_workspace(tmp_path, monkeypatch):
    from bench import scaffold

    (tmp_path / "implementations").mkdir()
    workspace = tmp_path / "Cargo.toml"
    workspace.write_text((ROOT / "Cargo.toml").read_text())
    monkeypatch.setattr(scaffold, "BUILTIN_DIR", (tmp_path / "implementations").resolve())
    monkeypatch.setattr(scaffold, "WORKSPACE", workspace)
    lib = scaffold.new_plugin("my-rust", "mlp", tmp_path / "implementations", "rust")
    assert lib == tmp_path / "implementations" / "my-rust" / "src" / "lib.rs"
    assert '"implementations/ndarray"' in workspace.read_text()
    assert '"implementations/my-rust"]' in workspace.read_text()
    assert "[workspace]" not in (lib.parent.parent / "Cargo.toml").read_text()
    assert "make setup" in scaffold.next_steps("my-rust", lib)


@pytest.mark.parametrize(
    ("model", "unwritten"), [("mlp", "src/lib.rs Model::train"), ("kmeans", "src/lib.rs fit")]
)
def test_bench_new_rust_writes_a_crate_that_builds_is_listed_and_fails_check(
    tmp_path, model, unwritten
):
    from bench import scaffold

    plugins = tmp_path / "plugins"
    lib = scaffold.new_plugin("my-rust", model, plugins, "rust")
    crate = lib.parent.parent
    assert "[workspace]" in (crate / "Cargo.toml").read_text()  # builds on its own
    assert "pip install --no-build-isolation" in scaffold.next_steps("my-rust", lib)
    # Built as its `pip install` builds it (maturin), in the project's target folder and with
    # its flags, so that the dependencies compiled there with the same features are reused.
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    build = [sys.executable, "-m", "maturin", "build", "--release", "--quiet",
             "--auditwheel", "skip", "--interpreter", sys.executable,
             "--manifest-path", str(crate / "Cargo.toml"), "--out", str(wheels)]  # fmt: skip
    environment = {**os.environ, "CARGO_TARGET_DIR": str(ROOT / "target")}
    environment.setdefault("RUSTFLAGS", "-C target-cpu=native")
    done = subprocess.run(build, capture_output=True, text=True, env=environment, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = wheels.glob("*.whl")
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target"]
    subprocess.run([*install, str(site), str(wheel)], check=True, timeout=300)

    def bench(*arguments):
        pythonpath = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
        return subprocess.run(
            [sys.executable, "-m", "bench.cli", *arguments, "--plugins", str(plugins)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": pythonpath},
            timeout=600,
        )

    listed = bench("list")
    assert listed.returncode == 0, listed.stderr
    assert "my-rust" in listed.stdout and "available" in listed.stdout
    checked = bench("check", "my-rust")
    assert checked.returncode == 1
    assert f"FILL IN {unwritten}" in " ".join(checked.stdout.split())
