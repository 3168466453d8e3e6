"""`bench new NAME`: write a commented plugin skeleton that loads, is discoverable, and
says where the math goes. The skeletons live in `bench/templates/` as valid Python."""

from __future__ import annotations

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


class ScaffoldError(Exception):
    """The skeleton cannot be written; the message says what to change."""


def new_plugin(name: str, model: str = "mlp", directory: Path = Path("implementations")) -> Path:
    """Write `<directory>/<name>/__init__.py` and `<model>.py`; return the module to fill in."""
    if not names.is_valid(name):
        raise ScaffoldError(f"invalid name {name!r}: use {names.NAME_RULE}")
    if model not in MODELS:
        raise ScaffoldError(f"unknown model {model!r}; bench new writes {', '.join(MODELS)}")
    folder = Path(directory) / name
    if folder.exists():
        raise ScaffoldError(f"{folder} already exists; choose another name or remove it first")
    template, suffix = MODELS[model]
    class_name = "".join(word.capitalize() for word in name.split("-")) + suffix

    def render(template: str) -> str:
        text = resources.files("bench.templates").joinpath(template).read_text(encoding="utf-8")
        replacements = {
            "TemplateClass": class_name,
            "template-name": name,
            "template_model": model,  # also the module's name: <model>.py
        }
        for placeholder, value in replacements.items():
            text = text.replace(placeholder, value)
        return text

    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(render("package.py"), encoding="utf-8")
    target = folder / f"{model}.py"
    target.write_text(render(template), encoding="utf-8")
    return target


def next_steps(name: str, module: Path) -> str:
    """What to do after `new_plugin`, with `--plugins` where the folder needs it."""
    parent = module.parent.parent
    plugins = "" if parent.resolve() == BUILTIN_DIR else f" --plugins {parent}"
    return (
        f"Fill in the methods marked FILL IN in {module}, then:\n"
        f"  bench check {name}{plugins}        # the conformance suite\n"
        f"  bench run -i {name}{plugins} --profile smoke"
    )
