"""Trained models for the reductions that read them: a model by its [train.<name>] table name (kind
checked), torch noise from a seeded generator, unit conversions and the thermometer read-out.

Spins are ±1 throughout the diagnostics; models with {0,1} ("binary") units get (s + 1)/2 and their
outputs are mapped back with 2x − 1, so every correlator and error is in spin units.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hpc_rg.schema import ConfigError


def model_path(ctx, name: str, key: str) -> Path:
    path = ctx.model_path(name)
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
