"""The plugin mechanism itself (hpc_rg.plugins): declarations are read, not imported; names are unique."""
import subprocess
import sys
import textwrap

import pytest

from hpc_rg import plugins
from hpc_rg.plugins import Plugin, PluginError


def _module(tmp_path, monkeypatch, name, text):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(plugins.ENV, name)
    monkeypatch.setattr(plugins, "_FOUND", None)


def test_a_declaration_outside_the_package_is_found_without_importing_it(tmp_path, monkeypatch):
    _module(tmp_path, monkeypatch, "toy_plugin_a", """
        from hpc_rg.plugins import Plugin
        raise RuntimeError("imported at discovery")   # discovery must only read this file
        PLUGINS = (Plugin("reduction", "toy_count", "count", spec="ToySpec", needs=("ensemble",)),)
        """)
    p = plugins.get("reduction", "toy_count")
    assert (p.module, p.entry, p.spec, p.needs) == ("toy_plugin_a", "count", "ToySpec", ("ensemble",))
    assert "toy_count" in plugins.names("reduction")
    with pytest.raises(RuntimeError, match="imported at discovery"):
        p.load()                                   # ... and load() does import it


def test_entry_and_spec_resolve_lazily(tmp_path, monkeypatch):
    _module(tmp_path, monkeypatch, "toy_plugin_b", """
        from dataclasses import dataclass
        from hpc_rg.plugins import Plugin
        PLUGINS = [Plugin("learner", "toy", "Toy", spec="ToySpec"), Plugin("sampler", "toy", "Toy", device="cuda",
                                                                             models=("ising2d",))]
        @dataclass(frozen=True)
        class ToySpec:
            n: int = 1
        class Toy:
            pass
        """)
    learner = plugins.get("learner", "toy")
    assert learner.load().__name__ == "Toy" and learner.load_spec()().n == 1
    assert "toy" not in plugins.table("sampler")                  # the cpu table
    assert plugins.get("sampler", "toy", "cuda").models == ("ising2d",)


def test_two_plugins_with_one_name_are_an_error(tmp_path, monkeypatch):
    _module(tmp_path, monkeypatch, "toy_plugin_c", """
        PLUGINS = (Plugin("reduction", "dup", "f", spec="S"), Plugin("reduction", "dup", "g", spec="S"))
        """)
    with pytest.raises(PluginError, match="two reduction plugins named 'dup'"):
        plugins.table("reduction")


def test_a_declaration_that_is_not_a_literal_is_an_error(tmp_path, monkeypatch):
    _module(tmp_path, monkeypatch, "toy_plugin_d", """
        NAME = "x"
        PLUGINS = (Plugin("reduction", NAME, "f"),)
        """)
    with pytest.raises(PluginError, match="must be literals"):
        plugins.table("reduction")


def test_unknown_group_and_unknown_name():
    with pytest.raises(PluginError, match="group"):
        Plugin("widget", "x", "y")
    with pytest.raises(PluginError, match="no reduction plugin named 'nope'"):
        plugins.get("reduction", "nope")


def test_register_at_run_time():
    p = plugins.register(Plugin("model", "toy_model", "builtins:dict"))
    try:
        assert plugins.get("model", "toy_model").load() is dict
    finally:
        plugins.unregister(p)
    assert "toy_model" not in plugins.names("model")


def test_discovery_imports_no_heavy_package():
    code = ("import sys, hpc_rg.plugins as p\n"
            "[p.table(g) for g in p.GROUPS]\n"
            "print(sorted(m for m in ('numba', 'torch', 'h5py', 'scipy', 'mpi4py') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("module", ["nonexistent_plugin_module", "nonexistent_pkg.sub", ".relative"])
def test_a_bad_plugin_module_name_is_one_line_and_exit_2(tmp_path, module):
    import os
    from pathlib import Path
    job = Path(__file__).resolve().parents[2] / "jobs" / "quickstart.toml"
    run = subprocess.run([sys.executable, "-m", "hpc_rg", "check", str(job)], capture_output=True, text=True,
                         env=dict(os.environ, HPC_RG_PLUGINS=module), cwd=tmp_path, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip() == f"hpc-rg: error: HPC_RG_PLUGINS: module {module!r} not found (or not a .py file)"


@pytest.mark.parametrize("text, message", [
    ("PLUGINS = (Plugin('reduction', 'x', 'f', spec='S'),\n", "cannot read its PLUGINS declaration"),
    ("PLUGINS = (Plugin('sampler', 'x', 'f', models='ising2d'),)", "models must be a tuple of names"),
    ("PLUGINS = (Plugin('reduction', 'x', 'f'),)", "spec= names the dataclass"),
    ("PLUGINS = (Plugin('reduction', 'x', 'f', spec='S', need=('ensemble',)),)", "unexpected keyword"),
])
def test_a_broken_declaration_is_a_plugin_error_naming_its_file(tmp_path, monkeypatch, text, message):
    _module(tmp_path, monkeypatch, "toy_plugin_e", text)
    with pytest.raises(PluginError, match=message) as e:
        plugins.table("reduction")
    assert e.value.file.endswith("toy_plugin_e.py") or "toy_plugin_e" in e.value.file
