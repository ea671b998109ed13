"""`hpc-rg tune`: the search engine on a toy objective (optimum found, kill + resume), the job tables (bad
entries are one line, exit 2, nothing written), the stage end to end (validation split off the training
data, tuned table loadable, retrain, outputs), and the reproducible mode identical on 1, 2 and 3 ranks."""
from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hpc_rg.config import loads

from hpc_rg.schema import ConfigError
from hpc_rg.tune import search as ts
from hpc_rg.tune.spec import SpaceEntry, TuneSpec
from hpc_rg.parallel import World

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
    study = ts.open_study(path, "toy", tspec, ts.make_sampler(tspec, seed, 0), ts.make_pruner(tspec, 5), True)
    ts.run_reproducible(study, tspec, evaluate, SINGLE, "toy", lambda: ts.make_pruner(tspec, 5))
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
        assert ts.summary_counts(study).get("PRUNED", 0) > 0


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


def test_tune_settings_are_checked(tmp_path):
    base = '[job]\nname = "t"\nseed = 1\n[train.ch1]\nkind = "coarse_cnn"\n[tune.ch1]\ntrials = 4\n'
    ok = loads(base + 'space.lr = {log = [1e-4, 3e-2]}\nspace.batch_size = {choice = [25, 50]}\n')
    t = ok.tune["ch1"]
    assert t.goal == "maximize" and [e.key for e in t.space] == ["lr", "batch_size"]
    assert ok.stages == ("train", "tune")
    assert loads(base + 'metric = "val_loss"\nspace.lr = {float = [1e-4, 3e-2]}\n').tune["ch1"].goal == "minimize"
    bad = [('space.lr = {log = [0, 3e-2]}', "tune.ch1.space.lr.log[0]"),
           ('space.lr = {log = [3e-2, 1e-3]}', "tune.ch1.space.lr.log"),
           ('space.lr = {lgo = [1e-3, 3e-2]}', "tune.ch1.space.lr.lgo"),
           ('space.lrr = {log = [1e-3, 3e-2]}', "tune.ch1.space.lrr"),
           ('space.n_test = {int = [10, 20]}', "tune.ch1.space.n_test"),
           ('space.epochs = {float = [1, 3]}', "tune.ch1.space.epochs.float"),
           ('space.batch_size = {choice = [0, 50]}', "tune.ch1.space.batch_size.choice[0]"),
           ('space.lr = [1e-3, 3e-2]', "tune.ch1.space.lr"),
           ('metric = "val_acc"\nspace.lr = {log = [1e-3, 3e-2]}', "tune.ch1.metric"),
           ('pruner = "meidan"\nspace.lr = {log = [1e-3, 3e-2]}', "tune.ch1.pruner"),
           ('', "tune.ch1.space")]
    for text, key in bad:
        with pytest.raises(ConfigError) as e:
            loads(base + text + "\n")
        assert key in str(e.value) and "\n" not in str(e.value), (text, str(e.value))
    with pytest.raises(ConfigError, match="tune.ch2"):
        loads(base.replace("[tune.ch1]", "[tune.ch2]") + 'space.lr = {log = [1e-4, 3e-2]}\n')


# ------------------------------------------------------------------------------------------ the stage
TINY = """[job]
name = "tiny"
seed = 5
out = "{out}"

[train.ch1]
kind = "coarse_cnn"
ensemble = "{ens}"
n_train = 300
n_test = 100
epochs = 3
batch_size = 20
repeats = 2

[tune.ch1]
trials = {trials}
batch = 4
startup_trials = 3
pruner = "{pruner}"
space.lr = {{log = [1e-3, 3e-2]}}
space.epochs = {{int = [2, 4]}}
space.batch_size = {{choice = [20, 50]}}
"""


def write_job(folder: Path, ens: Path, out: str, trials: int = 6, pruner: str = "hyperband", extra: str = "") -> Path:
    path = folder / f"{out}.toml"
    path.write_text(TINY.format(out=out, ens=ens, trials=trials, pruner=pruner) + extra)
    return path


def hpc_rg(*args, ranks: int = 1, cwd=None, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "hpc_rg", *map(str, args)]
    if ranks > 1:
        cmd = [str(Path(sys.executable).parent / "mpiexec"), "-n", str(ranks), *cmd]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_bad_space_entry_is_one_line_exit_2_before_any_work(tmp_path, critical_ensemble):
    job = write_job(tmp_path, critical_ensemble, "run", extra='space.momentum = {float = [0.0, 1.5]}\n')
    p = hpc_rg("tune", job)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "tune.ch1.space.momentum.float[1] = 1.5" in lines[0] and "<= 1" in lines[0], p.stderr
    assert not (tmp_path / "run").exists()


def test_stage_tunes_retrains_and_writes_its_outputs(tmp_path, critical_ensemble):
    from hpc_rg.tune.stage import _search_data, run as run_tune
    job = write_job(tmp_path, critical_ensemble, "run")
    cfg = loads(job.read_text(), job)
    # the search sees only the training patches: the validation part is taken from them
    from hpc_rg.learn.in_memory import model_data
    full = model_data(cfg, 0, "ch1", cfg.train["ch1"])
    search, _ = _search_data(cfg, SINGLE, 0, "ch1", cfg.train["ch1"], cfg.tune["ch1"])
    rows = {x.tobytes() for x in full["x_train"]}
    assert len(search["x_train"]) + len(search["x_test"]) == len(full["x_train"]) == 300
    assert len(search["x_test"]) == 60 and all(x.tobytes() in rows for x in search["x_test"])
    assert abs(search["y_test"].mean() - 0.5) < 0.05

    assert run_tune(cfg, SINGLE) == 0
    out = tmp_path / "run"
    with open(out / "tune" / "ch1.trials.csv") as f:
        trials = list(csv.DictReader(f))
    assert [int(r["number"]) for r in trials] == list(range(6))
    tuned_text = (out / "models" / "ch1.tuned.toml").read_text()
    tuned = loads('[job]\nname = "x"\nseed = 1\n' + tuned_text).train["ch1"]   # loadable as a train section
    import json
    summary = json.loads((out / "tune" / "ch1.json").read_text())
    best = trials[summary["best_trial"]]
    assert float(best["val_accuracy"]) == max(float(r["val_accuracy"]) for r in trials if r["state"] == "COMPLETE")
    assert set(summary["tuned_test"]) >= {"test_accuracy_mean", "test_accuracy_stderr"}
    assert tuned.lr == float(best["lr"]) and tuned.epochs == int(best["epochs"]) and tuned.repeats == 2
    assert (out / "models" / "ch1.tuned.pt").exists()
    for fig in ("history", "importance", "slices"):
        assert (out / "figures" / f"tune_ch1_{fig}.png").stat().st_size > 1000
    from hpc_rg.summary import status
    assert "tune ch1: 6 of 6 trials done" in status(out)

    # a second search in the same folder is refused before any work; --resume continues (nothing to do)
    from hpc_rg.io.run_folder import RunFolderError
    with pytest.raises(RunFolderError, match="--resume"):
        run_tune(cfg, SINGLE)
    assert run_tune(cfg, SINGLE, resume=True) == 0
    with open(out / "tune" / "ch1.trials.csv") as f:
        assert len(list(csv.DictReader(f))) == 6
    # a resumed study whose search settings changed is refused too
    job.write_text(job.read_text().replace("space.lr = {log = [1e-3, 3e-2]}", "space.lr = {log = [1e-4, 3e-2]}"))
    with pytest.raises(ConfigError, match="tune.ch1.space"):
        run_tune(loads(job.read_text(), job), SINGLE, resume=True)


def test_free_workers_share_the_budget(tmp_path):
    tspec = TuneSpec(trials=10, metric="val_loss", direction="minimize", space=SPACE, mode="free")
    path = tmp_path / "free.journal"
    for worker in range(2):   # two workers one after the other: the second finds the budget spent
        study = ts.open_study(path, "toy", tspec, ts.make_sampler(tspec, 1, 0), ts.make_pruner(tspec, 5), True)
        ts.run_free(study, tspec, toy, SINGLE, "toy", rerun_stale=worker == 0)
    assert len(study.get_trials()) == 10 and ts.summary_counts(study).get("COMPLETE", 0) >= 5


@pytest.mark.slow
def test_reproducible_mode_gives_the_same_study_on_1_2_and_3_ranks(tmp_path, critical_ensemble):
    """Rounds of 4 trials dealt 4 / 2+2 / 2+1+1 over the ranks, pruned (Hyperband) against the round's
    snapshot: every trial's settings, state, value and per-epoch reports agree exactly."""
    import optuna
    tables, tuned = [], []
    for ranks in (1, 2, 3):
        job = write_job(tmp_path, critical_ensemble, f"r{ranks}", trials=8)
        if ranks == 1:   # in this process (saves a start-up)
            from hpc_rg.tune.stage import run as run_tune
            assert run_tune(loads(job.read_text(), job), SINGLE) == 0
        else:
            p = hpc_rg("tune", job, ranks=ranks, cwd=tmp_path)
            assert p.returncode == 0, p.stdout + p.stderr
            assert f"over {ranks} rank(s)" in p.stderr
        j = tmp_path / f"r{ranks}" / "tune" / "ch1.journal"
        study = optuna.load_study(storage=ts.journal_storage(j), study_name="tiny.ch1")
        tables.append(table(study))
        tuned.append((tmp_path / f"r{ranks}" / "models" / "ch1.tuned.toml").read_text())
    assert len(tables[0]) == 8
    assert tables[1] == tables[0] and tables[2] == tables[0]
    assert tuned[1] == tuned[0] and tuned[2] == tuned[0]
    assert len({t[1] for t in tables[0]}) >= 1 and np.isfinite([t[3] for t in tables[0] if t[3] is not None]).all()


def test_seeds_average_trainings_and_the_first_drives_pruning(tmp_path, critical_ensemble):
    import dataclasses

    import torch

    from hpc_rg.tune.stage import _search_data, make_objective
    job = write_job(tmp_path, critical_ensemble, "run")
    cfg = loads(job.read_text(), job)
    spec, tspec = cfg.train["ch1"], cfg.tune["ch1"]
    data, _ = _search_data(cfg, SINGLE, 0, "ch1", spec, tspec)
    params = {"lr": 1e-2, "epochs": 3, "batch_size": 20}
    values = {}
    for seeds in (1, 2):
        reports = []
        evaluate = make_objective(cfg, 0, "ch1", spec, dataclasses.replace(tspec, seeds=seeds),
                                  data, torch.device("cpu"))
        values[seeds] = evaluate(params, 0, lambda step, v: reports.append((step, v)))
        assert [s for s, _ in reports] == [1, 2, 3]
        assert reports[-1][1] == values[1]          # the reports are the first training's
    second = 2 * values[2] - values[1]
    assert 0.0 <= second <= 1.0 and second != values[1]


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
    study = ts.open_study(path, "toy", tspec, ts.make_sampler(tspec, 1, 0), ts.make_pruner(tspec, 5), True)
    assert not ts.run_reproducible(study, tspec, toy, SINGLE, "toy", lambda: ts.make_pruner(tspec, 5),
                                   stop_after_two_rounds)
    assert sum(ts.summary_counts(study).values()) == 8
    assert "RUNNING" not in ts.summary_counts(study)
    assert table(run_toy(path, tspec)) == whole


@pytest.mark.slow
def test_sigterm_stops_after_the_round_with_exit_3_and_resume_finishes(tmp_path, critical_ensemble):
    import signal
    import time
    job = write_job(tmp_path, critical_ensemble, "run", trials=500, pruner="none")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-m", "hpc_rg", "tune", str(job)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    journal = tmp_path / "run" / "tune" / "ch1.journal"
    deadline = time.time() + 120
    while time.time() < deadline and not (journal.exists() and '"state":1' in journal.read_text()):
        time.sleep(0.2)   # until a trial is told (state 1 = COMPLETE in the journal's log)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 3, err
    assert "stopped between rounds" in err
    # resumed with a smaller budget: the study keeps its finished trials and is completed to 12
    job.write_text(job.read_text().replace("trials = 500", "trials = 12"))
    r = hpc_rg("tune", job, "--resume")
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "run" / "tune" / "ch1.trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 12 and all(row["state"] == "COMPLETE" for row in rows)
