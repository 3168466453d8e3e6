import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from bench.execution import environment
from bench.execution.environment import fingerprint

EXPECTED_TYPES = {
    "cpu_model": str,
    "cores_logical": int,
    "cores_physical": int,
    "cores_allowed": int,
    "memory_total_bytes": int,
    "memory_limit_bytes": (int, type(None)),
    "os": str,
    "kernel": str,
    "distribution": (str, type(None)),
    "machine": str,
    "hostname": str,
    "python_version": str,
    "python_implementation": str,
    "python_executable": str,
    "packages": dict,
    "tensorflow_distribution": (str, type(None)),
    "blas": list,
    "threads": int,
    "gpu": (list, type(None)),
    "git_commit": (str, type(None)),
    "git_dirty": (bool, type(None)),
    "environment_variables": dict,
    "rust": (dict, type(None)),  # Cargo.lock crates and the compiled extensions built here
}


@pytest.fixture(scope="module")
def fingerprinted() -> dict:
    return fingerprint(3, Path.cwd())


def test_fingerprint_has_every_key_with_its_type(fingerprinted):
    assert set(fingerprinted) == set(EXPECTED_TYPES)
    for key, expected in EXPECTED_TYPES.items():
        assert isinstance(fingerprinted[key], expected), key
    assert set(fingerprinted["packages"]) == set(environment.PACKAGES)
    assert fingerprinted["threads"] == 3
    assert json.loads(json.dumps(fingerprinted)) == fingerprinted


def test_fingerprint_describes_this_process(fingerprinted):
    assert fingerprinted["cores_allowed"] == len(os.sched_getaffinity(0))
    assert fingerprinted["cores_logical"] >= fingerprinted["cores_allowed"]
    assert fingerprinted["memory_total_bytes"] > 0
    assert fingerprinted["python_version"] == platform.python_version()
    assert fingerprinted["packages"]["numpy"] == numpy.__version__
    assert fingerprinted["packages"]["pytest"] == pytest.__version__


def test_blas_backend_is_reported(fingerprinted):
    (first, *_) = fingerprinted["blas"]
    assert set(first) == set(environment.BLAS_FIELDS)
    assert first["user_api"] == "blas"
    assert first["internal_api"]
    assert first["num_threads"] >= 1


def test_framework_versions_come_from_metadata_without_importing(tmp_path):
    # Fake torch and tensorflow-cpu whose import would be seen; checked in a fresh process,
    # since the test process may have imported the real ones already.
    for module, distribution, version in (
        ("torch", "torch", "9.9.9"),
        ("tensorflow", "tensorflow_cpu", "8.8.8"),
    ):
        (tmp_path / module).mkdir()
        (tmp_path / module / "__init__.py").write_text("IMPORTED = True\n")
        dist_info = tmp_path / f"{distribution}-{version}.dist-info"
        dist_info.mkdir()
        name = distribution.replace("_", "-")
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
    script = (
        "import json, sys; from pathlib import Path\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "from bench.execution.environment import fingerprint\n"
        f"result = fingerprint(1, Path({str(tmp_path)!r}))\n"
        "imported = sorted({'torch', 'tensorflow'} & set(sys.modules))\n"
        "print(json.dumps({'result': result, 'imported': imported}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    out = json.loads(done.stdout)
    assert out["imported"] == []
    assert out["result"]["packages"]["torch"] == "9.9.9"
    assert out["result"]["packages"]["tensorflow"] == "8.8.8"
    assert out["result"]["tensorflow_distribution"] == "tensorflow-cpu"


def _git(directory: Path, *arguments: str) -> str:
    return subprocess.run(
        ["git", "-C", str(directory), *arguments], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_commit_and_dirty_state_of_a_repository(tmp_path):
    _git(tmp_path, "init", "--quiet")
    (tmp_path / "README.md").write_text("hello\n")
    _git(tmp_path, "add", "README.md")
    _git(
        tmp_path,
        "-c", "user.name=Test", "-c", "user.email=test@example.com",
        "-c", "commit.gpgsign=false",
        "commit", "--quiet", "-m", "first",
    )  # fmt: skip
    commit = _git(tmp_path, "rev-parse", "HEAD")

    clean = fingerprint(1, tmp_path)
    (tmp_path / "new_plugin.py").write_text("")
    dirty = fingerprint(1, tmp_path)

    assert clean["git_commit"] == commit
    assert len(commit) == 40
    assert clean["git_dirty"] is False
    assert dirty["git_commit"] == commit
    assert dirty["git_dirty"] is True


def test_no_git_commit_outside_a_repository(tmp_path, monkeypatch):
    # Stop git from finding a repository that happens to enclose the temporary directory.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    result = fingerprint(1, tmp_path)
    assert result["git_commit"] is None
    assert result["git_dirty"] is None


def test_gpu_is_read_from_nvidia_smi(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3, 81559 MiB, 550.54.15'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    assert fingerprint(1, tmp_path)["gpu"] == [
        {
            "name": "NVIDIA H100 80GB HBM3",
            "memory_total": "81559 MiB",
            "driver_version": "550.54.15",
        }
    ]


def test_no_gpu_without_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert fingerprint(1, tmp_path)["gpu"] is None


def test_failing_probes_give_none(tmp_path, monkeypatch):
    def broken(*arguments, **keywords):
        raise OSError("broken probe")

    monkeypatch.setattr(subprocess, "run", broken)
    monkeypatch.setattr(platform, "freedesktop_os_release", broken)
    monkeypatch.setattr(environment, "_cpu_model", broken)
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    result = fingerprint(1, tmp_path)

    assert set(result) == set(EXPECTED_TYPES)
    for key in ("cpu_model", "distribution", "gpu", "git_commit", "git_dirty"):
        assert result[key] is None, key


def test_relevant_environment_variables_only(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("SOME_OTHER_SETTING", "x")
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)

    variables = fingerprint(2, Path.cwd())["environment_variables"]

    assert variables["OPENBLAS_CORETYPE"] == "Haswell"
    assert variables["OMP_NUM_THREADS"] == "2"
    assert "SOME_OTHER_SETTING" not in variables
    assert "OPENBLAS_L2_SIZE" not in variables
