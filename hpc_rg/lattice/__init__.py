"""What a spin system is: geometry, couplings, energy. Samplers in `hpc_rg.mc` act on these."""
from __future__ import annotations

from hpc_rg.lattice.nearest import NearestNeighbour


def from_config(sim):
    """The lattice model a `SimulateConfig` describes."""
    if sim.model in ("ising1d", "ising2d"):
        return NearestNeighbour(shape=sim.shape, J=sim.J, h=sim.h)
    if sim.model == "longrange2d":
        from hpc_rg.lattice.longrange import LongRange
        return LongRange(shape=sim.shape, J=sim.J, alpha=sim.alpha, h=sim.h, images=sim.images)
    raise ValueError(f"unknown model {sim.model!r}")


__all__ = ["NearestNeighbour", "from_config"]
