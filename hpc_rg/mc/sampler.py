"""The interface every update algorithm implements; the chain driver needs nothing else.

A sampler advances `width` independent chains of one model at one inverse temperature `beta`
(width is 1 for scalar codes, 64 for multi-spin coding, where each bit-lane is its own chain with its own
random stream).  Everything random comes from the `uint64[4]` xoshiro states built from the SeedSequences it
is given (`hpc_rg.rng`), so `state()` + `load_state()` restore a chain bit for bit.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Sampler(ABC):
    width: int = 1            # chains advanced together
    needs_width: int = 1      # the chain count of a job must be a multiple of this
    update_unit: str = "sweep"   # what one update is (the ensemble and the progress line name it)

    def __init__(self, lattice, beta: float, seeds: list[np.random.SeedSequence]):
        """`lattice`: a `hpc_rg.lattice` model; `seeds`: one SeedSequence per chain (len == width).
        Chains start from a random (infinite-temperature) configuration drawn from their own stream."""
        self.lattice = lattice
        self.beta = float(beta)

    @abstractmethod
    def run(self, n: int, energy: np.ndarray, magnetization: np.ndarray, every: int = 1) -> None:
        """Perform `n` updates. After update number k (1-based) with k % every == 0, write the energy per
        site and signed magnetization per site of each chain into energy[c, k // every - 1] and
        magnetization[c, ...]. Arrays are float64 with shape (width, n // every)."""

    @abstractmethod
    def configurations(self) -> np.ndarray:
        """Current spins, int8 ±1, shape (width, *lattice.shape) (a copy)."""

    @abstractmethod
    def energy(self) -> np.ndarray:
        """Current energy per site of each chain, float64 (width,) (what replica exchange uses)."""

    @abstractmethod
    def state(self) -> dict[str, np.ndarray]:
        """Everything needed to continue bit for bit (spins, RNG states, counters), as numpy arrays."""

    @abstractmethod
    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Inverse of `state()`."""


class SingleChain(Sampler):
    """A sampler of one chain (width 1) whose whole state is its int8 `spins` (the lattice's shape) and its
    xoshiro `rng` (uint64[4]); what follows from the spins (bond sums, local fields) is recomputed by
    `_spins_loaded` after a `load_state`."""
    width = 1
    spins: np.ndarray
    rng: np.ndarray

    def configurations(self):
        return self.spins[None].copy()

    def state(self):
        return {"spins": self.spins[None].copy(), "rng": self.rng[None].copy()}

    def load_state(self, state):
        self.spins = np.ascontiguousarray(state["spins"][0], dtype=np.int8).reshape(self.lattice.shape).copy()
        self.rng = np.ascontiguousarray(state["rng"][0], dtype=np.uint64).copy()
        self._spins_loaded()

    @abstractmethod
    def _spins_loaded(self) -> None:
        """Recompute what the sampler derives from `spins` (called after they were replaced)."""
