"""The train stage end to end: job file -> models/<name>.pt + .json, load_model, determinism, resume,
user errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import hpc_rg.learn.checkpoints as checkpoints
from hpc_rg.config import loads
from hpc_rg.schema import ConfigError
from hpc_rg.learn import load_model
from hpc_rg.learn.dbn import DBN
from hpc_rg.learn.rbm import RBM
from hpc_rg.learn.stage import run as run_train
from hpc_rg.parallel import World

SINGLE = World(None, 0, 1)


def job(tmp, ensemble, body: str, out="run"):
    text = f'[job]\nname = "t"\nseed = 11\nout = "{out}"\n' + body.replace("ENS", str(ensemble))
    path = tmp / "job.toml"
    path.write_text(text)
    return loads(text, path)


TABLES = """
[train.rbm]
kind = "rbm"
ensemble = "ENS"
n_hidden = 12
epochs = 3
batch_size = 40
persistent = true

[train.dbn]
kind = "dbn"
ensemble = "ENS"
temperatures = [2.269185314213022]
layers = [256, 64, 16]
epochs = 2
batch_size = 20

[train.ae]
kind = "autoencoder"
ensemble = "ENS"
layers = [256, 32, 8]
epochs = 2
batch_size = 20

[train.thermo]
kind = "thermometer"
ensemble = "ENS"
channels = 4
hidden = 8
epochs = 2
batch_size = 20

[train.cnn]
kind = "coarse_cnn"
ensemble = "ENS"
n_train = 200
n_test = 100
block = 2
epochs = 2
repeats = 3
"""


def test_stage_writes_loadable_models(tmp_path, ladder_ensemble):
    cfg = job(tmp_path, ladder_ensemble, TABLES)
    run_train(cfg, SINGLE, resume=False)
    models = cfg.out / "models"
    for name in ("rbm", "dbn", "ae", "thermo", "cnn"):
        meta = json.loads((models / f"{name}.json").read_text())
        assert meta["name"] == name and meta["config"]["kind"] == meta["kind"]
    assert not list(models.glob("*.ckpt.pt")) and not list(models.glob("*.repeats"))

    rbm, meta = load_model(models / "rbm.pt")
    assert isinstance(rbm, RBM) and rbm.units == "spin" and rbm.W.shape == (256, 12)
    assert len(meta["history"]) == 3 and meta["metrics"]["log_z_method"] == "exact"
    assert np.isfinite(meta["metrics"]["test_log_likelihood"])
    v = torch.ones(2, 256)
    assert rbm.p_h_given_v(v).shape == (2, 12) and rbm.sample_v(rbm.sample_h(v)).shape == (2, 256)
    assert set(rbm.sample_h(v).unique().tolist()) <= {-1.0, 1.0}

    dbn, meta = load_model(models / "dbn.pt")
    assert isinstance(dbn, DBN) and [w.shape for w in dbn.weights()] == [(256, 64), (64, 16)]
    assert [h["layer"] for h in meta["history"]] == [1, 1, 2, 2]
    assert dbn.reconstruct(torch.zeros(3, 256)).shape == (3, 256)
    assert dbn.receptive_fields(2).shape == (256, 16)

    thermo, meta = load_model(models / "thermo.pt")
    p, t_mean = thermo.predict_temperature(np.ones((5, 16, 16), np.int8))
    assert torch.allclose(p.sum(-1), torch.ones(5)) and t_mean.shape == (5,)
    assert thermo.temperatures.tolist() == pytest.approx([1.5, 2.269185314213022, 4.0])

    cnn, meta = load_model(models / "cnn.pt")
    assert cnn.kernel().shape == (1, 2, 2)
    assert [r["repeat"] for r in meta["repeats"]] == [0, 1, 2]
    assert "test_accuracy_mean" in meta["metrics"] and len(meta["repeats"][1]["kernel"]) == 1

    ae, _ = load_model(models / "ae.pt")
    assert ae(torch.ones(1, 256)).shape == (1, 256) and ae.encode(torch.ones(1, 256)).shape == (1, 8)


def test_same_job_same_weights_and_resume_continues(tmp_path, ladder_ensemble, monkeypatch):
    body = """
[train.dbn]
kind = "dbn"
ensemble = "ENS"
layers = [256, 32, 8]
epochs = 3
batch_size = 30
persistent = true
propagate = "sample"
"""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    cfg_a = job(tmp_path / "a", ladder_ensemble, body)
    run_train(cfg_a, SINGLE, resume=False)
    cfg_b = job(tmp_path / "b", ladder_ensemble, body)
    run_train(cfg_b, SINGLE, resume=False)
    a, meta_a = load_model(cfg_a.out / "models" / "dbn.pt")
    b, _ = load_model(cfg_b.out / "models" / "dbn.pt")
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(x, y)

    # interrupt during layer 2 (after its first epoch), then resume
    real = checkpoints.save
    calls = []

    def interrupting(obj, path):
        real(obj, path)
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "save", interrupting)
    cfg_c = job(tmp_path / "c", ladder_ensemble, body)
    with pytest.raises(KeyboardInterrupt):
        run_train(cfg_c, SINGLE, resume=False)
    monkeypatch.setattr(checkpoints, "save", real)
    assert (cfg_c.out / "models" / "dbn.ckpt.pt").exists()
    run_train(cfg_c, SINGLE, resume=True)
    c, meta_c = load_model(cfg_c.out / "models" / "dbn.pt")
    for x, y in zip(a.state_dict().values(), c.state_dict().values()):
        assert torch.allclose(x, y, atol=1e-6)
    assert [h["layer"] for h in meta_c["history"]] == [1, 1, 1, 2, 2, 2]
    # resume skips finished models
    mtime = (cfg_c.out / "models" / "dbn.pt").stat().st_mtime_ns
    run_train(cfg_c, SINGLE, resume=True)
    assert (cfg_c.out / "models" / "dbn.pt").stat().st_mtime_ns == mtime


def test_user_errors(tmp_path, ladder_ensemble):
    cfg = job(tmp_path, ladder_ensemble, '[train.x]\nkind = "dbn"\nensemble = "ENS"\nlayers = [100, 10]\n')
    with pytest.raises(ConfigError, match="layers"):
        run_train(cfg, SINGLE, resume=False)
    cfg = job(tmp_path, tmp_path / "missing.h5", '[train.x]\nkind = "rbm"\nensemble = "ENS"\n')
    with pytest.raises(ConfigError, match="ensemble"):
        run_train(cfg, SINGLE, resume=False)
    cfg = job(tmp_path, ladder_ensemble, '[train.x]\nkind = "rbm"\nensemble = "ENS"\ntemperatures = [3.0]\n')
    with pytest.raises(ConfigError, match="temperatures"):
        run_train(cfg, SINGLE, resume=False)
    with pytest.raises(ConfigError, match="channels"):
        job(tmp_path, ladder_ensemble, '[train.x]\nkind = "coarse_cnn"\nfrozen = true\nchannels = 2\n')
    with pytest.raises(ConfigError, match="did you mean"):
        job(tmp_path, ladder_ensemble, '[train.x]\nkind = "rbm"\nn_hiden = 3\n')


class _Payload:
    """Pickled into a planted checkpoint: unpickling it (weights_only=False) would create `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.mark.parametrize("planted", ["rbm.ckpt.pt", "cnn.repeats/00000.pt"])
def test_planted_checkpoint_is_refused_and_never_run(tmp_path, ladder_ensemble, planted):
    body = ('[train.rbm]\nkind = "rbm"\nensemble = "ENS"\nn_hidden = 4\nepochs = 1\nbatch_size = 40\n'
            'ais_runs = 0\n[train.cnn]\nkind = "coarse_cnn"\nensemble = "ENS"\nn_train = 40\nn_test = 20\n'
            'block = 2\nepochs = 1\nbatch_size = 20\nrepeats = 2\ngroup = 2\n')
    cfg = job(tmp_path, ladder_ensemble, body)
    path = cfg.out / "models" / planted
    path.parent.mkdir(parents=True)
    marker = tmp_path / "payload_ran"
    torch.save({"phase": 0, "epoch": 1, "history": [], "optimizer": None, "extra": {}, "state_dict": {},
                "repeat": 0, "metrics": {}, "payload": _Payload(marker)}, path)
    if planted.startswith("cnn"):
        torch.save({"repeat": 1, "metrics": {}, "state_dict": {}}, path.with_name("00001.pt"))
    with pytest.raises(ConfigError, match="not a checkpoint that hpc-rg can read safely") as err:
        run_train(cfg, SINGLE, resume=True)
    assert not marker.exists()
    assert path.name in str(err.value)


def test_checkpoints_hold_only_tensors_and_plain_values(tmp_path, ladder_ensemble, monkeypatch):
    # the per-epoch checkpoint of a persistent-CD RBM (chains, Adam state, history) loads with weights_only
    body = '[train.rbm]\nkind = "rbm"\nensemble = "ENS"\nn_hidden = 4\nepochs = 2\nbatch_size = 40\n' \
           'persistent = true\nais_runs = 0\n'
    cfg = job(tmp_path, ladder_ensemble, body)
    loaded = []
    real = checkpoints.save

    def save_and_reload(obj, path):
        real(obj, path)
        loaded.append(torch.load(path, weights_only=True))
    monkeypatch.setattr(checkpoints, "save", save_and_reload)
    run_train(cfg, SINGLE, resume=False)
    blob = loaded[-1]
    assert blob["epoch"] == 2 and isinstance(blob["extra"]["chains"], torch.Tensor)
    assert all(type(v) in (int, float, str) for row in blob["history"] for v in row.values())


def test_train_spec_in_memory_matches_the_stage_and_reports_every_epoch(tmp_path, ladder_ensemble):
    from hpc_rg.learn.in_memory import model_data, train_spec
    body = '[train.rbm]\nkind = "rbm"\nensemble = "ENS"\nn_hidden = 6\nepochs = 3\nbatch_size = 40\nais_runs = 0\n'
    cfg = job(tmp_path, ladder_ensemble, body)
    run_train(cfg, SINGLE, resume=False)
    ref, meta = load_model(cfg.out / "models" / "rbm.pt")
    rows = []
    model, history, metrics = train_spec(cfg, 0, "rbm", cfg.train["rbm"], on_epoch=rows.append)
    assert [r["epoch"] for r in rows] == [1, 2, 3] and len(history) == 3
    for k, v in ref.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    assert metrics["test_reconstruction"] == meta["metrics"]["test_reconstruction"]
    # a validation split of the training part: the table's test set stays unseen
    source, train_idx, test_idx = model_data(cfg, 0, "rbm", cfg.train["rbm"])
    try:
        _, val_history, _ = train_spec(cfg, 0, "rbm", cfg.train["rbm"],
                                       data=(source, train_idx[:400], train_idx[400:]))
    finally:
        source.close()
    assert val_history[-1]["test_reconstruction"] != history[-1]["test_reconstruction"]
