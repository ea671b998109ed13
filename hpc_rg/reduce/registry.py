"""The analyze stage's plug-in registry: reduction name -> function(spec, context) -> Result.

To add a reduction (e.g. RBM flows): put its spec dataclass in `hpc_rg.reduce.specs.SPECS` under its name,
write `@reduction("name") def f(spec, ctx): ... return Result(...)` in a module, and list that module in
`MODULES` (imported lazily, so heavy imports stay out of job validation).  The stage needs no change.

A function runs on every rank (it may deal work with `ctx.world`), and must return the same Result on
rank 0 at least; rank 0 writes it into results.h5 under /<name> and draws its figures.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hpc_rg import plugins

from hpc_rg.reduce.diagnostics_specs import DIAGNOSTIC_MODULES

# modules whose import registers reductions (the built-ins, then the RG <-> deep-learning diagnostics)
MODULES: list[str] = ["hpc_rg.reduce.reductions"] + list(DIAGNOSTIC_MODULES)

REDUCTIONS: dict[str, Callable[[Any, "Context"], "Result"]] = {}


def reduction(name: str):
    """Decorator: register `fn(spec, ctx) -> Result` under `name` (the `[analyze.<name>]` table)."""
    def wrap(fn):
        REDUCTIONS[name] = fn
        return fn
    return wrap


def load_all() -> dict:
    """Every reduction by name: those registered by the modules of MODULES, then the plugins declared with
    `PLUGINS = (Plugin("reduction", ...),)` anywhere `hpc_rg.plugins` looks."""
    for m in MODULES:
        importlib.import_module(m)
    for name, plugin in plugins.table("reduction").items():
        fn = plugin.load()
        if REDUCTIONS.setdefault(name, fn) is not fn:
            raise plugins.PluginError(f"reduction {name!r} is declared by {plugin.module} and registered again")
    return REDUCTIONS


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


@dataclass
class Result:
    """A reduction's output.  `values`: name -> (value, error) arrays (error None if exact/bookkeeping);
    `axes`: coordinate arrays (temperatures, r, L, ...); `attrs`: provenance and method notes (scalars,
    strings); `plot`: optional fn(result, folder) -> list of PNG paths (called on rank 0, Agg backend)."""
    values: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    axes: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    plot: Callable | None = None

    def put(self, name: str, value, error=None) -> None:
        self.values[name] = (np.asarray(value, dtype=np.float64),
                             None if error is None else np.asarray(error, dtype=np.float64))
