"""The command line reaches every stage through one table, `hpc_rg.cli.STAGE_ENTRIES` ("module:function"
and the options it takes), and leaves a multi-rank job through the `World` (no mpi4py of its own)."""
from __future__ import annotations

import inspect
import sys
import types
from pathlib import Path

import pytest

from hpc_rg import cli, cli_exits, config
from hpc_rg.parallel import World

ROOT = Path(__file__).resolve().parents[2]
OPTIONS = {"resume", "force", "worker"}


@pytest.mark.parametrize("stage", config.STAGES)
def test_every_stage_has_one_entry_that_takes_its_options(stage):
    entry = cli.STAGE_ENTRIES[stage]
    function = entry.load()
    assert callable(function)
    assert set(entry.options) <= OPTIONS
    if entry.on_run_folder:
        inspect.signature(function).bind(Path("run"))
    else:
        inspect.signature(function).bind(object(), object(), **{k: False for k in entry.options})


def test_the_table_names_exactly_the_stages():
    assert set(cli.STAGE_ENTRIES) == set(config.STAGES)


def test_a_stage_runs_the_function_its_entry_names(monkeypatch):
    calls = []
    fake = types.ModuleType("hpc_rg_test_fake_stage")
    fake.run = lambda cfg, world, **options: calls.append((cfg, world, options)) or 3
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    monkeypatch.setitem(cli.STAGE_ENTRIES, "train", cli.StageEntry(f"{fake.__name__}:run", ("resume",)))
    cfg, world = config.load(ROOT / "jobs" / "quickstart.toml"), World(None, 0, 1)
    assert cli._run_stage("train", cfg, world, resume=True, force=True, worker=False) == 3
    assert calls == [(cfg, world, {"resume": True})]          # only the options the entry names


class _StuckRequest:
    def Test(self):            # the other ranks never come: they are blocked in a collective
        return False


class _Aborted(Exception):
    pass


def test_a_rank_alone_in_its_error_aborts_the_job_through_the_world(monkeypatch, capsys):
    aborted = []

    class LoneWorld(World):
        def abort(self, code=1):
            aborted.append(code)
            raise _Aborted

    comm = types.SimpleNamespace(Ibarrier=lambda: _StuckRequest())
    monkeypatch.setattr(cli_exits, "AGREE_SECONDS", 0.05)
    with pytest.raises(_Aborted):
        cli_exits.agree_or_abort(LoneWorld(comm, 1, 2), 2, "hpc-rg: error (rank 1): bad")
    assert aborted == [2]
    assert capsys.readouterr().err == "hpc-rg: error (rank 1): bad\n"


def test_ranks_that_agree_leave_without_aborting(monkeypatch):
    class Done:
        def Test(self):
            return True

    class StrictWorld(World):
        def abort(self, code=1):
            raise AssertionError("aborted although every rank agreed")

    cli_exits.agree_or_abort(StrictWorld(types.SimpleNamespace(Ibarrier=Done), 0, 2), 2, None)


LONE_ERROR = """
from hpc_rg.cli_exits import agree_or_abort
from hpc_rg.parallel import world
w = world()
if w.rank == 1:          # alone in its error: rank 0 is blocked in a collective that rank 1 never joins
    agree_or_abort(w, 2, "hpc-rg: error (rank 1): only here")
else:
    w.barrier()
"""


def test_a_lone_error_on_two_real_ranks_ends_the_job_instead_of_hanging():
    import os
    import subprocess
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        pytest.skip("no mpiexec beside the interpreter")
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    proc = subprocess.run([str(mpiexec), "-n", "2", sys.executable, "-c", LONE_ERROR], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "hpc-rg: error (rank 1): only here" in proc.stderr, proc.stderr
