"""A wheel or sdist of the project carries the bundled implementations: installed from the
wheel into a fresh virtual environment, outside any checkout, `bench list` finds them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "bench", "implementations")
# What the implementations' folders hold in git: their Python faces, crates and manifests.
BUNDLED = {
    path.relative_to(ROOT / "implementations").as_posix()
    for path in (ROOT / "implementations").rglob("*")
    if path.suffix in (".py", ".toml", ".rs") and "target" not in path.parts
}


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory) -> Path:
    """The distribution's sources, copied so that building leaves the checkout untouched."""
    copy = tmp_path_factory.mktemp("source")
    ignored = shutil.ignore_patterns("__pycache__", "target", "*.egg-info", "build")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=ignored)
        else:
            shutil.copy2(source, copy / name)
    return copy


def build(source: Path, *command: str) -> None:
    done = subprocess.run(
        [sys.executable, *command], cwd=source, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def wheel(source_copy, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build(source_copy, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
          "--quiet", "-w", str(out))  # fmt: skip
    (found,) = out.glob("bench-*.whl")
    return found


def test_the_wheel_and_the_sdist_carry_every_bundled_implementation(wheel, source_copy, tmp_path):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {f"bench_implementations/{path}" for path in BUNDLED} <= names
    assert "bench/cli/__init__.py" in names and "bench/report/templates/report.css" in names

    build(source_copy, "setup.py", "--quiet", "sdist", "--dist-dir", str(tmp_path))
    (sdist,) = tmp_path.glob("bench-*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {f"implementations/{path}" for path in BUNDLED} <= members


def test_bench_list_finds_the_implementations_of_a_wheel_installed_in_a_fresh_venv(wheel, tmp_path):
    # Nothing of this checkout on the path: not the tests' PYTHONPATH, not this environment.
    environment = {
        key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    environment["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # a plugin cache of its own
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--quiet", str(wheel)],
        capture_output=True, text=True, timeout=600, env=environment,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # The dependencies (NumPy, pandas, …) come from this environment's site-packages, added
    # as a plain path: its editable install of bench is not imported from there.
    site = Path(
        subprocess.check_output(
            [str(python), "-c", "import site; print(site.getsitepackages()[0])"], env=environment
        )
        .decode()
        .strip()
    )
    dependencies = next(p for p in sys.path if p.endswith("site-packages"))
    (site / "dependencies.pth").write_text(dependencies + "\n")
    where = subprocess.check_output(
        [str(python), "-c", "import bench; print(bench.__file__)"], cwd=tmp_path, env=environment
    )
    assert Path(where.decode().strip()).is_relative_to(site)
    listed = subprocess.run(
        [str(venv / "bin" / "bench"), "list"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    out = " ".join(listed.stdout.split())
    assert "not a folder" not in out + listed.stderr
    for name in ("numpy-pure", "numpy-vectorized", "sklearn", "torch", "linfa", "ndarray"):
        assert f"│ {name} " in listed.stdout, name
    found = subprocess.check_output(
        [str(python), "-c", "from bench.plugins import BUILTIN_DIR; print(BUILTIN_DIR)"],
        cwd=tmp_path, env=environment,
    )  # fmt: skip
    assert Path(found.decode().strip()) == site / "bench_implementations"
