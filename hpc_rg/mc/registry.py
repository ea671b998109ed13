"""Which update algorithms exist for which model, and where each lives.

Import-cheap on purpose (no numba): the job-file validator reads it. `sampler_class` imports the
implementation only when a chain is built.
"""
from __future__ import annotations

import importlib

MODELS = ("ising1d", "ising2d", "longrange2d")

# model -> algorithm -> "module:Class"  (each class implements hpc_rg.mc.sampler.Sampler)
IMPLEMENTATIONS: dict[str, dict[str, str]] = {
    "ising1d": {
        "metropolis": "hpc_rg.mc.metropolis:CheckerboardMetropolis",
        "heatbath": "hpc_rg.mc.heatbath:CheckerboardHeatBath",
        "wolff": "hpc_rg.mc.wolff:Wolff",
        "swendsen_wang": "hpc_rg.mc.swendsen_wang:SwendsenWang",
        "exact": "hpc_rg.mc.chain1d_exact:ExactChain",
    },
    "ising2d": {
        "metropolis": "hpc_rg.mc.metropolis:CheckerboardMetropolis",
        "heatbath": "hpc_rg.mc.heatbath:CheckerboardHeatBath",
        "multispin": "hpc_rg.mc.multispin:MultiSpinMetropolis",
        "wolff": "hpc_rg.mc.wolff:Wolff",
        "swendsen_wang": "hpc_rg.mc.swendsen_wang:SwendsenWang",
    },
    "longrange2d": {
        "metropolis": "hpc_rg.mc.longrange_metropolis:LongRangeMetropolis",
        "fukui_todo": "hpc_rg.mc.longrange_cluster:FukuiTodo",
    },
}

ALGORITHMS: dict[str, tuple[str, ...]] = {m: tuple(a) for m, a in IMPLEMENTATIONS.items()}

# What one "update" means for each algorithm (the job states it in its output).
UPDATE_UNIT = {"wolff": "single-cluster update", "exact": "independent configuration"}


def update_unit(algorithm: str) -> str:
    return UPDATE_UNIT.get(algorithm, "sweep")


def sampler_class(model: str, algorithm: str):
    module, name = IMPLEMENTATIONS[model][algorithm].split(":")
    return getattr(importlib.import_module(module), name)
