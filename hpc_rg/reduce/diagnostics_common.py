"""Shared plumbing of the deep-learning diagnostics: trained models by table name, seeded torch noise that
depends on a batch's identity (never on the rank), unit conversions and the thermometer read-out.

Spins are ±1 throughout the diagnostics; models with {0,1} ("binary") units get (s + 1)/2 and their
outputs are mapped back with 2x − 1, so every correlator and error is in spin units.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hpc_rg.schema import ConfigError
from hpc_rg.parallel import seed_sequence


def model_path(ctx, name: str, key: str) -> Path:
    path = ctx.out / "models" / f"{name}.pt"
    if not path.exists():
        raise ConfigError(getattr(ctx.cfg, "file", ""), key, name,
                          f"a trained model ({path} is missing: run `hpc-rg train` with [train.{name}])")
    return path


def load(ctx, name: str, key: str, kinds: tuple[str, ...]):
    """(model, meta) of `<out>/models/<name>.pt`, checking its kind; CPU, eval mode, float64 weights."""
    from hpc_rg.learn import load_model
    model, meta = load_model(model_path(ctx, name, key))
    if meta["kind"] not in kinds:
        raise ConfigError(getattr(ctx.cfg, "file", ""), key, name, f"a model of kind {' or '.join(kinds)} "
                          f"(it is a {meta['kind']})")
    return model.double(), meta


def t_indices(ens, temperatures) -> list[int]:
    if not temperatures:
        return list(range(ens.n_temperatures))
    return sorted({int(np.argmin(np.abs(ens.temperatures - T))) for T in temperatures})


def generator(job_seed: int, *key: int):
    """A torch CPU generator for one unit of work (e.g. (reduction id, t, chain, start)): identical on any
    number of ranks because the key names the work, not the worker."""
    import torch
    g = torch.Generator()
    g.manual_seed(int(seed_sequence(job_seed, *key, purpose="analysis").generate_state(1, np.uint64)[0] >> 1))
    return g


def noise_fn(gen, k: int):
    """`noise(n)` -> uniforms (k, n) float64 from `gen` (the RBM classes take their randomness this way)."""
    import torch
    return lambda n: torch.rand(k, n, generator=gen, dtype=torch.float64)


def to_units(spins, units: str):
    """±1 spins (torch) -> the model's unit values."""
    return (spins + 1) * 0.5 if units == "binary" else spins


def to_spin(x, units: str):
    """Model unit values or means -> spin scale [−1, 1]."""
    return 2 * x - 1 if units == "binary" else x


def thermometer_read(thermo, lattices) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (k, n_T), posterior-mean temperature (k,)) of ±1 lattices (k, Ly, Lx). The reductions
    average both over a set of lattices; the set's peak read-out is `thermometer_peak` of the averaged
    probabilities."""
    import torch
    with torch.no_grad():
        p, t = thermo.predict_temperature(torch.as_tensor(np.asarray(lattices, dtype=np.float64)))
    return p.numpy(), t.numpy()


def thermometer_peak(p_mean, temperatures) -> np.ndarray:
    """The paper's read-out of a set of lattices: the thermometer temperature where the average probability
    vector p_mean (..., n_T) peaks (its Figs. 3-5 c and 8 plot that vector and read the peak). Reported
    beside the posterior mean Σ p T, which a wide or skewed distribution pulls towards the ladder's middle."""
    from hpc_rg.learn.thermometer import peak_temperature
    return peak_temperature(p_mean, temperatures)


def square_side(n: int) -> int | None:
    s = int(round(np.sqrt(n)))
    return s if s * s == n else None


def provenance(res, ctx, ens=None, models: dict | None = None) -> None:
    res.attrs["ensemble"] = str(ctx.ensemble_path) if ens is None else str(getattr(ens, "path", ctx.ensemble_path))
    if ens is not None:
        res.attrs["n_chains"] = int(ens.n_chains)
        res.attrs["n_samples"] = int(ens.n_samples)
        res.attrs["lattice_shape"] = np.array(ens.lattice_shape)
        res.attrs["model"] = str(ens.model)
    for k, v in (models or {}).items():
        res.attrs[f"{k}_file"] = str(v)
