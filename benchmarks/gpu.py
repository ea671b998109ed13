"""GPU samplers and GPU training: one JSON line per case, a short table last.

  python benchmarks/gpu.py                  on a CUDA machine: flips/ns of the multi-spin and one-byte
                                            kernels at L = 1024 .. 32768, bit-identity with the CPU backend,
                                            Kaufman's exact 64 x 64 energy from GPU chains, and CD-1 samples/s
                                            of the 1600-400-100-25 stack on the GPU and on the CPU
  python benchmarks/gpu.py --device cpu     the same cases through the CPU backend (same kernels, serial;
                                            small L): checks the script and gives the CPU reference numbers

Cases ("case" key):
  throughput  kernel (multispin | metropolis | heatbath), L, chains, sweeps, seconds, flips_per_ns =
              chains * L^2 * sweeps / time (median of --repeats timings of the sweeps alone, device synchronised)
  identity    GPU result == CPU backend result bit for bit after a few sweeps (L = 64)
  kaufman     mean energy per site of 64 chains at L = 64 (CPU: L = 16) against Kaufman's exact finite-torus value
              (hpc_rg.exact.kaufman; tests/gpu/kaufman_ref.py if that is missing), error from tau_int, z-score
  cd1         RBM CD-1 samples/s per layer of the 1600-400-100-25 stack through hpc_rg.learn's trainer
              (the loop of benchmarks/train.py --device cuda), on cuda and on cpu
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hpc_rg.lattice.nearest import NearestNeighbour  # noqa: E402
from hpc_rg.mc.gpu_common import gpu_present  # noqa: E402
from hpc_rg.mc.gpu_metropolis import GpuHeatBath, GpuMetropolis  # noqa: E402
from hpc_rg.mc.gpu_multispin import GpuMultiSpin  # noqa: E402
from hpc_rg.reduce.stats import mean_error  # noqa: E402

BETA_C = math.log(1 + math.sqrt(2)) / 2
KERNELS = {"multispin": GpuMultiSpin, "metropolis": GpuMetropolis, "heatbath": GpuHeatBath}
ROWS = []


def emit(record: dict) -> None:
    ROWS.append(record)
    print(json.dumps(record), flush=True)


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exact_energy(beta: float, L: int) -> tuple[float, str]:
    try:
        from hpc_rg.exact.kaufman import energy
        return float(energy((L, L), 1.0 / beta)), "hpc_rg.exact.kaufman"
    except ImportError:
        ref = _load(ROOT / "tests" / "gpu" / "kaufman_ref.py", "kaufman_ref")
        return ref.energy_per_site(beta, L, L), "tests/gpu/kaufman_ref.py"


def synchronize(device: str) -> None:
    if device == "cuda":
        from numba import cuda
        cuda.synchronize()


def _run(s, n, every=None):
    every = every or max(n, 1)
    e = np.zeros((s.width, max(n // every, 1)))
    m = np.zeros_like(e)
    s.run(n, e, m, every)
    return e, m


def seeds(n: int, key: int = 0):
    return np.random.SeedSequence(2024).spawn(n + key)[key:]


# ----------------------------------------------------------------------------------------------------

def throughput(kernel: str, L: int, chains: int, sweeps: int, repeats: int, device: str, beta: float) -> None:
    cls = KERNELS[kernel]
    width = 64 if kernel == "multispin" else chains
    s = cls(NearestNeighbour((L, L)), beta, seeds(width), device=device)
    _run(s, 2)                              # compile, warm caches
    times = []
    for _ in range(repeats):
        synchronize(device)
        t = time.perf_counter()
        _run(s, sweeps)                     # the sweeps plus one measurement at the end
        synchronize(device)
        times.append(time.perf_counter() - t)
    dt = statistics.median(times)
    flips = width * L * L * sweeps
    emit({"case": "throughput", "kernel": kernel, "device": device, "L": L, "chains": width, "sweeps": sweeps,
          "beta": round(beta, 6), "seconds": round(dt, 6), "flips_per_ns": round(flips / dt * 1e-9, 3),
          "spread": round((max(times) - min(times)) / dt, 3)})


def identity(device: str) -> None:
    if device != "cuda":
        return
    lat = NearestNeighbour((64, 64))
    for kernel, cls in KERNELS.items():
        width = 64 if kernel == "multispin" else 4
        g = cls(lat, BETA_C, seeds(width), device="cuda")
        c = cls(lat, BETA_C, seeds(width), device="cpu")
        eg, _ = _run(g, 20, 1)
        ec, _ = _run(c, 20, 1)
        emit({"case": "identity", "kernel": kernel, "L": 64, "sweeps": 20,
              "bit_identical": bool(np.array_equal(g.configurations(), c.configurations())
                                    and np.array_equal(eg, ec))})


def kaufman(device: str, L: int, thermalize: int, sweeps: int) -> None:
    """64 chains (8 one-byte chains on a CPU) from random starts at T_c and above (below T_c, random starts
    can freeze into striped states that outlive any run on a torus)."""
    for kernel in ("multispin", "metropolis", "heatbath"):
        for beta in (BETA_C, 0.4):
            chains = 64 if device == "cuda" or kernel == "multispin" else 8
            s = KERNELS[kernel](NearestNeighbour((L, L)), beta, seeds(chains, key=1), device=device)
            _run(s, thermalize)
            t = time.perf_counter()
            e, _ = _run(s, sweeps, 1)
            dt = time.perf_counter() - t
            mean, err, tau = mean_error(e, axis_chains=True)
            ref, source = exact_energy(beta, L)
            emit({"case": "kaufman", "kernel": kernel, "device": device, "L": L, "chains": s.width,
                  "beta": round(beta, 8), "sweeps": sweeps, "energy": round(mean, 7), "error": round(err, 7),
                  "tau_int": round(tau, 2), "exact": round(ref, 7), "z": round((mean - ref) / err, 2),
                  "exact_from": source, "seconds": round(dt, 2)})


def cd1(device: str, samples: int, batch: int, epochs: int) -> None:
    """CD-1 samples/s of each layer of the 1600-400-100-25 stack, the loop of benchmarks/train.py."""
    try:
        import torch
        from hpc_rg.learn.data import ArraySource
        from hpc_rg.learn.dbn import DBN
        from hpc_rg.learn.objectives import RBMTask
        from hpc_rg.learn.trainer import Options, fit
        from hpc_rg.parallel import World
    except ImportError as exc:
        emit({"case": "cd1", "device": device, "skipped": f"hpc_rg.learn not importable: {exc}"})
        return
    if device == "cuda" and not torch.cuda.is_available():
        emit({"case": "cd1", "device": device, "skipped": "torch sees no CUDA device"})
        return
    train = _load(ROOT / "benchmarks" / "train.py", "bench_train")
    dev = torch.device(device)
    name = torch.cuda.get_device_name() if device == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    data = train.lattices(samples)
    torch.manual_seed(0)
    dbn = DBN([1600, 400, 100, 25], "binary").to(dev)
    total = 0.0
    n = (len(data) // batch) * batch * epochs
    for layer in range(dbn.n_layers):
        def lift(x, noise, layer=layer):
            with torch.no_grad():
                return dbn.up(x, layer)[-1] if layer else x
        task = RBMTask(dbn.rbms[layer], ArraySource(data), np.arange(len(data)), np.arange(0), dev, "binary",
                       lift=lift)
        opts = Options(epochs=epochs, batch_size=batch, optimizer="sgd", lr=0.1, momentum=0.5,
                       key=(0, 0, layer), verbose=False)
        fit(task, World(None, 0, 1), Options(**{**opts.__dict__, "epochs": 1}))     # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fit(task, World(None, 0, 1), opts)
        if device == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
        total += dt
        emit({"case": "cd1", "device": device, "hardware": name, "layer": layer + 1,
              "sizes": f"{dbn.sizes[layer]}-{dbn.sizes[layer + 1]}", "batch": batch,
              "samples_per_s": round(n / dt, 1)})
    emit({"case": "cd1", "device": device, "hardware": name, "sizes": "1600-400-100-25", "batch": batch,
          "samples_per_s_whole_stack": round(n / total, 1)})


def table() -> None:
    print("\nsummary")
    for r in ROWS:
        if r["case"] == "throughput":
            print(f"  {r['kernel']:10s} {r['device']:4s} L={r['L']:6d} chains={r['chains']:3d} "
                  f"{r['flips_per_ns']:10.3f} flips/ns")
        elif r["case"] == "kaufman":
            print(f"  kaufman {r['kernel']:10s} beta={r['beta']:.5f} E={r['energy']:.6f}+-{r['error']:.6f} "
                  f"exact={r['exact']:.6f} z={r['z']}")
        elif r["case"] == "identity":
            print(f"  identity {r['kernel']:10s} {r['bit_identical']}")
        elif r["case"] == "cd1" and "samples_per_s_whole_stack" in r:
            print(f"  cd1 {r['device']:4s} stack {r['samples_per_s_whole_stack']:.1f} samples/s ({r['hardware']})")
        elif r["case"] == "cd1" and "skipped" in r:
            print(f"  cd1 {r['device']} skipped: {r['skipped']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    ap.add_argument("--sizes", type=int, nargs="*", help="lattice sides (default: GPU 1024 4096 16384 32768; "
                    "CPU 64 256)")
    ap.add_argument("--sweeps", type=int, default=0, help="timed sweeps per repeat (default: by size)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kaufman-sweeps", type=int, default=0, help="default: GPU 20000, CPU 2000")
    ap.add_argument("--skip", nargs="*", default=[], choices=("throughput", "identity", "kaufman", "cd1"))
    ap.add_argument("--cd1-samples", type=int, default=5000)
    ap.add_argument("--cd1-epochs", type=int, default=2)
    args = ap.parse_args()

    device = args.device
    if device == "auto":
        device = "cuda" if gpu_present() else "cpu"
    gpu = device == "cuda"
    if gpu:
        from numba import cuda
        dev = cuda.get_current_device()
        emit({"case": "device", "name": dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name),
              "compute_capability": list(dev.compute_capability)})
    sizes = args.sizes or ([1024, 4096, 16384, 32768] if gpu else [64, 256])

    if "throughput" not in args.skip:
        for L in sizes:
            sweeps = args.sweeps or (max(4, min(200, int(2e10 / (64 * L * L)))) if gpu else max(2, 2 ** 12 // L))
            for kernel in ("multispin", "metropolis", "heatbath"):
                # one-byte kernels: one chain at large L, 64 chains at 1024 (many chains per GPU); 4 on a CPU
                chains = (64 if L <= 1024 else 1) if gpu else 4
                throughput(kernel, L, chains, sweeps if kernel == "multispin" else 4 * sweeps,
                           args.repeats, device, BETA_C)
    if "identity" not in args.skip:
        identity(device)
    if "kaufman" not in args.skip:
        if gpu:
            kaufman(device, 64, 2000, args.kaufman_sweeps or 20000)
        else:
            kaufman(device, 16, 1000, args.kaufman_sweeps or 10000)
    if "cd1" not in args.skip:
        if gpu:
            cd1("cuda", args.cd1_samples, 100, args.cd1_epochs)
        cd1("cpu", args.cd1_samples, 100, args.cd1_epochs)
    table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
