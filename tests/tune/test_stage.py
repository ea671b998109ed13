"""`hpc-rg tune`: a bad space entry is one line, exit 2, nothing written; the stage end to end (validation
split off the training data, tuned table loadable, retrain, outputs), the reproducible mode identical on 1, 2
and 3 ranks, seeds averaged, SIGTERM between rounds."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hpc_rg.config import loads
from hpc_rg.parallel import World
from hpc_rg.schema import ConfigError
from hpc_rg.tune import study as st
from tests.tune.test_search import table

SINGLE = World(None, 0, 1)


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
        study = optuna.load_study(storage=st.journal_storage(j), study_name="tiny.ch1")
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
