"""A [train.<name>] table trained in memory (no files): what searches over its settings call."""
from __future__ import annotations

import torch

from hpc_rg.learn.job import SINGLE, TrainingJob, close
from hpc_rg.learn.trainer import State, fit, resolve_device
from hpc_rg.parallel import World


def model_data(cfg, index: int, name: str, spec, world: World = SINGLE):
    """The data a [train.<name>] table trains on, as `train_spec` takes it: (source, train_idx, test_idx)
    (the caller closes `source`; split the indices again for a validation set) or a patch dict
    (x_train, y_train, x_test, y_test). User errors as in the stage (ConfigError naming the key)."""
    return TrainingJob(cfg, index, name, spec).describe().data(world)


def train_spec(cfg, index: int, name: str, spec, *, data=None, world: World = SINGLE, repeat: int = 0,
               on_epoch=None, stop=None):
    """Train one model of a [train.<name>] table in memory: returns (model, history, metrics). `index` is the
    table's place in the job (with `repeat`, the seed); `data` as `model_data` returns it (default: the
    table's own data and split: "test_*" monitors are then on its held-out part; pass a validation split to
    keep a test set unseen); `on_epoch(row)` after every epoch with that epoch's history row (it may raise,
    e.g. to prune a trial); `world`: ranks sharing this training (data-parallel; default one rank); `stop()`
    as in `trainer.fit`."""
    job = TrainingJob(cfg, index, name, spec).describe()
    own = data is None
    data = job.data(world) if own else data
    device = resolve_device(spec.device, world)
    try:
        with torch.random.fork_rng(devices=[]):
            model, tasks = job.model_and_tasks(data, device, repeat)
            history: list = []
            for phase, task in enumerate(tasks):
                opts = job.options(repeat, phase, f"train.{name}", job.learner.phase_tag(phase), verbose=False)
                report = (lambda st: on_epoch(st.history[-1])) if on_epoch is not None else None
                history = fit(task, world, opts, State(history=history), report, distributed=world.size > 1,
                              stop=stop).history
            return model, history, job.learner.metrics(model, tasks, history)
    finally:
        if own:
            close(data)
