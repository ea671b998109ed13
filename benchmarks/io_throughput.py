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
  {"case": "spin_storage", "L": L, ...}       simulate.spin_storage "int8" against "bits" on one core, in one
                                              process, repeats interleaved: disk bytes per sample (parts +
                                              ensemble.h5), and samples/s of the pipeline's paths: write
                                              (PartWriter.add_sample, close with fsync, assemble), read for
                                              reductions (Ensemble.iter_spins, what blocks.iter_segment does)
                                              and read for training (learn.data.EnsembleSource.read of shuffled
                                              batches of 64, the first 2048 samples of an epoch); "ratio"
                                              fields: disk bits/int8, speed bits/int8 (> 1: bits faster)

    taskset -c 1 .venv/bin/python benchmarks/io_throughput.py --only-storage [--storage-L 64 256 1024]
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


def _storage_write(folder: Path, L: int, n_samples: int, storage: str, pool: np.ndarray) -> float:
    """Seconds to write n_samples LxL configurations of 4 temperatures x 1 chain as the driver does."""
    from hpc_rg.io.parts import PartWriter, assemble, part_path
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    units = [(0, t) for t in range(4)]
    per_unit = n_samples // len(units)
    zero = np.zeros(1)
    t0 = time.perf_counter()
    writer = PartWriter(part_path(folder, 0, 0), units, 1, (L, L), 0, 0, storage=storage)
    for j in range(per_unit):
        for u in units:
            writer.add_sample(u, j, pool[(j + u[1]) % len(pool)], zero, zero)
    writer.close()
    assemble(folder, folder, 1, np.linspace(1, 2, len(units)), 1, (L, L), per_unit, 0, {"model": "bench"},
             storage=storage)
    return time.perf_counter() - t0


def _storage_read_reduce(folder: Path) -> float:
    from hpc_rg.io.ensemble import Ensemble
    from hpc_rg.reduce.blocks import iter_segment, segments
    t0 = time.perf_counter()
    with Ensemble(folder / "ensemble.h5") as e:
        total = 0
        for t in range(e.n_temperatures):
            for seg in segments(e.n_chains, e.n_samples, 8):
                for _, x in iter_segment(e.spins, t, seg, 32):
                    total += int(x[:, 0, 0].sum())          # touch the batch as a reduction would
    return time.perf_counter() - t0


def _storage_read_train(folder: Path, n: int, batch: int = 64) -> float:
    """Seconds to read the first n samples of a shuffled epoch in batches, as local_batches hands them out."""
    from hpc_rg.learn.data import EnsembleSource
    t0 = time.perf_counter()
    src = EnsembleSource(folder / "ensemble.h5")
    order = np.random.default_rng(0).permutation(src.n)[:n]
    for lo in range(0, len(order), batch):
        src.read(np.sort(order[lo:lo + batch]))
    src.close()
    return time.perf_counter() - t0


def storage_compare(folder: Path, L: int, mib: int, repeats: int, train_samples: int = 2048) -> dict:
    """int8 against bits at lattice side L, with `mib` MiB of int8 spins; best of `repeats` per path."""
    n = max(4, mib * 2**20 // (L * L) // 4 * 4)
    pool = np.random.default_rng(1).integers(0, 2, size=(16, 1, L, L), dtype=np.int8) * 2 - 1
    n_train = min(n, train_samples)
    best = {st: {"write": np.inf, "read_reduce": np.inf, "read_train": np.inf} for st in ("int8", "bits")}
    disk = {}
    for _ in range(repeats):
        for st in ("int8", "bits"):                          # interleaved: the machine's load hits both
            sub = folder / f"storage_{st}"
            best[st]["write"] = min(best[st]["write"], _storage_write(sub, L, n, st, pool))
            disk[st] = sum(p.stat().st_size for p in sub.glob("*.h5"))
            best[st]["read_reduce"] = min(best[st]["read_reduce"], _storage_read_reduce(sub))
            best[st]["read_train"] = min(best[st]["read_train"], _storage_read_train(sub, n_train))
    rec = {"case": "spin_storage", "L": L, "samples": n, "train_samples": n_train, "repeats": repeats}
    for st in ("int8", "bits"):
        rec[f"{st}_disk_bytes_per_sample"] = round(disk[st] / n, 1)
        for path, sec in best[st].items():
            rec[f"{st}_{path}_samples_per_s"] = round((n_train if path == "read_train" else n) / sec, 1)
    rec["disk_ratio"] = round(disk["bits"] / disk["int8"], 4)
    for path in ("write", "read_reduce", "read_train"):
        rec[f"{path}_speed_ratio"] = round(best["int8"][path] / best["bits"][path], 3)
    for st in ("int8", "bits"):
        shutil.rmtree(folder / f"storage_{st}", ignore_errors=True)
    return rec


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
    p.add_argument("--only-storage", action="store_true", help="only the spin_storage case (int8 vs bits)")
    p.add_argument("--storage-L", type=int, nargs="+", default=[64, 256, 1024],
                   help="lattice sides of the spin_storage case")
    p.add_argument("--storage-mib", type=int, default=128, help="MiB of int8 spins per spin_storage case")
    p.add_argument("--repeats", type=int, default=3, help="repeats of the spin_storage case (best taken)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    a.folder = a.folder.resolve()
    if a.worker:
        writer_worker(a.folder, a.mib, a.writer_L[0], a.parts)
        return
    a.folder.mkdir(parents=True, exist_ok=True)
    if a.only_storage:
        for L in a.storage_L:
            print(json.dumps(storage_compare(a.folder, L, a.storage_mib, a.repeats)), flush=True)
        return
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
    for L in a.storage_L:
        print(json.dumps(storage_compare(a.folder, L, a.storage_mib, a.repeats)), flush=True)
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
