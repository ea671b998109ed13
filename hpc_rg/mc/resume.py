"""Starting a simulation fresh or from its committed checkpoint (`hpc-rg simulate --resume`).

Every check is collective (`run_control.agree`): when one rank cannot use the checkpoint, all ranks raise
the same error and exit 2 together instead of some waiting forever.
"""
from __future__ import annotations

from hpc_rg.io import checkpoint as ckpt
from hpc_rg.io.parts import list_parts
from hpc_rg.io.run_folder import RunFolderError, job_physics, physics_diff, record_physics
from hpc_rg.mc.run_control import agree
from hpc_rg.schema import ConfigError


def read_record(simulation) -> dict | None:
    """The committed checkpoint record of the run folder, or None when there is none."""
    return agree(simulation.world, lambda: ckpt.read_commit(simulation.ckpt_dir))


def clear_parts(simulation) -> None:
    """A fresh start: part files left in the folder are removed (rank 0)."""
    if simulation.world.is_root:
        simulation.parts_dir.mkdir(parents=True, exist_ok=True)
        for _, _, p in list_parts(simulation.parts_dir):
            p.unlink()
    simulation.world.barrier()


def restore(simulation, record: dict) -> None:
    """The samplers, counters and tempering state as `record` committed them; part files it does not name
    are removed."""
    s, world = simulation, simulation.world
    check_record(s, record)
    states = agree(world, lambda: ckpt.read_replicas(s.ckpt_dir, record, set(s.units)))
    for u, rep in s.replicas.items():
        rep.sampler.load_state(states[u])
    s.t, s.j = record["t"], record["samples_done"]
    s.n_checkpoint = record["checkpoint"] + 1
    s.n_parts = record["parts"]
    s.part_files = {str(k): int(v) for k, v in (record.get("part_files") or {}).items()}
    if s.tempering is not None:
        s.tempering.load_state(record["tempering"])
        for rep in s.replicas.values():
            rep.sampler.beta = s.betas[s.tempering.slot_of[rep.ladder, rep.t0]]
    world.barrier()
    if world.is_root:
        # parts the checkpoint does not name (left open by a killed run, or by one on another number of
        # ranks) are never read: removed, and produced again from the checkpoint
        named = record.get("part_files")
        for part, _, p in list_parts(s.parts_dir):
            if (part >= s.n_parts) if named is None else (p.name not in named):
                p.unlink()
            elif named is None:         # a record from before parts were named: name them from now on
                s.part_files[p.name] = p.stat().st_size
    world.barrier()
    s.log.info("resuming at update %d of %d (%d samples stored, checkpoint %d)", s.t, s.sim.updates, s.j,
               record["checkpoint"])


def check_record(simulation, record: dict) -> None:
    """The checkpoint belongs to this job's physics, holds no more samples than asked for, and its part files
    are all there (checked collectively: every rank raises the same ConfigError)."""
    s = simulation

    def check():
        run, skip = record_physics(record)
        job = job_physics(s.cfg.job.seed, s.declared_physics)
        diff = physics_diff(run, job, skip) if run is not None else None
        if diff:
            raise RunFolderError(s.ckpt_dir / ckpt.COMMIT, f"{diff}; resume with the job that made the run, "
                                                           "or pass --force to start over")
        stored = record.get("spin_storage", "int8")     # records from before "bits": int8 parts
        if stored != s.sim.spin_storage:
            raise ConfigError(s.cfg.file, "simulate.spin_storage", s.sim.spin_storage,
                              f'"{stored}", as the parts already in {s.out} (or pass --force to start over)')
        if record["samples_done"] > s.sim.samples:
            raise ConfigError(s.cfg.file, "simulate.samples", s.sim.samples,
                              f">= {record['samples_done']} (the samples already stored in {s.out})")
        if s.world.is_root:
            for name, size in (record.get("part_files") or {}).items():
                p = s.parts_dir / name
                if not p.is_file() or p.stat().st_size != size:
                    found = "missing" if not p.is_file() else f"{p.stat().st_size} bytes, the checkpoint " \
                                                              f"recorded {size}"
                    raise ckpt.CheckpointError(p, f"part file of the checkpoint is {found}; restore it, or "
                                                  "pass --force to start over")
    agree(s.world, check)
