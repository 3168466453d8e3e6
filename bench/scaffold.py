"""`bench new NAME`: write a commented plugin skeleton that loads, is discoverable, and
says where the math goes. The skeletons live in `bench/templates/`: Python ones as valid
Python, Rust ones (`--lang rust`: a crate and its Python face) in `templates/rust/`."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from bench import names
from bench.plugins import BUILTIN_DIR

# model -> (template, suffix of the class name); the module written is <model>.py. Trainers
# share one template: its step() docstring covers every layer kind of the scenarios.
MODELS = {
    "mlp": ("trainer.py", "MLP"),
    "cnn": ("trainer.py", "CNN"),
    "kmeans": ("kmeans.py", "KMeans"),
}
LANGUAGES = ("python", "rust")
PROJECT_DIR = BUILTIN_DIR.parent
WORKSPACE = PROJECT_DIR / "Cargo.toml"


class ScaffoldError(Exception):
    """The skeleton cannot be written; the message says what to change."""


def new_plugin(
    name: str,
    model: str = "mlp",
    directory: Path = Path("implementations"),
    lang: str = "python",
) -> Path:
    """Write the plugin `<directory>/<name>/`; return the file to fill in."""
    if not names.is_valid(name):
        raise ScaffoldError(f"invalid name {name!r}: use {names.NAME_RULE}")
    if model not in MODELS:
        raise ScaffoldError(f"unknown model {model!r}; bench new writes {', '.join(MODELS)}")
    if lang not in LANGUAGES:
        raise ScaffoldError(f"unknown language {lang!r}; bench new writes {', '.join(LANGUAGES)}")
    folder = Path(directory) / name
    if folder.exists():
        raise ScaffoldError(f"{folder} already exists; choose another name or remove it first")
    template, suffix = MODELS[model]
    module = "bench_" + name.replace("-", "_")
    replacements = {
        "TemplateClass": "".join(word.capitalize() for word in name.split("-")) + suffix,
        "template-name": name,
        "template_model": model,  # also the module's name: <model>.py
        "template_module": module,  # a Rust plugin's extension module
        "template-crate": "bench-" + name,
    }

    def render(path: str) -> str:
        text = resources.files("bench.templates").joinpath(path).read_text(encoding="utf-8")
        for placeholder, value in replacements.items():
            text = text.replace(placeholder, value)
        return text

    if lang == "rust":
        return _rust_plugin(folder, template, render)
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(render("package.py"), encoding="utf-8")
    target = folder / f"{model}.py"
    target.write_text(render(template), encoding="utf-8")
    return target


def _rust_plugin(folder: Path, template: str, render) -> Path:
    """A crate (Cargo.toml, pyproject.toml for maturin, src/lib.rs) whose package
    `__init__.py` is the plugin class. In `implementations/` it joins the project's Cargo
    workspace, so that `make setup` builds it; elsewhere it is a workspace of its own."""
    kind = Path(template).stem
    in_workspace = folder.parent.resolve() == BUILTIN_DIR and WORKSPACE.is_file()
    manifest = render("rust/Cargo.toml.template")
    if not in_workspace:
        manifest += "\n# Not a member of the project's workspace: a workspace of its own.\n"
        manifest += "[workspace]\n"
    (folder / "src").mkdir(parents=True)
    (folder / "Cargo.toml").write_text(manifest, encoding="utf-8")
    (folder / "pyproject.toml").write_text(render("rust/pyproject.toml.template"), "utf-8")
    (folder / "__init__.py").write_text(render(f"rust/{kind}.py"), encoding="utf-8")
    target = folder / "src" / "lib.rs"
    target.write_text(render(f"rust/{kind}.rs"), encoding="utf-8")
    if in_workspace:
        _join_workspace(f"implementations/{folder.name}")
    return target


def _join_workspace(member: str) -> None:
    text = WORKSPACE.read_text(encoding="utf-8")
    found = re.search(r"^members = \[(.*?)\]", text, flags=re.M | re.S)
    if found is None:
        raise ScaffoldError(f"{WORKSPACE} has no `members = [...]` list to add {member} to")
    members = [m.strip() for m in found.group(1).split(",") if m.strip()]
    listed = ", ".join([*members, f'"{member}"'])
    WORKSPACE.write_text(text[: found.start()] + f"members = [{listed}]" + text[found.end() :])


def next_steps(name: str, module: Path) -> str:
    """What to do after `new_plugin`, with `--plugins` where the folder needs it."""
    rust = module.suffix == ".rs"
    plugin = module.parent.parent if rust else module.parent
    plugins = "" if plugin.parent.resolve() == BUILTIN_DIR else f" --plugins {plugin.parent}"
    face = f" and in {plugin / '__init__.py'}" if rust else ""
    lines = [f"Fill in the methods marked FILL IN in {module}{face}, then:"]
    if rust:
        lines.append(
            f"  pip install --no-build-isolation {plugin}        # builds it with maturin"
            if plugins
            else "  make setup        # builds it into .venv"
        )
    lines += [
        f"  bench check {name}{plugins}        # the conformance suite",
        f"  bench run -i {name}{plugins} --profile smoke",
    ]
    return "\n".join(lines)
