"""One `[train.<name>]` table as the train and tune stages handle it: a `TrainingJob` knows its place in the
job (part of every seed), its kind's `Learner`, its data and how each model of it is seeded and trained."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hpc_rg.learn.data import EnsembleSource
from hpc_rg.learn.learner import Learner, kind_of, learner_class
from hpc_rg.learn.trainer import Options, torch_seed
from hpc_rg.learn.validate import DataShape, check_data
from hpc_rg.parallel import World, seed_sequence
from hpc_rg.schema import ConfigError, dataclass_to_table

SINGLE = World(None, 0, 1)


def ensemble_path(cfg, name: str, spec) -> Path:
    """The ensemble file table `name` trains on (ConfigError naming the key when it does not exist yet)."""
    if spec.ensemble:
        p = Path(spec.ensemble)
        p = p if p.is_absolute() else cfg.folder / p
        key = f"train.{name}.ensemble"
    else:
        p, key = cfg.out / "ensemble.h5", f"train.{name}"
    if not p.exists():
        raise ConfigError(cfg.file, key, str(p), "an existing ensemble file (run the simulate stage first)")
    return p


def model_and_tasks(learner: Learner, data, device, job_seed: int, index: int, repeat: int):
    """The model (initialised from the stream of (job seed, table index, repeat)) and its training phases."""
    torch.manual_seed(torch_seed(seed_sequence(job_seed, index, repeat, purpose="train")))
    # patch sets (a dict) carry no lattice: the kinds trained on them need none to build their model; only a
    # classifier of temperatures needs the source's temperatures
    source = data[0] if isinstance(data, tuple) else None
    shape, temperatures = getattr(source, "lattice_shape", ()), getattr(source, "temperatures", ())
    model = learner.build(learner.model_args(tuple(shape), tuple(temperatures))).to(device)
    return model, learner.tasks(model, data, device)


def options(spec, job_seed: int, index: int, repeat: int, phase: int, label: str, tag: dict,
            verbose: bool = True) -> Options:
    """The trainer's options for one phase of one model; `key` names its random streams."""
    return Options(verbose=verbose, epochs=spec.epochs, batch_size=spec.batch_size, optimizer=spec.optimizer,
                   lr=spec.lr, momentum=spec.momentum, l2=spec.l2, lr_schedule=spec.lr_schedule,
                   lr_gamma=spec.lr_gamma, job_seed=job_seed, key=(index, repeat, phase), label=label, tag=tag)


@dataclass
class TrainingJob:
    """A [train.<name>] table to train: its index in the job (part of every seed), spec, kind and learner;
    `describe()` fills in its data description (`info`) and size."""
    cfg: Any
    index: int
    name: str
    spec: Any
    resume: bool = False
    kind: str = field(init=False)
    learner: Learner = field(init=False, repr=False)
    info: dict = field(default_factory=dict)     # the data description, stored in the model file
    n_parameters: int = 0

    def __post_init__(self):
        self.kind = kind_of(self.spec)
        self.learner = learner_class(self.kind)(self.spec)

    @property
    def models(self) -> Path:
        return self.cfg.out / "models"

    @property
    def config(self) -> dict:
        """The resolved table as the model file stores it."""
        return {"kind": self.kind, **dataclass_to_table(self.spec)}

    def describe(self) -> "TrainingJob":
        """Check the table against its data (one-line errors naming the key) and describe the data: ensemble,
        temperatures, lattice shape, sample counts. Cheap: reads the ensemble's metadata only."""
        cfg, name, spec = self.cfg, self.name, self.spec
        path = ensemble_path(cfg, name, spec)
        try:
            source = EnsembleSource(path, spec.temperatures, spec.samples)
        except KeyError as e:
            raise ConfigError(cfg.file, f"train.{name}.temperatures", list(spec.temperatures),
                              f"temperatures of the ensemble ({e.args[0]})") from None
        try:
            shape = tuple(int(s) for s in source.lattice_shape)
            check_data(cfg.file, name, spec, DataShape(source.temperatures, source.per_t, shape, str(path)))
            self.info = {"ensemble": str(path), "temperatures": list(source.temperatures),
                         "lattice_shape": list(source.lattice_shape), "n_configurations": source.n,
                         "model": str(source.attrs.get("model", "")), **self.learner.describe(source.n)}
        finally:
            source.close()
        self.n_parameters = self.learner.n_parameters(shape)
        return self

    def data(self, world: World = SINGLE):
        """The training data, built the same on every rank of `world` (seeded by the table's index): as
        `Learner.data` returns it."""
        spec = self.spec
        source = EnsembleSource(Path(self.info["ensemble"]), spec.temperatures, spec.samples)
        return self.learner.data(source, seed_sequence(self.cfg.job.seed, self.index, purpose="data"), world)

    def model_and_tasks(self, data, device, repeat: int):
        return model_and_tasks(self.learner, data, device, self.cfg.job.seed, self.index, repeat)

    def untrained_model(self):
        """The model of the table on the CPU, not initialised from any seed (to load trained weights into)."""
        return self.learner.build(self.learner.model_args(tuple(self.info["lattice_shape"]),
                                                          tuple(self.info.get("temperatures", ()))))

    def options(self, repeat: int, phase: int, label: str, tag: dict, verbose: bool = True) -> Options:
        return options(self.spec, self.cfg.job.seed, self.index, repeat, phase, label, tag, verbose)

    def repeat_file(self, repeat: int) -> Path:
        return self.models / f"{self.name}.repeats" / f"{repeat:05d}.pt"


def close(data) -> None:
    """Close the ensemble of row data (patch sets hold no open file)."""
    if isinstance(data, tuple):
        data[0].close()
