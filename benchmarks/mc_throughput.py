"""Single-core Monte Carlo throughput of the nearest-neighbour samplers: one JSON line per case.

Units: ns per spin-update attempt (checkerboard Metropolis / heat bath, scalar and 64-replica multi-spin),
per flipped spin (Wolff), per spin per sweep (Swendsen-Wang).  All at T_c, after numba warm-up and
thermalisation (Wolff and SW start from an SW-equilibrated configuration).  Each case reports wall and CPU
(process) time; `ratio_to_numpy` divides by a numpy-vectorised checkerboard Metropolis measured in the same
process at the same L, which stays comparable on a loaded machine.  Multi-spin is timed with measurements at
every sweep (`every = 1`, the production setting) and update-only (`every = n`).

    python benchmarks/mc_throughput.py                  # L in 64 256 1024 4096, ~1-2 minutes unloaded
    python benchmarks/mc_throughput.py --L 1024 --repeat 5 --seconds 2
    python benchmarks/mc_throughput.py --L 1024 --only wolff swendsen_wang
(Wolff and SW at L = 4096 start from only 8 SW sweeps: not fully equilibrated, cluster sizes near T_c.)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from hpc_rg.exact.onsager import T_C  # noqa: E402
from hpc_rg.lattice.nearest import NearestNeighbour  # noqa: E402
from hpc_rg.mc.heatbath import CheckerboardHeatBath  # noqa: E402
from hpc_rg.mc.metropolis import CheckerboardMetropolis  # noqa: E402
from hpc_rg.mc.multispin import MultiSpinMetropolis  # noqa: E402
from hpc_rg.mc.swendsen_wang import SwendsenWang  # noqa: E402
from hpc_rg.mc.wolff import Wolff  # noqa: E402

BETA = 1.0 / T_C


def numpy_checkerboard(spins, beta, rng, n):
    """Vectorised checkerboard Metropolis (the baseline): one sweep = two masked sublattice updates."""
    ly, lx = spins.shape
    yy, xx = np.indices(spins.shape)
    masks = [((yy + xx) % 2) == p for p in (0, 1)]
    acc = np.exp(-2.0 * beta * np.arange(-4, 5))
    for _ in range(n):
        for mask in masks:
            nb = (np.roll(spins, 1, 0) + np.roll(spins, -1, 0) + np.roll(spins, 1, 1) + np.roll(spins, -1, 1))
            de_idx = spins * nb                       # dE = 2 s nb, index into exp(-beta dE)
            flip = mask & (rng.random(spins.shape) < acc[de_idx + 4])
            spins[flip] *= -1


def timed(fn, budget):
    """Run fn(k) with growing k until it takes >= budget seconds; returns (units done, wall, cpu)."""
    k = 1
    while True:
        w0, c0 = time.perf_counter(), time.process_time()
        units = fn(k)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        if wall >= budget or k >= 1 << 20:
            return units, wall, cpu
        # grow at most 8x per round: a short first run (small Wolff clusters) must not extrapolate wildly
        k = max(k + 1, min(8 * k, int(1.2 * k * budget / max(wall, 1e-9))))


def sampler_case(cls, L, budget, seeds, every_all=False, start=None):
    lat = NearestNeighbour((L, L))
    s = cls(lat, BETA, seeds)
    if start is not None:
        st = s.state()
        st["spins"][0] = start
        s.load_state(st)
    e = np.empty((s.width, 1 << 20))
    m = np.empty((s.width, 1 << 20))

    def go(k):
        f0 = getattr(s, "flipped", 0)
        s.run(k, e[:, :k], m[:, :k], k if every_all else 1)
        if cls is Wolff:
            return s.flipped - f0
        return k * L * L * s.width
    go(2)                                               # warm-up: compile + first sweeps
    return timed(go, budget)


def equilibrated(L, sweeps=60):
    s = SwendsenWang(NearestNeighbour((L, L)), BETA, [np.random.SeedSequence(7)])
    e = np.empty((1, sweeps))
    s.run(sweeps, e, e.copy())
    return s.spins.copy()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--L", type=int, nargs="+", default=[64, 256, 1024, 4096])
    ap.add_argument("--seconds", type=float, default=0.3, help="minimum timed duration per case")
    ap.add_argument("--repeat", type=int, default=1, help="repeats per case (best is reported)")
    ap.add_argument("--only", nargs="+", default=None, metavar="ALGORITHM",
                    help="run only these cases (e.g. wolff swendsen_wang); the numpy baseline always runs")
    args = ap.parse_args()
    seed = np.random.SeedSequence(2024)
    for L in args.L:
        budget = args.seconds
        start = equilibrated(L, sweeps=60 if L <= 1024 else 8)
        rng = np.random.default_rng(1)
        base = np.where(rng.random((L, L)) < 0.5, -1, 1).astype(np.int64)
        numpy_checkerboard(base, BETA, rng, 1)
        units, wall, cpu = timed(lambda k: (numpy_checkerboard(base, BETA, rng, k), k * L * L)[1], budget)
        base_ns = wall / units * 1e9
        cases = [("numpy_checkerboard_metropolis", "spin update", lambda: (units, wall, cpu))]
        cases += [
            ("metropolis", "spin update", lambda: sampler_case(CheckerboardMetropolis, L, budget, seed.spawn(1))),
            ("heatbath", "spin update", lambda: sampler_case(CheckerboardHeatBath, L, budget, seed.spawn(1))),
            ("multispin_measured", "spin update",
             lambda: sampler_case(MultiSpinMetropolis, L, budget, seed.spawn(64))),
            ("multispin_update_only", "spin update",
             lambda: sampler_case(MultiSpinMetropolis, L, budget, seed.spawn(64), every_all=True)),
            ("wolff", "flipped spin", lambda: sampler_case(Wolff, L, budget, seed.spawn(1), start=start)),
            ("swendsen_wang", "spin per sweep",
             lambda: sampler_case(SwendsenWang, L, budget, seed.spawn(1), start=start)),
        ]
        for name, unit, fn in cases:
            if args.only and name not in args.only and name != "numpy_checkerboard_metropolis":
                continue
            best = None
            for _ in range(args.repeat):
                r = fn()
                if best is None or r[1] / r[0] < best[1] / best[0]:
                    best = r
            units_, wall_, cpu_ = best
            ns = wall_ / units_ * 1e9
            print(json.dumps({"benchmark": "mc_throughput", "algorithm": name, "L": L, "T": T_C, "unit": f"ns per {unit}",
                              "ns": round(ns, 4), "cpu_ns": round(cpu_ / units_ * 1e9, 4),
                              "ratio_to_numpy": round(ns / base_ns, 5), "units": int(units_),
                              "seconds": round(wall_, 3), "host": platform.node()}), flush=True)


if __name__ == "__main__":
    main()
