"""Ensemble writer bandwidth vs `dd`, and weak scaling of a replica-exchange run.

    .venv/bin/python benchmarks/io_throughput.py [--mib 512] [--folder runs/bench_io] [--no-weak-scaling]

Prints one JSON line per case:
  {"case": "dd", ...}                         dd of the same size to the same folder (fdatasync)
  {"case": "writer", "ranks": n, ...}         PartWriter: n ranks each writing their share, parts closed
                                              (fsync) and assembled into ensemble.h5, as the driver does;
                                              256x256 in one part, then 64x64 in 100 small parts (a run
                                              that checkpoints often)
  {"case": "disk_use", "ranks": n, ...}       after each writer case: bytes of parts/ + ensemble.h5 over the
                                              raw spin bytes they hold (ratio; parts hold whole chunks and
                                              an exact-size tail: <= 1.1, was 6.4 for the small parts)
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


def writer_worker(folder: Path, mib: int, L: int = 256, parts: int = 1) -> None:
    """Runs on every rank (under mpiexec): write this rank's share of `mib` MiB of LxL samples, cut into
    `parts` parts (a run checkpointed parts - 1 times), and assemble them."""
    from hpc_rg.io.parts import PartWriter, assemble, part_path
    from hpc_rg.parallel import deal, world
    w = world()
    n_samples = mib * 2**20 // (L * L)
    units_all = [(0, t) for t in range(8)]                       # 8 temperatures, one chain
    mine = [units_all[u] for u in deal(len(units_all), w.size, w.rank)]
    per_unit = n_samples // len(units_all)
    cuts = np.linspace(0, per_unit, parts + 1).astype(int)
    rng = np.random.default_rng(w.rank)
    block = (rng.integers(0, 2, size=(16, 1, L, L), dtype=np.int8) * 2 - 1)
    w.barrier()
    t0 = time.perf_counter()
    for c in range(parts):
        writer = PartWriter(part_path(folder, c, w.rank), mine, 1, (L, L), int(cuts[c]), 0)
        for j in range(cuts[c], cuts[c + 1]):
            for u in mine:
                writer.add_sample(u, j, block[j % 16], np.zeros(1), np.zeros(1))
        writer.close()
    w.barrier()
    if w.is_root:
        assemble(folder, folder, parts, np.linspace(1, 2, 8), 1, (L, L), per_unit, 0, {"model": "bench"})
    w.barrier()
    dt = time.perf_counter() - t0
    if w.is_root:
        nbytes = per_unit * len(units_all) * L * L
        print(json.dumps({"case": "writer", "ranks": w.size, "L": L, "parts": parts, "bytes": nbytes,
                          "seconds": round(dt, 3), "GB_per_s": round(nbytes / dt / 1e9, 3)}), flush=True)
        print(json.dumps(dict(disk_use(folder, nbytes, w.size), L=L, parts=parts)), flush=True)


def disk_use(folder: Path, spin_bytes: int, ranks: int) -> dict:
    """What the writer left on disk (part files and ensemble.h5, apparent and allocated sizes) against the
    raw bytes of the spins they hold."""
    files = [p for p in folder.glob("p*.r*.h5")] + [folder / "ensemble.h5"]
    size = sum(p.stat().st_size for p in files)
    allocated = sum(p.stat().st_blocks * 512 for p in files)
    return {"case": "disk_use", "ranks": ranks, "spin_bytes": spin_bytes, "file_bytes": size,
            "allocated_bytes": allocated, "ratio": round(size / spin_bytes, 4),
            "allocated_ratio": round(allocated / spin_bytes, 4)}


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
    p.add_argument("--writer-L", type=int, nargs="+", default=[256, 64],
                   help="lattice sides of the writer cases (the second one with --parts parts)")
    p.add_argument("--parts", type=int, default=100,
                   help="parts (checkpoints) of the writer cases after the first: small parts, as a run that "
                        "checkpoints often writes, are where whole-chunk allocation wasted most")
    p.add_argument("--no-weak-scaling", action="store_true", help="only the dd, writer and disk_use cases")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    a.folder = a.folder.resolve()
    if a.worker:
        writer_worker(a.folder, a.mib, a.writer_L[0], a.parts)
        return
    a.folder.mkdir(parents=True, exist_ok=True)
    t_dd = min(dd(a.folder, a.mib) for _ in range(2))
    bw_dd = a.mib * 2**20 / t_dd / 1e9
    print(json.dumps({"case": "dd", "bytes": a.mib * 2**20, "seconds": round(t_dd, 3), "GB_per_s": round(bw_dd, 3)}),
          flush=True)
    for n in a.ranks:
        for i, L in enumerate(a.writer_L):
            parts = 1 if i == 0 else a.parts      # one part as a run without checkpoints; then checkpointed
            sub = a.folder / f"writer{n}"
            shutil.rmtree(sub, ignore_errors=True)
            sub.mkdir()
            cmd = [sys.executable, str(HERE), "--worker", "--mib", str(a.mib), "--folder", str(sub),
                   "--writer-L", str(L), "--parts", str(parts)]
            if n > 1:
                cmd = [str(BIN / "mpiexec"), "-n", str(n)] + cmd
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()
            for rec in (json.loads(line) for line in out if line.startswith("{")):
                if rec["case"] == "writer":
                    rec["fraction_of_dd"] = round(rec["GB_per_s"] / bw_dd, 3)
                print(json.dumps(rec), flush=True)
            shutil.rmtree(sub, ignore_errors=True)
    if a.no_weak_scaling:
        return
    t1 = weak_scaling(a.folder, 1, a.L, a.updates)
    print(json.dumps({"case": "weak_scaling", "ranks": 1, "L": a.L, "wall_seconds": round(t1, 3)}), flush=True)
    for n in [r for r in a.ranks if r > 1 and r <= (os.cpu_count() or 1)]:
        tn = weak_scaling(a.folder, n, a.L, a.updates)
        print(json.dumps({"case": "weak_scaling", "ranks": n, "L": a.L, "wall_seconds": round(tn, 3),
                          "efficiency": round(t1 / tn, 3)}), flush=True)


if __name__ == "__main__":
    main()
