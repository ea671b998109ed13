"""Nearest-neighbour Ising models on periodic chains and L_y x L_x rectangles.

H = -J sum_<ij> s_i s_j - h sum_i s_i, each bond counted once, periodic boundaries, k_B = 1.
Energies are reported per site, magnetizations per site (signed).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpc_rg.plugins import Plugin

PLUGINS = (
    Plugin("model", "ising1d", "NearestNeighbour.from_simulate", doc="nearest-neighbour Ising chain"),
    Plugin("model", "ising2d", "NearestNeighbour.from_simulate", doc="nearest-neighbour Ising model on Ly x Lx"),
)


@dataclass(frozen=True)
class NearestNeighbour:
    shape: tuple[int, ...]     # (L,) for the chain, (Ly, Lx) for the square lattice
    J: float = 1.0
    h: float = 0.0

    @classmethod
    def from_simulate(cls, sim) -> "NearestNeighbour":
        """The model a `[simulate]` table (`hpc_rg.mc.specs.SimulateConfig`) describes."""
        return cls(shape=sim.shape, J=sim.J, h=sim.h)

    def attributes(self) -> dict:
        """Parameters of the model beyond shape, J and h, as the ensemble file records them."""
        return {}

    @property
    def dim(self) -> int:
        return len(self.shape)

    @property
    def n_sites(self) -> int:
        return int(np.prod(self.shape))

    @property
    def coordination(self) -> int:
        return 2 * self.dim

    def bond_sum(self, spins: np.ndarray) -> np.ndarray:
        """sum_<ij> s_i s_j over the last `dim` axes (leading axes are batch)."""
        s = spins.astype(np.int64)
        axes = tuple(range(s.ndim - self.dim, s.ndim))
        total = sum((s * np.roll(s, -1, axis=a)).sum(axis=axes) for a in axes)
        return np.asarray(total)

    def energy_per_site(self, spins: np.ndarray) -> np.ndarray:
        axes = tuple(range(spins.ndim - self.dim, spins.ndim))
        e = -self.J * self.bond_sum(spins) - self.h * spins.astype(np.int64).sum(axis=axes)
        return e / self.n_sites

    def magnetization(self, spins: np.ndarray) -> np.ndarray:
        axes = tuple(range(spins.ndim - self.dim, spins.ndim))
        return spins.astype(np.int64).sum(axis=axes) / self.n_sites
