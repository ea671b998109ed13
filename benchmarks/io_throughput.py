"""Ensemble writer bandwidth vs `dd`, and weak scaling of a replica-exchange run.

    .venv/bin/python benchmarks/io_throughput.py [--mib 512] [--folder runs/bench_io]

Prints one JSON line per case:
  {"case": "dd", ...}                         dd of the same size to the same folder (fdatasync)
  {"case": "writer", "ranks": n, ...}         PartWriter: n ranks each writing their share, parts closed
                                              (fsync) and assembled into ensemble.h5, as the driver does
  {"case": "weak_scaling", "ranks": n, ...}   replica-exchange job with n x the chains on n ranks
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
BIN = Path(sys.executable).parent


def writer_worker(folder: Path, mib: int) -> None:
    """Runs on every rank (under mpiexec): write this rank's share of `mib` MiB of 256x256 samples."""
    from hpc_rg.io.parts import PartWriter, assemble, part_path
    from hpc_rg.parallel import deal, world
    w = world()
    L = 256
    n_samples = mib * 2**20 // (L * L)
    units_all = [(0, t) for t in range(8)]                       # 8 temperatures, one chain
    mine = [units_all[u] for u in deal(len(units_all), w.size, w.rank)]
    per_unit = n_samples // len(units_all)
    rng = np.random.default_rng(w.rank)
    block = (rng.integers(0, 2, size=(16, 1, L, L), dtype=np.int8) * 2 - 1)
    w.barrier()
    t0 = time.perf_counter()
    writer = PartWriter(part_path(folder, 0, w.rank), mine, 1, (L, L), 0, 0)
    for j in range(per_unit):
        for u in mine:
            writer.add_sample(u, j, block[j % 16], np.zeros(1), np.zeros(1))
    writer.close()
    w.barrier()
    if w.is_root:
        assemble(folder, folder, 1, np.linspace(1, 2, 8), 1, (L, L), per_unit, 0, {"model": "bench"})
    w.barrier()
    dt = time.perf_counter() - t0
    if w.is_root:
        nbytes = per_unit * len(units_all) * L * L
        print(json.dumps({"case": "writer", "ranks": w.size, "bytes": nbytes, "seconds": round(dt, 3),
                          "GB_per_s": round(nbytes / dt / 1e9, 3)}), flush=True)


def dd(folder: Path, mib: int) -> float:
    target = folder / "dd.bin"
    t0 = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={mib}", "conv=fdatasync"],
                   check=True, capture_output=True)
    dt = time.perf_counter() - t0
    target.unlink()
    return dt


def weak_scaling(folder: Path, ranks: int, L: int, updates: int) -> float:
    job = folder / f"weak{ranks}.toml"
    job.write_text(f"""[job]\nname = "weak{ranks}"\nseed = 1\nout = "weak{ranks}"\n[simulate]
model = "ising2d"\nL = {L}\ntemperatures = [2.1, 2.2, 2.3, 2.4]\nchains = {ranks}\nthermalize = {updates // 2}
samples = {updates // 20}\nthin = 10\nreplica_exchange = true\nexchange_every = 10\n""")
    cmd = [str(BIN / "hpc-rg"), "simulate", str(job), "--force"]
    if ranks > 1:
        cmd = [str(BIN / "mpiexec"), "-n", str(ranks)] + cmd
    subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    return json.loads((folder / f"weak{ranks}" / "simulate.json").read_text())["wall_seconds"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mib", type=int, default=512)
    p.add_argument("--folder", type=Path, default=Path("runs/bench_io"))
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--L", type=int, default=128, help="lattice side for the weak-scaling job")
    p.add_argument("--updates", type=int, default=4000)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    a.folder = a.folder.resolve()
    if a.worker:
        writer_worker(a.folder, a.mib)
        return
    a.folder.mkdir(parents=True, exist_ok=True)
    t_dd = min(dd(a.folder, a.mib) for _ in range(2))
    bw_dd = a.mib * 2**20 / t_dd / 1e9
    print(json.dumps({"case": "dd", "bytes": a.mib * 2**20, "seconds": round(t_dd, 3), "GB_per_s": round(bw_dd, 3)}),
          flush=True)
    for n in a.ranks:
        sub = a.folder / f"writer{n}"
        shutil.rmtree(sub, ignore_errors=True)
        sub.mkdir()
        cmd = [sys.executable, str(HERE), "--worker", "--mib", str(a.mib), "--folder", str(sub)]
        if n > 1:
            cmd = [str(BIN / "mpiexec"), "-n", str(n)] + cmd
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        rec = json.loads(out)
        rec["fraction_of_dd"] = round(rec["GB_per_s"] / bw_dd, 3)
        print(json.dumps(rec), flush=True)
        shutil.rmtree(sub, ignore_errors=True)
    t1 = weak_scaling(a.folder, 1, a.L, a.updates)
    print(json.dumps({"case": "weak_scaling", "ranks": 1, "L": a.L, "wall_seconds": round(t1, 3)}), flush=True)
    for n in [r for r in a.ranks if r > 1 and r <= (os.cpu_count() or 1)]:
        tn = weak_scaling(a.folder, n, a.L, a.updates)
        print(json.dumps({"case": "weak_scaling", "ranks": n, "L": a.L, "wall_seconds": round(tn, 3),
                          "efficiency": round(t1 / tn, 3)}), flush=True)


if __name__ == "__main__":
    main()
