"""Run under NUMBA_ENABLE_CUDASIM=1 (by test_cuda_simulator.py): the CUDA kernels in numba's simulator
against the CPU backend, bit for bit, plus state round trips across the two. Prints one JSON object."""
import json
import sys

import numpy as np

from hpc_rg.lattice.nearest import NearestNeighbour
from hpc_rg.mc.gpu_common import simulator_active
from hpc_rg.mc.gpu_metropolis import GpuHeatBath, GpuMetropolis
from hpc_rg.mc.gpu_multispin import GpuMultiSpin


def run(s, n):
    e = np.zeros((s.width, n))
    m = np.zeros_like(e)
    s.run(n, e, m)
    return e, m


def compare(cls, lat, n_seeds, beta):
    seeds = np.random.SeedSequence(11).spawn(n_seeds)
    cpu = cls(lat, beta, seeds, device="cpu")
    sim = cls(lat, beta, seeds, device="cuda")
    out = {"device": sim.device, "init": bool(np.array_equal(cpu.configurations(), sim.configurations()))}
    ec, mc = run(cpu, 2)
    es, ms = run(sim, 2)
    out["sweeps"] = bool(np.array_equal(cpu.configurations(), sim.configurations())
                         and np.array_equal(ec, es) and np.array_equal(mc, ms))
    out["energy_consistent"] = bool(np.allclose(sim.energy(), lat.energy_per_site(sim.configurations())))
    # a CPU checkpoint continued on the "GPU" and the other way round
    state = cpu.state()
    sim2 = cls(lat, beta, np.random.SeedSequence(5).spawn(n_seeds), device="cuda")
    sim2.load_state(state)
    run(cpu, 1)
    run(sim2, 1)
    out["cross_restart"] = bool(np.array_equal(cpu.configurations(), sim2.configurations()))
    cpu2 = cls(lat, beta, np.random.SeedSequence(6).spawn(n_seeds), device="cpu")
    cpu2.load_state(sim2.state())
    run(cpu2, 1)
    run(sim2, 1)
    out["cross_restart_back"] = bool(np.array_equal(cpu2.configurations(), sim2.configurations()))
    return out


def main():
    if not simulator_active():
        print(json.dumps({"error": "NUMBA_ENABLE_CUDASIM is not set"}))
        return 2
    results = {
        "metropolis": compare(GpuMetropolis, NearestNeighbour((4, 8), 1.0, 0.2), 2, 0.4),
        "heatbath": compare(GpuHeatBath, NearestNeighbour((4, 8), -1.0, 0.3), 2, 0.5),
        "multispin": compare(GpuMultiSpin, NearestNeighbour((4, 6), 1.0), 64, 0.44),
        "multispin_af": compare(GpuMultiSpin, NearestNeighbour((4, 4), -0.5), 64, 0.7),
    }
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
