"""Reduction throughput: samples/s per reduction at L = 256 and 1024 (one JSON line per case), and the
parallel efficiency at 2 ranks (run under `mpiexec -n 2`; efficiency = t_1 / (2 t_2) measured in-process by
timing the 1-rank World on rank 0 first).  Random ±1 data: the cost does not depend on the physics.

usage: python benchmarks/reduce.py [--sizes 256 1024] [--samples 64]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from hpc_rg.io.ensemble import open_ensemble, write_ensemble
from hpc_rg.parallel import World, world
from hpc_rg.reduce import correlators as corr, mutual_info as mi, rg
from hpc_rg.reduce.blocks import block_means, iter_segment, segments
from hpc_rg.parallel import deal


def cases(ens, w):
    lat = corr.lattice_from_attrs(ens.attrs, ens.lattice_shape)
    L = ens.lattice_shape[0]
    levels = int(np.log2(L // 8))
    yield "correlators", lambda: corr.correlator_blocks(ens, 0, w, lat, n_blocks=8, batch=8)
    yield "mcrg", lambda: block_means(ens, 0, lambda x, k: rg.mcrg_primaries(rg.block_levels(x, 2, levels)), w, 8, 8)

    def run_mi():
        h = mi.JointHistogram()
        segs = segments(ens.n_chains, ens.n_samples, 8)
        for i in deal(len(segs), w.size, w.rank):
            for _, x in iter_segment(ens.spins, 0, segs[i], 8):
                h.add(*mi.neighbour_pairs(mi.block_codes(np.asarray(x), 3)), i)
        w.allgather(h.blocks)
    yield "mutual_information_b3", run_mi


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--samples", type=int, default=64)
    args = ap.parse_args()
    w = world()
    tmp = Path(w.bcast(tempfile.mkdtemp() if w.is_root else None))
    for L in args.sizes:
        n = args.samples if L <= 256 else max(8, args.samples // 8)
        path = tmp / f"b{L}.h5"
        if w.is_root:
            rng = np.random.default_rng(L)
            spins = np.where(rng.random((1, 2, n // 2, L, L)) < 0.5, -1, 1).astype(np.int8)
            write_ensemble(path, [2.269], spins, attrs={"model": "ising2d", "J": 1.0, "h": 0.0})
        w.barrier()
        with open_ensemble(path) as ens:
            for name, fn in cases(ens, w):
                t1 = None
                if w.size > 1:
                    if w.is_root:
                        serial = dict(cases(ens, World(None, 0, 1)))[name]
                        serial()  # warm caches (file pages, FFT plans) before timing
                        t0 = time.perf_counter()
                        serial()
                        t1 = time.perf_counter() - t0
                    w.barrier()
                fn()  # warm-up
                w.barrier()
                t0 = time.perf_counter()
                fn()
                w.barrier()
                dt = time.perf_counter() - t0
                if w.is_root:
                    row = {"case": name, "L": L, "samples": n, "ranks": w.size, "seconds": round(dt, 3),
                           "samples_per_s": round(n / dt, 2)}
                    if t1 is not None:
                        row["efficiency"] = round(t1 / (w.size * dt), 3)
                    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
