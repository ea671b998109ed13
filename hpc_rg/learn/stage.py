"""The `hpc-rg train` stage (`run`): every [train.<name>] table -> <out>/models/<name>.pt and <name>.json.

Each table is a `job.TrainingJob` (its index in the job, spec, kind and the kind's `Learner` plugin, data
description); this module plans them over the ranks; `whole_model` trains a whole model, `repeats` the
task-parallel units and gathers repeats, `checkpoints` reads and writes the per-epoch and per-repeat files.

Any number of ranks; the trainer plans from the job and the world size (`plan_training`, logged in one line):
  data-parallel   a model with repeats = 1 and at least DDP_MIN_PARAMETERS weights is trained by all ranks
                  together (each takes its share of every global batch, `trainer.fit`); checkpoint
                  `<name>.ckpt.pt` after every epoch, `resume` continues from it.
  task-parallel   everything else (small models: the seed RBMs, CNNs, thermometers; every repeat) is cut into
                  units (a whole model, one repeat, or for coarse_cnn one group of `group` repeats trained as
                  one batched model) dealt round-robin to the ranks, each trained alone on its rank: one
                  all-reduce per step costs more than a small model's share of the work saves. Whole models
                  checkpoint per epoch like above; each finished repeat is saved as `<name>.repeats/<r>.pt`
                  and results are gathered to rank 0. Idle ranks wait (sleeping, not spinning).
Every unit is seeded from its identity (seed_sequence(job_seed, model_index, repeat, purpose="train")), never
from the rank, so the models do not depend on the rank count (task-parallel: bit for bit; data-parallel: up
to float summation order). `resume` skips models whose <name>.pt exists.

SIGTERM/SIGINT/SIGUSR1 on any rank: the ranks agree (`parallel.StopRequests`), every rank stops after its
current epoch (checkpoint written) or repeat, and the stage returns EXIT_INTERRUPTED (3) on every rank;
`--resume` continues and gives the models an uninterrupted run gives.

Checkpoints and repeat files hold only tensors and plain Python values, loaded with weights_only=True.
"""
from __future__ import annotations

import torch

from hpc_rg.learn.job import SINGLE, TrainingJob, model_and_tasks, options
from hpc_rg.learn.learner import learner_class
from hpc_rg.learn.repeats import Unit, gather_repeats, repeat_units, train_units
from hpc_rg.learn.trainer import Interrupted, resolve_device, share_threads
from hpc_rg.learn.validate import validate as validate_training
from hpc_rg.learn.whole_model import train_whole
from hpc_rg.parallel import EXIT_INTERRUPTED, StopRequests, World, get_logger, init_torch_distributed, \
    shutdown_torch_distributed

# A model with fewer weights than this trains task-parallel, never data-parallel. Measured with
# `benchmarks/train.py --mode comm` (2 ranks, shared 2-core node): the flat all-reduce of a 1600-400 RBM's
# gradient (640,000 weights) takes ~3.5 ms next to a ~13 ms CD-1 step on a 50-row share; a model a few times
# smaller spends a step of well under a millisecond per share, so its ranks would mostly wait on each other.
DDP_MIN_PARAMETERS = 200_000


def plan_training(todo: list[TrainingJob], size: int) -> tuple[list[TrainingJob], list[Unit]]:
    """(models trained data-parallel by all ranks, task-parallel units in a fixed order). The units are
    dealt round-robin (`units[rank::size]`); which rank trains a unit never changes its result."""
    shared = [m for m in todo if m.spec.repeats == 1 and m.n_parameters >= DDP_MIN_PARAMETERS]
    units = []
    for m in todo:
        if m in shared:
            continue
        units += [Unit(m)] if m.spec.repeats == 1 else repeat_units(m)
    return shared, units


def _plan_line(shared: list[TrainingJob], units: list[Unit], size: int) -> str:
    def what(u):
        if u.repeats is None:
            return u.job.name
        r = u.repeats
        return f"{u.job.name}[{r.start}]" if len(r) == 1 else f"{u.job.name}[{r.start}..{r.stop - 1}]"
    parts = [f"train: {size} rank(s)"]
    if shared:
        parts.append("data-parallel over all ranks: " + ", ".join(f"{m.name} ({m.n_parameters:,} weights)"
                                                                   for m in shared))
    if units:
        per_rank = [units[r::size] for r in range(size)]
        busy = sum(1 for p in per_rank if p)
        shown = "; ".join(f"rank {r}: " + ", ".join(map(what, p[:3])) + (f" +{len(p) - 3}" if len(p) > 3 else "")
                          for r, p in enumerate(per_rank[:4]) if p)
        parts.append(f"task-parallel (models under {DDP_MIN_PARAMETERS:,} weights, and repeats): {len(units)} "
                     f"unit(s) on {busy} rank(s)" + (f", {size - busy} idle" if busy < size else "")
                     + f" ({shown}{'; ...' if size > 4 else ''})")
    return "; ".join(parts)


def run(cfg, world: World, resume: bool = False) -> int:
    """Train every [train.<name>] model of the job. Returns 0, or EXIT_INTERRUPTED on every rank after a
    stop request (see the module docstring)."""
    log = get_logger()
    validate_training(cfg)      # every model against its data before any trains or anything is written
    todo = []
    for i, (name, spec) in enumerate(cfg.train.items()):
        if resume and (cfg.out / "models" / f"{name}.pt").exists():
            log.info(f"train.{name}: {cfg.out / 'models' / (name + '.pt')} exists; skipped (resume)")
        else:
            todo.append(TrainingJob(cfg, i, name, spec, resume))
    return train_models(cfg, world, todo)


def train_models(cfg, world: World, todo: list[TrainingJob]) -> int:
    """Train these tables (each keeps its index in the job, and so its seeds) into <out>/models, planned
    over the ranks as `plan_training` says. Returns 0, or EXIT_INTERRUPTED on every rank after a stop request.
    The tune stage retrains a searched setting through here."""
    log = get_logger()
    for job in todo:   # every user error, on every rank, before anything is written or trained
        job.describe()
    if world.is_root:
        (cfg.out / "models").mkdir(parents=True, exist_ok=True)
    world.barrier()
    share_threads(world)
    shared, units = plan_training(todo, world.size)
    if todo:
        log.info(_plan_line(shared, units, world.size))
    cuda = world.size > 1 and any(resolve_device(m.spec.device, world).type == "cuda" for m in shared)
    if cuda:   # GPU gradients are summed by nccl; CPU ones over MPI directly
        init_torch_distributed()
    results: dict[str, list] = {}
    try:
        with StopRequests(world) as stop:
            try:
                for job in shared:
                    if stop.agree():
                        raise Interrupted("stop requested")
                    with torch.random.fork_rng(devices=[]):
                        train_whole(job, world, stop.agree, shared=True)
                results = train_units(units[world.rank::world.size], stop)
            except Interrupted as e:
                log.debug(str(e))
            if stop.agree():
                log.warning(f"train: stopped by {stop.why()}; finished models, repeats and per-epoch checkpoints "
                            "are kept, resume with --resume")
                return EXIT_INTERRUPTED
            gather_repeats(world, todo, results)
    finally:
        if cuda:
            shutdown_torch_distributed()
    return 0


# the names tests and benchmarks outside hpc_rg/learn call (kind, spec) -> model and phases, options
def _model_and_tasks(kind, spec, data, device, job_seed, index, repeat):
    return model_and_tasks(learner_class(kind)(spec), data, device, job_seed, index, repeat)


_options = options
__all__ = ["run", "train_models", "plan_training", "TrainingJob", "SINGLE", "DDP_MIN_PARAMETERS"]
