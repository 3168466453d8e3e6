import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bench import cli, plugins
from bench.execution import threads

PLUGINS = Path(__file__).parent / "plugins"


def test_builtin_reference_implementations_are_found():
    found = plugins.discover(installed=False)
    assert found.find("numpy-vectorized", "mlp") is not None
    assert found.find("sklearn", "kmeans") is not None
    assert not found.broken, found.broken


def test_a_plugin_that_raises_at_import_is_listed_with_its_file_and_the_others_load(tmp_path):
    shutil.copy(PLUGINS / "broken_import.py", tmp_path)
    shutil.copy(PLUGINS / "faulty" / "faulty.py", tmp_path)
    found = plugins.discover([tmp_path], builtin=False, installed=False)
    (broken,) = found.broken
    assert broken.source.endswith("broken_import.py")
    assert "ImportError: this plugin is broken on purpose" in broken.error
    assert {"healthy", "crashing", "hanging"} <= set(found.names())


def test_sources_not_cached_are_imported_several_at_once(tmp_path, monkeypatch):
    # Each source's import waits until the other's has started: imported one after the
    # other, the first would wait alone until its deadline and be listed as broken.
    waiting = """
        import time
        from pathlib import Path
        here = Path(__file__).parent
        (here / "{me}.started").touch()
        deadline = time.monotonic() + 20
        while not (here / "{other}.started").exists():
            if time.monotonic() > deadline:
                raise RuntimeError("imported alone")
            time.sleep(0.02)
    """
    for me, other in (("first", "second"), ("second", "first")):
        (tmp_path / f"{me}.py").write_text(textwrap.dedent(waiting.format(me=me, other=other)))
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    found = plugins.discover([tmp_path], builtin=False, installed=False)
    assert not found.broken, found.broken
    assert {path.name for path in tmp_path.glob("*.started")} == {
        "first.started",
        "second.started",
    }


def test_missing_requirement_makes_the_plugin_unavailable_with_the_reason():
    found = plugins.discover([PLUGINS / "faulty"], builtin=False, installed=False)
    plugin = found.find("needs-missing", "mlp")
    assert not plugin.available
    assert "a_module_that_is_not_installed" in plugin.unavailable_reason
    assert found.find("healthy", "mlp").available


def test_a_declared_install_hint_replaces_the_pip_advice(tmp_path):
    (tmp_path / "compiled.py").write_text(
        textwrap.dedent("""
        from bench.api import Trainer, register

        @register
        class Compiled(Trainer):
            name, model, framework = "compiled", "mlp", "rust"
            requires = ("a_compiled_extension_not_built",)
            install_hint = "build it with `make setup` (needs cargo)"
    """)
    )
    plugin = plugins.discover([tmp_path], builtin=False, installed=False).find("compiled", "mlp")
    assert plugin.unavailable_reason == (
        "requires a_compiled_extension_not_built, not installed "
        "(build it with `make setup` (needs cargo))"
    )


def test_a_missing_framework_caught_by_optional_imports_is_reported(tmp_path):
    (tmp_path / "guarded.py").write_text(
        textwrap.dedent("""
        from bench.api import Trainer, optional_imports, register
        with optional_imports():
            import not_a_real_framework

        @register
        class Guarded(Trainer):
            name, model, framework = "guarded", "mlp", "x"
            requires = ("not_a_real_framework",)
    """)
    )
    found = plugins.discover([tmp_path], builtin=False, installed=False)
    assert not found.broken
    assert found.find("guarded", "mlp").missing == ("not_a_real_framework",)


def test_native_start_up_notices_are_dropped_and_other_stderr_output_kept(tmp_path, capfd):
    # What TensorFlow's C++ side prints when imported, then a line a user must see.
    (tmp_path / "noisy.py").write_text(
        textwrap.dedent("""
        import os
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
                    b"written to STDERR\\n")
        os.write(2, b"I0000 00:00:1795353581.859125   25505 port.cc:153] oneDNN custom "
                    b"operations are on. You may see slightly different numerical results.\\n")
        os.write(2, b"noisy: a real warning\\n")
        from bench.api import Trainer, register

        @register
        class Noisy(Trainer):
            name, model, framework = "noisy", "mlp", "x"
    """)
    )
    found = plugins.discover([tmp_path], builtin=False, installed=False)
    assert found.find("noisy", "mlp") is not None
    err = capfd.readouterr().err
    assert "noisy: a real warning" in err
    assert "absl" not in err and "oneDNN" not in err


def test_duplicate_names_are_reported(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(PLUGINS / "noop" / "noop.py", tmp_path / folder)
    found = plugins.discover([tmp_path / "a", tmp_path / "b"], builtin=False, installed=False)
    assert found.names() == ["noop"]
    assert any("duplicate implementation 'noop'" in b.error for b in found.broken)


def test_entry_point_plugins_are_discovered_and_loadable_by_a_worker(tmp_path, monkeypatch):
    package = tmp_path / "thirdparty_bench"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent("""
        import numpy as np
        from bench.api import Trainer

        class ThirdParty(Trainer):
            name, model, framework = "third-party", "mlp", "numpy"
    """)
    )
    info = tmp_path / "thirdparty_bench-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-bench\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[bench.implementations]\nthird-party = thirdparty_bench:ThirdParty\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    found = plugins.discover(builtin=False)
    plugin = found.find("third-party", "mlp")
    assert plugin is not None and plugin.source.startswith("entry-point:third-party")
    assert plugins.load_plugin(plugin.source, "third-party", "mlp") is plugin.cls


def test_plugin_folder_names_need_not_be_identifiers():
    found = plugins.discover(installed=False)
    cls = found.find("numpy-vectorized", "mlp").cls
    source = found.find("numpy-vectorized", "mlp").source
    assert "numpy-vectorized" in source
    assert plugins.load_plugin(source, "numpy-vectorized", "mlp") is cls


def test_relative_plugin_folders_are_recorded_as_absolute_paths(monkeypatch):
    # workers run in their own folder: a relative source would not be found there
    monkeypatch.chdir(PLUGINS.parent)
    found = plugins.discover([Path("plugins") / "noop"], builtin=False, installed=False)
    source = found.find("noop", "mlp").source
    assert Path(source.removeprefix("path:")).is_absolute()


def test_a_warm_cache_lists_plugins_without_importing_them_and_edits_invalidate_it(tmp_path):
    counter = tmp_path / "imports.txt"
    plugin = tmp_path / "plugins" / "counted.py"
    plugin.parent.mkdir()
    source = textwrap.dedent(f"""
        from pathlib import Path
        from bench.api import Trainer, register
        with Path({str(counter)!r}).open("a") as f:
            f.write("imported\\n")

        @register
        class Counted(Trainer):
            name, model, framework = "counted", "mlp", "{{framework}}"
    """)
    plugin.write_text(source.replace("{framework}", "first"))
    script = (
        "import sys; from pathlib import Path; from bench import plugins; "
        "found = plugins.discover([Path(sys.argv[1])], builtin=False, installed=False); "
        "print(found.find('counted', 'mlp').framework)"
    )

    def discover_in_a_fresh_process() -> str:
        done = subprocess.run(
            [sys.executable, "-c", script, str(plugin.parent)],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    assert discover_in_a_fresh_process() == "first"
    assert discover_in_a_fresh_process() == "first"
    assert counter.read_text().count("imported") == 1
    plugin.write_text(source.replace("{framework}", "second"))
    os.utime(plugin, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert discover_in_a_fresh_process() == "second"
    assert counter.read_text().count("imported") == 2


def test_one_requirement_rule_for_discovery_and_bench_check(tmp_path):
    """A dotted requirement whose parent package is missing is missing, not an error."""
    (tmp_path / "dotted.py").write_text(
        textwrap.dedent("""
        from bench.api import Trainer, register

        @register
        class Dotted(Trainer):
            name, model, framework = "dotted", "mlp", "x"
            requires = ("numpy", "nosuchpkg.sub")
    """)
    )
    from bench import conformance

    found = plugins.discover([tmp_path], builtin=False, installed=False)
    plugin = found.find("dotted", "mlp")
    assert plugin.missing == ("nosuchpkg.sub",)
    (result,) = conformance.run_checks(plugin.cls, ["dlfs-mlp"])
    assert not result.passed and result.detail == plugin.unavailable_reason


FORGOTTEN = """
import numpy as np
from bench.api import Trainer, register


class MyNumpyMLP(Trainer):
    name, model, framework = "my-numpy", "mlp", "numpy"


class Base(Trainer):
    framework = "numpy"


@register
class Derived(Base):
    name, model = "derived", "mlp"
"""


def test_a_subclass_never_registered_is_named_with_forgot_register(tmp_path, capsys):
    (tmp_path / "mine.py").write_text(FORGOTTEN)
    found = plugins.discover([tmp_path], builtin=False, installed=False)
    assert [p.name for p in found.plugins] == ["derived"]  # a registered class's base is fine
    (forgotten,) = found.unregistered
    assert forgotten.what == f"MyNumpyMLP (a Trainer, in {tmp_path / 'mine.py'})"

    assert cli.main(["list", "--plugins", str(tmp_path)]) == 0
    assert "MyNumpyMLP (a Trainer, in" in capsys.readouterr().err
    # bench check of the name the user meant: the folder's names and the forgotten class,
    # not a built-in that merely looks alike ("Did you mean 'numpy-pure'?").
    assert cli.main(["check", "my-numpy", "--plugins", str(tmp_path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{tmp_path} registers derived" in err
    assert "it defines MyNumpyMLP (a Trainer, in" in err and "forgot @register?" in err
    assert "numpy-pure'?" not in err
    assert cli.main(["check", "derivd", "--plugins", str(tmp_path)]) == 2
    assert "registers derived (did you mean 'derived'?)" in " ".join(
        capsys.readouterr().err.split()
    )


def test_no_bundled_or_test_plugin_forgets_to_register():
    found = plugins.discover([PLUGINS / "faulty", PLUGINS / "halfway", PLUGINS / "noop"])
    assert found.unregistered == []
