"""Checks of the `[analyze.<name>]` tables against the ensembles they reduce, before any reduction runs.

`check_job(cfg)` runs when the job file is read (`hpc-rg check`): with a `[simulate]` table the lattice of
the job's own ensemble is known before it exists. `validate(cfg, ensemble)` runs at the start of the analyze
stage against the real files. A reduction whose lattice cannot carry it would otherwise give NaN (MCRG on a
2 x 2 coarsest lattice, block_rg blocked to nothing) or a traceback (decimation_1d on a 2D lattice) after
the reductions before it ran. Import-light (h5py only inside `validate`): the job-file validator imports it.
"""
from __future__ import annotations

import math
from pathlib import Path

from hpc_rg.schema import ConfigError

# the reductions that read the job's own ensemble (<out>/ensemble.h5) and the lattice dimension they need
USES_OWN_ENSEMBLE = {"correlators": None, "scaling_dimensions": None, "mutual_information": 2, "block_rg": 2,
                     "mcrg": 2, "decimation_1d": 1, "decimation_network": 1,
                     "neural_mi": 2, "coarse_rules": 2}
MODEL_KEYS = ("model", "thermometer", "models")   # keys naming [train.<name>] tables, read from models/<name>.pt
MCRG_MIN_SIDE = 4       # third-neighbour and plaquette operators on a 2 x 2 lattice coincide: a singular fit
BLOCK_RG_MIN_SIDE = 2   # a 1 x 1 lattice has no nearest-neighbour pair


def mcrg_levels(spec, side: int) -> int:
    """The blockings MCRG applies (as `reductions.run_mcrg`: 0 means down to about 8 x 8)."""
    return spec.levels or max(1, int(math.floor(math.log(side / 8) / math.log(spec.block))))


def check_lattice(file, name: str, spec, shape: tuple[int, ...], source: str) -> None:
    """The lattice `shape` (of the ensemble `source`) against reduction `name`."""
    dim = USES_OWN_ENSEMBLE.get(name)
    key = f"analyze.{name}"
    shown = " x ".join(map(str, shape))
    if dim == 1 and len(shape) != 1:
        raise ConfigError(file, key, f"{shown} lattice", f"a 1D chain (model ising1d); {source} is {len(shape)}D")
    if dim == 2 and len(shape) != 2:
        raise ConfigError(file, key, f"{shown} lattice", f"a 2D lattice; {source} is {len(shape)}D")
    side = min(shape)
    if name == "block_rg" and side // spec.block ** spec.levels < BLOCK_RG_MIN_SIDE:
        raise ConfigError(file, f"{key}.levels", spec.levels,
                          f"at most {_max_levels(side, spec.block, BLOCK_RG_MIN_SIDE)} blockings by "
                          f"{spec.block} of the {shown} lattice of {source} (the coarsest must be at least "
                          f"{BLOCK_RG_MIN_SIDE} x {BLOCK_RG_MIN_SIDE})")
    if name == "mcrg":
        levels = mcrg_levels(spec, side)
        if side // spec.block ** levels < MCRG_MIN_SIDE:
            raise ConfigError(file, f"{key}.levels", spec.levels,
                              f"at most {_max_levels(side, spec.block, MCRG_MIN_SIDE)} blockings by {spec.block} "
                              f"of the {shown} lattice of {source} (the coarsest must be at least "
                              f"{MCRG_MIN_SIDE} x {MCRG_MIN_SIDE}; 0 means down to about 8 x 8)")
    if name == "neural_mi" and "blocks" in spec.pairs and any(n % spec.block for n in shape):
        raise ConfigError(file, f"{key}.block", spec.block, f"a block side dividing the {shown} lattice of "
                          f"{source} (neighbouring blocks of a periodic tiling)")
    if name == "decimation_network" and (shape[0] % 2 or shape[0] < 4):
        raise ConfigError(file, key, f"{shown} lattice", f"a chain that can be halved at least once (L even, "
                          f">= 4); {source} has L = {shape[0]}")
    if name == "decimation_1d":
        step = 2 ** spec.steps
        if shape[0] % step or shape[0] // step < 2:
            raise ConfigError(file, f"{key}.steps", spec.steps,
                              f"decimations that leave a periodic chain of >= 2 sites: L = {shape[0]} of {source} "
                              f"divisible by 2^steps")


def _max_levels(side: int, b: int, least: int) -> int:
    n = 0
    while side // b ** (n + 1) >= least:
        n += 1
    return n


def resolve(cfg, files) -> list[Path]:
    """Paths named in `files`, relative to the job file's folder (as `registry.Context.resolve`)."""
    return [Path(f) if Path(f).is_absolute() else cfg.folder / f for f in files]


def _check_files(cfg, name: str, spec, must_exist: bool) -> None:
    for i, path in enumerate(resolve(cfg, getattr(spec, "files", ()) or ())):
        key = f"analyze.{name}.files[{i}]"
        if path.is_dir():
            raise ConfigError(cfg.file, key, spec.files[i], f"an ensemble file ({path} is a folder)")
        if must_exist and not path.exists():
            raise ConfigError(cfg.file, key, spec.files[i], f"an existing ensemble file ({path} not found)")


def check_job(cfg) -> None:
    """Static checks when the job file is read: `files` entries that are folders, and the reductions of the
    job's own ensemble against its [simulate] table."""
    from hpc_rg.schema import check_name
    for name, spec in cfg.analyze.items():
        _check_files(cfg, name, spec, must_exist=False)
        for attr in MODEL_KEYS:
            value = getattr(spec, attr, "")
            for i, model in enumerate(value if isinstance(value, tuple) else (value,) if value else ()):
                check_name(cfg.file, f"analyze.{name}.{attr}" + (f"[{i}]" if isinstance(value, tuple) else ""), model)
        if cfg.simulate is not None and name in USES_OWN_ENSEMBLE:
            check_lattice(cfg.file, name, spec, cfg.simulate.shape, "the job's [simulate] table")


def validate(cfg, ensemble: str | Path) -> None:
    """Stage-time checks: every `files` entry exists and is a file; the job's ensemble `ensemble` (when it
    exists) carries every reduction that reads it."""
    for name, spec in cfg.analyze.items():
        _check_files(cfg, name, spec, must_exist=True)
    users = [name for name in cfg.analyze if name in USES_OWN_ENSEMBLE]
    ensemble = Path(ensemble)
    if not users or not ensemble.is_file():
        return
    from hpc_rg.io.ensemble import open_ensemble
    try:
        with open_ensemble(ensemble) as ens:
            shape = tuple(int(s) for s in ens.lattice_shape)
    except ConfigError:
        raise
    except (OSError, KeyError, ValueError) as e:
        raise ConfigError(ensemble, "", None, f"a readable hpc_rg ensemble ({type(e).__name__}: {e})") from None
    for name in users:
        check_lattice(cfg.file, name, cfg.analyze[name], shape, str(ensemble))
