"""Run under `mpiexec -n K` by test_any_ranks.py: trains small models data-parallel over the K ranks with
`trainer.fit(distributed=True)` and writes their final weights and per-epoch metrics to OUT (rank 0).

Cases cover both gradient paths (contrastive divergence writes .grad itself; the autoencoder and the
thermometer go through autograd), persistent chains, and global batches that do not divide K (down to fewer
rows than ranks, so that some ranks have no rows at all).

    mpiexec -n K python tests/learn/any_ranks_worker.py OUT.npz
"""
from __future__ import annotations

import sys

import numpy as np
import torch

from hpc_rg.learn.autoencoder import Autoencoder
from hpc_rg.learn.data import ArraySource
from hpc_rg.learn.objectives import AutoencoderTask, RBMTask, ThermometerTask
from hpc_rg.learn.rbm import RBM
from hpc_rg.learn.thermometer import Thermometer
from hpc_rg.learn.trainer import Options, fit
from hpc_rg.parallel import world


def spins(n: int, side: int = 8, seed: int = 3) -> np.ndarray:
    """Correlated ±1 rows: a random sign per row times a noisy pattern."""
    rng = np.random.default_rng(seed)
    pattern = np.where(rng.random(side * side) < 0.5, -1, 1)
    x = np.where(rng.random((n, side * side)) < 0.8, 1, -1) * pattern * rng.choice([-1, 1], (n, 1))
    return x.reshape(n, side, side).astype(np.int8)


def cases():
    data = spins(130)
    labels = np.arange(130) % 2
    cpu = torch.device("cpu")
    train, test = np.arange(110), np.arange(110, 130)
    sgd = dict(optimizer="sgd", lr=0.05, momentum=0.5, l2=1e-3, job_seed=1, key=(0, 0, 0), verbose=False)
    for batch in (11, 5):   # 11: uneven shares on 2, 3, 4, 7 ranks; 5 < 7: ranks without rows
        for persistent in (False, True):
            def rbm_case(persistent=persistent, batch=batch):
                torch.manual_seed(0)
                # float64: a CD sample is a threshold u < p, which a float32 rounding difference flips now and
                # then (the runs then part by a whole spin); in float64 no flip happens, and what remains of
                # the ranks' different summation order is ~1e-12
                rbm = RBM(64, 16, "spin").double()
                task = RBMTask(rbm, ArraySource(data), train, test, cpu, "spin", cd_k=2, persistent=persistent,
                               l1=1e-3, dtype=torch.float64)
                return rbm, task, Options(epochs=3, batch_size=batch, dtype=torch.float64, **sgd)
            yield f"rbm_b{batch}_p{int(persistent)}", rbm_case

        def ae_case(batch=batch):
            torch.manual_seed(1)
            ae = Autoencoder([64, 16, 4])
            task = AutoencoderTask(ae, ArraySource(data.reshape(130, -1)), train, test, cpu, l1=1e-4)
            return ae, task, Options(epochs=3, batch_size=batch, optimizer="adam", lr=3e-3, job_seed=2,
                                     key=(1, 0, 0), verbose=False)
        yield f"autoencoder_b{batch}", ae_case

        def thermo_case(batch=batch):
            torch.manual_seed(2)
            th = Thermometer([1.0, 2.0], channels=2, hidden=4)
            task = ThermometerTask(th, ArraySource(data, labels, (1.0, 2.0)), train, test, cpu)
            return th, task, Options(epochs=2, batch_size=batch, optimizer="adam", lr=3e-3, job_seed=3,
                                     key=(2, 0, 0), verbose=False)
        yield f"thermometer_b{batch}", thermo_case


def main(out: str) -> None:
    torch.set_num_threads(1)
    w = world()
    result = {}
    for name, make in cases():
        model, task, opts = make()
        state = fit(task, w, opts, distributed=True)
        for k, v in model.state_dict().items():
            result[f"{name}/{k}"] = v.detach().numpy().copy()
        for key in state.history[0]:
            if key not in ("seconds", "epoch", "lr"):
                result[f"{name}/history/{key}"] = np.array([row[key] for row in state.history])
    if w.is_root:
        np.savez(out, **result)


if __name__ == "__main__":
    main(sys.argv[1])
