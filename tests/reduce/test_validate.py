"""What a reduction declares it needs (and its spec's lattice hook) is checked before any reduction runs."""
import textwrap

import numpy as np
import pytest

from hpc_rg import plugins
from hpc_rg.config import loads
from hpc_rg.parallel import World
from hpc_rg.plugins import Plugin
from hpc_rg.reduce.stage import run as run_stage
from hpc_rg.schema import ConfigError

from model_helpers import write

TOY = '''
from dataclasses import dataclass
from pathlib import Path

from hpc_rg.reduce.registry import Result


@dataclass(frozen=True)
class MarkSpec:
    levels: int = 1

    def check_lattice(self, shape, source):
        if min(shape) < 2 ** self.levels:
            return "levels", self.levels, f"at most {min(shape).bit_length() - 1} halvings of {source}"
        return None


def mark(spec, ctx):
    """Leaves a file behind: proof that it ran."""
    (ctx.out / "mark_ran").write_text("ran")
    return Result(attrs={"levels": spec.levels})
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """Two reductions from a module outside the package: `mark` (needs the ensemble, has a lattice hook)
    and `after_mark` (needs the results of mark)."""
    (tmp_path / "toy_mark_plugin.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    added = [plugins.register(Plugin("reduction", "mark", "toy_mark_plugin:mark", spec="toy_mark_plugin:MarkSpec",
                                     needs=("ensemble",))),
             plugins.register(Plugin("reduction", "after_mark", "toy_mark_plugin:mark",
                                     spec="toy_mark_plugin:MarkSpec", needs=("results:mark",)))]
    yield tmp_path
    for p in added:
        plugins.unregister(p)


def _job(folder, body: str, simulate: bool = False):
    sim = "[simulate]\nmodel = \"ising2d\"\nL = 8\ntemperatures = [2.0]\n" if simulate else ""
    text = f'[job]\nname = "t"\nseed = 3\nout = "{folder / "run"}"\n{sim}' + textwrap.dedent(body)
    return loads(text, folder / "job.toml")


def _ensemble(run):
    run.mkdir(parents=True, exist_ok=True)
    spins = np.where(np.random.default_rng(0).random((1, 2, 10, 8, 8)) < 0.5, -1, 1)
    write(run / "ensemble.h5", [2.0], spins, "ising2d")


def test_a_missing_model_stops_the_stage_before_any_reduction_runs(toy):
    cfg = _job(toy, '[analyze.mark]\n[analyze.rbm_flow]\nmodel = "never_trained"\n')
    _ensemble(cfg.out)
    with pytest.raises(ConfigError, match=r"analyze\.rbm_flow\.model.*never_trained"):
        run_stage(cfg, World(None, 0, 1))
    assert not (cfg.out / "mark_ran").exists()


def test_a_missing_ensemble_is_refused_for_a_reduction_that_needs_one(toy):
    cfg = _job(toy, "[analyze.mark]\n")
    with pytest.raises(ConfigError, match="ensemble.h5"):
        run_stage(cfg, World(None, 0, 1))


def test_the_lattice_hook_of_a_plugin_spec_runs_at_check_and_stage_time(toy):
    with pytest.raises(ConfigError, match=r"analyze\.mark\.levels = 4.*\[simulate\]"):
        _job(toy, "[analyze.mark]\nlevels = 4\n", simulate=True)
    cfg = _job(toy, "[analyze.mark]\nlevels = 4\n")
    _ensemble(cfg.out)
    with pytest.raises(ConfigError, match=r"analyze\.mark\.levels = 4.*ensemble\.h5"):
        run_stage(cfg, World(None, 0, 1))
    assert not (cfg.out / "mark_ran").exists()
    cfg = _job(toy, "[analyze.mark]\nlevels = 3\n")
    assert run_stage(cfg, World(None, 0, 1)) == 0 and (cfg.out / "mark_ran").exists()


def test_results_of_another_reduction_must_come_first(toy):
    with pytest.raises(ConfigError, match=r"analyze\.after_mark.*\[analyze\.mark\] table before it"):
        _job(toy, "[analyze.after_mark]\n[analyze.mark]\n")
    _job(toy, "[analyze.mark]\n[analyze.after_mark]\n")
