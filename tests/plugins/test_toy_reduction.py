"""A reduction added from outside the package: its own file plus this test, nothing else edited.

The toy module below declares `PLUGINS = (Plugin("reduction", ...),)` with its spec beside it; the user
names the module in HPC_RG_PLUGINS, and `hpc-rg check`, `hpc-rg analyze` and results.h5 know it; its
figure function, named by the spec's FIGURE, draws `figures/toy_abs_m.png`."""

import h5py
import numpy as np

from tests.plugins.plugin_cli import hpc_rg

TOY = '''
from dataclasses import dataclass

import numpy as np

from hpc_rg.plugins import Plugin
from hpc_rg.reduce.figures import Figure, figure_function, per_temperature
from hpc_rg.schema import spec

PLUGINS = (Plugin("reduction", "toy_abs_m", "mean_abs_m", spec="ToyAbsMSpec", needs=("ensemble",),
                  doc="mean |m| per temperature, plain average (a toy)"),)


@dataclass(frozen=True)
class ToyAbsMSpec:
    scale: float = spec(1.0, gt=0, doc="a factor, to show validation")
    FIGURE = "toy_reduction_plugin:plot_toy"


@figure_function
def plot_toy(res):
    return [Figure("toy_abs_m", [per_temperature(res, "abs_m_by_level", "level")])]


def mean_abs_m(spec, ctx):
    from hpc_rg.io.ensemble import open_ensemble
    from hpc_rg.reduce.registry import Result
    with open_ensemble(ctx.ensemble_path) as e:
        m = np.abs(np.asarray(e.magnetization))
        res = Result(attrs={"method": "plain mean"})
        res.put("abs_m", spec.scale * m.mean(axis=(1, 2)))
        res.put("abs_m_by_level", spec.scale * m.mean(axis=(1, 2))[:, None] * np.ones(2))
        res.axes["temperatures"] = np.asarray(e.temperatures)
        res.axes["level"] = np.arange(2)
    return res
'''

JOB = '''
[job]
name = "toy"
seed = 7
out = "run"
[simulate]
model = "ising2d"
L = 8
temperatures = [2.0, 3.0]
chains = 2
thermalize = 50
samples = 20
thin = 2
[analyze.toy_abs_m]
scale = {scale}
'''


def _cli(tmp_path, *args):
    return hpc_rg(tmp_path, "toy_reduction_plugin", *args)


def test_a_toy_reduction_plugin_runs_end_to_end(tmp_path):
    (tmp_path / "toy_reduction_plugin.py").write_text(TOY)
    (tmp_path / "bad.toml").write_text(JOB.format(scale=-1))
    bad = _cli(tmp_path, "check", "bad.toml")
    assert bad.returncode == 2 and "analyze.toy_abs_m.scale = -1" in bad.stderr, bad.stderr
    (tmp_path / "job.toml").write_text(JOB.format(scale=2.0))
    for stage in ("simulate", "analyze"):
        run = _cli(tmp_path, stage, "job.toml")
        assert run.returncode == 0, run.stderr
    with h5py.File(tmp_path / "run" / "results.h5") as f, h5py.File(tmp_path / "run" / "ensemble.h5") as e:
        want = 2.0 * np.abs(e["magnetization"][()]).mean(axis=(1, 2))
        np.testing.assert_allclose(f["toy_abs_m/abs_m"][()], want, rtol=1e-12)
    assert (tmp_path / "run" / "figures" / "toy_abs_m.png").stat().st_size > 0
