"""Shared helpers of the sampler tests: build a sampler through its plugin declaration, run it, collect series."""
from __future__ import annotations

import numpy as np

from hpc_rg.lattice.nearest import NearestNeighbour
from hpc_rg import plugins

T_C = 2.0 / np.log(1.0 + np.sqrt(2.0))
ALGOS_2D = ("metropolis", "heatbath", "multispin", "wolff", "swendsen_wang")
ALGOS_1D = ("metropolis", "heatbath", "wolff", "swendsen_wang", "exact")


def make(model: str, algo: str, shape, T: float, seed: int = 0, J: float = 1.0, h: float = 0.0,
         start_beta: float | None = None):
    """A sampler at temperature T.  With `start_beta` it is built at another beta and switched to 1/T
    afterwards, as replica exchange does (so tests also check that run() reads self.beta)."""
    cls = plugins.get("sampler", algo, model=model).load()
    seeds = np.random.SeedSequence([seed, 77]).spawn(cls.width)
    s = cls(NearestNeighbour(tuple(shape), J, h), 1.0 / T if start_beta is None else start_beta, seeds)
    s.beta = 1.0 / T
    return s


def series(s, n: int, every: int = 1):
    """(energy, magnetization) per site, each (width, n // every)."""
    e = np.empty((s.width, n // every))
    m = np.empty((s.width, n // every))
    s.run(n, e, m, every)
    return e, m


def cluster_updates_per_sweep(s, probe: int = 500) -> float:
    """Wolff: single-cluster updates that flip about N spins (mean cluster size from a probe run)."""
    f0 = s.flipped
    series(s, probe)
    mean = max((s.flipped - f0) / probe, 1.0)
    return s.lattice.n_sites / mean
