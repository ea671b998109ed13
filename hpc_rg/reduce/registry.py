"""The analyze stage's view of the reduction plugins, and what a reduction receives and returns.

A reduction is declared in the module that implements it (see `hpc_rg.plugins`):

    PLUGINS = (Plugin("reduction", "mcrg", "run_mcrg",
                      spec="hpc_rg.reduce.specs:MCRGSpec", needs=("ensemble",),
                      doc="Swendsen MCRG exponents"),)

`run_mcrg(spec, ctx) -> Result` runs on every rank (it may deal work with `ctx.world`) and returns the same
Result on rank 0 at least; rank 0 writes it into results.h5 under /<name> and draws its figures.
`needs` lists what it reads, checked by the stage before any reduction runs (`NEEDS`).
The spec class (import-light: job validation imports it) is the table `[analyze.<name>]` and may carry, as
class attributes, everything else known without running: `validate()` (the table alone),
`check_lattice(shape, source)` (the table against the lattice it reduces), `OUTPUTS` (the labels of its
results.h5 arrays, `specs.Output`) and `FIGURE` ("module:function" drawing its Result, `figures`).
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hpc_rg import plugins

# what a reduction may need: the job's own <out>/ensemble.h5; the ensembles of its spec's `files` (the job's
# ensemble when `files` is empty); trained models named by its spec (keys MODEL_KEYS, <out>/models/<name>.pt);
# "results:<other>": the Result of another reduction of the job, run before it (`ctx.results[other]`)
NEEDS = ("ensemble", "files", "models")
MODEL_KEYS = ("model", "thermometer", "models")


def declared() -> dict[str, plugins.Plugin]:
    """Every reduction plugin by name (read from the declarations, nothing imported)."""
    return plugins.table("reduction")


def load(name: str) -> Callable[[Any, "Context"], "Result"]:
    """The function of reduction `name` (its module is imported now)."""
    return plugins.get("reduction", name).load()


def spec_class(name: str) -> type | None:
    return plugins.get("reduction", name).load_spec()


def figure_function(name: str) -> Callable | None:
    """The figure function of reduction `name` (its spec's FIGURE), or None if it draws nothing."""
    cls = spec_class(name)
    target = getattr(cls, "FIGURE", "") if cls is not None else ""
    if not target:
        return None
    module, _, obj = target.rpartition(":")
    return getattr(importlib.import_module(module or cls.__module__), obj)


def outputs(name: str) -> dict:
    """The results.h5 labels (`specs.Output` by quantity pattern) of reduction `name`; {} if none."""
    try:
        cls = spec_class(name)
    except plugins.PluginError:
        return {}
    return dict(getattr(cls, "OUTPUTS", {}) or {})


def model_names(spec) -> list[tuple[str, str]]:
    """(key, trained model name) pairs a spec names, e.g. ("models[1]", "cnn2")."""
    out = []
    for attr in MODEL_KEYS:
        value = getattr(spec, attr, "")
        if isinstance(value, tuple):
            out += [(f"{attr}[{i}]", v) for i, v in enumerate(value) if v]
        elif value:
            out.append((attr, value))
    return out


def reads_own_ensemble(name: str, spec) -> bool:
    """Whether reduction `name` reads the job's <out>/ensemble.h5 with this spec."""
    needs = plugins.get("reduction", name).needs
    return "ensemble" in needs or ("files" in needs and not getattr(spec, "files", ()))


@dataclass
class Context:
    """What a reduction may use: the config, the MPI world, the run folder and the job's ensemble."""
    cfg: Any
    world: Any
    out: Path
    seed: int = 0
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("hpc_rg"))
    results: dict = field(default_factory=dict)     # earlier reductions' Results (by name), for chaining

    @property
    def ensemble_path(self) -> Path:
        return self.out / "ensemble.h5"

    def resolve(self, files) -> list[Path]:
        """Ensemble paths named in a spec (relative to the job file's folder), or the job's ensemble."""
        if not files:
            return [self.ensemble_path]
        base = Path(self.cfg.file).resolve().parent if getattr(self.cfg, "file", None) else Path.cwd()
        return [Path(f) if Path(f).is_absolute() else base / f for f in files]

    def model_path(self, name: str) -> Path:
        return self.out / "models" / f"{name}.pt"


@dataclass
class Result:
    """A reduction's output.  `values`: name -> (value, error) arrays (error None if exact/bookkeeping);
    `axes`: coordinate arrays (temperatures, r, L, ...); `attrs`: provenance and method notes (scalars,
    strings). Its figures are drawn by its reduction's FIGURE (`registry.figure_function`)."""
    values: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    axes: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    def put(self, name: str, value, error=None) -> None:
        self.values[name] = (np.asarray(value, dtype=np.float64),
                             None if error is None else np.asarray(error, dtype=np.float64))

    def record_sources(self, paths, ens=None, models: dict | None = None) -> None:
        """Provenance attributes: `ensembles` (the files read), the facts of the open ensemble `ens` (chains,
        samples, lattice, model, its seed), and `<key>_file` for each trained model file read."""
        self.attrs["ensembles"] = ", ".join(str(p) for p in paths)
        if ens is not None:
            self.attrs["n_chains"] = int(ens.n_chains)
            self.attrs["n_samples"] = int(ens.n_samples)
            self.attrs["lattice_shape"] = np.array(ens.lattice_shape)
            self.attrs["model"] = str(ens.model)
            self.attrs["ensemble_seed"] = int(ens.attrs.get("seed", -1))
        for k, v in (models or {}).items():
            self.attrs[f"{k}_file"] = str(v)
