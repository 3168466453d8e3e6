"""Build the compiled implementations (the crates of the Cargo workspace) into this Python
environment: `make setup` runs it with the virtual environment's interpreter.

One `cargo build --release --workspace` builds every crate: the crates share their
dependencies and the two cores stay busy across crates, which one build per crate does not
allow (cargo resolves features per build, so each crate's build compiled ndarray, pyo3 and
rand again with its own features). A crate of a Python extension (a cdylib) is then
installed as an extension module, `<module><EXT_SUFFIX>` in this environment's
site-packages, as `maturin develop` would; a crate of programs (binaries: the serving
benchmark's server and load generator) has its programs copied beside this environment's
interpreter, as pip installs console scripts. A crate is installed again only when the stamp
of the installed one differs: a hash of the crate's sources (and of the files its Cargo.toml
lists under `[package.metadata.bench] inputs`), the workspace manifest and Cargo.lock, the
toolchain's versions, the flags and, for a crate that links LibTorch, the torch version. The
stamp (`<environment>/bench-rust/<module or crate>.json`) also records what
`bench.execution.environment` puts in every run's fingerprint.

`build_rust.py lint` checks the crates with `cargo fmt` and `cargo clippy` (`make lint`).

Without cargo this prints what to install and succeeds: the plugins' cases are then skipped
with that reason. A crate linking LibTorch needs torch installed; without it, it is left out
of the build the same way. A compile error fails the build.
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
import sysconfig
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
    # PyO3 builds for this interpreter (its version and ABI), whatever `python` PATH finds.
    environment = {**os.environ, "RUSTFLAGS": rustflags, "PYO3_PYTHON": sys.executable}
    if links_libtorch:
        # torch-sys asks `python` on PATH for the wheel's LibTorch (headers, libraries, ABI).
        environment["LIBTORCH_USE_PYTORCH"] = "1"
        environment["VIRTUAL_ENV"] = sys.prefix
        environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    return environment


def build_workspace(crates: list[dict], left_out: list[dict], rustflags: str) -> None:
    """`cargo build --release` of the whole workspace but `left_out` (crates that cannot be
    built here), in one invocation."""
    command = ["cargo", "build", "--release", "--quiet", "--workspace"]
    command += [f"--exclude={crate['crate']}" for crate in left_out]
    links_libtorch = any(crate["links_libtorch"] for crate in crates)
    subprocess.run(command, check=True, cwd=ROOT, env=cargo_environment(rustflags, links_libtorch))


def install(crate: dict) -> None:
    """Put what the workspace build made of `crate` where this environment finds it: an
    extension module into site-packages, programs beside the interpreter. Each file is
    staged and renamed into place, so that nothing ever sees a half-copied one."""
    built = crate["target"] / "release"
    if crate["binaries"]:
        copies = [(built / name, rust_program_dir() / name) for name in crate["binaries"]]
    else:
        remove_distribution(crate["crate"])
        copies = [(built / f"lib{crate['module']}.so", extension_path(crate))]
    for source, installed_at in copies:
        staged = installed_at.with_name(f".{installed_at.name}.new")
        shutil.copy2(source, staged)
        os.replace(staged, installed_at)


def remove_distribution(name: str) -> None:
    """Uninstall a wheel of the crate that pip installed (earlier versions of this tool, or
    `pip install implementations/<crate>`): its package folder would hide the module."""
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return
    pip = [sys.executable, "-m", "pip", "uninstall", "--quiet", "--yes", name]
    subprocess.run(pip, check=True)


def installed(crate: dict) -> bool:
    """Whether the crate's extension module, or every one of its programs, is installed."""
    if crate["binaries"]:
        return all((rust_program_dir() / binary).is_file() for binary in crate["binaries"])
    return extension_path(crate).is_file()


def extension_path(crate: dict) -> Path:
    """Where this environment imports the crate's extension module from."""
    extension = crate["module"] + sysconfig.get_config_var("EXT_SUFFIX")
    return Path(sysconfig.get_path("platlib")) / extension


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
    facts = toolchain()
    STAMPS.mkdir(exist_ok=True)
    crates, left_out, stale = [], [], []
    for crate in workspace_crates():
        crate_facts = dict(facts)
        if crate["links_libtorch"]:
            try:
                crate_facts["libtorch"] = importlib.metadata.version("torch")
            except importlib.metadata.PackageNotFoundError:
                module = crate["module"]
                print(f"note: {module} links the torch wheel's LibTorch; torch is not installed")
                left_out.append(crate)
                continue
        crate["facts"], crate["hash"] = crate_facts, source_hash(crate, crate_facts)
        crates.append(crate)
        stamp = installed_stamp(crate["module"])
        if stamp and stamp["hash"] == crate["hash"] and installed(crate):
            print(f"{crate['module']}: up to date")
        else:
            stale.append(crate)
    if not stale:
        return 0
    names = ", ".join(crate["module"] for crate in stale)
    print(f"building the workspace for {names} ({facts['rustflags']})")
    started = time.monotonic()
    try:
        build_workspace(crates, left_out, facts["rustflags"])
    except subprocess.CalledProcessError as error:
        print(f"error: building the Rust workspace failed ({error})", file=sys.stderr)
        if any(crate["links_libtorch"] for crate in crates):
            print(
                "tch builds for one PyTorch version only: see 'when torch moves' in docs/rust.md",
                file=sys.stderr,
            )
        return 1
    seconds = round(time.monotonic() - started, 1)
    for crate in stale:
        install(crate)
        record = {
            "hash": crate["hash"],
            "crate": crate["crate"],
            "version": crate["version"],
            **({"binaries": crate["binaries"]} if crate["binaries"] else {}),
            **crate["facts"],
            "built_seconds": seconds,  # of the one workspace build that built it
        }
        if crate["links_libtorch"]:  # with its build tag (+cpu, +cu130): the metadata lacks it
            record["libtorch"] = run(sys.executable, "-c", LIBTORCH_VERSION).strip()
        (STAMPS / f"{crate['module']}.json").write_text(json.dumps(record, indent=1) + "\n")
        print(f"{crate['module']}: installed")
    print(f"the Rust workspace: built in {seconds} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
