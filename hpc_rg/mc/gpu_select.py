"""Which sampler class runs a job's chains: the algorithm's plugin for the model, or its GPU variant.

A GPU kernel is a sampler plugin of the same name declared with `device="cuda"` (gpu_metropolis.py,
gpu_multispin.py: numba-cuda, Philox streams; every rank uses the GPU of its local rank).
`simulate.device = "cuda"` asks for it (an error if none is visible or the lattice does not fit the kernels);
`"auto"` takes it when a CUDA device is present and the lattice is large enough for the GPU to pay off;
`"cpu"` never does. Import-cheap: the GPU modules load only when a device is present.
"""
from __future__ import annotations

from hpc_rg import plugins
from hpc_rg.schema import ConfigError

AUTO_MIN_SITES = 256 * 256   # below this, launch overheads make the CPU kernels competitive


def gpu_variant(sim) -> plugins.Plugin | None:
    """The `device="cuda"` plugin of the job's algorithm for its model, or None if none is declared."""
    return plugins.table("sampler", "cuda", model=sim.model).get(sim.algorithm)


def gpu_fits(sim) -> bool:
    """Whether the lattice has the shape the GPU kernels need (checked when the job file is read)."""
    ly, lx = (sim.Ly or sim.L), sim.L
    return ly % 2 == 0 and lx % 8 == 0


def gpu_sampler(sim, file):
    """The GPU Sampler class for `sim`, or None to stay on the CPU. `file`: the job file, named in the error
    when `device = "cuda"` cannot be honoured."""
    variant = gpu_variant(sim) if sim.device != "cpu" else None
    if variant is None:
        return None
    from hpc_rg.mc.gpu_common import gpu_present    # imports numba: only for a job that may run on a GPU
    present = gpu_present()
    ly, lx = (sim.Ly or sim.L), sim.L
    fits = gpu_fits(sim)
    if sim.device == "cuda":
        if not present:
            raise ConfigError(file, "simulate.device", "cuda", "\"auto\" or \"cpu\" (no CUDA device is visible here)")
        if not fits:
            raise ConfigError(file, "simulate.L", lx, "L a multiple of 8 and Ly even for the GPU kernels")
    elif not (present and fits and ly * lx >= AUTO_MIN_SITES):
        return None
    return variant.load()


def sampler_class(sim, file):
    """The Sampler class that runs the job `sim` (its `[simulate]` table) read from `file`."""
    gpu = gpu_sampler(sim, file)
    return gpu if gpu is not None else plugins.get("sampler", sim.algorithm, model=sim.model).load()
