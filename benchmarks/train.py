"""Training throughput: one JSON line per case.

  python benchmarks/train.py [--threads 1]        RBM CD-1 (and PCD-1) samples/s at 1600-400 on CPU through
                                                   the trainer, next to scikit-learn's BernoulliRBM (PCD-1)
                                                   on the same data (the peer; target >= 3x)
  mpiexec -n 2 python benchmarks/train.py --mode ddp
                                                   DDP strong-scaling efficiency: one rank with global batch
                                                   B vs N ranks sharing each global batch (one
                                                   thread per rank; any N: shares differ by at most one),
                                                   then the parts of a step (compute per share, the
                                                   gradient sum, the optimiser step, the ranks' spread)
  mpiexec -n 2 python benchmarks/train.py --mode comm
                                                   what the ranks add to a step, timed apart from the
                                                   machine's load: the trainer's gradient sum (shared
                                                   memory on a node) vs a flat MPI all-reduce vs gloo
                                                   per tensor, next to the CD-1 step itself
  python benchmarks/train.py --device cuda         1600-400-100-25 stack, CD-1 samples/s per layer on a GPU

Data: 40x40 ±1 "lattices" with short-range structure (a smoothed random field, thresholded); the cost of an
RBM step does not depend on the values, only on the sizes.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def lattices(n: int, L: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, L, L))
    for ax in (1, 2):  # short-range correlations: a few periodic box smoothings
        f = f + np.roll(f, 1, ax) + np.roll(f, -1, ax)
    return np.where(f > 0, 1, -1).astype(np.int8)


def ours(data, n_hidden, batch, persistent, epochs, device="cpu", world=None, units="binary", layers=None):
    import torch
    from hpc_rg.learn.data import ArraySource
    from hpc_rg.learn.objectives import RBMTask
    from hpc_rg.learn.rbm import RBM
    from hpc_rg.learn.trainer import Options, fit
    from hpc_rg.parallel import World
    world = world or World(None, 0, 1)
    dev = torch.device(device)
    torch.manual_seed(0)
    n = len(data)
    rbm = RBM(data[0].size, n_hidden, units).to(dev)
    task = RBMTask(rbm, ArraySource(data), np.arange(n), np.arange(0), dev, units, cd_k=1, persistent=persistent)
    opts = Options(epochs=epochs, batch_size=batch, optimizer="sgd", lr=0.01, momentum=0.5, job_seed=0,
                   key=(0, 0, 0), verbose=False)
    fit(task, world, Options(**{**opts.__dict__, "epochs": 1}), distributed=world.size > 1)  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
    world.barrier()
    t = time.perf_counter()
    fit(task, world, opts, distributed=world.size > 1)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    return (n // batch) * batch * epochs / dt


def peer(data, n_hidden, batch, epochs):
    from sklearn.neural_network import BernoulliRBM
    x = ((data.reshape(len(data), -1) + 1) // 2).astype(np.float64)
    rbm = BernoulliRBM(n_components=n_hidden, batch_size=batch, learning_rate=0.01, n_iter=1, random_state=0)
    rbm.fit(x[: 10 * batch])  # warm-up
    rbm = BernoulliRBM(n_components=n_hidden, batch_size=batch, learning_rate=0.01, n_iter=epochs, random_state=0)
    t = time.perf_counter()
    rbm.fit(x)
    return len(x) * epochs / (time.perf_counter() - t)


def cpu_mode(args):
    """Alternate short runs of ours and the peer (the machine may be shared and loaded): report the best
    and the median of `--reps` runs each."""
    import torch
    from threadpoolctl import threadpool_limits
    if args.threads:
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)   # numpy's BLAS for the peer
    data = lattices(args.samples)
    base = {"benchmark": "rbm_cd1", "sizes": "1600-400", "batch": args.batch, "samples": args.samples,
            "epochs": args.epochs, "reps": args.reps, "device": "cpu", "torch_threads": torch.get_num_threads()}
    runs = {"cd1": [], "pcd1": [], "peer": []}
    for _ in range(args.reps):
        runs["cd1"].append(ours(data, 400, args.batch, False, args.epochs))
        runs["pcd1"].append(ours(data, 400, args.batch, True, args.epochs))
        runs["peer"].append(peer(data, 400, args.batch, args.epochs))
    names = {"cd1": "hpc_rg CD-1 (float32)", "pcd1": "hpc_rg PCD-1 (float32)",
             "peer": "sklearn.BernoulliRBM PCD-1 (float64)"}
    for key, vals in runs.items():
        print(json.dumps({**base, "impl": names[key], "samples_per_s_best": round(max(vals), 1),
                          "samples_per_s_median": round(float(np.median(vals)), 1)}), flush=True)
    print(json.dumps({**base, "case": "speedup_vs_sklearn",
                      "cd1_best_ratio": round(max(runs["cd1"]) / max(runs["peer"]), 2),
                      "pcd1_best_ratio": round(max(runs["pcd1"]) / max(runs["peer"]), 2),
                      "cd1_median_ratio": round(float(np.median(runs["cd1"]) / np.median(runs["peer"])), 2)}),
          flush=True)


def _sleeping_barrier(w):
    """A barrier whose waiting ranks sleep instead of spinning (MPICH's Barrier polls): while rank 0 times
    the one-rank case, the other ranks must not take its core."""
    if w.size == 1:
        return
    req = w.comm.Ibarrier()
    while not req.Test():
        time.sleep(0.002)


def ddp_mode(args):
    """One rank with global batch B vs all ranks sharing it, alternated `--reps` times in one run (the
    machine may be shared and loaded): prints every repetition's efficiency, then the median and best.

    Efficiency = (samples/s of N ranks sharing each global batch B) / (N x samples/s of one rank with batch
    B), i.e. T(1 rank, B) / (N x T(N ranks, B)) per step; 1 is perfect strong scaling.  A second line gives
    the parts of a step (`step_components`). Without --samples each timed training is 30 steps at least
    (max(3000, 30 B) samples): with 3 steps (B = 1000 on 3000 samples) what a training pays once (warm
    buffers, the epoch's prefetch and reductions) weighs as much as 1-2 steps, which no real training sees."""
    import torch
    from hpc_rg.parallel import init_torch_distributed, shutdown_torch_distributed, world
    torch.set_num_threads(1)
    w = world()
    args.samples = args.samples or max(3000, 30 * args.batch)
    data = lattices(args.samples)
    singles, pars = [], []
    init_torch_distributed()   # unused by the MPI all-reduce; kept so that older trees (DDP over gloo) run too
    try:
        for _ in range(args.reps):
            if w.is_root:
                singles.append(ours(data, 400, args.batch, False, args.epochs))
            _sleeping_barrier(w)
            pars.append(ours(data, 400, args.batch, False, args.epochs, world=w))
            _sleeping_barrier(w)
    finally:
        shutdown_torch_distributed()
    if w.is_root:
        eff = [p / s / w.size for s, p in zip(singles, pars)]
        print(json.dumps({"benchmark": "rbm_cd1_ddp", "sizes": "1600-400", "global_batch": args.batch,
                          "samples": args.samples, "epochs": args.epochs, "ranks": w.size, "threads_per_rank": 1,
                          "reps": args.reps,
                          "samples_per_s_1rank_median": round(float(np.median(singles)), 1),
                          "samples_per_s_nranks_median": round(float(np.median(pars)), 1),
                          "efficiency_each": [round(e, 3) for e in eff],
                          "efficiency_median": round(float(np.median(eff)), 3),
                          "efficiency_of_medians": round(float(np.median(pars) / np.median(singles) / w.size), 3),
                          "efficiency_best": round(max(pars) / max(singles) / w.size, 3)}), flush=True)
    step_components(args, w, data)


def step_components(args, w, data):
    """The parts of one data-parallel CD-1 step, in ms (medians; rank 0's numbers):
      compute_global_batch_alone    the CD-1 statistics (noise included) of the whole global batch on one
                                    rank, the others asleep: the one-rank step's work
      compute_share_alone           the same for this rank's share (B/N rows), the others asleep
      compute_share_concurrent      the share with every rank computing at once (memory and cache shared)
      optimizer_step                SGD with momentum on all 641,600 parameters (the one-rank step)
      gradient_sum_and_step         the trainer's sum over ranks and the optimiser step after it
                                    (GradientSync.reduce: slice sums in shared memory, each rank updating
                                    its slice of the parameters), started right after an MPI barrier
      gradient_sum_open_close       once per training (fit): the sum's buffers taken from and given back
                                    to the pool (opening fresh shared windows and freeing them cost 8-15 ms)
      mpi_flat_allreduce            for comparison: one in-place MPI all-reduce of the same flat buffer
      wait_imbalance                a barrier right after the concurrent compute (the ranks' spread)
    and the efficiency those parts predict, (global + opt) / (N (share_concurrent + sum_and_step)); the
    all-reduce starts when the last gradient is ready (nothing is left to overlap it with: the optimiser
    step needs the sum), so the parts add up."""
    import torch
    from hpc_rg.learn.data import ArraySource
    from hpc_rg.learn.objectives import RBMTask
    from hpc_rg.learn.rbm import RBM
    from hpc_rg.learn.gradient_sum import GradientSync, allreduce_sum_inplace
    from hpc_rg.learn.trainer import Noise, Options, make_optimizer, noise_generator, param_groups
    from hpc_rg.parallel import deal, seed_sequence
    torch.manual_seed(0)
    rbm = RBM(1600, 400, "binary")
    x_all = torch.from_numpy(((data[:args.batch].reshape(args.batch, -1) + 1) // 2).astype(np.float32))
    task = RBMTask(rbm, ArraySource(data), np.arange(len(data)), np.arange(0), torch.device("cpu"), "binary")
    params = list(rbm.parameters())
    opts = Options(epochs=1, batch_size=args.batch, optimizer="sgd", lr=1e-3, momentum=0.5)
    opt = make_optimizer(params, opts)
    share = deal(args.batch, w.size, w.rank)
    gen = noise_generator(seed_sequence(0, 0, purpose="train"), torch.device("cpu"))
    sync = GradientSync(params, w) if w.size > 1 else None
    n_rep = 10 * args.reps

    def compute(lo, hi):
        task.gradients(x_all[lo:hi], None, Noise(gen, args.batch, lo, hi, task.device, torch.float32),
                       (hi - lo) / args.batch)

    def timed(fn, n=n_rep, alone=False, after=None):
        ts, waits = [], []
        for _ in range(n):
            _sleeping_barrier(w)
            if alone and not w.is_root:
                continue
            if not alone:
                w.barrier()   # the sleeping barrier lets ranks go up to its 2 ms poll apart; this one does not
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
            if after is not None:
                t = time.perf_counter()
                after()
                waits.append(time.perf_counter() - t)
        med = (lambda v: round(float(np.median(v)) * 1e3, 3) if v else None)
        return (med(ts), med(waits)) if after is not None else med(ts)

    row = {"benchmark": "rbm_cd1_ddp_step_components", "global_batch": args.batch, "ranks": w.size,
           "share_rows": len(share), "unit": "ms"}
    row["compute_global_batch_alone"] = timed(lambda: compute(0, args.batch), alone=True)
    row["compute_share_alone"] = timed(lambda: compute(share.start, share.stop), alone=True)
    row["compute_share_concurrent"], row["wait_imbalance"] = timed(
        lambda: compute(share.start, share.stop), after=w.barrier)
    for p in params:
        p.grad = torch.zeros_like(p)
    row["optimizer_step"] = timed(opt.step, alone=True)
    if sync is not None:
        sharded = sync.optimizer(param_groups(params, opts), lambda g: make_optimizer(g, opts))
        sync.share_parameters()
        sync.attach(zero=False)
        compute(share.start, share.stop)     # written straight into the sum's buffer, as in training
        row["gradient_sum_and_step"] = timed(lambda: (sync.attach(zero=False), sync.reduce(sharded)))
        sync.own_parameters()
        row["gradient_sum_shared_memory"] = sync.sum.shared
        flat = torch.zeros(sum(p.numel() for p in params))
        row["mpi_flat_allreduce"] = timed(lambda: allreduce_sum_inplace(w, flat))
        sync.close()
        row["gradient_sum_open_close"] = timed(lambda: GradientSync(params, w).close())
    if w.is_root:
        g = row["compute_global_batch_alone"] + row["optimizer_step"]
        n = row["compute_share_concurrent"] + row.get("gradient_sum_and_step", row["optimizer_step"])
        row["efficiency_predicted"] = round(g / (w.size * n), 3)
        print(json.dumps(row), flush=True)


def comm_mode(args):
    """The cost the ranks add to a step, without the machine's load in it: the gradient sum of the 1600-400
    RBM (641,600 floats) as the trainer does it (`GradientSum`: through shared memory on one node) vs one
    flat in-place MPI all-reduce vs one torch.distributed (gloo) call per tensor (DDP-style), each timed
    after a barrier (median of --reps x 10), next to the CD-1 step it adds to (local batch B/N, one thread)."""
    import torch
    import torch.distributed as dist
    from hpc_rg.learn.rbm import RBM
    from hpc_rg.learn.gradient_sum import GradientSum, allreduce_sum_inplace
    from hpc_rg.parallel import init_torch_distributed, shutdown_torch_distributed, world
    torch.set_num_threads(1)
    w = world()
    rbm = RBM(1600, 400, "binary")
    flat = torch.zeros(1600 * 400 + 1600 + 400)
    tensors = [torch.zeros(1600, 400), torch.zeros(1600), torch.zeros(400)]
    data = torch.from_numpy(((lattices(args.batch).reshape(args.batch, -1) + 1) // 2).astype(np.float32))
    local = data[:max(1, args.batch // w.size)]

    def median_ms(fn, n):
        ts = []
        for _ in range(n):
            _sleeping_barrier(w)
            w.barrier()       # the sleeping barrier lets ranks go up to its 2 ms poll apart; this one does not
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return round(float(np.median(ts)) * 1e3, 3)
    gsum = GradientSum(w, flat.numel(), flat.dtype, "cpu")   # the trainer's sum (shared memory on a node)
    init_torch_distributed()
    try:
        row = {"benchmark": "grad_allreduce", "floats": flat.numel(), "ranks": w.size,
               "mpi_flat_ms": median_ms(lambda: allreduce_sum_inplace(w, flat), 10 * args.reps),
               "shared_memory_sum_ms": median_ms(gsum.reduce, 10 * args.reps),
               "gloo_per_tensor_ms": median_ms(lambda: [dist.all_reduce(t) for t in tensors], 10 * args.reps),
               f"cd1_step_local_batch_{len(local)}_ms": median_ms(lambda: rbm.cd_statistics(local, 1), 10 * args.reps),
               f"cd1_step_batch_{args.batch}_ms": median_ms(lambda: rbm.cd_statistics(data, 1), 10 * args.reps)}
    finally:
        shutdown_torch_distributed()
    gsum.close()
    if w.is_root:
        print(json.dumps(row), flush=True)


def cuda_mode(args):
    import torch
    from hpc_rg.learn.data import ArraySource
    from hpc_rg.learn.dbn import DBN
    from hpc_rg.learn.objectives import RBMTask
    from hpc_rg.learn.trainer import Options, fit
    from hpc_rg.parallel import World
    if not torch.cuda.is_available():
        print(json.dumps({"benchmark": "dbn_cd1", "skipped": "no CUDA device"}))
        return
    dev = torch.device("cuda")
    data = lattices(args.samples)
    torch.manual_seed(0)
    dbn = DBN([1600, 400, 100, 25], "binary").to(dev)
    total = 0.0
    for layer in range(dbn.n_layers):
        def lift(x, noise, layer=layer):
            with torch.no_grad():
                return dbn.up(x, layer)[-1] if layer else x
        task = RBMTask(dbn.rbms[layer], ArraySource(data), np.arange(len(data)), np.arange(0), dev, "binary",
                       lift=lift)
        opts = Options(epochs=args.epochs, batch_size=args.batch, optimizer="sgd", lr=0.1, momentum=0.5,
                       key=(0, 0, layer), verbose=False)
        fit(task, World(None, 0, 1), Options(**{**opts.__dict__, "epochs": 1}))
        torch.cuda.synchronize()
        t = time.perf_counter()
        fit(task, World(None, 0, 1), opts)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t
        total += dt
        n = (len(data) // args.batch) * args.batch * args.epochs
        print(json.dumps({"benchmark": "dbn_cd1", "layer": layer + 1, "sizes": f"{dbn.sizes[layer]}-"
                          f"{dbn.sizes[layer + 1]}", "batch": args.batch, "device": torch.cuda.get_device_name(),
                          "samples_per_s": round(n / dt, 1)}), flush=True)
    n = (len(data) // args.batch) * args.batch * args.epochs
    print(json.dumps({"benchmark": "dbn_cd1", "sizes": "1600-400-100-25", "batch": args.batch,
                      "device": torch.cuda.get_device_name(), "samples_per_s_whole_stack": round(n / total, 1)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("cpu", "ddp", "comm"), default="cpu")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--samples", type=int, default=None, help="default 3000 (ddp mode: max(3000, 30 x batch))")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="cpu mode: threads for both (0: library defaults)")
    args = ap.parse_args()
    if args.mode != "ddp":
        args.samples = args.samples or 3000
    if args.device == "cuda":
        cuda_mode(args)
    elif args.mode == "ddp":
        ddp_mode(args)
    elif args.mode == "comm":
        comm_mode(args)
    else:
        cpu_mode(args)


if __name__ == "__main__":
    main()
