"""The simulate stage: job.toml's `[simulate]` -> `<out>/ensemble.h5` (`hpc-rg simulate`)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from hpc_rg.mc import ensemble_output
from hpc_rg.mc.ladder_tuning import tune_ladder
from hpc_rg.mc.run_control import StopFlag
from hpc_rg.mc.simulation import Simulation
from hpc_rg.parallel import get_logger


def run(cfg, world, resume: bool = False) -> int:
    """Returns 0 when the ensemble is complete, `run_control.EXIT_INTERRUPTED` after a checkpoint on a stop
    request. With `resume`, continues from the run folder's committed checkpoint."""
    declared = cfg.simulate.physics()
    if cfg.simulate.ladder == "tune":
        temps = tune_ladder(cfg, world)
        cfg = dataclasses.replace(cfg, simulate=dataclasses.replace(cfg.simulate, temperatures=temps))
    simulation = Simulation(cfg, world, declared)
    simulation.start(resume)
    if simulation.t >= cfg.simulate.updates and resume:
        get_logger().info("%s is complete (%d samples); nothing to do", cfg.out, simulation.j)
        if not (Path(cfg.out) / "ensemble.h5").exists():
            ensemble_output.finish(simulation, 0.0)
        return 0
    with StopFlag() as stop:
        return simulation.run(stop)
