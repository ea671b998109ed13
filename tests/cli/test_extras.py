"""The core install (no torch, mpi4py, matplotlib, optuna, xarray, ...) reads files and simulates on one rank;
a stage that needs an extra says which, in one line, exit 2, before writing anything; `hpc-rg demo` runs the
quickstart shipped in the package. The optional packages are hidden here by an import hook in a subprocess
(tests/docs/test_wheel.py does it for real, in a clean venv with the built wheel)."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from hpc_rg import cli as cli_module
from hpc_rg.extras import EXTRA_OF, MissingExtra, from_import_error, require

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = ",".join(EXTRA_OF)          # every optional top-level module
HIDE = """
import importlib.abc, sys
hidden = set(sys.argv[1].split(","))
class Hide(importlib.abc.MetaPathFinder):      # as if these packages were not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Hide())
from hpc_rg.cli import main
code = main(sys.argv[2:])
leaked = sorted(m for m in sys.modules if m.split(".")[0] in hidden)
assert not leaked, leaked
sys.exit(code)
"""
TINY = """[job]
name = "tiny"
seed = 7
out = "run"

[simulate]
model = "ising2d"
L = 4
temperatures = [2.0, 2.5]
algorithm = "metropolis"
thermalize = 10
samples = 20
thin = 2

[train.rbm]
kind = "rbm"
n_hidden = 4
epochs = 1
batch_size = 10

[analyze.observables]
"""


def without(modules: str, *args, cwd, env_extra=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", HIDE, modules, *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def in_process(*args) -> subprocess.CompletedProcess:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli_module.main([str(a) for a in args])
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def one_line(proc, text):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr == text + "\n", proc.stderr
    assert proc.stdout == ""


@pytest.fixture(scope="module")
def core_run(tmp_path_factory):
    """simulate with only the core importable (no mpi4py either: one rank), then analyze with everything."""
    folder = tmp_path_factory.mktemp("core")
    (folder / "tiny.toml").write_text(TINY)
    proc = without(OPTIONAL, "simulate", "tiny.toml", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    assert in_process("analyze", folder / "tiny.toml", "-q").returncode == 0
    return folder


@pytest.mark.parametrize("args", [["check", "tiny.toml"], ["check", "--explain", "tiny.toml"],
                                  ["info", "run/ensemble.h5"], ["info", "--json", "run/results.h5"],
                                  ["status", "run"], ["status", "--json", "run"], ["--version"]])
def test_core_commands_need_no_extra(core_run, args):
    proc = without(OPTIONAL, *args, cwd=core_run)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


def test_train_names_its_extra_and_writes_nothing(core_run):
    proc = without("torch", "train", "tiny.toml", cwd=core_run)
    one_line(proc, "hpc-rg train: needs torch; install it with pip install 'hpc_rg[train]'")
    assert not (core_run / "run" / "models").exists()


def test_run_checks_every_stage_before_the_first(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY)
    proc = without("torch", "run", "tiny.toml", cwd=tmp_path)
    one_line(proc, "hpc-rg train: needs torch; install it with pip install 'hpc_rg[train]'")
    assert not (tmp_path / "run").exists()                 # simulate did not run first


def test_analyze_without_matplotlib_names_plot(core_run):
    proc = without("matplotlib", "analyze", "tiny.toml", "--force", cwd=core_run)
    one_line(proc, "hpc-rg analyze: needs matplotlib; install it with pip install 'hpc_rg[plot]'")


def test_several_ranks_without_mpi4py_name_mpi(core_run):
    # what mpiexec -n 2 sets in each rank's environment: without mpi4py each would think it is alone
    proc = without("mpi4py", "simulate", "tiny.toml", "--force", cwd=core_run, env_extra={"PMI_SIZE": "2"})
    one_line(proc, "hpc-rg on 2 ranks: needs mpi4py; install it with pip install 'hpc_rg[mpi]'")


def test_demo_without_torch_names_train_and_writes_nothing(tmp_path):
    proc = without("torch", "demo", "--out", tmp_path / "demo", cwd=tmp_path)
    one_line(proc, "hpc-rg train: needs torch; install it with pip install 'hpc_rg[train]'")
    assert not (tmp_path / "demo").exists()


def test_an_import_deep_inside_a_stage_gives_the_same_line(monkeypatch):
    import hpc_rg.extras as extras
    e = ModuleNotFoundError("No module named 'optuna.storages'", name="optuna.storages")
    assert from_import_error(e, "tune") is None            # optuna is installed here: a real error
    monkeypatch.setattr(extras, "available", lambda module: module != "optuna")
    missing = from_import_error(e, "tune")
    assert isinstance(missing, MissingExtra)
    assert missing.line() == "hpc-rg tune: needs optuna; install it with pip install 'hpc_rg[train]'"
    assert from_import_error(ModuleNotFoundError("x", name="hpc_rg.nothing"), "tune") is None
    with pytest.raises(MissingExtra):
        require("a_module_that_is_not_there_hpc_rg", extra="plot")


def test_packaged_quickstart_is_jobs_quickstart():
    from importlib.resources import files
    packaged = files("hpc_rg.data").joinpath("quickstart.toml").read_text(encoding="utf-8")
    assert packaged == (ROOT / "jobs" / "quickstart.toml").read_text(encoding="utf-8"), \
        "hpc_rg/data/quickstart.toml differs from jobs/quickstart.toml: cp jobs/quickstart.toml hpc_rg/data/"


@pytest.mark.parametrize("out", [None, "elsewhere/my demo \"1\""])
def test_demo_runs_the_packaged_job_into_out(tmp_path, monkeypatch, out):
    from hpc_rg import config
    ran = []
    monkeypatch.setattr(cli_module, "run_stage", lambda stage, cfg, *a, **k: ran.append((stage, cfg)) or 0)
    monkeypatch.chdir(tmp_path)
    proc = in_process("demo", *(["--out", out] if out else []))
    assert proc.returncode == 0, proc.stderr
    expected = config.load(ROOT / "jobs" / "quickstart.toml")
    assert [s for s, _ in ran] == list(expected.stages) == ["simulate", "train", "analyze", "report"]
    cfg = ran[0][1]
    assert cfg.out == (tmp_path / (out or "runs/quickstart")).resolve()
    mine, theirs = cfg.as_dict(), expected.as_dict()
    assert mine["job"].pop("out") == str(cfg.out) and theirs["job"].pop("out") == "../runs/quickstart"
    assert mine == theirs


def test_analyze_reads_the_packages_a_reduction_declares(monkeypatch):
    """A reduction's `Plugin(..., imports=(...))` is what the analyze stage checks before any work (no list
    of reduction names in hpc_rg.extras): reconstructions declares sklearn, observables nothing."""
    from types import SimpleNamespace

    from hpc_rg import extras, plugins
    assert plugins.get("reduction", "reconstructions").imports == ("torch", "sklearn")
    monkeypatch.setattr(extras, "available", lambda module: module != "sklearn")
    job = SimpleNamespace(analyze={"reconstructions": SimpleNamespace(models=())})
    with pytest.raises(MissingExtra, match="scikit-learn|sklearn"):
        extras.require_for_stage("analyze", job)
    extras.require_for_stage("analyze", SimpleNamespace(analyze={"observables": SimpleNamespace()}))
