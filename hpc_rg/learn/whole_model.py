"""A whole model (repeats = 1) trained data-parallel over all ranks or alone on one, checkpointed after every
epoch (`<name>.ckpt.pt`, resumable on another rank count) and written as `models/<name>.pt`."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from hpc_rg.learn import checkpoints
from hpc_rg.learn.job import SINGLE, TrainingJob, close
from hpc_rg.learn.modelfile import save_model
from hpc_rg.learn.trainer import State, fit, resolve_device
from hpc_rg.parallel import World, deal, get_logger

# Below this many weights an intra-op thread pool costs more in synchronisation than it gains (measured on a
# shared 2-core node: a 256-64 RBM ran 3x faster with one thread); such models train single-threaded.
SMALL_MODEL = 200_000


def train_whole(job: TrainingJob, world: World, stop, shared: bool) -> str | None:
    """Train one whole model: data-parallel over `world` when `shared`, else alone (`world` is SINGLE).
    Writes models/<name>.pt; returns the log line saying so (on the writing rank)."""
    info = job.info
    device = resolve_device(job.spec.device, world)
    get_logger().info(f"train.{job.name}: {job.kind} on {info['n_configurations']} configurations "
                      f"{info['lattice_shape']} at T = {info['temperatures'][:6]}"
                      f"{'...' if len(info['temperatures']) > 6 else ''}, device {device}, "
                      + (f"data-parallel over {world.size} rank(s)" if shared else "on one rank"))
    data = job.data(world)
    threads = torch.get_num_threads()
    if device.type == "cpu" and job.n_parameters < SMALL_MODEL:
        torch.set_num_threads(1)
    try:
        return _fit_phases(job, world, data, device, stop, shared)
    finally:
        torch.set_num_threads(threads)
        close(data)


def _resume(job: TrainingJob, ckpt, model, tasks, share: range, device) -> tuple[int, State]:
    """(phase, trainer state) from the checkpoint; this rank's rows of the persistent chains restored."""
    blob = checkpoints.load_blob(ckpt, ("phase", "epoch", "history", "optimizer", "extra", "state_dict"), device)
    model.load_state_dict(blob["state_dict"])
    phase = blob["phase"]
    extra = {}
    for k, v in blob["extra"].items():
        v = v.cpu().numpy()[share.start:share.stop] if v is not None else None
        extra[k] = v if v is not None and len(v) else None
    tasks[phase].load_state(extra, SINGLE)
    get_logger().info(f"train.{job.name}: resuming at phase {phase}, epoch {blob['epoch']}")
    return phase, State(epoch=blob["epoch"], history=blob["history"], optimizer=blob["optimizer"], extra={})


def _fit_phases(job: TrainingJob, world: World, data, device, stop, shared: bool) -> str | None:
    name = job.name
    ckpt = job.models / f"{name}.ckpt.pt"
    model, tasks = job.model_and_tasks(data, device, 0)
    # this rank's rows of every global batch (persistent chains are stored whole and re-dealt on resume, so
    # a run may resume on another rank count)
    share = deal(job.spec.batch_size, world.size, world.rank) if shared else range(job.spec.batch_size)
    start_phase, state = 0, State()
    if job.resume and ckpt.exists():
        start_phase, state = _resume(job, ckpt, model, tasks, share, device)
    history = state.history
    for phase in range(start_phase, len(tasks)):
        task = tasks[phase]
        if phase != start_phase:
            state = State(history=history)

        def checkpoint_all(st, phase=phase, task=task):
            # every rank joins the gather of its rows of the persistent chains (none on a rank without rows)
            gathered = {k: world.gather(x) for k, x in task.state().items()} if shared else \
                {k: [x] for k, x in task.state().items()}
            if world.is_root:
                extra = {}
                for k, parts in gathered.items():
                    parts = [x for x in parts if x is not None]
                    extra[k] = np.concatenate(parts) if parts else None
                checkpoints.save({"phase": phase, "epoch": st.epoch, "history": st.history,
                                  "optimizer": st.optimizer, "extra": extra, "state_dict": model.state_dict()}, ckpt)
            if shared:
                world.barrier()
        tag = job.learner.phase_tag(phase)
        label = f"train.{name}" + (f" layer {phase + 1}/{len(tasks)}" if tag else "")
        opts = job.options(0, phase, label, tag)
        if getattr(task, "options", None):   # a phase with its own settings (autoencoder pretraining)
            opts = dataclasses.replace(opts, **task.options)
        state = fit(task, world if shared else SINGLE, opts, state, checkpoint_all, distributed=shared, stop=stop)
        history = state.history
    line = None
    if world.is_root:
        metrics = job.learner.metrics(model, tasks, history)
        save_model(job.models / f"{name}.pt", kind=job.kind, name=name, model=model, optimizer=state.optimizer,
                   config=job.config, history=history, metrics=metrics, data=job.info)
        ckpt.unlink(missing_ok=True)
        line = (f"train.{name}: wrote {job.models / (name + '.pt')} "
                + " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float)))
        get_logger().info(line)
    if shared:
        world.barrier()
    return line
