"""On a real CUDA device only (skipped cleanly elsewhere, including CI): the compiled GPU kernels give the
CPU backend's results bit for bit, and the GPU chains reproduce Kaufman's exact 64 x 64 energy."""
import numpy as np
import pytest

from hpc_rg.lattice.nearest import NearestNeighbour
from hpc_rg.mc.gpu_common import gpu_present
from hpc_rg.reduce.stats import mean_error

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not gpu_present(), reason="needs a CUDA device")]

BETA_C = float(np.log(1 + np.sqrt(2)) / 2)


def _classes():
    from hpc_rg.mc.gpu_metropolis import GpuHeatBath, GpuMetropolis
    from hpc_rg.mc.gpu_multispin import GpuMultiSpin
    return {"metropolis": (GpuMetropolis, 5), "heatbath": (GpuHeatBath, 5), "multispin": (GpuMultiSpin, 64)}


def _run(s, n, every=1):
    e = np.zeros((s.width, n // every))
    m = np.zeros_like(e)
    s.run(n, e, m, every)
    return e, m


@pytest.mark.parametrize("name", ["metropolis", "heatbath", "multispin"])
def test_gpu_equals_cpu_backend(name):
    cls, width = _classes()[name]
    lat = NearestNeighbour((32, 64), 1.0)
    seeds = np.random.SeedSequence(3).spawn(width)
    gpu = cls(lat, 0.42, seeds, device="cuda")
    cpu = cls(lat, 0.42, seeds, device="cpu")
    assert gpu.device == "cuda"
    eg, mg = _run(gpu, 10)
    ec, mc = _run(cpu, 10)
    assert np.array_equal(gpu.configurations(), cpu.configurations())
    assert np.array_equal(eg, ec) and np.array_equal(mg, mc)
    state = gpu.state()
    _run(gpu, 3)
    cpu.load_state(state)
    _run(cpu, 3)
    assert np.array_equal(gpu.configurations(), cpu.configurations())


@pytest.mark.parametrize("name", ["metropolis", "multispin"])
def test_gpu_energy_matches_kaufman_64(exact, name):
    cls, width = _classes()[name]
    width = 64
    s = cls(NearestNeighbour((64, 64)), BETA_C, np.random.SeedSequence(8).spawn(width), device="cuda")
    _run(s, 2000, every=2000)
    e, _ = _run(s, 4000)
    mean, err, tau = mean_error(e, axis_chains=True)
    ref = exact.energy_per_site(BETA_C, 64, 64)
    assert abs(mean - ref) < 4 * err, (mean, err, tau, ref)
