"""The search engine behind `hpc-rg tune`: an Optuna study per tuned model, driven over the MPI world.

The study itself (storage, sampler, pruner) is `hpc_rg.tune.study`.

Two modes:
  reproducible  rank 0 asks the sampler for a round of `batch` trials (a number fixed by the job, not by the
                rank count), the round is dealt to the ranks (`parallel.deal`), the results are gathered and
                told in trial order. A trial's pruning decision is taken against a *snapshot* of the study as
                it was when the round was asked (an in-memory study holding the finished trials, with the
                real trial number and study name, so Hyperband brackets match), not against whatever its
                siblings have reported so far. The study is therefore identical for any rank count.
  free          every rank (and every `--worker`) loops ask -> evaluate -> tell against the shared journal,
                pruned by the live study: no rank waits for a round, but the study depends on timing and is
                not reproducible (the log says so).
A killed study resumes from its journal: finished trials are kept; the round a kill interrupted is completed
(trials left RUNNING are evaluated again with the settings they were asked with, against the same snapshot),
then the search continues, to the study an uninterrupted run gives. A signal or the Slurm time limit stops
the search cleanly between rounds (`should_stop`). The budget `trials` counts every trial the study holds.

Only rank 0 touches the journal in reproducible mode; the collectives are `World.bcast` and `World.gather`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

from hpc_rg.parallel import World, deal, get_logger
from hpc_rg.tune.study import _optuna, distributions

PRUNED, COMPLETE, FAIL = "PRUNED", "COMPLETE", "FAIL"


class Pruned(Exception):
    """Raised by a trial's reporter when the pruner stops it."""


@dataclass
class Outcome:
    number: int
    state: str
    value: float | None
    intermediate: dict[int, float] = field(default_factory=dict)
    system_attrs: dict = field(default_factory=dict)     # pruner bookkeeping (Hyperband rungs) to copy back
    error: str = ""
    seconds: float = 0.0


def _run(evaluate, params: dict, number: int, report) -> tuple[str, float | None, str]:
    try:
        value = float(evaluate(params, number, report))
    except Pruned:
        return PRUNED, None, ""
    except Exception as e:   # a setting that cannot train (too large a batch, a diverging run): a failed trial
        get_logger().warning(f"trial {number} {params} failed: {type(e).__name__}: {e}")
        return FAIL, None, f"{type(e).__name__}: {e}"
    if not math.isfinite(value):
        return FAIL, None, f"non-finite value {value}"
    return COMPLETE, value, ""


def evaluate_in_snapshot(evaluate, number: int, params: dict, history: list, study_name: str, tspec,
                         pruner_factory) -> Outcome:
    """Run trial `number` with pruning decided against `history` (the study's finished trials when the
    round was asked): an in-memory study holding them at their own numbers, placeholders (failed, empty) for
    numbers still running elsewhere, and this trial at its real number."""
    optuna = _optuna()
    from optuna.trial import TrialState, create_trial
    snap = optuna.create_study(study_name=study_name, direction=tspec.goal, pruner=pruner_factory(),
                               sampler=optuna.samplers.RandomSampler(seed=0))
    known = {t.number: t for t in history}
    for n in range(number):
        snap.add_trial(known[n] if n in known else create_trial(state=TrialState.FAIL))
    snap.enqueue_trial(params)
    trial = snap.ask(distributions(tspec.space))
    assert trial.number == number and trial.params == params, (trial.number, number)
    inter: dict[int, float] = {}
    report = _reporter(trial, inter)
    t0 = time.perf_counter()
    state, value, error = _run(evaluate, params, number, report)
    attrs = snap.get_trials(deepcopy=False)[number].system_attrs
    return Outcome(number, state, value, inter, {k: v for k, v in attrs.items() if not k.startswith("fixed")},
                   error, time.perf_counter() - t0)


def _tell(study, trial_id: int, out: Outcome) -> None:
    optuna = _optuna()
    from optuna.trial import TrialState
    storage = study._storage   # the Trial API has no setter for pruner bookkeeping attrs
    if storage.get_trial(trial_id).state.is_finished():
        # a trial this run found RUNNING (after a kill) that a live `--worker` finished meanwhile: keep that
        get_logger().warning(f"trial {out.number} was finished by another worker meanwhile; its result is kept")
        return
    trial = optuna.Trial(study, trial_id)
    for step in sorted(out.intermediate):
        trial.report(out.intermediate[step], step)
    for k, v in sorted(out.system_attrs.items()):
        storage.set_trial_system_attr(trial_id, k, v)
    if out.error:
        trial.set_user_attr("error", out.error)
    trial.set_user_attr("seconds", round(out.seconds, 3))
    if out.state == COMPLETE:
        study.tell(trial, out.value)
    else:
        study.tell(trial, state=TrialState.PRUNED if out.state == PRUNED else TrialState.FAIL)


def _log_outcome(label: str, out: Outcome, params: dict, tspec) -> None:
    shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    if out.state == COMPLETE:
        what = f"{tspec.metric} = {out.value:.5g}"
    elif out.state == PRUNED:
        what = f"pruned at epoch {max(out.intermediate, default=0)}"
    else:
        what = f"failed ({out.error})"
    get_logger().info(f"{label}: trial {out.number} ({shown}): {what} ({out.seconds:.1f} s)")


# --------------------------------------------------------------------------------------------- the loops
ROUND = "round"   # user attribute: the round a reproducible-mode trial was asked in


def _round(t) -> int | None:
    return t.user_attrs.get(ROUND)


def run_reproducible(study, tspec, evaluate, world: World, label: str, pruner_factory,
                     should_stop: Callable[[], bool] = lambda: False) -> bool:
    """Rounds of `tspec.batch` trials asked on rank 0, dealt to ranks, told in trial order (see module doc).
    `study` is the Optuna study on rank 0 (None elsewhere). Every rank returns True when the budget is spent,
    False when rank 0's `should_stop()` (a signal, the time limit) ended the search between two rounds.

    Each trial records its round; the snapshot a trial of round r is pruned against holds the trials of
    earlier rounds only. So a run killed anywhere in a round (while asking, evaluating or telling) resumes to
    the study of an uninterrupted run: the round is completed (missing trials asked, with the round's other
    trials still RUNNING as they were), its unfinished trials evaluated against the same snapshot."""
    optuna = _optuna()
    from optuna.trial import TrialState
    log = get_logger()
    dists = distributions(tspec.space)
    name = study.study_name if world.is_root else None
    pending: list[int] = []
    next_round = 0
    if world.is_root:
        trials = study.get_trials(deepcopy=False)
        next_round = max((r for t in trials if (r := _round(t)) is not None), default=-1) + 1
        stale = [t for t in trials if t.state == TrialState.RUNNING]
        if stale:
            log.info(f"{label}: {len(stale)} trial(s) left running by an earlier run are evaluated again: "
                     + ", ".join(str(t.number) for t in sorted(stale, key=lambda t: t.number)))
        pending = sorted({r for t in stale if (r := _round(t)) is not None})
        if any(_round(t) is None for t in stale):   # asked by a free worker that is gone: a round of their own
            for t in stale:
                if _round(t) is None:
                    study._storage.set_trial_user_attr(t._trial_id, ROUND, next_round)
            pending.append(next_round)
            next_round += 1
    while True:
        msg = None
        if world.is_root and should_stop():
            msg = (name, [], None)
        elif world.is_root:
            if pending:
                r = pending.pop(0)
            else:
                r, next_round = next_round, next_round + 1
            trials = study.get_trials(deepcopy=False)
            before = sum(1 for t in trials if _round(t) is None or _round(t) < r)
            this = [t for t in trials if _round(t) == r and t.state != TrialState.WAITING]
            waiting = sum(1 for t in trials if _round(t) == r and t.state == TrialState.WAITING)
            for i in range(min(tspec.batch, tspec.trials - before) - len(this)):
                if i >= waiting:
                    # the round is recorded when the trial is created (a queued, empty trial that `ask` then
                    # pops and samples), so a kill can never leave a trial without its round
                    study.enqueue_trial({}, user_attrs={ROUND: r})
                t = study.ask(dists)
                this.append(study._storage.get_trial(t._trial_id))
            for k, t in enumerate(this):
                if t.state == TrialState.RUNNING and set(t.params) != set(dists):   # killed while sampling
                    trial = optuna.Trial(study, t._trial_id)
                    for key, dist in dists.items():
                        trial._suggest(key, dist)
                    this[k] = study._storage.get_trial(t._trial_id)
            batch = [(t.number, t._trial_id, dict(t.params)) for t in sorted(this, key=lambda t: t.number)
                     if not t.state.is_finished()]
            history = [t for t in trials if t.state.is_finished() and (_round(t) is None or _round(t) < r)]
            msg = (name, history, [(n, p) for n, _, p in batch])
        name, history, work = world.bcast(msg)
        if work is None:
            log.info(f"{label}: stopped between rounds; `--resume` continues the study")
            return False
        if not work:
            return True
        mine = [work[i] for i in deal(len(work), world.size, world.rank)]
        outs = [evaluate_in_snapshot(evaluate, n, p, history, name, tspec, pruner_factory) for n, p in mine]
        gathered = world.gather(outs)
        if world.is_root:
            by_number = {o.number: o for part in gathered for o in part}
            for n, tid, p in batch:           # told in trial order: the study does not depend on who ran what
                _tell(study, tid, by_number[n])
                _log_outcome(label, by_number[n], p, tspec)


def run_free(study, tspec, evaluate, world: World, label: str, rerun_stale: bool,
             should_stop: Callable[[], bool] = lambda: False) -> bool:
    """Asynchronous: this process asks, evaluates and tells until the study holds `trials` trials (True) or
    `should_stop()` (False)."""
    optuna = _optuna()
    from optuna.trial import TrialState
    dists = distributions(tspec.space)
    if rerun_stale:
        stale = sorted((t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING),
                       key=lambda t: t.number)
        for i in deal(len(stale), world.size, world.rank):
            _free_one(study, optuna.Trial(study, stale[i]._trial_id), tspec, evaluate, label)
    while len(study.get_trials(deepcopy=False)) < tspec.trials:
        if should_stop():
            get_logger().warning(f"{label}: stopped; `--resume` (or `--worker`) continues the study")
            return False
        _free_one(study, study.ask(dists), tspec, evaluate, label)
    return True


def _reporter(trial, inter: dict[int, float]):
    """The per-epoch callback of a trial (both modes): keep the value, tell Optuna, stop a pruned trial."""
    def report(step: int, value: float) -> None:
        inter[int(step)] = float(value)
        trial.report(float(value), int(step))
        if trial.should_prune():
            raise Pruned
    return report


def _free_one(study, trial, tspec, evaluate, label) -> None:
    inter: dict[int, float] = {}
    report = _reporter(trial, inter)
    t0 = time.perf_counter()
    params = dict(trial.params)
    state, value, error = _run(evaluate, params, trial.number, report)
    out = Outcome(trial.number, state, value, inter, {}, error, time.perf_counter() - t0)
    from optuna.trial import TrialState
    try:
        if error:
            trial.set_user_attr("error", error)
        trial.set_user_attr("seconds", round(out.seconds, 3))
        if state == COMPLETE:
            study.tell(trial, value)
        else:
            study.tell(trial, state=TrialState.PRUNED if state == PRUNED else TrialState.FAIL)
    except (RuntimeError, ValueError) as e:   # another process finished it meanwhile (a resumed main run)
        get_logger().warning(f"{label}: trial {trial.number} could not be told: {e}")
        return
    _log_outcome(label, out, params, tspec)
