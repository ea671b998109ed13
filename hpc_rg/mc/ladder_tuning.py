"""`simulate.ladder = "tune"`: the temperature ladder tuned by short replica-exchange pre-runs."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np

from hpc_rg.mc.run_control import StopFlag
from hpc_rg.mc.simulation import Simulation
from hpc_rg.mc.tempering import tuned_ladder
from hpc_rg.parallel import get_logger, seed_sequence

TUNE_ROUNDS = 6


def tune_ladder(cfg, world) -> tuple[float, ...]:
    """Short replica-exchange pre-runs, each followed by one feedback step towards equal swap acceptance
    (ends of the ladder fixed). The tuned ladder is written to `<out>/ladder.json` and reused on resume.
    Deterministic and rank-count invariant (own seed purpose)."""
    path = Path(cfg.out) / "ladder.json"
    if path.exists():
        return tuple(json.loads(path.read_text())["temperatures"])
    sim = cfg.simulate
    temps = np.asarray(sim.temperatures, dtype=np.float64)
    updates = max(sim.thermalize, 400 * sim.exchange_every)   # >= 200 attempts per pair and round
    history = []
    for r in range(TUNE_ROUNDS):
        sub = dataclasses.replace(sim, temperatures=tuple(float(x) for x in temps), samples=1, thin=1,
                                  thermalize=updates, checkpoint_every=0, checkpoint_seconds=0, ladder="fixed")
        seed = int(seed_sequence(cfg.job.seed, r, purpose="tune").generate_state(1)[0])
        job = dataclasses.replace(cfg.job, seed=seed, out=str(Path(cfg.out) / "tune"))
        pre = Simulation(dataclasses.replace(cfg, simulate=sub, job=job), world)
        pre.start(False)
        with StopFlag() as stop:
            pre.run(stop)
        acc = pre.tempering.acceptance()
        history.append({"temperatures": temps.tolist(), "acceptance": acc.tolist()})
        get_logger().info("ladder tuning round %d: acceptance %s", r, " ".join(f"{a:.2f}" for a in acc))
        temps = tuned_ladder(temps, acc)
    if world.is_root:
        path.write_text(json.dumps({"temperatures": temps.tolist(), "rounds": history}, indent=1))
        shutil.rmtree(Path(cfg.out) / "tune", ignore_errors=True)
    world.barrier()
    return tuple(float(x) for x in temps)
