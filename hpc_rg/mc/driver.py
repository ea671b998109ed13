"""The chain driver: the `simulate` stage's event loop.

Replicas.  The job's `chains` are grouped into ladders of `width` chains (1 for scalar samplers, 64 for
multi-spin coding); a *replica* is one ladder's sampler that started at temperature slot t0, named
(ladder, t0). Replicas are dealt to ranks once (contiguously, so a ladder's neighbouring temperatures tend
to share a rank) and never move. Every replica draws from its own streams, seeded from the job seed and its
chain identity, never from the rank, so the ensemble is the same for any number of ranks.

Time.  t counts updates (sweeps, or cluster updates). Events fall at fixed update counts: exchange attempts
every `exchange_every` updates, samples at t = thermalize + j*thin, checkpoints every `checkpoint_every`
updates (plus by wall time and on SIGTERM/SIGINT/time limit, decided collectively at sync points). No event
depends on what a sampler did, so cluster algorithms cannot bias which configurations are stored.

Data.  Samples and measurements are filed by temperature: a (ladder, slot) *unit* is owned by the rank that
holds replica (ladder, slot); with replica exchange the replica currently at that slot sends its data there
(an alltoall at each exchange). Each rank appends its units' data to part files (`hpc_rg.io.parts`), which
the final step assembles into `ensemble.h5`.
"""
from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpc_rg import __version__
from hpc_rg.io import checkpoint as ckpt
from hpc_rg.io.parts import PartWriter, assemble, list_parts, part_path
from hpc_rg.lattice import from_config
from hpc_rg.mc.gpu_select import sampler_class
from hpc_rg.mc.tempering import Tempering
from hpc_rg.parallel import deal, get_logger, seed_sequence
from hpc_rg.progress import Progress, duration

EXIT_INTERRUPTED = 3          # stopped by a signal or the time limit after a checkpoint: resumable
SYNC_TARGET_SECONDS = 0.5     # aim for one collective stop/checkpoint decision per this much wall time


@dataclass
class Replica:
    ladder: int
    t0: int
    sampler: object


class StopFlag:
    """Set by SIGTERM/SIGINT/SIGUSR1 (Slurm's --signal before the time limit; MPICH's mpiexec forwards USR1
    but kills ranks on TERM); the loop checkpoints and exits."""

    def __init__(self):
        self.raised = None
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:      # not the main thread (tests driving the stage in a thread)
                pass
        return self

    def _handle(self, signum, frame):
        self.raised = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def slurm_deadline(start: float) -> float | None:
    """Stop at 95% of the job's remaining allotment when running under Slurm with a time limit."""
    end = os.environ.get("SLURM_JOB_END_TIME")
    if not end:
        return None
    try:
        end_t = float(end)
    except ValueError:
        return None
    return start + 0.95 * max(end_t - start, 0.0)


def fault_injection(rank: int):
    """Testing hook: HPC_RG_FAULT="kill@T" (SIGKILL itself), "raise@T" (an exception) or "term@T" (SIGTERM
    to itself, once, as Slurm or a user would send it), optionally ":rank=R" to hit one rank only, once the
    update counter reaches T. Lets the test suite prove that a killed run resumes bit for bit, that one
    failing rank ends the whole job, and that a stop on any rank is reported truthfully. (Kills inside a
    checkpoint: HPC_RG_CKPT_FAULT, see `hpc_rg.io.checkpoint.fault_point`.)"""
    spec = os.environ.get("HPC_RG_FAULT")
    if not spec:
        return None
    what, _, rest = spec.partition("@")
    at, _, who = rest.partition(":rank=")
    if who and int(who) != rank:
        return None
    at = int(at)
    sent = []

    def check(t: int) -> None:
        if t >= at:
            if what == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if what == "term":
                if not sent:
                    sent.append(t)
                    os.kill(os.getpid(), signal.SIGTERM)
                return
            raise RuntimeError(f"HPC_RG_FAULT: injected failure at update {t} on rank {rank}")
    return check


def agree(world, fn):
    """Run fn on every rank; if any rank raises a ConfigError (a checkpoint it cannot use), every rank
    raises the first such error, so that all exit 2 together instead of some waiting forever."""
    from hpc_rg.schema import ConfigError
    from hpc_rg.io.run_folder import RelayedError
    result, error = None, None
    try:
        result = fn()
    except ConfigError as e:
        error = e
    errors = [e for e in world.allgather(None if error is None else (str(error), error.file)) if e is not None]
    if errors:
        raise error if error is not None and str(error) == errors[0][0] else RelayedError(*errors[0])
    return result


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

    def start(self, resume: bool) -> None:
        record = agree(self.world, lambda: ckpt.read_commit(self.ckpt_dir)) if resume else None
        self.replicas = {u: self._new_replica(*u) for u in self.units}
        if record is None:
            if self.world.is_root:
                self.parts_dir.mkdir(parents=True, exist_ok=True)
                for _, _, p in list_parts(self.parts_dir):
                    p.unlink()
            self.world.barrier()
            return
        self._check_record(record)
        states = agree(self.world, lambda: ckpt.read_replicas(self.ckpt_dir, record, set(self.units)))
        for u, rep in self.replicas.items():
            rep.sampler.load_state(states[u])
        self.t, self.j = record["t"], record["samples_done"]
        self.n_checkpoint = record["checkpoint"] + 1
        self.n_parts = record["parts"]
        self.part_files = {str(k): int(v) for k, v in (record.get("part_files") or {}).items()}
        if self.tempering is not None:
            self.tempering.load_state(record["tempering"])
            for rep in self.replicas.values():
                rep.sampler.beta = self.betas[self.tempering.slot_of[rep.ladder, rep.t0]]
        self.world.barrier()
        if self.world.is_root:
            # parts the checkpoint does not name (left open by a killed run, or by one on another number of
            # ranks) are never read: removed, and produced again from the checkpoint
            named = record.get("part_files")
            for part, _, p in list_parts(self.parts_dir):
                if (part >= self.n_parts) if named is None else (p.name not in named):
                    p.unlink()
                elif named is None:         # a record from before parts were named: name them from now on
                    self.part_files[p.name] = p.stat().st_size
        self.world.barrier()
        self.log.info("resuming at update %d of %d (%d samples stored, checkpoint %d)", self.t, self.sim.updates,
                      self.j, record["checkpoint"])

    def _check_record(self, record: dict) -> None:
        """The checkpoint belongs to this job's physics, holds no more samples than asked for, and its
        part files are all there (checked collectively: every rank raises the same ConfigError)."""
        from hpc_rg.schema import ConfigError
        from hpc_rg.io.run_folder import job_physics, physics_diff, record_physics, RunFolderError

        def check():
            run, skip = record_physics(record)
            job = job_physics(self.cfg.job.seed, self.declared_physics)
            diff = physics_diff(run, job, skip) if run is not None else None
            if diff:
                raise RunFolderError(self.ckpt_dir / ckpt.COMMIT, f"{diff}; resume with the job that made the run, "
                                                                  "or pass --force to start over")
            stored = record.get("spin_storage", "int8")     # records from before "bits": int8 parts
            if stored != self.sim.spin_storage:
                raise ConfigError(self.cfg.file, "simulate.spin_storage", self.sim.spin_storage,
                                  f'"{stored}", as the parts already in {self.out} (or pass --force to start over)')
            if record["samples_done"] > self.sim.samples:
                raise ConfigError(self.cfg.file, "simulate.samples", self.sim.samples,
                                  f">= {record['samples_done']} (the samples already stored in {self.out})")
            if self.world.is_root:
                for name, size in (record.get("part_files") or {}).items():
                    p = self.parts_dir / name
                    if not p.is_file() or p.stat().st_size != size:
                        found = "missing" if not p.is_file() else f"{p.stat().st_size} bytes, the checkpoint " \
                                                                  f"recorded {size}"
                        raise ckpt.CheckpointError(p, f"part file of the checkpoint is {found}; restore it, or "
                                                      "pass --force to start over")
        agree(self.world, check)

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
        deadline = slurm_deadline(start)
        last_ckpt = last_sync = start
        stride, opportunities = 1, 0
        writer = self.open_part()
        t_begin = self.t
        # rank 0: a bar on a terminal, a line with rate and ETA every few seconds in a log (hpc_rg.progress)
        progress = Progress("simulate", sim.updates, self.cls.update_unit + "s", start=t_begin,
                            is_root=world.is_root)
        samples_line = lambda: f"samples {self.j}/{sim.samples}"     # noqa: E731 (formatted only when shown)
        fault = fault_injection(world.rank)
        while self.t < sim.updates:
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
                items = outbox.setdefault(self.owner[unit], [])
                if keep.size:
                    items.append(("ts", unit, k_first, e[:, keep], m[:, keep]))
                if sample_now:
                    items.append(("sample", unit, self.j, rep.sampler.configurations(), e[:, -1].copy(),
                                  m[:, -1].copy()))
            self.sampler_seconds += time.perf_counter() - tic
            self.t = t1
            if sample_now:
                self.j += 1
            progress.update(self.t, samples_line)
            if fault is not None:
                fault(self.t)
            for item in self._route(outbox):
                if item[0] == "ts":
                    writer.add_timeseries(item[1], item[2], item[3], item[4])
                else:
                    writer.add_sample(item[1], item[2], item[3], item[4], item[5])

            # collective decisions: exchange (every exchange_every), stop/checkpoint (every `stride` events)
            opportunities += 1
            exchange_now = self.exchange and self.t % sim.exchange_every == 0
            sync_now = exchange_now or opportunities % stride == 0
            stop_now = ckpt_time = False
            if sync_now:
                now = time.time()
                mine = {"stop": stop.raised}
                if world.is_root:
                    mine["deadline"] = deadline is not None and now >= deadline
                    mine["ckpt"] = sim.checkpoint_seconds > 0 and now - last_ckpt >= sim.checkpoint_seconds
                    elapsed = max(now - last_sync, 1e-6)
                    mine["stride"] = 1 if exchange_now else int(np.clip(stride * SYNC_TARGET_SECONDS / elapsed,
                                                                        1, 4 * stride))
                if exchange_now:
                    mine["energies"] = {u: rep.sampler.energy()[0] for u, rep in self.replicas.items()}
                gathered = world.allgather(mine)
                root = gathered[0]
                stopped = [(r, g["stop"]) for r, g in enumerate(gathered) if g["stop"]]
                stop_now = bool(stopped) or root["deadline"]
                ckpt_time = root["ckpt"]
                stride = root["stride"]
                last_sync = now
                if exchange_now:
                    energies = np.empty((self.n_ladders, self.n_t))
                    for g in gathered:
                        for (ladder, t0), e in g["energies"].items():
                            energies[ladder, t0] = e
                    self.tempering.step(energies, self.lattice.n_sites)
                    for rep in self.replicas.values():
                        rep.sampler.beta = self.betas[self.slot(rep)]
            self.rate = (self.t - t_begin) / max(time.time() - start, 1e-9)
            due = ckpt_time or stop_now or (sim.checkpoint_every and self.t % sim.checkpoint_every == 0)
            if due and self.t < sim.updates:
                writer = self.checkpoint(writer, reopen=not stop_now)
                last_ckpt = time.time()
            if stop_now and self.t < sim.updates:
                progress.close()
                # what stopped the run, as the rank that got it says (not the Slurm limit when rank 0 had no
                # signal but another rank did)
                why = ", ".join(dict.fromkeys(sig for _, sig in stopped)) or "the Slurm time limit"
                where = f" ({why} received by rank {', '.join(str(r) for r, _ in stopped)} of {world.size})" \
                    if stopped and world.size > 1 else ""
                self.log.warning("stopped by %s at update %d of %d; checkpoint written, resume with --resume%s",
                                 why, self.t, sim.updates, where)
                return EXIT_INTERRUPTED
        progress.close()
        self.checkpoint(writer, reopen=False)
        self.finish(time.time() - start)
        return 0

    def _route(self, outbox: dict[int, list]) -> list:
        """Deliver every item to the rank that owns its unit. Only replica exchange moves replicas away
        from their own units, so without it nothing travels."""
        if self.world.size == 1 or not self.exchange:
            return [x for items in outbox.values() for x in items]
        received = self.world.alltoall([outbox.get(r, []) for r in range(self.world.size)])
        return [x for items in received for x in items]

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

    def finish(self, wall: float) -> None:
        """Assemble ensemble.h5 over the parts: collectively with an MPI-enabled h5py (one real file), else
        on rank 0 as virtual datasets (no copy). The parts stay: extending the run re-assembles over them."""
        from hpc_rg.io import mpio
        world, sim = self.world, self.sim
        seconds = world.gather(self.sampler_seconds)
        attrs = exchange = None
        if world.is_root:
            attrs = {"model": sim.model, "algorithm": sim.algorithm, "update_unit": self.cls.update_unit,
                     "sampler": f"{self.cls.__module__}:{self.cls.__name__}", "seed": self.cfg.job.seed,
                     "job_toml": self.cfg.text, "hpc_rg_version": __version__, "J": sim.J, "h": sim.h,
                     "thermalize": sim.thermalize, "thin": sim.thin, "measure_every": sim.measure_every,
                     "replica_exchange": self.exchange, "exchange_every": sim.exchange_every}
            if sim.model == "longrange2d":
                attrs.update(alpha=sim.alpha, images=sim.images)
            if self.tempering is not None:
                tp = self.tempering
                exchange = {"acceptance": tp.acceptance(), "pair_attempts": tp.pair_attempts,
                            "pair_accepts": tp.pair_accepts, "round_trips": tp.round_trips,
                            "attempts": np.int64(tp.attempts)}
        args = (self.out, self.parts_dir, self.n_parts, self.temperatures, sim.chains, self.lattice.shape,
                self.j, self.measurements_done(self.t), attrs, exchange)
        path = None
        if mpio.available() and world.size > 1:
            comp = None if sim.compression == "none" else sim.compression
            path = mpio.assemble_collective(world, *args, compression=comp, storage=sim.spin_storage)
        elif world.is_root:
            path = assemble(*args, storage=sim.spin_storage)
        if world.is_root:
            spin_updates = sim.updates * sim.chains * self.n_t * self.lattice.n_sites
            stats = {"wall_seconds": wall, "sampler_seconds_per_rank": seconds, "ranks": world.size,
                     "updates": sim.updates, "update_unit": self.cls.update_unit,
                     "writer": "mpio" if mpio.available() and world.size > 1 else "virtual",
                     "ns_per_site_update": 1e9 * sum(seconds) / max(spin_updates, 1)}
            (self.out / "simulate.json").write_text(json.dumps(stats, indent=1))
            self.log.info("wrote %s (%d temperatures x %d chains x %d samples of %s) in %s", path, self.n_t,
                          sim.chains, self.j, "x".join(map(str, self.lattice.shape)), duration(wall))
        world.barrier()

TUNE_ROUNDS = 6


def tune_ladder(cfg, world) -> tuple[float, ...]:
    """`simulate.ladder = "tune"`: short replica-exchange pre-runs, each followed by one feedback step
    towards equal swap acceptance (ends of the ladder fixed). The tuned ladder is written to
    `<out>/ladder.json` and reused on resume. Deterministic and rank-count invariant (own seed purpose)."""
    import dataclasses
    import shutil
    from hpc_rg.mc.tempering import tuned_ladder
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


def run_simulate(cfg, world, resume: bool = False) -> int:
    """The simulate stage. Returns 0 when the ensemble is complete, EXIT_INTERRUPTED after a checkpoint
    on a stop request."""
    declared = cfg.simulate.physics()
    if cfg.simulate.ladder == "tune":
        import dataclasses
        temps = tune_ladder(cfg, world)
        cfg = dataclasses.replace(cfg, simulate=dataclasses.replace(cfg.simulate, temperatures=temps))
    simulation = Simulation(cfg, world, declared)
    simulation.start(resume)
    if simulation.t >= cfg.simulate.updates and resume:
        get_logger().info("%s is complete (%d samples); nothing to do", cfg.out, simulation.j)
        if not (Path(cfg.out) / "ensemble.h5").exists():
            simulation.finish(0.0)
        return 0
    with StopFlag() as stop:
        return simulation.run(stop)
