"""Whether a job's chains run on a GPU, and with which kernel.

`simulate.device = "cuda"` asks for the GPU (an error if none is visible); `"auto"` takes it for the 2D
nearest-neighbour local updates when a CUDA device is present and the lattice is large enough for the GPU
to pay off; `"cpu"` never does. Import-cheap: the GPU modules load only when a device is present.
"""
from __future__ import annotations

AUTO_MIN_SITES = 512 * 512   # below this, launch overheads make the CPU kernels competitive


def cuda_available() -> bool:
    try:
        from numba import cuda
        return bool(cuda.is_available())
    except Exception:
        return False


def gpu_sampler(sim):
    """The GPU Sampler class for `sim`, or None to stay on the CPU."""
    if sim.device == "cpu":
        return None
    present = cuda_available()
    if sim.device == "cuda" and not present:
        from hpc_rg.config import ConfigError
        raise ConfigError("job", "simulate.device", "cuda", "\"auto\" or \"cpu\" (no CUDA device is visible here)")
    if not present:
        return None
    n_sites = (sim.Ly or sim.L) * sim.L
    if sim.device == "auto" and n_sites < AUTO_MIN_SITES:
        return None
    if sim.algorithm == "multispin":
        from hpc_rg.mc.gpu_multispin import GpuMultiSpin
        return GpuMultiSpin
    from hpc_rg.mc.gpu_metropolis import GpuCheckerboard
    return GpuCheckerboard
