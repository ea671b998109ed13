"""Training on any number of ranks (serial tests that launch `mpiexec -n K` themselves, oversubscribed).

- `trainer.fit` over K = 2, 3, 4, 7 ranks with global batches that do not divide K (and one smaller than K,
  so that ranks sit out every step) gives the one-rank training, to float summation order.
- The train stage at 1, 3 and 4 ranks gives the same models: the quickstart's small models are trained
  task-parallel (bit for bit), a larger one data-parallel (to float summation order).
- The whole quickstart pipeline at 8 ranks on a shrunk copy of jobs/quickstart.toml (slow).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
MPIEXEC = Path(sys.executable).parent / "mpiexec"
WORKER = Path(__file__).with_name("any_ranks_worker.py")

pytestmark = pytest.mark.skipif(not MPIEXEC.exists(), reason="no mpiexec beside the interpreter")


def launch(ranks: int, *args, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    cmd = [str(MPIEXEC), "-n", str(ranks), sys.executable, *map(str, args)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def one_rank_fit(tmp_path_factory):
    out = tmp_path_factory.mktemp("fit") / "1.npz"
    launch(1, WORKER, out)
    return dict(np.load(out))


@pytest.mark.parametrize("ranks", [2, 3, 4, pytest.param(7, marks=pytest.mark.slow)])
def test_fit_on_any_rank_count_equals_one_rank(ranks, one_rank_fit, tmp_path):
    out = tmp_path / f"{ranks}.npz"
    launch(ranks, WORKER, out)
    got = dict(np.load(out))
    assert got.keys() == one_rank_fit.keys()
    for key, ref in one_rank_fit.items():
        assert np.allclose(got[key], ref, rtol=1e-5, atol=1e-5), (key, np.abs(got[key] - ref).max())
    # the models moved away from their initial weights (the comparison is between trained models)
    assert np.abs(one_rank_fit["rbm_b11_p0/W"]).max() > 0.1


def quickstart_train_tables() -> str:
    """The [train.*] tables of jobs/quickstart.toml, verbatim."""
    text = (ROOT / "jobs" / "quickstart.toml").read_text()
    start = text.index("[train.")
    end = text.index("[analyze.")
    return text[start:end]


TRAIN_JOB = """[job]
name = "anyranks"
seed = 5
out = "OUT"

[train.wide]                # above DDP_MIN_PARAMETERS: data-parallel over all ranks
kind = "autoencoder"
layers = [256, 800, 16]
epochs = 2
batch_size = 30
optimizer = "sgd"           # Adam's first steps are lr * sign(g): a gradient that rounds to about zero
lr = 0.05                   # would flip with the summation order
momentum = 0.5

""" + "TABLES"


@pytest.mark.slow
def test_train_stage_on_any_rank_count_gives_the_same_models(tmp_path, ladder_ensemble):
    from hpc_rg.learn import load_model
    tables = quickstart_train_tables().replace("epochs = 20", "epochs = 3").replace("epochs = 10", "epochs = 2")
    models = {}
    for ranks in (1, 3, 4):
        out = tmp_path / f"n{ranks}"
        out.mkdir()
        job = tmp_path / f"job{ranks}.toml"
        # every table reads the shared ensemble by path (a symlink in a run folder is refused)
        text = TRAIN_JOB.replace("OUT", str(out)).replace("TABLES", tables)
        text = re.sub(r'^(kind = "\w+".*)$', lambda mt: f'{mt.group(1)}\nensemble = "{ladder_ensemble}"', text,
                      flags=re.M)
        job.write_text(text)
        proc = launch(ranks, "-m", "hpc_rg", "train", job)
        assert "data-parallel over all ranks: wide" in proc.stderr
        assert "task-parallel" in proc.stderr
        models[ranks] = {name: load_model(out / "models" / f"{name}.pt")[0].state_dict()
                         for name in ("wide", "rbm", "dbn", "thermometer")}
    for ranks in (3, 4):
        for name, ref in models[1].items():
            for k, v in ref.items():
                got = models[ranks][name][k]
                if name == "wide":   # data-parallel: the ranks sum in another order
                    assert torch.allclose(got, v, rtol=1e-5, atol=1e-5), (ranks, name, k)
                else:                # task-parallel: the very same computation on some rank
                    assert torch.equal(got, v), (ranks, name, k)


def shrunk_quickstart(out: Path) -> str:
    """jobs/quickstart.toml with fewer samples and epochs (the same stages, models and reductions)."""
    text = (ROOT / "jobs" / "quickstart.toml").read_text()
    subs = {r'out = ".*"': f'out = "{out}"', r"thermalize = \d+": "thermalize = 100",
            r"samples = \d+": "samples = 40", r"chains = \d+": "chains = 2", r"epochs = \d+": "epochs = 2",
            r"n_boot = \d+": "n_boot = 10"}
    for pattern, repl in subs.items():
        text, n = re.subn(pattern, repl, text)
        assert n, pattern
    return text


@pytest.mark.slow
def test_quickstart_pipeline_on_8_ranks(tmp_path):
    job = tmp_path / "quickstart.toml"
    job.write_text(shrunk_quickstart(tmp_path / "run"))
    proc = launch(8, "-m", "hpc_rg", "run", job, timeout=300)
    run = tmp_path / "run"
    for name in ("rbm", "dbn", "thermometer"):
        assert (run / "models" / f"{name}.pt").exists(), name
    assert (run / "results.h5").exists() and (run / "report.md").exists()
    assert "5 idle" in proc.stderr     # three small models on eight ranks: task-parallel
