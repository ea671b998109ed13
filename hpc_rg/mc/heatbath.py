"""Checkerboard heat bath (Glauber) for nearest-neighbour Ising chains and tori.

The new spin is drawn from its conditional distribution given the neighbours: P(s_new = +1) =
1 / (1 + exp(-2 beta (J nb + h))).  Written as "flip s with probability exp(-beta dE) / (1 + exp(-beta dE))",
dE = 2 s (J nb + h), it runs on the same branch-free checkerboard kernel as Metropolis (sweep order, integer
thresholds, energy bookkeeping: see `hpc_rg.mc.metropolis`).  One update = one sweep.
"""
from __future__ import annotations

import numpy as np

from hpc_rg.mc.metropolis import LocalSampler
from hpc_rg.plugins import Plugin

PLUGINS = (
    Plugin("sampler", "heatbath", "CheckerboardHeatBath", models=("ising1d", "ising2d"),
           doc="checkerboard heat bath (Glauber); one update = one sweep"),
)


def flip_probability_heatbath(beta: float, J: float, h: float, coordination: int) -> np.ndarray:
    """P[(s+1)//2, (nb + z)//2] = 1 / (1 + exp(beta dE)), dE = 2 s (J nb + h)."""
    z = coordination
    p = np.empty((2, z + 1))
    for si, s in enumerate((-1, 1)):
        for k in range(z + 1):
            de = 2.0 * s * (J * (2 * k - z) + h)
            p[si, k] = 0.5 * (1.0 - np.tanh(0.5 * beta * de))  # = 1/(1+e^{beta dE}), overflow-free
    return p


class CheckerboardHeatBath(LocalSampler):
    def flip_probability(self, beta):
        return flip_probability_heatbath(beta, self.lattice.J, self.lattice.h, self.lattice.coordination)
