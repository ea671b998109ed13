"""The `hpc-rg tune` stage: every [tune.<model>] table -> a search over the settings of [train.<model>].

Per tuned model, in the order of the train tables:
  1. the model's data exactly as the train stage builds it (same patches, same test set), and a seeded split
     of its *training* part into search-train and validation (`validation_fraction`): the search never sees
     the test set;
  2. an Optuna study in <run>/tune/<model>.journal (`tune.search`): each trial trains the model with the
     trial's settings on search-train, reports the validation metric after every epoch (pruning) and is
     scored by the last epoch's value (averaged over `seeds` trainings). Every trial starts from the same
     initialisations and shuffles (the model's repeat 0, 1, ... streams: common random numbers, so trials
     differ by their settings only) and runs on one thread (a training's floats then do not depend on how
     many ranks share a node);
  3. the best setting is written as models/<model>.tuned.toml (a [train.<model>] table: paste it into a
     job), retrained with the model's `repeats` on the whole training part through the train stage
     (models/<model>.tuned.pt and .json, scored on the test set), and the study is written out:
     tune/<model>.trials.csv (one row per trial), tune/<model>.json (best setting, tuned and untuned test
     metrics) and figures/tune_<model>_{history,importance,slices}.png (included by `hpc-rg report`).
`--worker` joins the studies as an extra asynchronous worker (Slurm array tasks) and leaves steps 3 to the
main run.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from hpc_rg.io.atomic import atomic_path, atomic_write_text
from hpc_rg.io.run_folder import RunFolderError
from hpc_rg.learn.job import SINGLE, TrainingJob, close, ensemble_path, model_and_tasks, options
from hpc_rg.learn.learner import learner_for
from hpc_rg.learn.specs import kind_of
from hpc_rg.learn.stage import train_models
from hpc_rg.learn.trainer import State, fit, resolve_device, share_threads
from hpc_rg.mc.run_control import StopFlag, slurm_deadline
from hpc_rg.parallel import EXIT_INTERRUPTED, World, get_logger, seed_sequence
from hpc_rg.schema import ConfigError, dataclass_to_table, toml_value
from hpc_rg.tune import search as ts
from hpc_rg.tune import study as st
from hpc_rg.tune.figures import write_figures
from hpc_rg.tune.spec import search_settings


def journal_path(cfg, model: str) -> Path:
    return cfg.out / "tune" / f"{model}.journal"


def study_name(cfg, model: str) -> str:
    return f"{cfg.job.name}.{model}"


def _outputs(cfg, model: str) -> list[Path]:
    out = cfg.out
    return ([p for p in (out / "tune").glob(f"{model}.*")] if (out / "tune").is_dir() else []) + \
        [p for p in (out / "models").glob(f"{model}.tuned.*")] + \
        ([p for p in (out / "figures").glob(f"tune_{model}_*.png")] if (out / "figures").is_dir() else [])


# ------------------------------------------------------------------------------------------ before any work
def prepare(cfg, world: World, resume: bool, force: bool, worker: bool) -> None:
    """Refuse, before any work, what would mix two searches: an existing study without --resume or --force,
    or a resumed study whose search settings changed. --force removes the tuned models' outputs."""
    for model in cfg.tune:
        ensemble_path(cfg, model, cfg.train[model])    # ConfigError when there is no ensemble yet
    if not worker and not resume and not force:
        for model in cfg.tune:
            j = journal_path(cfg, model)
            if j.exists():
                raise RunFolderError(cfg.out, f"already holds the study {j.relative_to(cfg.out)}; pass --resume to "
                                              "continue it, or --force to start the search over")
    problem = None
    if world.is_root:
        if force and not worker:
            for model in cfg.tune:
                for p in _outputs(cfg, model):
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
        elif resume or worker:
            problem = _changed_settings(cfg)
        (cfg.out / "tune").mkdir(parents=True, exist_ok=True)
        if not (cfg.out / "job.toml").exists():
            (cfg.out / "job.toml").write_text(cfg.text)
    problem = world.bcast(problem)
    if problem:
        raise ConfigError(cfg.file, *problem)
    world.barrier()


def _changed_settings(cfg):
    """(key, found, allowed) for the first tuned model whose stored search settings differ from the job."""
    optuna = st._optuna()
    for model, tspec in cfg.tune.items():
        j = journal_path(cfg, model)
        if not j.exists():
            continue
        try:
            study = optuna.load_study(storage=st.journal_storage(j), study_name=study_name(cfg, model))
        except KeyError:
            continue
        stored = study.user_attrs.get("settings")
        now = json.loads(json.dumps(search_settings(tspec)))
        if stored is not None and stored != now:
            key = next(k for k in now if stored.get(k) != now[k])
            return (f"tune.{model}.{key}", now[key],
                    f"{stored.get(key)} as in the study {j.relative_to(cfg.out)} (pass --force to start over)")
    return None


# ------------------------------------------------------------------------------------------ the stage
def run(cfg, world: World, resume: bool = False, force: bool = False, worker: bool = False) -> int:
    """0 when every study is done (and retrained), EXIT_INTERRUPTED (3) when a signal (SIGTERM, SIGINT,
    SIGUSR1) or 95 % of the Slurm allotment stopped the search between rounds: `--resume` continues."""
    prepare(cfg, world, resume, force, worker)
    share_threads(world)
    deadline = slurm_deadline(time.time())
    with StopFlag() as flag:
        def should_stop() -> bool:
            return flag.raised is not None or (deadline is not None and time.time() >= deadline)
        for index, (model, spec) in enumerate(cfg.train.items()):
            if model in cfg.tune:
                with torch.random.fork_rng(devices=[]):
                    if not tune_one(cfg, world, index, model, spec, cfg.tune[model], resume, worker, should_stop):
                        return EXIT_INTERRUPTED
    return 0


def _search_data(cfg, world, index, model, spec, tspec):
    """(the train stage's data for the model with its training part split into search-train and validation,
    description). The split is seeded by (job seed, model); the learner cuts it (stratified for patch sets)."""
    job = TrainingJob(cfg, index, model, spec).describe()
    rng = np.random.default_rng(seed_sequence(cfg.job.seed, index, 2, purpose="tune"))
    return job.learner.validation_split(job.data(world), tspec.validation_fraction, rng), job.info


def make_objective(cfg, index: int, model: str, spec, tspec, data, device):
    """evaluate(params, number, report) -> the last epoch's validation metric of one training with the
    train table's settings updated by `params`; report(epoch, value) after every epoch (it raises to prune)."""
    metric = tspec.metric[len("val_"):]
    key = "test_" + (spec.loss_monitor if metric == "loss" else metric)   # fit's monitors on its "test" split

    def evaluate(params: dict, number: int, report) -> float:
        trial_spec = dataclasses.replace(spec, **params)
        problem = trial_spec.validate()
        if problem:
            raise ValueError(f"{problem[0]} = {problem[1]}: expected {problem[2]}")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            values = []
            for seed in range(tspec.seeds):   # repeat streams 0, 1, ...: the same for every trial
                net, tasks = model_and_tasks(learner_for(trial_spec), data, device, cfg.job.seed, index, seed)
                history: list = []
                step = [0]

                def after_epoch(state, seed=seed):
                    step[0] += 1
                    if seed == 0:
                        report(step[0], float(state.history[-1][key]))
                for phase, task in enumerate(tasks):
                    opts = options(trial_spec, cfg.job.seed, index, seed, phase, f"tune.{model} trial {number}",
                                    {}, verbose=False)
                    history = fit(task, SINGLE, opts, State(history=history), checkpoint=after_epoch).history
                values.append(float(history[-1][key]))
            return float(np.mean(values))
        finally:
            torch.set_num_threads(threads)
    return evaluate


def tune_one(cfg, world: World, index: int, model: str, spec, tspec, resume: bool, worker: bool,
             should_stop=lambda: False) -> bool:
    """One study, then (main run) the outputs and the retrain. False when stopped before the budget."""
    log = get_logger()
    kind = kind_of(spec)
    label = f"tune.{model}"
    data, info = _search_data(cfg, world, index, model, spec, tspec)
    device = resolve_device(spec.device, world)
    evaluate = make_objective(cfg, index, model, spec, tspec, data, device)
    max_epochs = tspec.max_epochs(spec)
    free = worker or tspec.mode == "free"
    n_train = len(data["x_train"]) if isinstance(data, dict) else len(data[1])
    n_val = len(data["x_test"]) if isinstance(data, dict) else len(data[2])
    log.info(f"{label}: {tspec.trials} trials of {kind} ({n_train} search-train / {n_val} validation of the "
             f"training data; the test set is not used), {tspec.metric} ({tspec.goal}), sampler {tspec.sampler}, "
             f"pruner {tspec.pruner}, " + (f"reproducible rounds of {tspec.batch} over {world.size} rank(s)"
                                          if not free else f"free mode on {world.size} rank(s)"
                                          + (" as an extra worker" if worker else "")))
    if free:
        log.warning(f"{label}: asynchronous workers: the study depends on timing and is NOT reproducible")
    try:
        study = None
        if free or world.is_root:
            study = st.open_study(journal_path(cfg, model), study_name(cfg, model), tspec,
                                  st.make_sampler(tspec, cfg.job.seed, index), st.make_pruner(tspec, max_epochs),
                                  create=True)
            if world.is_root and "settings" not in study.user_attrs:
                study.set_user_attr("settings", search_settings(tspec))
                study.set_user_attr("metric", tspec.metric)
                study.set_user_attr("reproducible", not free)
            if world.is_root and study.user_attrs.get("trials") != tspec.trials:   # the budget may be raised
                study.set_user_attr("trials", tspec.trials)
            if free and study.user_attrs.get("reproducible") and world.is_root:
                study.set_user_attr("reproducible", False)
        if free:
            done = ts.run_free(study, tspec, evaluate, world, label, not worker, should_stop)
            done = not world.any(not done)
        else:
            done = ts.run_reproducible(study, tspec, evaluate, world, label,
                                       lambda: st.make_pruner(tspec, max_epochs), should_stop)
    finally:
        close(data)
    if worker or not done:
        return done
    best = None
    if world.is_root:
        best = _write_study(cfg, model, spec, kind, tspec, study)
    best = world.bcast(best)
    if best is None:
        raise RuntimeError(f"{label}: no trial completed ({st.summary_counts(study) if study else ''}); "
                           "see the log for the failures")
    tuned = dataclasses.replace(spec, **best)
    if not _retrain(cfg, world, index, model, tuned, resume):
        return False                      # stopped by a signal while retraining: --resume retrains
    if world.is_root:
        _write_summary(cfg, model, tspec, study)
    world.barrier()
    return True


# ------------------------------------------------------------------------------------------ outputs
def tuned_table(model: str, kind: str, spec) -> str:
    """A [train.<model>] table with every key of the tuned spec."""
    lines = [f"[train.{model}]", f"kind = {toml_value(kind)}"]
    lines += [f"{k} = {toml_value(v)}" for k, v in dataclass_to_table(spec).items()]
    return "\n".join(lines) + "\n"


def _write_study(cfg, model, spec, kind, tspec, study) -> dict | None:
    """Rank 0: trials table, tuned train table; returns the best params (None when nothing completed)."""
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    keys = [e.key for e in tspec.space]
    folder = cfg.out / "tune"
    with atomic_path(folder / f"{model}.trials.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["number", "state", tspec.metric, *keys, "epochs_reported", "seconds", "error"])
        for t in trials:
            last = t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None
            value = t.value if t.state.name == "COMPLETE" else last
            w.writerow([t.number, t.state.name, "" if value is None else repr(value),
                        *[t.params.get(k, "") for k in keys], len(t.intermediate_values),
                        t.user_attrs.get("seconds", ""), t.user_attrs.get("error", "")])
    counts = st.summary_counts(study)
    if not counts.get("COMPLETE"):
        return None
    bt = study.best_trial
    tuned = dataclasses.replace(spec, **bt.params)
    head = (f"# Tuned by `hpc-rg tune` (job '{cfg.job.name}', study tune/{model}.journal): {len(trials)} trials "
            f"({counts.get('COMPLETE', 0)} complete, {counts.get('PRUNED', 0)} pruned, {counts.get('FAIL', 0)} "
            f"failed); best {tspec.metric} = {bt.value:.6g} at trial {bt.number} with "
            + ", ".join(f"{k} = {toml_value(v)}" for k, v in bt.params.items())
            + ".\n# A train table: paste it into a job file (or rename it) to train with these settings.\n")
    (cfg.out / "models").mkdir(parents=True, exist_ok=True)
    atomic_write_text(cfg.out / "models" / f"{model}.tuned.toml", head + tuned_table(model, kind, tuned))
    return dict(bt.params)


def _retrain(cfg, world, index, model, tuned, resume) -> bool:
    """The best setting trained with the model's `repeats` on the whole training part, scored on the test
    set, through the train stage (models/<model>.tuned.pt)."""
    name = f"{model}.tuned"
    if resume and (cfg.out / "models" / f"{name}.pt").exists():
        get_logger().info(f"tune.{model}: models/{name}.pt exists; retraining skipped (resume)")
        return True
    # the model's own index: the retrained repeats use the seeds of the untuned model's repeats
    return train_models(cfg, world, [TrainingJob(cfg, index, name, tuned, resume)]) == 0


def _test_metrics(path: Path) -> dict:
    if not path.exists():
        return {}
    return {k: v for k, v in json.loads(path.read_text()).get("metrics", {}).items() if k.startswith("test_")}


def _write_summary(cfg, model, tspec, study) -> None:
    models = cfg.out / "models"
    bt = study.best_trial
    summary = {"model": model, "study": f"tune/{model}.journal", "trials": st.summary_counts(study),
               "metric": tspec.metric, "direction": tspec.goal, "best_trial": bt.number, "best_value": bt.value,
               "best_params": dict(bt.params), "settings": search_settings(tspec),
               "tuned_test": _test_metrics(models / f"{model}.tuned.json"),
               "untuned_test": _test_metrics(models / f"{model}.json")}
    atomic_write_text(cfg.out / "tune" / f"{model}.json", json.dumps(summary, indent=1) + "\n")
    figures = write_figures(study, tspec, cfg.out / "figures", model)
    log = get_logger()
    tuned, untuned = summary["tuned_test"], summary["untuned_test"]
    shown = " ".join(f"{k}={v:.4g}" for k, v in tuned.items() if k.endswith("_mean"))
    log.info(f"tune.{model}: best {tspec.metric} = {bt.value:.5g} (trial {bt.number}) {dict(bt.params)}; "
             f"retrained: {shown or tuned}" + (f"; untuned: " + " ".join(
                 f"{k}={v:.4g}" for k, v in untuned.items() if k.endswith("_mean")) if untuned else "")
             + f"; figures: {', '.join(p.name for p in figures)}")
