"""Build the compiled implementations (the crates of the Cargo workspace) into this Python
environment: `make setup` runs it with the virtual environment's interpreter.

A crate of a Python extension (a cdylib) is built by maturin into a wheel under
target/wheels/ and installed with pip. A crate of programs (binaries: the serving benchmark's
server and load generator) is built by cargo, and its programs are copied beside this
environment's interpreter, as pip installs console scripts. A build is skipped when the stamp
of the installed one matches: a hash of the crate's sources (and of the files its Cargo.toml
lists under `[package.metadata.bench] inputs`), the workspace manifest and Cargo.lock, the
toolchain's versions, the flags and, for a crate that links LibTorch, the torch version. The
stamp (`<environment>/bench-rust/<module or crate>.json`) also records what
`bench.execution.environment` puts in every run's fingerprint.

`build_rust.py lint` checks the crates with `cargo fmt` and `cargo clippy` (`make lint`).

Without cargo this prints what to install and succeeds: the plugins' cases are then skipped
with that reason. A crate linking LibTorch needs torch installed; without it, it is skipped
the same way. A compile error fails the build.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.execution.environment import rust_program_dir, rust_stamp_dir

ROOT = Path(__file__).resolve().parent.parent
STAMPS = rust_stamp_dir()
# Build for this machine's CPU: the GEMM and distance loops use its widest vectors. Measured
# figures then belong to this CPU, which the fingerprint records anyway.
DEFAULT_RUSTFLAGS = "-C target-cpu=native"
LIBTORCH_VERSION = "import torch; print(torch.__version__)"


def run(*command: str, **options) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True, **options).stdout


def workspace_crates() -> list[dict]:
    """Every member of the workspace: its folder, the extension module it makes (`module`) or
    else its programs (`binaries`), the other files its build reads, whether it links LibTorch
    (through the `tch` crate), and the workspace's target folder."""
    metadata = json.loads(run("cargo", "metadata", "--format-version", "1", "--no-deps", cwd=ROOT))
    crates = []
    for package in metadata["packages"]:
        folder = Path(package["manifest_path"]).parent
        libraries = [t["name"] for t in package["targets"] if "cdylib" in t["kind"]]
        binaries = [t["name"] for t in package["targets"] if "bin" in t["kind"]]
        inputs = ((package.get("metadata") or {}).get("bench") or {}).get("inputs", [])
        crates.append(
            {
                "crate": package["name"],
                "version": package["version"],
                "folder": folder,
                # Its stamp's name: the extension module, or the crate of programs.
                "module": libraries[0] if libraries else package["name"],
                "binaries": [] if libraries else binaries,
                "inputs": [(folder / path).resolve() for path in inputs],
                "links_libtorch": any(d["name"] == "tch" for d in package["dependencies"]),
                "target": Path(metadata["target_directory"]),
            }
        )
    return crates


def target_cpu(rustflags: str) -> str | None:
    """The CPU the flags build for; `native` resolved to its name, as rustc reports it."""
    flags = rustflags.replace("=", " ").replace("-C", " ").split()
    cpu = next((b for a, b in itertools.pairwise(flags) if a == "target-cpu"), None)
    if cpu != "native":
        return cpu
    for line in run("rustc", "--print", "target-cpus").splitlines():
        if line.strip().startswith("native") and "currently " in line:
            return line.split("currently ", 1)[1].rstrip(").")
    return cpu


def toolchain() -> dict:
    rustflags = os.environ.get("RUSTFLAGS", DEFAULT_RUSTFLAGS)
    return {
        "rustc": run("rustc", "--version").strip(),
        "cargo": run("cargo", "--version").strip(),
        "maturin": run(sys.executable, "-m", "maturin", "--version").strip(),
        "python": sys.version.split()[0],
        "rustflags": rustflags,
        "target_cpu": target_cpu(rustflags),
    }


def source_hash(crate: dict, facts: dict) -> str:
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode())
    sources = sorted(
        path
        for pattern in ("*.rs", "Cargo.toml", "pyproject.toml")
        for path in crate["folder"].rglob(pattern)
    )
    for path in [ROOT / "Cargo.toml", ROOT / "Cargo.lock", *sources, *crate["inputs"]]:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def installed_stamp(module: str) -> dict | None:
    try:
        return json.loads((STAMPS / f"{module}.json").read_text())
    except (OSError, ValueError):
        return None


def cargo_environment(rustflags: str, links_libtorch: bool) -> dict[str, str]:
    environment = {**os.environ, "RUSTFLAGS": rustflags}
    if links_libtorch:
        # torch-sys asks `python` on PATH for the wheel's LibTorch (headers, libraries, ABI).
        environment["LIBTORCH_USE_PYTORCH"] = "1"
        environment["VIRTUAL_ENV"] = sys.prefix
        environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    return environment


def build(crate: dict, facts: dict) -> None:
    if crate["binaries"]:
        build_programs(crate, facts)
        return
    environment = cargo_environment(facts["rustflags"], crate["links_libtorch"])
    wheels = ROOT / "target" / "wheels" / crate["module"]
    shutil.rmtree(wheels, ignore_errors=True)
    subprocess.run(
        [
            sys.executable, "-m", "maturin", "build", "--release", "--quiet",
            # a wheel for this environment only: it links the libraries installed here
            "--auditwheel", "skip",
            "--manifest-path", str(crate["folder"] / "Cargo.toml"),
            "--interpreter", sys.executable,
            "--out", str(wheels),
        ],
        check=True,
        cwd=ROOT,
        env=environment,
    )  # fmt: skip
    (wheel,) = wheels.glob("*.whl")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", "--force-reinstall", str(wheel)], check=True)


def build_programs(crate: dict, facts: dict) -> None:
    """`cargo build --release` of a crate of programs, each copied beside the interpreter."""
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--package", crate["crate"], "--bins"],
        check=True,
        cwd=ROOT,
        env=cargo_environment(facts["rustflags"], crate["links_libtorch"]),
    )
    for binary in crate["binaries"]:
        installed = rust_program_dir() / binary
        staged = installed.with_name(f".{binary}.new")  # never a half-copied program
        shutil.copy2(crate["target"] / "release" / binary, staged)
        os.replace(staged, installed)


def installed(crate: dict) -> bool:
    """Whether the crate's extension module, or every one of its programs, is installed."""
    if crate["binaries"]:
        return all((rust_program_dir() / binary).is_file() for binary in crate["binaries"])
    return importlib.util.find_spec(crate["module"]) is not None


def lint() -> int:
    """`cargo fmt --check` and `cargo clippy -D warnings` on every crate, with the build's
    flags and environment, so that clippy reuses the release build's compiled dependencies."""
    has_torch = importlib.util.find_spec("torch") is not None
    clippy = ["cargo", "clippy", "--workspace", "--release", "--quiet"]
    clippy += [
        f"--exclude={crate['crate']}"
        for crate in workspace_crates()
        if crate["links_libtorch"] and not has_torch
    ]
    environment = cargo_environment(os.environ.get("RUSTFLAGS", DEFAULT_RUSTFLAGS), has_torch)
    for command in (["cargo", "fmt", "--check"], [*clippy, "--", "-D", "warnings"]):
        if subprocess.run(command, cwd=ROOT, env=environment).returncode != 0:
            return 1
    return 0


def main(arguments: list[str]) -> int:
    if shutil.which("cargo") is None:
        print(
            "note: cargo not found, so the Rust implementations (ndarray, linfa, tch-store) "
            "and the serving benchmark's Rust programs (linfa on tonic, the load generator) "
            "are not built and their cases will be skipped. Install Rust from "
            "https://rustup.rs, then run `make setup` again."
        )
        return 0
    if arguments == ["lint"]:
        return lint()
    if importlib.util.find_spec("maturin") is None:
        print(
            "note: maturin not installed, so the Rust implementations are not built: "
            "pip install 'bench[rust]' (make setup installs it with the dev extra)"
        )
        return 0
    facts = toolchain()
    STAMPS.mkdir(exist_ok=True)
    for crate in workspace_crates():
        module = crate["module"]
        crate_facts = dict(facts)
        if crate["links_libtorch"]:
            try:
                crate_facts["libtorch"] = importlib.metadata.version("torch")
            except importlib.metadata.PackageNotFoundError:
                print(f"note: {module} links the torch wheel's LibTorch; torch is not installed")
                continue
        digest = source_hash(crate, crate_facts)
        stamp = installed_stamp(module)
        if stamp and stamp["hash"] == digest and installed(crate):
            print(f"{module}: up to date")
            continue
        print(f"{module}: building {crate['folder'].relative_to(ROOT)} ({facts['rustflags']})")
        started = time.monotonic()
        try:
            build(crate, crate_facts)
        except subprocess.CalledProcessError as error:
            print(f"error: building {module} failed ({error})", file=sys.stderr)
            if crate["links_libtorch"]:
                print(
                    "tch builds for one PyTorch version only: see 'when torch moves' in "
                    "docs/rust.md",
                    file=sys.stderr,
                )
            return 1
        record = {
            "hash": digest,
            "crate": crate["crate"],
            "version": crate["version"],
            **({"binaries": crate["binaries"]} if crate["binaries"] else {}),
            **crate_facts,
            "built_seconds": round(time.monotonic() - started, 1),
        }
        if crate["links_libtorch"]:  # with its build tag (+cpu, +cu130): the metadata lacks it
            record["libtorch"] = run(sys.executable, "-c", LIBTORCH_VERSION).strip()
        (STAMPS / f"{module}.json").write_text(json.dumps(record, indent=1) + "\n")
        print(f"{module}: installed ({record['built_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
