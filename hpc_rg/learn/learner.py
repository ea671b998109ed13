"""What a model kind of `[train.<name>]` is to the train and tune stages: a `Learner` subclass, declared as a
learner plugin next to the model it trains (e.g. in rbm.py):

    PLUGINS = (Plugin("learner", "rbm", "RBMLearner", spec="hpc_rg.learn.specs:RBMSpec"),)

The spec (a frozen dataclass, import-light: the job validator reads it) holds the table's keys, its checks
against the data (`check_data`) and what the tune stage may search for; the learner builds the model and its
training phases. A new kind is one module with its model, spec and learner (plus a test): `learn.specs.SPECS`,
the stages, the model file loader and the validators find it through the plugin table.
"""
from __future__ import annotations

import numpy as np

from hpc_rg import plugins
from hpc_rg.learn.data import patch_dataset, split
from hpc_rg.learn.specs import kind_of


class Learner:
    """One kind's training recipe for one table (`spec`). Defaults fit a model trained on configurations
    (rows of the ensemble) with a held-out test fraction; subclasses override what differs."""
    batched_repeats = False     # True: repeats are trained in groups as one batched model (`train_group`)

    def __init__(self, spec):
        self.spec = spec

    # ---------------------------------------------------------------- the model
    @classmethod
    def build(cls, args: dict):
        """The (untrained) model from its constructor arguments, as a model file's .json stores them."""
        raise NotImplementedError

    def model_args(self, lattice_shape: tuple[int, ...], temperatures: tuple[float, ...]) -> dict:
        """`build`'s arguments for this table on data of `lattice_shape` at `temperatures`: the one place that
        maps spec keys to model arguments (a trained model and one rebuilt from its file share the layout)."""
        raise NotImplementedError

    def n_parameters(self, lattice_shape: tuple[int, ...]) -> int:
        """Weights of the model (large ones train data-parallel; 0: a small network, task-parallel)."""
        return 0

    # ---------------------------------------------------------------- the data
    def describe(self, n: int) -> dict:
        """Sample counts (and settings) of the training data out of `n` configurations, for the model file."""
        n_test = int(round(self.spec.test_fraction * n))
        return {"n_train": n - n_test, "n_test": n_test, "units": getattr(self.spec, "units", "spin")}

    def data(self, source, seed: np.random.SeedSequence, world):
        """The training data from an open ensemble `source`: (source, train_idx, test_idx), the same on every
        rank of `world` (seeded by `seed`). A learner that builds its own sets closes `source`."""
        train_idx, test_idx = split(source.n, self.spec.test_fraction, seed)
        return source, train_idx, test_idx

    def validation_split(self, data, fraction: float, rng: np.random.Generator):
        """`data` with its training part cut into search-train and validation (the held-out part becomes the
        validation set; the test set is left out): what the tune stage searches on."""
        source, train_idx, _test = data
        perm = rng.permutation(len(train_idx))
        n_val = int(round(fraction * len(train_idx)))
        return source, np.sort(train_idx[perm[n_val:]]), np.sort(train_idx[perm[:n_val]])

    # ---------------------------------------------------------------- the training
    def tasks(self, model, data, device) -> list:
        """The training phases (one `objectives.Task` each; one per layer for a stack)."""
        raise NotImplementedError

    def phase_tag(self, phase: int) -> dict:
        """Entries added to every history row of `phase` (a stack says which layer)."""
        return {}

    def metrics(self, model, tasks, history: list) -> dict:
        """Final metrics: the last epoch's test (and train) monitors."""
        return {k: v for k, v in (history[-1] if history else {}).items() if k.startswith(("test_", "train_"))}

    def repeat_extras(self, model) -> dict:
        """What a repeat keeps beside its metrics in the model file (e.g. a learned kernel)."""
        return {}


class PatchLearner(Learner):
    """A kind trained on labelled patch sets cut from the configurations (`data.patch_dataset`), not on rows."""

    def describe(self, n: int) -> dict:
        s = self.spec
        return {"n_train": s.n_train, "n_test": s.n_test, "block": s.block, "control": s.control}

    def data(self, source, seed, world):
        s = self.spec
        patches = patch_dataset(source, s.n_train, s.n_test, s.block, seed, s.control) if world.is_root else None
        source.close()
        return world.bcast(patches)

    def validation_split(self, data, fraction, rng):
        """Stratified by label: each class keeps its share in search-train and validation."""
        y = np.asarray(data["y_train"])
        val = []
        for label in np.unique(y):
            ids = rng.permutation(np.flatnonzero(y == label))
            val.append(ids[:int(round(fraction * len(ids)))])
        val = np.sort(np.concatenate(val))
        train = np.setdiff1d(np.arange(len(y)), val)
        return {"x_train": data["x_train"][train], "y_train": y[train], "x_test": data["x_train"][val],
                "y_test": y[val]}


def stacked_weights(layers) -> int:
    """Weights of dense layers of these sizes, each connected to the next (biases left out)."""
    return sum(a * b for a, b in zip(layers[:-1], layers[1:]))


def learner_class(kind: str) -> type[Learner]:
    return plugins.get("learner", kind).load()


def learner_for(spec) -> Learner:
    return learner_class(kind_of(spec))(spec)
