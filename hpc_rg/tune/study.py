"""The Optuna study of one tuned model: its journal storage, per-trial seeded sampler and pruner, and the
counts `hpc-rg status` reads back. Optuna is imported on first use (`_optuna`), so importing this module is
cheap (`hpc-rg status` imports it).

Storage: Optuna's JournalStorage on a JournalFileBackend (`<run>/tune/<model>.journal`): an append-only log
with file locks, so it survives kills, lives on a shared cluster file system, and any number of processes
(ranks, Slurm array tasks) can join the study.

Sampler: TPE after `startup_trials` scrambled-Sobol (QMC) trials. Every trial's sampler is seeded from
(job seed, model, trial number), never from the rank, and built afresh for that trial (`PerTrialSampler`), so
the settings asked for trial n depend only on the study's history and n: the same after a kill and --resume,
and the same whichever process asks.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from hpc_rg.parallel import seed_sequence


def _optuna():
    import warnings
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)   # our own log lines say what happened
    # QMCSampler and JournalFileOpenLock are marked experimental; the interfaces used here are stable
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def distributions(space) -> dict:
    """{key: optuna distribution} for the SpaceEntry tuple of a TuneSpec."""
    d = _optuna().distributions
    out = {}
    for e in space:
        if e.form == "choice":
            out[e.key] = d.CategoricalDistribution(list(e.choices))
        elif e.form == "int":
            out[e.key] = d.IntDistribution(int(e.low), int(e.high))
        else:
            out[e.key] = d.FloatDistribution(float(e.low), float(e.high), log=e.form == "log")
    return out


def _int_seed(seq: np.random.SeedSequence) -> int:
    return int(seq.generate_state(1, np.uint32)[0])


def make_sampler(tspec, job_seed: int, model_index: int):
    """The study's sampler: per trial number, QMC (Sobol, scrambled with one seed for the whole study, so
    the start is one low-discrepancy sequence) for the first `startup_trials`, then TPE seeded by the trial
    number (or Sobol / uniform throughout)."""
    optuna = _optuna()
    qmc_seed = _int_seed(seed_sequence(job_seed, model_index, 0, purpose="tune"))

    def for_trial(number: int):
        seed = _int_seed(seed_sequence(job_seed, model_index, 1, number, purpose="tune"))
        if tspec.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if tspec.sampler == "qmc" or number < tspec.startup_trials:
            return optuna.samplers.QMCSampler(seed=qmc_seed, scramble=True,
                                              independent_sampler=optuna.samplers.RandomSampler(seed=seed),
                                              warn_independent_sampling=False, warn_asynchronous_seeding=False)
        # constant liar: trials asked but not yet told (the rest of a round, other workers) are assumed bad,
        # so one round does not pile onto one point
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=0, constant_liar=True)
    return PerTrialSampler(for_trial)


def _per_trial_sampler_class():
    optuna = _optuna()

    class _PerTrialSampler(optuna.samplers.BaseSampler):
        """Delegates every call about trial n to a sampler built for n: the sampler's random state then
        depends on the trial number only, not on how many trials this process asked before (a resumed study,
        another worker)."""

        def __init__(self, for_trial: Callable[[int], Any]):
            self._for_trial = for_trial
            self._live: dict[int, Any] = {}

        def _of(self, trial):
            s = self._live.get(trial.number)
            if s is None:
                s = self._live[trial.number] = self._for_trial(trial.number)
            return s

        def before_trial(self, study, trial):
            self._of(trial).before_trial(study, trial)

        def infer_relative_search_space(self, study, trial):
            return self._of(trial).infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):
            return self._of(trial).sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):
            return self._of(trial).sample_independent(study, trial, param_name, param_distribution)

        def after_trial(self, study, trial, state, values):
            self._of(trial).after_trial(study, trial, state, values)
            self._live.pop(trial.number, None)

        def reseed_rng(self):
            pass   # seeds come from the trial numbers
    return _PerTrialSampler


def PerTrialSampler(for_trial):  # noqa: N802 (a class built lazily, so importing this module needs no optuna)
    return _per_trial_sampler_class()(for_trial)


def make_pruner(tspec, max_epochs: int):
    """median: a trial below the median of finished trials at the same epoch stops (after `warmup_epochs`
    and 5 finished trials); hyperband: successive halving over brackets, epochs 1..max_epochs, factor 3."""
    optuna = _optuna()
    if tspec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=tspec.warmup_epochs)
    if tspec.pruner == "hyperband":
        # explicit resources (not "auto"): the brackets must not depend on which trial finished first
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(int(max_epochs), 1),
                                              reduction_factor=3)
    return optuna.pruners.NopPruner()


def journal_storage(path: Path):
    """Optuna's journal storage on the file `path`."""
    _optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
    # open(O_EXCL) locks: unlike the default symlink lock, they work on every shared file system
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def open_study(path: Path, name: str, tspec, sampler, pruner, create: bool):
    """The study in the journal at `path` (created when `create`; several processes may race to create)."""
    optuna = _optuna()
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = journal_storage(path)
    if create:
        return optuna.create_study(storage=storage, study_name=name, direction=tspec.goal, sampler=sampler,
                                   pruner=pruner, load_if_exists=True)
    return optuna.load_study(storage=storage, study_name=name, sampler=sampler, pruner=pruner)


# --------------------------------------------------------------------------------------------- one trial


def summary_counts(study) -> dict[str, int]:
    """Trials per state name (COMPLETE, PRUNED, RUNNING, FAIL, WAITING)."""
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def status_lines(run_dir: Path) -> list[str]:
    """`hpc-rg status` lines for the studies under <run>/tune (read-only: never creates a study)."""
    folder = Path(run_dir) / "tune"
    journals = sorted(folder.glob("*.journal")) if folder.is_dir() else []
    if not journals:
        return []
    optuna = _optuna()
    lines = []
    for j in journals:
        storage = journal_storage(j)
        for s in optuna.get_all_study_summaries(storage):
            study = optuna.load_study(storage=storage, study_name=s.study_name)
            c = summary_counts(study)
            budget = study.user_attrs.get("trials", "?")
            done = c.get("COMPLETE", 0) + c.get("PRUNED", 0) + c.get("FAIL", 0)
            best = ""
            if c.get("COMPLETE"):
                bt = study.best_trial
                best = f"; best {study.user_attrs.get('metric', 'value')} = {bt.value:.5g} (trial {bt.number})"
            lines.append(f"  tune {j.stem}: {done} of {budget} trials done ({c.get('COMPLETE', 0)} complete, "
                         f"{c.get('PRUNED', 0)} pruned, {c.get('FAIL', 0)} failed), {c.get('RUNNING', 0)} running"
                         + best)
    return lines
