"""The search engine of `hpc-rg tune` on a toy objective: the optimum found within the budget, the same seed
giving the same study, a killed or stopped study resuming to the uninterrupted one, free workers sharing the
budget."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from hpc_rg.parallel import World
from hpc_rg.tune import search as ts
from hpc_rg.tune import study as st
from hpc_rg.tune.spec import SpaceEntry, TuneSpec

SINGLE = World(None, 0, 1)
SPACE = (SpaceEntry("lr", "log", 1e-4, 1e-1), SpaceEntry("x", "float", -1.0, 1.0),
         SpaceEntry("c", "choice", choices=("a", "b")))


def toy(params, number, report):
    """Known optimum: lr = 10^-2.5, x = 0.3, c = "b" (value 0); per-epoch reports approach the value."""
    v = (math.log10(params["lr"]) + 2.5) ** 2 + (params["x"] - 0.3) ** 2 + (0.0 if params["c"] == "b" else 0.5)
    for epoch in range(1, 6):
        report(epoch, v + 1.0 / epoch)
    return v


def run_toy(path: Path, tspec: TuneSpec, evaluate=toy, seed: int = 1):
    study = st.open_study(path, "toy", tspec, st.make_sampler(tspec, seed, 0), st.make_pruner(tspec, 5), True)
    ts.run_reproducible(study, tspec, evaluate, SINGLE, "toy", lambda: st.make_pruner(tspec, 5))
    return study


def table(study):
    """What must not change between runs: per trial, its state, settings, value and per-epoch reports."""
    return [(t.number, t.state.name, t.params, t.value, dict(t.intermediate_values))
            for t in sorted(study.get_trials(), key=lambda t: t.number)]


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_toy_optimum_is_found_within_the_budget(tmp_path, pruner):
    tspec = TuneSpec(trials=40, metric="val_loss", direction="minimize", space=SPACE, batch=4, pruner=pruner)
    study = run_toy(tmp_path / "toy.journal", tspec)
    assert len(study.get_trials()) == 40
    best = study.best_trial
    # a random search of 40 points in this box gets within 0.05 of the optimum with probability ~0.1
    assert best.value < 0.05 and best.params["c"] == "b", best
    assert abs(math.log10(best.params["lr"]) + 2.5) < 0.25 and abs(best.params["x"] - 0.3) < 0.2
    if pruner != "none":
        assert st.summary_counts(study).get("PRUNED", 0) > 0


def test_same_seed_same_study_other_seed_other_study(tmp_path):
    tspec = TuneSpec(trials=12, metric="val_loss", direction="minimize", space=SPACE, batch=3)
    a = table(run_toy(tmp_path / "a.journal", tspec))
    b = table(run_toy(tmp_path / "b.journal", tspec))
    c = table(run_toy(tmp_path / "c.journal", tspec, seed=2))
    assert a == b
    assert [t[2] for t in a] != [t[2] for t in c]


class Killed(BaseException):
    """Like SIGKILL: nothing of the run gets to clean up."""


@pytest.mark.parametrize("where", ["evaluate", "ask", "tell"])
def test_killed_study_resumes_to_the_uninterrupted_study(tmp_path, monkeypatch, where):
    """Killed in round 3 (trials 8..11) while evaluating trial 9, after asking trial 9 (10 and 11 not yet
    asked), or after telling trial 8: --resume keeps what was told, completes the round and gives the study an
    uninterrupted run gives."""
    import optuna
    tspec = TuneSpec(trials=14, metric="val_loss", direction="minimize", space=SPACE, batch=4, startup_trials=4,
                     warmup_epochs=1)
    whole = table(run_toy(tmp_path / "whole.journal", tspec))
    calls = []

    def counted(params, number, report):
        calls.append(number)
        if where == "evaluate" and number == 9 and not resumed:
            raise Killed
        return toy(params, number, report)
    real_ask, real_tell = optuna.Study.ask, ts._tell

    def ask(study, *a, **k):
        t = real_ask(study, *a, **k)
        if where == "ask" and t.number == 9 and not resumed:
            raise Killed
        return t

    def tell(study, trial_id, out):
        real_tell(study, trial_id, out)
        if where == "tell" and out.number == 8 and not resumed:
            raise Killed
    monkeypatch.setattr(optuna.Study, "ask", ask)
    monkeypatch.setattr(ts, "_tell", tell)
    path = tmp_path / "killed.journal"
    resumed = False
    with pytest.raises(Killed):
        run_toy(path, tspec, counted)
    calls.clear()
    resumed = True
    study = run_toy(path, tspec, counted)   # a fresh process: new study object, new sampler
    expected = {"evaluate": range(8, 14), "ask": range(8, 14), "tell": range(9, 14)}[where]
    assert calls == list(expected), calls   # finished trials are not repeated
    assert table(study) == whole


def test_free_workers_share_the_budget(tmp_path):
    tspec = TuneSpec(trials=10, metric="val_loss", direction="minimize", space=SPACE, mode="free")
    path = tmp_path / "free.journal"
    for worker in range(2):   # two workers one after the other: the second finds the budget spent
        study = st.open_study(path, "toy", tspec, st.make_sampler(tspec, 1, 0), st.make_pruner(tspec, 5), True)
        ts.run_free(study, tspec, toy, SINGLE, "toy", rerun_stale=worker == 0)
    assert len(study.get_trials()) == 10 and st.summary_counts(study).get("COMPLETE", 0) >= 5


def test_a_stop_between_rounds_resumes_to_the_uninterrupted_study(tmp_path):
    """SIGTERM / the Slurm time limit: the search stops after the current round (nothing left RUNNING) and
    --resume continues it to the uninterrupted study."""
    tspec = TuneSpec(trials=12, metric="val_loss", direction="minimize", space=SPACE, batch=4)
    whole = table(run_toy(tmp_path / "whole.journal", tspec))
    path = tmp_path / "stopped.journal"
    asked = []

    def stop_after_two_rounds():
        asked.append(1)
        return len(asked) > 2
    study = st.open_study(path, "toy", tspec, st.make_sampler(tspec, 1, 0), st.make_pruner(tspec, 5), True)
    assert not ts.run_reproducible(study, tspec, toy, SINGLE, "toy", lambda: st.make_pruner(tspec, 5),
                                   stop_after_two_rounds)
    assert sum(st.summary_counts(study).values()) == 8
    assert "RUNNING" not in st.summary_counts(study)
    assert table(run_toy(path, tspec)) == whole
