"""Seed 000's repeats: seconds per trained repeat of the coarse-graining CNN, one JSON line per case.

  taskset -c 1 python benchmarks/train_repeats.py [--epochs 30] [--groups 1,10,25,50,100]

Cases, at the paper's sizes (5000 training / 2000 test 9x9 patches, batch 50, Adam lr 1e-2, so 100 steps
per epoch) on one thread:
  one_at_a_time   `trainer.fit` per repeat (the generic path; evaluates the test set every epoch, as it does)
  grouped         `batched_cnn.train_group` on K repeats at once (test set evaluated after the last epoch)
for the variants frozen, ch1, ch3. Each line: {"case", "variant", "K", "epochs", "repeats", "seconds",
"s_per_repeat"}; the last line projects the paper-scale seed-000 job (4 variants x 500 + 50 control) on
`--ranks` ranks from the grouped K = 50 numbers. Data: random ±1 patches with a balanced label (the cost of
a step does not depend on the values).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

VARIANTS = {"frozen": {"frozen": True}, "ch1": {"channels": 1}, "ch3": {"channels": 3}}


def patches(n_train: int, n_test: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    x = np.where(rng.random((n, 9, 9)) < 0.5, -1, 1).astype(np.int8)
    y = (np.arange(n) % 2).astype(np.int8)
    return {"x_train": x[:n_train], "y_train": y[:n_train], "x_test": x[n_train:], "y_test": y[n_train:]}


def one_at_a_time(spec, data, repeats: int) -> float:
    import torch
    from hpc_rg.learn.stage import SINGLE, _model_and_tasks, _options
    from hpc_rg.learn.trainer import State, fit
    t = time.perf_counter()
    for r in range(repeats):
        _, tasks = _model_and_tasks("coarse_cnn", spec, data, torch.device("cpu"), 0, 0, r)
        fit(tasks[0], SINGLE, _options(spec, 0, 0, r, 0, "bench", {}, verbose=False), State())
    return time.perf_counter() - t


def grouped(spec, data, k: int) -> float:
    import torch
    from hpc_rg.learn.batched_cnn import train_group
    from hpc_rg.learn.stage import _model_and_tasks, _options
    t = time.perf_counter()
    models = [_model_and_tasks("coarse_cnn", spec, data, torch.device("cpu"), 0, 0, r)[0] for r in range(k)]
    train_group(models, data, [_options(spec, 0, 0, r, 0, "bench", {}, verbose=False) for r in range(k)])
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--groups", default="1,10,25,50,100", help="group sizes K of the grouped case")
    ap.add_argument("--single-repeats", type=int, default=2, help="repeats timed one at a time per variant")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--ranks", type=int, default=2, help="ranks of the projected paper-scale job")
    args = ap.parse_args()
    import torch
    from hpc_rg.learn.specs import CoarseCNNSpec
    torch.set_num_threads(1)
    data = patches(5000, 2000)
    per_repeat_k50 = {}
    for variant in args.variants.split(","):
        spec = CoarseCNNSpec(epochs=args.epochs, **VARIANTS[variant])
        grouped(CoarseCNNSpec(epochs=1, **VARIANTS[variant]), data, 2)   # warm-up (allocator, first calls)
        if args.single_repeats:
            dt = one_at_a_time(spec, data, args.single_repeats)
            print(json.dumps({"case": "one_at_a_time", "variant": variant, "K": 1, "epochs": args.epochs,
                              "repeats": args.single_repeats, "seconds": round(dt, 3),
                              "s_per_repeat": round(dt / args.single_repeats, 4)}), flush=True)
        for k in map(int, args.groups.split(",")):
            dt = grouped(spec, data, k)
            if k == 50:
                per_repeat_k50[variant] = dt / k
            print(json.dumps({"case": "grouped", "variant": variant, "K": k, "epochs": args.epochs, "repeats": k,
                              "seconds": round(dt, 3), "s_per_repeat": round(dt / k, 4)}), flush=True)
    if {"frozen", "ch1", "ch3"} <= per_repeat_k50.keys():
        # ch2 costs between ch1 and ch3; the control is a ch1 model on other data
        ch2 = 0.5 * (per_repeat_k50["ch1"] + per_repeat_k50["ch3"])
        total = 500 * (per_repeat_k50["frozen"] + per_repeat_k50["ch1"] + ch2 + per_repeat_k50["ch3"]) \
            + 50 * per_repeat_k50["ch1"]
        print(json.dumps({"case": "projection_seed000_paper_scale", "K": 50, "ranks": args.ranks,
                          "epochs": args.epochs, "core_seconds": round(total, 1),
                          "wall_minutes": round(total / args.ranks / 60, 2)}), flush=True)


if __name__ == "__main__":
    main()
