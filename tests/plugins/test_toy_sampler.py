"""A sampler added from outside the package: its own file plus this test, nothing else edited (issue #20).

The toy module below declares `PLUGINS = (Plugin("sampler", "toy_heatbath", ..., models=("ising1d",)),)`
next to its class; the user names the module in HPC_RG_PLUGINS, and `hpc-rg check` accepts the algorithm,
`hpc-rg simulate` runs it (its update unit read from the class), and the ensemble it writes has the exact
energy of the periodic chain within its error bars."""

import h5py

from hpc_rg.exact import chain1d
from hpc_rg.reduce.stats import mean_error

from tests.plugins.plugin_cli import hpc_rg

TOY = '''
import math

import numpy as np

from hpc_rg.mc.sampler import Sampler
from hpc_rg.plugins import Plugin
from hpc_rg.rng import new_state, next_double

PLUGINS = (Plugin("sampler", "toy_heatbath", "ToyHeatBath", models=("ising1d",),
                  doc="typewriter heat bath in plain Python (a toy)"),)


class ToyHeatBath(Sampler):
    """One chain; one update = one typewriter sweep of heat-bath steps, site 0, 1, ..., L-1."""
    update_unit = "typewriter sweep"

    def __init__(self, lattice, beta, seeds):
        super().__init__(lattice, beta, seeds)
        self.rng = new_state(seeds[0])
        self.spins = np.array([1 if next_double(self.rng) < 0.5 else -1 for _ in range(lattice.n_sites)],
                              dtype=np.int8)

    def run(self, n, energy, magnetization, every=1):
        s, n_sites, lat = self.spins, len(self.spins), self.lattice
        for k in range(n):
            for i in range(n_sites):
                field = lat.J * (s[i - 1] + s[(i + 1) % n_sites]) + lat.h
                s[i] = 1 if next_double(self.rng) < 1.0 / (1.0 + math.exp(-2.0 * self.beta * field)) else -1
            if (k + 1) % every == 0:
                energy[0, (k + 1) // every - 1] = self.energy()[0]
                magnetization[0, (k + 1) // every - 1] = s.mean()

    def configurations(self):
        return self.spins[None].copy()

    def energy(self):
        return np.asarray(self.lattice.energy_per_site(self.spins[None]), dtype=np.float64)

    def state(self):
        return {"spins": self.spins[None].copy(), "rng": self.rng[None].copy()}

    def load_state(self, state):
        self.spins = np.asarray(state["spins"][0], dtype=np.int8).copy()
        self.rng = np.asarray(state["rng"][0], dtype=np.uint64).copy()
'''

JOB = '''
[job]
name = "toy"
seed = 5
out = "run"
[simulate]
model = "ising1d"
L = 8
temperatures = [1.5, 3.0]
algorithm = "toy_heatbath"
chains = 4
thermalize = 50
samples = 300
thin = 1
'''


def _cli(tmp_path, *args, plugin=True):
    return hpc_rg(tmp_path, "toy_sampler_plugin" if plugin else None, *args)


def test_a_toy_sampler_plugin_runs_end_to_end(tmp_path):
    (tmp_path / "toy_sampler_plugin.py").write_text(TOY)
    (tmp_path / "job.toml").write_text(JOB)
    unknown = _cli(tmp_path, "check", "job.toml", plugin=False)
    assert unknown.returncode == 2 and "simulate.algorithm" in unknown.stderr, unknown.stderr
    assert _cli(tmp_path, "check", "job.toml").returncode == 0
    run = _cli(tmp_path, "simulate", "job.toml")
    assert run.returncode == 0, run.stderr
    with h5py.File(tmp_path / "run" / "ensemble.h5") as f:
        assert f.attrs["sampler"] == "toy_sampler_plugin:ToyHeatBath"
        assert f.attrs["update_unit"] == "typewriter sweep"
        energy = f["energy"][()]                          # (temperatures, chains, samples)
        temperatures = f["temperatures"][()]
    assert energy.shape == (2, 4, 300)
    for T, e in zip(temperatures, energy):
        mean, err, _ = mean_error(e, axis_chains=True)
        exact = chain1d.energy(8, float(T))
        assert abs(mean - exact) < 5 * err, (T, mean, err, exact)


def test_one_algorithm_name_served_by_a_class_per_model():
    """"metropolis" is CheckerboardMetropolis on the nearest-neighbour models, LongRangeMetropolis on the
    long-range one; without a model the name is ambiguous and the lookup says so."""
    import pytest
    from hpc_rg import plugins
    assert plugins.get("sampler", "metropolis", model="ising2d").entry == "CheckerboardMetropolis"
    assert plugins.get("sampler", "metropolis", model="longrange2d").entry == "LongRangeMetropolis"
    with pytest.raises(plugins.PluginError, match="several models"):
        plugins.get("sampler", "metropolis")
    with pytest.raises(plugins.PluginError, match="two sampler plugins named 'wolff'"):
        with _registered(plugins.Plugin("sampler", "wolff", "builtins:dict", models=("ising2d",))):
            plugins.table("sampler")


class _registered:
    def __init__(self, plugin):
        from hpc_rg import plugins
        self.plugins, self.plugin = plugins, plugin

    def __enter__(self):
        self.plugins.register(self.plugin)

    def __exit__(self, *exc):
        self.plugins.unregister(self.plugin)
