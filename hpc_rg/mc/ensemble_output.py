"""The simulate stage's last step: `ensemble.h5` assembled over the part files, and `simulate.json`.

Collectively with an MPI-enabled h5py (one real file), else on rank 0 as virtual datasets (no copy). The
parts stay: extending the run re-assembles over them.
"""
from __future__ import annotations

import json

import numpy as np

from hpc_rg import __version__
from hpc_rg.io import mpio
from hpc_rg.io.layout import EnsembleLayout
from hpc_rg.io.virtual_assembler import VirtualAssembler
from hpc_rg.progress import duration


def attributes(simulation) -> dict:
    """The root attributes of ensemble.h5: what made it (model, sampler, job) and how it was sampled."""
    s, sim = simulation, simulation.sim
    attrs = {"model": sim.model, "algorithm": sim.algorithm, "update_unit": s.cls.update_unit,
             "sampler": f"{s.cls.__module__}:{s.cls.__name__}", "seed": s.cfg.job.seed,
             "job_toml": s.cfg.text, "hpc_rg_version": __version__, "J": sim.J, "h": sim.h,
             "thermalize": sim.thermalize, "thin": sim.thin, "measure_every": sim.measure_every,
             "replica_exchange": s.exchange, "exchange_every": sim.exchange_every}
    attrs.update(s.lattice.attributes())          # the model's own parameters (long range: alpha, images)
    return attrs


def exchange_statistics(tempering) -> dict:
    return {"acceptance": tempering.acceptance(), "pair_attempts": tempering.pair_attempts,
            "pair_accepts": tempering.pair_accepts, "round_trips": tempering.round_trips,
            "attempts": np.int64(tempering.attempts)}


def finish(simulation, wall: float) -> None:
    """Assemble ensemble.h5 and write simulate.json (timings); collective over the ranks."""
    s, world, sim = simulation, simulation.world, simulation.sim
    seconds = world.gather(s.sampler_seconds)
    attrs = exchange = None
    if world.is_root:
        attrs = attributes(s)
        if s.tempering is not None:
            exchange = exchange_statistics(s.tempering)
    layout = EnsembleLayout(s.temperatures, sim.chains, s.lattice.shape, s.j, s.measurements_done(s.t),
                            sim.spin_storage, attrs=attrs, exchange=exchange)
    collective = mpio.available() and world.size > 1
    path = None
    if collective:
        comp = None if sim.compression == "none" else sim.compression
        path = mpio.CollectiveAssembler(world, s.out, s.parts_dir, s.n_parts, layout, comp).write()
    elif world.is_root:
        path = VirtualAssembler(s.out, s.parts_dir, s.n_parts, layout).write()
    if world.is_root:
        spin_updates = sim.updates * sim.chains * s.n_t * s.lattice.n_sites
        stats = {"wall_seconds": wall, "sampler_seconds_per_rank": seconds, "ranks": world.size,
                 "updates": sim.updates, "update_unit": s.cls.update_unit,
                 "writer": "mpio" if collective else "virtual",
                 "ns_per_site_update": 1e9 * sum(seconds) / max(spin_updates, 1)}
        (s.out / "simulate.json").write_text(json.dumps(stats, indent=1))
        s.log.info("wrote %s (%d temperatures x %d chains x %d samples of %s) in %s", path, s.n_t,
                   sim.chains, s.j, "x".join(map(str, s.lattice.shape)), duration(wall))
    world.barrier()
