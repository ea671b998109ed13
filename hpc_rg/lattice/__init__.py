"""What a spin system is: geometry, couplings, energy. Samplers in `hpc_rg.mc` act on these.

Each model is a plugin (`hpc_rg.plugins`) declared next to its class (`nearest.py`, `longrange.py`), whose
entry builds it from the `[simulate]` table; a new model is a new module here with its own declaration.
"""
from __future__ import annotations

from hpc_rg import plugins
from hpc_rg.lattice.nearest import NearestNeighbour


def from_config(sim):
    """The lattice model a `SimulateConfig` describes."""
    return plugins.get("model", sim.model).load()(sim)


__all__ = ["NearestNeighbour", "from_config"]
