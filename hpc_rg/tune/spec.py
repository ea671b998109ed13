"""The `[tune.<model>]` tables: what a search over training settings explores, validated before any work.

    [tune.ch1]
    trials = 64                      # the trial budget of the study
    metric = "val_accuracy"          # a per-epoch validation monitor of the model's kind (its spec's `tune_metrics`)
    direction = "maximize"           # default: maximize accuracies and likelihoods, minimize losses
    space.lr = {log = [1e-4, 3e-2]}  # log-uniform float
    space.momentum = {float = [0.0, 0.9]}
    space.epochs = {int = [10, 100]}
    space.batch_size = {choice = [25, 50, 100]}

`<model>` names a `[train.<model>]` table: every key of `space` is a training setting of that table (its
bounds are checked against the key's own limits, e.g. lr > 0), and the table's other keys are kept. Keys that
change the data or the test set (ensemble, temperatures, n_train, test_fraction, ...) cannot be searched: the
search validates on a split of the training data and must never see the test set.

Import-cheap on purpose (no optuna, no torch): the job-file validator imports it.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Literal

from hpc_rg.learn.specs import kind_of
from hpc_rg.schema import ConfigError, check_bounds, coerce, did_you_mean, spec, table_to_dataclass

# Train keys that define the data, the test set or the bookkeeping, not the training: never searched.
NOT_SEARCHABLE = ("ensemble", "temperatures", "samples", "test_fraction", "n_train", "n_test", "control",
                  "block", "repeats", "group", "device", "ais_runs", "ais_betas")
FORMS = ("log", "float", "int", "choice")


@dataclass(frozen=True)
class SpaceEntry:
    """One searched key: `log`/`float` (a float range, log-uniform or uniform), `int` (an integer range) or
    `choice` (a list of values)."""
    key: str
    form: str
    low: Any = None
    high: Any = None
    choices: tuple = ()


@dataclass(frozen=True)
class TuneSpec:
    trials: int = spec(32, min=1, doc="trial budget of the study (all ranks and workers together)")
    metric: str = spec("val_accuracy", doc="validation monitor to optimise (val_accuracy, val_loss, ...)")
    direction: Literal["auto", "maximize", "minimize"] = spec("auto", doc="auto: from the metric")
    sampler: Literal["tpe", "qmc", "random"] = spec("tpe", doc="tpe: TPE after `startup_trials` scrambled-Sobol "
                                                     "trials; qmc: Sobol throughout; random: uniform")
    startup_trials: int = spec(8, min=0, doc="quasi-random trials before TPE takes over")
    pruner: Literal["median", "hyperband", "none"] = spec("median", doc="stop bad trials early from their "
                                                          "per-epoch validation reports")
    warmup_epochs: int = spec(3, min=0, doc="median pruner: epochs a trial runs before it may be pruned")
    seeds: int = spec(1, min=1, doc="trainings per trial from different initialisations, their last-epoch "
                      "metrics averaged (less noise per trial); the first one's per-epoch reports drive pruning")
    validation_fraction: float = spec(0.2, gt=0, max=0.9, doc="share of the training data held out to "
                                      "score trials (the test set is never seen by the search)")
    batch: int = spec(8, min=1, doc="reproducible mode: trials asked per round (fixed by the job, not by "
                      "the rank count), dealt to ranks, told in trial order")
    mode: Literal["reproducible", "free"] = spec("reproducible", doc="free: asynchronous workers (faster on a "
                                                 "busy cluster; the study then depends on timing)")
    space: tuple = spec((), doc="key = {log = [lo, hi]} | {float = [lo, hi]} | {int = [lo, hi]} | "
                        "{choice = [...]}, over keys of the model's train table")

    @property
    def goal(self) -> str:
        """"maximize" or "minimize" (`parse_tune` resolves "auto" from the metric)."""
        return "maximize" if self.direction == "auto" else self.direction

    def max_epochs(self, train_spec) -> int:
        """The most epochs a trial can run (the epochs range's top when searched, else the train table's)."""
        for e in self.space:
            if e.key == "epochs":
                return int(e.high) if e.form == "int" else int(max(e.choices))
        return int(train_spec.epochs)


def _entry(file: str, prefix: str, key: str, value: Any, train_spec) -> SpaceEntry:
    """Validate `space.<key> = {form = ...}` against the train table's field `key`."""
    name = f"{prefix}.space.{key}"
    fields = {f.name: f for f in dataclasses.fields(train_spec) if f.init}
    searchable = sorted(k for k in fields if k not in NOT_SEARCHABLE)
    if key not in fields:
        raise ConfigError(file, name, value, "a key of the model's train table: " + ", ".join(searchable),
                          did_you_mean(key, searchable))
    if key in NOT_SEARCHABLE:
        raise ConfigError(file, name, value, "a training setting (this key defines the data, the test set or "
                          "the bookkeeping): one of " + ", ".join(searchable))
    tp = typing.get_type_hints(type(train_spec))[key]
    forms = "{log = [lo, hi]}, {float = [lo, hi]}, {int = [lo, hi]} or {choice = [...]}"
    if not isinstance(value, dict) or len(value) != 1:
        raise ConfigError(file, name, value, forms)
    (form, arg), = value.items()
    if form not in FORMS:
        raise ConfigError(file, f"{name}.{form}", arg, forms, did_you_mean(form, FORMS))
    meta = fields[key].metadata

    def check(v, where):
        v = coerce(v, tp, file, where)
        check_bounds(v, meta, file, where)
        return v
    if form == "choice":
        if not isinstance(arg, list) or not arg:
            raise ConfigError(file, f"{name}.choice", arg, "a non-empty list of values")
        if typing.get_origin(tp) in (tuple, list):
            raise ConfigError(file, name, value, "a key with a single value (lists cannot be searched)")
        choices = tuple(check(v, f"{name}.choice[{i}]") for i, v in enumerate(arg))
        if len(set(choices)) != len(choices):
            raise ConfigError(file, f"{name}.choice", arg, "distinct values")
        return SpaceEntry(key, form, choices=choices)
    want = int if form == "int" else float
    if tp is not want and not (tp is float and want is int):
        allowed = {int: "{int = [lo, hi]} or {choice = [...]}", float: "{log = [lo, hi]}, {float = [lo, hi]} or "
                   "{choice = [...]}"}.get(tp, "{choice = [...]}")
        raise ConfigError(file, f"{name}.{form}", arg, allowed + f" (the key is {_kind(tp)})")
    if not isinstance(arg, list) or len(arg) != 2:
        raise ConfigError(file, f"{name}.{form}", arg, "[lo, hi]")
    low, high = (check(v, f"{name}.{form}[{i}]") for i, v in enumerate(arg))
    if want is int:
        low, high = coerce(arg[0], int, file, f"{name}.int[0]"), coerce(arg[1], int, file, f"{name}.int[1]")
    if not low < high:
        raise ConfigError(file, f"{name}.{form}", arg, "lo < hi")
    if form == "log" and not low > 0:
        raise ConfigError(file, f"{name}.log", arg, "0 < lo < hi (a log-uniform range)")
    return SpaceEntry(key, form, low, high)


def _kind(tp) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def parse_tune(tables: Any, file: str, train: dict) -> dict[str, TuneSpec]:
    """`[tune.<model>]` tables -> {model: TuneSpec}; ConfigError (one line) on the first problem."""
    if not isinstance(tables, dict):
        raise ConfigError(file, "tune", tables, "a table of [tune.<model>] tables")
    out = {}
    for model, table in tables.items():
        prefix = f"tune.{model}"
        if model not in train:
            raise ConfigError(file, prefix, table, "the name of a [train.<name>] table: " + ", ".join(train),
                              did_you_mean(model, train))
        if not isinstance(table, dict):
            raise ConfigError(file, prefix, table, "a table")
        tspec = table_to_dataclass(TuneSpec, {k: v for k, v in table.items() if k != "space"}, file, prefix,
                                   skip=("space",))
        kind, metrics = kind_of(train[model]), type(train[model]).tune_metrics
        if tspec.metric not in metrics:
            raise ConfigError(file, f"{prefix}.metric", tspec.metric, f"a validation monitor of {kind}: "
                              + ", ".join(metrics), did_you_mean(tspec.metric, metrics))
        space = table.get("space", {})
        if not isinstance(space, dict) or not space:
            raise ConfigError(file, f"{prefix}.space", space, "a table of searched keys, e.g. "
                              "space.lr = {log = [1e-4, 3e-2]}")
        entries = tuple(_entry(file, prefix, k, v, train[model]) for k, v in space.items())
        # the corners of the box must be valid train tables too (e.g. frozen = true needs channels = 1)
        for corner in ("low", "high"):
            values = {e.key: (getattr(e, corner) if e.form != "choice" else e.choices[0 if corner == "low" else -1])
                      for e in entries}
            problem = getattr(dataclasses.replace(train[model], **values), "validate", lambda: None)()
            if problem:
                key, found, allowed = problem
                raise ConfigError(file, f"{prefix}.space.{key}", found, allowed)
        direction = metrics[tspec.metric] if tspec.direction == "auto" else tspec.direction
        out[model] = dataclasses.replace(tspec, space=entries, direction=direction)
    return out


def search_settings(tspec: TuneSpec) -> dict:
    """The spec as a plain table (stored in the study, compared on --resume)."""
    return {"metric": tspec.metric, "direction": tspec.goal, "sampler": tspec.sampler,
            "startup_trials": tspec.startup_trials, "pruner": tspec.pruner, "warmup_epochs": tspec.warmup_epochs,
            "seeds": tspec.seeds, "validation_fraction": tspec.validation_fraction, "batch": tspec.batch, "mode": tspec.mode,
            "space": {e.key: ({e.form: list(e.choices)} if e.form == "choice" else {e.form: [e.low, e.high]})
                      for e in tspec.space}}
