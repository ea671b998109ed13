"""Checks of the `[train.<name>]` tables against the data they will train on, before any model trains.

`check_job(cfg)` runs when the job file is read (`hpc-rg check`): with a `[simulate]` table the job's own
ensemble is known before it exists (temperatures x chains x samples, lattice shape). `validate(cfg)` runs at
the start of the train stage against the real ensemble files, so a problem of the last model is reported
before the first one trains. Both raise one-line `ConfigError`s naming the job file and the key.
Import-light (no torch, h5py only inside `validate`): the job-file validator imports this module.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from hpc_rg.schema import ConfigError


@dataclass(frozen=True)
class DataShape:
    """What a model's training set is made of: the ensemble's temperatures, configurations per temperature
    (chains x samples) and lattice shape, and where that is known from (for messages)."""
    temperatures: tuple[float, ...]
    per_temperature: int
    lattice_shape: tuple[int, ...]
    source: str
    exact_temperatures: bool = True     # False when the ladder is tuned at run time (values not known yet)


def ensemble_path(cfg, spec) -> Path:
    """The ensemble a model trains on: `ensemble` relative to the job file's folder, else <out>/ensemble.h5."""
    if spec.ensemble:
        p = Path(spec.ensemble)
        return p if p.is_absolute() else cfg.folder / p
    return cfg.out / "ensemble.h5"


def _kind(spec) -> str:
    from hpc_rg.learn.specs import SPECS
    return next(k for k, cls in SPECS.items() if type(spec) is cls)


def check_data(file, name: str, spec, data: DataShape) -> None:
    """Temperatures, batch size and layer sizes of model `name` against its data."""
    kind = _kind(spec)
    key = f"train.{name}"
    selected = data.temperatures
    if spec.temperatures:
        if data.exact_temperatures:
            for T in spec.temperatures:
                if not any(abs(t - T) <= 1e-6 * max(1.0, abs(T)) for t in data.temperatures):
                    raise ConfigError(file, f"{key}.temperatures", list(spec.temperatures),
                                      f"temperatures of {data.source} ({list(data.temperatures)})")
        selected = spec.temperatures
    shape = tuple(data.lattice_shape)
    sites = math.prod(shape)
    if kind in ("dbn", "autoencoder") and spec.layers[0] != sites:
        raise ConfigError(file, f"{key}.layers", list(spec.layers),
                          f"first size {sites} (the lattice of {data.source} has {list(shape)} sites)")
    if kind == "coarse_cnn":
        side = spec.block * spec.block
        if len(shape) != 2 or min(shape) < side:
            raise ConfigError(file, f"{key}.block", spec.block,
                              f"a block b with b^2 <= the lattice side {list(shape)} of {data.source}")
        return      # trains on n_train patches: batch_size <= n_train is checked by the spec itself
    if kind == "rsmi":
        check_rsmi_window(file, name, spec, shape, data.source)
    if kind == "thermometer" and (len(selected) < 2 or len(shape) != 2):
        raise ConfigError(file, f"{key}.temperatures", list(selected),
                          f"at least two temperatures of a 2D ensemble ({data.source} is {list(shape)})")
    per_t = min(data.per_temperature, spec.samples) if spec.samples else data.per_temperature
    n = per_t * len(selected)
    n_train = n - int(round(spec.test_fraction * n))    # as `hpc_rg.learn.data.split` cuts it
    if spec.batch_size > n_train:
        raise ConfigError(file, f"{key}.batch_size", spec.batch_size,
                          f"at most the {n_train} training configurations ({len(selected)} temperature(s) x "
                          f"{per_t} configurations of {data.source}, less test_fraction = {spec.test_fraction})")


def check_rsmi_window(file, name: str, spec, shape: tuple[int, ...], source: str) -> None:
    """An RSMI window (block + buffer + shell on each side) must fit a 2D lattice without wrapping onto itself."""
    w = spec.block + 2 * (spec.buffer + spec.shell)
    if len(shape) != 2 or min(shape) < w:
        raise ConfigError(file, f"train.{name}.shell", spec.shell,
                          f"a window block + 2 (buffer + shell) = {w} that fits the 2D lattice "
                          f"{list(shape)} of {source}")


def check_job(cfg) -> None:
    """Static checks when the job file is read: ensemble paths that are folders, and models that train on
    the job's own ensemble against its [simulate] table."""
    own = cfg.out / "ensemble.h5"
    for name, spec in cfg.train.items():
        path = ensemble_path(cfg, spec)
        if path.is_dir():
            raise ConfigError(cfg.file, f"train.{name}.ensemble", spec.ensemble or str(path),
                              f"an ensemble file ({path} is a folder)")
        sim = cfg.simulate
        if sim is not None and path.resolve() == own.resolve():
            data = DataShape(tuple(sim.temperatures), sim.chains * sim.samples, sim.shape,
                             "the job's [simulate] table", exact_temperatures=sim.ladder == "fixed")
            check_data(cfg.file, name, spec, data)


def validate(cfg) -> None:
    """Stage-time checks against the real ensemble files, for every model before any trains."""
    from hpc_rg.io.ensemble import open_ensemble
    for name, spec in cfg.train.items():
        path = ensemble_path(cfg, spec)
        key = f"train.{name}.ensemble" if spec.ensemble else f"train.{name}"
        if path.is_dir():
            raise ConfigError(cfg.file, key, str(path), f"an ensemble file ({path} is a folder)")
        if not path.exists():
            raise ConfigError(cfg.file, key, str(path), "an existing ensemble file (run the simulate stage first)")
        try:
            with open_ensemble(path) as ens:
                data = DataShape(tuple(float(t) for t in ens.temperatures), int(ens.n_chains) * int(ens.n_samples),
                                 tuple(int(s) for s in ens.lattice_shape), str(path))
        except ConfigError:
            raise
        except (OSError, KeyError, ValueError) as e:
            raise ConfigError(cfg.file, key, str(path), f"a readable hpc_rg ensemble ({type(e).__name__}: {e})") \
                from None
        check_data(cfg.file, name, spec, data)
