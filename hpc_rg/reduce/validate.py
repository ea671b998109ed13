"""Checks of the `[analyze.<name>]` tables against what their reductions need, before any reduction runs.

`check_job(cfg)` runs when the job file is read (`hpc-rg check`): model names, `files` that are folders,
and, with a `[simulate]` table, each reduction's `check_lattice` against the lattice of the job's own ensemble
before it exists. `check_needs(cfg, ctx)` runs at the start of the analyze stage against the real files:
what each reduction's PLUGINS declaration `needs` (the job's ensemble, its `files`, trained models, the
results of reductions before it), then `check_lattice` with the lattice of the real ensemble. A reduction
whose lattice cannot carry it would otherwise give NaN (MCRG on a 2 x 2 coarsest lattice) or a traceback
(decimation_1d on a 2D lattice) after the reductions before it ran. Import-light (h5py only inside
`check_needs`): the job-file validator imports it.
"""
from __future__ import annotations

from pathlib import Path

from hpc_rg import plugins
from hpc_rg.reduce import registry
from hpc_rg.schema import ConfigError, check_name


def check_lattice(file, name: str, spec, shape: tuple[int, ...], source: str) -> None:
    """The lattice `shape` (of the ensemble `source`) against reduction `name`'s spec hook, if it has one."""
    hook = getattr(spec, "check_lattice", None)
    problem = hook(tuple(int(n) for n in shape), source) if hook is not None else None
    if problem:
        key, found, allowed = problem
        raise ConfigError(file, f"analyze.{name}" + (f".{key}" if key else ""), found, allowed)


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


def _needs(cfg, name: str) -> tuple[str, ...]:
    """The declared needs of reduction `name`, each one the stage knows."""
    needs = plugins.get("reduction", name).needs
    for need in needs:
        if need not in registry.NEEDS and not need.startswith("results:"):
            raise plugins.PluginError(f"reduction {name!r} needs {need!r}: not one of "
                                      + ", ".join(registry.NEEDS) + ", results:<reduction>")
    return needs


def check_job(cfg) -> None:
    """Static checks when the job file is read: model names, `files` entries that are folders, results of
    other reductions that the job does not run first, and the reductions of the job's own ensemble against
    its [simulate] table."""
    for k, (name, spec) in enumerate(cfg.analyze.items()):
        _check_files(cfg, name, spec, must_exist=False)
        for key, model in registry.model_names(spec):
            check_name(cfg.file, f"analyze.{name}.{key}", model)
        for need in _needs(cfg, name):
            other = need[len("results:"):] if need.startswith("results:") else None
            if other is not None and other not in list(cfg.analyze)[:k]:
                raise ConfigError(cfg.file, f"analyze.{name}", name, f"an [analyze.{other}] table before it "
                                  f"(it reads the results of {other})")
        if cfg.simulate is not None and registry.reads_own_ensemble(name, spec):
            check_lattice(cfg.file, name, spec, cfg.simulate.shape, "the job's [simulate] table")


def check_needs(cfg, ctx) -> None:
    """Stage-time checks, before any reduction runs: every `files` entry exists and is a file; the job's
    ensemble exists for each reduction that reads it and carries its lattice; every trained model named by a
    reduction that needs models is in <out>/models."""
    users = []
    for name, spec in cfg.analyze.items():
        _check_files(cfg, name, spec, must_exist=True)
        if registry.reads_own_ensemble(name, spec):
            users.append(name)
        if "models" in _needs(cfg, name):
            for key, model in registry.model_names(spec):
                path = ctx.model_path(model)
                if not path.is_file():
                    raise ConfigError(cfg.file, f"analyze.{name}.{key}", model, f"a trained model ({path} is "
                                      f"missing: run `hpc-rg train` with [train.{model}])")
    ensemble = ctx.ensemble_path
    if not users:
        return
    if not ensemble.exists():
        raise ConfigError(cfg.file, "job.out", str(ctx.out), f"a run folder with ensemble.h5 (missing: {ensemble}); "
                          "run `hpc-rg simulate` first")
    from hpc_rg.io.ensemble import open_ensemble     # h5py: only when a stage runs, not when a job is checked
    try:
        with open_ensemble(ensemble) as ens:
            shape = tuple(int(s) for s in ens.lattice_shape)
    except ConfigError:
        raise
    except (OSError, KeyError, ValueError) as e:
        raise ConfigError(ensemble, "", None, f"a readable hpc_rg ensemble ({type(e).__name__}: {e})") from None
    for name in users:
        check_lattice(cfg.file, name, cfg.analyze[name], shape, str(ensemble))
