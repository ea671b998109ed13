"""Helpers of the tests of the reductions that read trained models: a serial Context, hand-built models saved in the train
stage's file format, small exact / Monte Carlo ensembles."""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from hpc_rg.io.ensemble import write_ensemble
from hpc_rg.lattice.nearest import NearestNeighbour
from hpc_rg.parallel import World

T_C = 2.0 / math.log(1.0 + math.sqrt(2.0))


def context(out: Path, seed: int = 7, world=None):
    from hpc_rg.reduce.registry import Context
    return Context(cfg=SimpleNamespace(file=str(out / "job.toml")), world=world or World(None, 0, 1),
                   out=Path(out), seed=seed)


def save(out: Path, name: str, kind: str, model, lattice_shape, repeats=None, metrics=None) -> Path:
    from hpc_rg.learn.modelfile import save_model
    (out / "models").mkdir(parents=True, exist_ok=True)
    path = out / "models" / f"{name}.pt"
    save_model(path, kind=kind, name=name, model=model, optimizer=None, config={"kind": kind}, history=[],
               metrics=metrics or {}, data={"lattice_shape": list(lattice_shape)}, repeats=repeats)
    return path


def spec_of(name: str, **kw):
    """The spec of reduction `name` (its plugin's spec class) with keys `kw`."""
    from hpc_rg.reduce.registry import spec_class
    return spec_class(name)(**kw)


def block_indicator(L: int, b: int) -> np.ndarray:
    """(L², (L/b)²) weights: hidden unit (I, J) couples with weight 1 to the b×b block at (bI, bJ)."""
    n = L // b
    W = np.zeros((L, L, n, n))
    for I in range(n):
        for J in range(n):
            W[b * I:b * I + b, b * J:b * J + b, I, J] = 1.0
    return W.reshape(L * L, n * n)


def write(path: Path, temperatures, spins, model: str):
    spins = np.asarray(spins, np.int8)
    shape = spins.shape[3:]
    energy = NearestNeighbour(shape).energy_per_site(spins.reshape((-1,) + shape)).reshape(spins.shape[:3])
    return write_ensemble(path, temperatures, spins, energy=energy,
                          attrs={"model": model, "J": 1.0, "h": 0.0, "alpha": 0.0, "algorithm": "test", "seed": 0,
                                 "job_toml": ""})


def exact_chain_samples(L: int, T: float, n: int, rng) -> np.ndarray:
    """Independent exact samples of the periodic chain (J = 1): iid bonds τ = s_i s_{i+1} with
    P(τ = 1) = (1 + tanh(1/T))/2, conditioned on Π τ = 1 by rejection."""
    p = (1 + math.tanh(1 / T)) / 2
    out = []
    while sum(len(o) for o in out) < n:
        tau = np.where(rng.random((2 * n, L)) < p, 1, -1).astype(np.int8)
        tau = tau[np.prod(tau, axis=1) == 1]
        s0 = rng.choice(np.array([-1, 1], np.int8), (len(tau), 1))
        out.append(np.cumprod(np.concatenate([s0, tau[:, :-1]], axis=1), axis=1).astype(np.int8))
    return np.concatenate(out)[:n]


def wolff_samples(L: int, T: float, n: int, seed: int, thermalize: int = 300, every: int = 5) -> np.ndarray:
    from hpc_rg.mc.wolff import Wolff
    s = Wolff(NearestNeighbour((L, L)), 1.0 / T, [np.random.SeedSequence(seed)])
    e = np.empty((1, thermalize))
    s.run(thermalize, e, e.copy(), thermalize)
    out = np.empty((n, L, L), np.int8)
    buf = np.empty((1, 1))
    for k in range(n):
        s.run(every, buf, buf.copy(), every)
        out[k] = s.configurations()[0]
    return out
