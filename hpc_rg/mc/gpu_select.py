"""Whether a job's chains run on a GPU, and with which kernel.

`simulate.device = "cuda"` asks for the GPU (an error if none is visible or the lattice does not fit the
kernels); `"auto"` takes it for the 2D nearest-neighbour local updates when a CUDA device is present and
the lattice is large enough for the GPU to pay off; `"cpu"` never does. Import-cheap: the GPU modules load
only when a device is present. The kernels (numba-cuda, Philox streams) are in gpu_metropolis.py and
gpu_multispin.py; every rank uses the GPU of its local rank.
"""
from __future__ import annotations

AUTO_MIN_SITES = 256 * 256   # below this, launch overheads make the CPU kernels competitive
GPU_ALGORITHMS = ("metropolis", "heatbath", "multispin")   # 2D nearest-neighbour updates with a GPU kernel


def gpu_fits(sim) -> bool:
    """Whether the lattice has the shape the GPU kernels need (checked when the job file is read)."""
    ly, lx = (sim.Ly or sim.L), sim.L
    return ly % 2 == 0 and lx % 8 == 0


def gpu_sampler(sim, file="the job file"):
    """The GPU Sampler class for `sim`, or None to stay on the CPU. `file`: the job file, for messages (the
    driver should pass `cfg.file`)."""
    if sim.device == "cpu":
        return None
    from hpc_rg.schema import ConfigError
    from hpc_rg.mc.gpu_common import gpu_present
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
    if sim.algorithm == "multispin":
        from hpc_rg.mc.gpu_multispin import GpuMultiSpin
        return GpuMultiSpin
    if sim.algorithm == "heatbath":
        from hpc_rg.mc.gpu_metropolis import GpuHeatBath
        return GpuHeatBath
    from hpc_rg.mc.gpu_metropolis import GpuMetropolis
    return GpuMetropolis
