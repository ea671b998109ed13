"""The chain driver: the `simulate` stage's event loop.

Replicas.  The job's `chains` are grouped into ladders of `width` chains (1 for scalar samplers, 64 for
multi-spin coding); a *replica* is one ladder's sampler that started at temperature slot t0, named
(ladder, t0). Replicas are dealt to ranks once (contiguously, so a ladder's neighbouring temperatures tend
to share a rank) and never move. Every replica draws from its own streams, seeded from the job seed and its
chain identity, never from the rank, so the ensemble is the same for any number of ranks.

Time.  t counts updates (sweeps, or cluster updates). Events fall at fixed update counts: exchange attempts
every `exchange_every` updates, samples at t = thermalize + j*thin, checkpoints every `checkpoint_every`
updates (plus by wall time and on SIGTERM/SIGINT/time limit, decided collectively at sync points,
`run_control.SyncPoints`). No event depends on what a sampler did, so cluster algorithms cannot bias which
configurations are stored.

Data.  Samples and measurements are filed by temperature: a (ladder, slot) *unit* is owned by the rank that
holds replica (ladder, slot); with replica exchange the replica currently at that slot sends its data there
(`messages.route`). Each rank appends its units' data to part files (`hpc_rg.io.parts`); a checkpoint
closes them and records the samplers' states (`hpc_rg.io.checkpoint`; resuming: `resume.py`), and the final
step assembles them into `ensemble.h5` (`ensemble_output.py`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpc_rg.io import checkpoint as ckpt
from hpc_rg.io.parts import PartWriter, part_path
from hpc_rg.lattice import from_config
from hpc_rg.mc import ensemble_output, resume
from hpc_rg.mc.gpu_select import sampler_class
from hpc_rg.mc.messages import Sample, TimeSeries, route
from hpc_rg.mc.run_control import EXIT_INTERRUPTED, StopFlag, SyncPoints, fault_injection
from hpc_rg.mc.tempering import Tempering
from hpc_rg.parallel import deal, get_logger, seed_sequence
from hpc_rg.progress import Progress


@dataclass
class Replica:
    ladder: int
    t0: int
    sampler: object


class Simulation:
    def __init__(self, cfg, world, declared_physics: dict | None = None):
        self.cfg, self.world = cfg, world
        self.sim = sim = cfg.simulate
        # the physics keys as the job declares them (before a ladder is tuned): what a resume compares
        self.declared_physics = declared_physics if declared_physics is not None else sim.physics()
        self.log = get_logger()
        self.lattice = from_config(sim)
        self.cls = sampler_class(sim, cfg.file)
        self.width = int(getattr(self.cls, "width", 1))
        if sim.chains % self.width:
            raise ValueError(f"simulate.chains = {sim.chains}: must be a multiple of {self.width} for {self.cls.__name__}")
        self.n_ladders = sim.chains // self.width
        self.temperatures = np.asarray(sim.temperatures, dtype=np.float64)
        self.n_t = len(self.temperatures)
        self.betas = 1.0 / self.temperatures
        self.exchange = bool(sim.replica_exchange) and self.n_t > 1
        n_units = self.n_ladders * self.n_t
        self.units = [(u // self.n_t, u % self.n_t) for u in deal(n_units, world.size, world.rank)]
        self.owner = {}
        for r in range(world.size):
            for u in deal(n_units, world.size, r):
                self.owner[(u // self.n_t, u % self.n_t)] = r
        self.tempering = Tempering(self.temperatures, self.n_ladders, cfg.job.seed) if self.exchange else None
        self.out = Path(cfg.out)
        self.parts_dir = self.out / "parts"
        self.ckpt_dir = self.out / "checkpoint"
        self.t = 0                     # updates done
        self.j = 0                     # samples stored (per unit)
        self.n_checkpoint = 0
        self.n_parts = 0
        self.part_files: dict[str, int] = {}     # committed part files -> size in bytes
        self.replicas: dict[tuple[int, int], Replica] = {}
        self.sampler_seconds = 0.0
        self.rate = 0.0                # updates per second in this run (for `hpc-rg status`)

    # -- set-up -------------------------------------------------------------------------------------------
    def _new_replica(self, ladder: int, t0: int) -> Replica:
        seeds = [seed_sequence(self.cfg.job.seed, ladder * self.width + lane, t0, purpose="chain")
                 for lane in range(self.width)]
        return Replica(ladder, t0, self.cls(self.lattice, self.betas[t0], seeds))

    def start(self, resuming: bool) -> None:
        """Fresh replicas, then (when `resuming` and a checkpoint is committed) the state it recorded."""
        record = resume.read_record(self) if resuming else None
        self.replicas = {u: self._new_replica(*u) for u in self.units}
        if record is None:
            resume.clear_parts(self)
        else:
            resume.restore(self, record)

    # -- bookkeeping of time ------------------------------------------------------------------------------
    def measurements_done(self, t: int) -> int:
        return max(0, t - self.sim.thermalize) // self.sim.measure_every

    def next_event(self) -> int:
        sim, t = self.sim, self.t
        nxt = min(sim.updates, sim.thermalize + (self.j + 1) * sim.thin)
        if self.exchange:
            nxt = min(nxt, (t // sim.exchange_every + 1) * sim.exchange_every)
        if sim.checkpoint_every:
            nxt = min(nxt, (t // sim.checkpoint_every + 1) * sim.checkpoint_every)
        return nxt

    def slot(self, rep: Replica) -> int:
        return int(self.tempering.slot_of[rep.ladder, rep.t0]) if self.tempering is not None else rep.t0

    def open_part(self) -> PartWriter:
        return PartWriter(part_path(self.parts_dir, self.n_parts, self.world.rank), self.units, self.width,
                          self.lattice.shape, self.j, self.measurements_done(self.t),
                          compression=self.sim.compression, storage=self.sim.spin_storage)

    # -- the loop -----------------------------------------------------------------------------------------
    def run(self, stop: StopFlag) -> int:
        sim, world = self.sim, self.world
        start = time.time()
        sync = SyncPoints(world, start, sim.checkpoint_seconds)
        writer = self.open_part()
        t_begin = self.t
        # rank 0: a bar on a terminal, a line with rate and ETA every few seconds in a log (hpc_rg.progress)
        progress = Progress("simulate", sim.updates, self.cls.update_unit + "s", start=t_begin,
                            is_root=world.is_root)
        samples_line = lambda: f"samples {self.j}/{sim.samples}"     # noqa: E731 (formatted only when shown)
        fault = fault_injection(world.rank)
        while self.t < sim.updates:
            outbox = self.advance()
            progress.update(self.t, samples_line)
            if fault is not None:
                fault(self.t)
            for message in route(world, self.exchange, outbox):
                message.write_to(writer)

            exchange_now = self.exchange and self.t % sim.exchange_every == 0
            decision = sync.decide(stop.raised, exchange_now,
                                   lambda: {u: rep.sampler.energy()[0] for u, rep in self.replicas.items()})
            if decision.energies is not None:
                self.exchange_temperatures(decision.energies)
            self.rate = (self.t - t_begin) / max(time.time() - start, 1e-9)
            due = decision.checkpoint or decision.stop or (sim.checkpoint_every and self.t % sim.checkpoint_every == 0)
            if due and self.t < sim.updates:
                writer = self.checkpoint(writer, reopen=not decision.stop)
                sync.last_checkpoint = time.time()
            if decision.stop and self.t < sim.updates:
                progress.close()
                self.log_stop(decision.stopped)
                return EXIT_INTERRUPTED
        progress.close()
        self.checkpoint(writer, reopen=False)
        ensemble_output.finish(self, time.time() - start)
        return 0

    def advance(self) -> dict[int, list]:
        """Every replica of this rank to the next event; returns its messages by the rank owning their unit."""
        sim = self.sim
        t0, t1 = self.t, self.next_event()
        n = t1 - t0
        sample_now = t1 == sim.thermalize + (self.j + 1) * sim.thin
        outbox: dict[int, list] = {}
        k_first = self.measurements_done(t0)
        keep = np.arange(t0 + 1, t1 + 1)
        keep = keep[(keep > sim.thermalize) & ((keep - sim.thermalize) % sim.measure_every == 0)] - t0 - 1
        tic = time.perf_counter()
        for rep in self.replicas.values():
            e = np.empty((self.width, n))
            m = np.empty((self.width, n))
            rep.sampler.run(n, e, m, 1)
            unit = (rep.ladder, self.slot(rep))
            messages = outbox.setdefault(self.owner[unit], [])
            if keep.size:
                messages.append(TimeSeries(unit, k_first, e[:, keep], m[:, keep]))
            if sample_now:
                messages.append(Sample(unit, self.j, rep.sampler.configurations(), e[:, -1].copy(), m[:, -1].copy()))
        self.sampler_seconds += time.perf_counter() - tic
        self.t = t1
        if sample_now:
            self.j += 1
        return outbox

    def exchange_temperatures(self, gathered_energies) -> None:
        """One replica-exchange step from every rank's {unit: energy}; the samplers take their new betas."""
        energies = np.empty((self.n_ladders, self.n_t))
        for rank_energies in gathered_energies:
            for (ladder, t0), e in rank_energies.items():
                energies[ladder, t0] = e
        self.tempering.step(energies, self.lattice.n_sites)
        for rep in self.replicas.values():
            rep.sampler.beta = self.betas[self.slot(rep)]

    def log_stop(self, stopped) -> None:
        # what stopped the run, as the rank that got it says (not the Slurm limit when rank 0 had no signal
        # but another rank did)
        why = ", ".join(dict.fromkeys(sig for _, sig in stopped)) or "the Slurm time limit"
        where = f" ({why} received by rank {', '.join(str(r) for r, _ in stopped)} of {self.world.size})" \
            if stopped and self.world.size > 1 else ""
        self.log.warning("stopped by %s at update %d of %d; checkpoint written, resume with --resume%s",
                         why, self.t, self.sim.updates, where)

    def checkpoint(self, writer: PartWriter, reopen: bool) -> PartWriter | None:
        world = self.world
        if self.tempering is not None:
            history = self.tempering.take_history()
            if world.is_root:
                writer.add_history(history)
        writer.close()
        n = self.n_checkpoint
        ckpt.fault_point("part_closed", n, world.rank)
        entry = ckpt.write_replicas(self.ckpt_dir, n, world.rank,
                                    {u: rep.sampler.state() for u, rep in self.replicas.items()})
        ckpt.fault_point("replica_written", n, world.rank)
        entry["part"] = (writer.path.name, writer.path.stat().st_size)
        entries = world.gather(entry)
        self.n_parts += 1
        if world.is_root:
            ckpt.fault_point("before_commit", n, world.rank)
            self.part_files.update({e["part"][0]: int(e["part"][1]) for e in entries})
            ckpt.commit(self.ckpt_dir, n, {
                "t": self.t, "samples_done": self.j, "parts": self.n_parts, "ranks": world.size,
                "updates_total": self.sim.updates, "physics": self.sim.physics(), "time": time.time(),
                "job_physics": self.declared_physics, "seed": self.cfg.job.seed, "part_files": self.part_files,
                "updates_per_second": self.rate, "spin_storage": self.sim.spin_storage,
                "tempering": self.tempering.state() if self.tempering is not None else None},
                [{k: e[k] for k in ("file", "sha256", "replicas")} for e in entries])
            ckpt.fault_point("cleaned", n, world.rank)
        world.barrier()
        self.n_checkpoint += 1
        return self.open_part() if reopen else None
