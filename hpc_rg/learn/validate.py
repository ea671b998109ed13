"""Checks of the `[train.<name>]` tables against the data they will train on, before any model trains.

`check_job(cfg)` runs when the job file is read (`hpc-rg check`): with a `[simulate]` table the job's own
ensemble is known before it exists (temperatures x chains x samples, lattice shape). `validate(cfg)` runs at
the start of the train stage against the real ensemble files, so a problem of the last model is reported
before the first one trains. Both raise one-line `ConfigError`s naming the job file and the key.
Import-light (no torch, h5py only inside `validate`): the job-file validator imports this module.
"""
from __future__ import annotations

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


def check_data(file, name: str, spec, data: DataShape) -> None:
    """Temperatures and batch size of model `name` against its data, and what its kind asks of the data
    (`spec.check_data`: layer sizes, windows, blocks)."""
    key = f"train.{name}"
    selected = data.temperatures
    if spec.temperatures:
        if data.exact_temperatures:
            for T in spec.temperatures:
                if not any(abs(t - T) <= 1e-6 * max(1.0, abs(T)) for t in data.temperatures):
                    raise ConfigError(file, f"{key}.temperatures", list(spec.temperatures),
                                      f"temperatures of {data.source} ({list(data.temperatures)})")
        selected = spec.temperatures
    problem = spec.check_data(tuple(data.lattice_shape), tuple(selected), data.source)
    if problem:
        sub, found, allowed = problem
        raise ConfigError(file, f"{key}.{sub}", found, allowed)
    per_t = min(data.per_temperature, spec.samples) if spec.samples else data.per_temperature
    n = per_t * len(selected)
    n_train = spec.training_samples(n)
    if spec.batch_size > n_train:
        raise ConfigError(file, f"{key}.batch_size", spec.batch_size,
                          f"at most the {n_train} training configurations ({len(selected)} temperature(s) x "
                          f"{per_t} configurations of {data.source}, less test_fraction = {spec.test_fraction})")


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
    from hpc_rg.io.ensemble import open_ensemble   # h5py: only when the stage runs, not when a job is checked
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
