"""Seed 003's autoencoder options: L1 placement and target, RMSE loss, tied decoder, truncated-normal
initialisation, and greedy Gaussian-RBM pretraining copied into the network (unit level and through the
train stage)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hpc_rg.config import loads
from hpc_rg.learn import load_model
from hpc_rg.learn.autoencoder import Autoencoder
from hpc_rg.learn.data import ArraySource
from hpc_rg.learn.objectives import AutoencoderTask
from hpc_rg.learn.stage import run as run_train
from hpc_rg.parallel import World

SIZES = (36, 9, 4)


def _task(model, **kw):
    spins = np.where(np.random.default_rng(0).random((40, 36)) < 0.5, 1, -1).astype(np.int8)
    return AutoencoderTask(model, ArraySource(spins), np.arange(40), np.arange(0), torch.device("cpu"), **kw)


def test_l1_placement_and_target_cover_the_named_tensors():
    torch.manual_seed(0)
    ae = Autoencoder(SIZES)
    enc_w = sum(float(l.weight.abs().sum()) for l in ae.encoder)
    dec_w = sum(float(l.weight.abs().sum()) for l in ae.decoder)
    enc_b = sum(float(l.bias.abs().sum()) for l in ae.encoder)
    assert float(ae.l1("encoder", "weights")) == pytest.approx(enc_w, rel=1e-6)
    assert float(ae.l1("all", "weights")) == pytest.approx(enc_w + dec_w, rel=1e-6)
    assert float(ae.l1("encoder", "weights+biases")) == pytest.approx(enc_w + enc_b, rel=1e-6)
    assert float(ae.l1("none")) == 0.0
    x = torch.ones(3, 36)
    for placement, target, expect in (("encoder", "weights+biases", enc_w + enc_b), ("all", "weights", enc_w + dec_w),
                                      ("none", "weights", 0.0)):
        task = _task(ae, l1=1e-3, l1_placement=placement, l1_target=target)
        loss, m = task.loss(x, None, None)
        assert float(loss) == pytest.approx(m["mse"] + 1e-3 * expect, rel=1e-5)


def test_rmse_loss_is_the_root_of_the_mse():
    torch.manual_seed(1)
    task = _task(Autoencoder(SIZES), l1=0.0, loss="rmse")
    x = torch.where(torch.rand(5, 36) < 0.5, 1.0, -1.0)
    loss, m = task.loss(x, None, None)
    assert float(loss) == pytest.approx(m["mse"] ** 0.5, rel=1e-6)


def test_tied_decoder_uses_the_transposed_encoder():
    torch.manual_seed(2)
    ae = Autoencoder(SIZES, tied=True)
    assert all(l.weight is None for l in ae.decoder)
    assert len(ae.fine_tuned_parameters()) == 2 * 2 + 2         # encoder W, b per layer; decoder biases
    z = torch.rand(3, 4)
    h = torch.tanh(z @ ae.encoder[1].weight + ae.decoder[0].bias)
    assert torch.allclose(ae.decode(z), torch.tanh(h @ ae.encoder[0].weight + ae.decoder[1].bias), atol=1e-6)
    assert float(ae.l1("all", "weights")) == pytest.approx(float(ae.l1("encoder", "weights")))  # nothing else


def test_truncated_normal_init():
    torch.manual_seed(3)
    ae = Autoencoder((400, 200, 50), init="truncated_normal", init_scale=0.1)
    w = torch.cat([l.weight.flatten() for l in ae.linears()])
    assert float(w.abs().max()) <= 0.2
    assert float(w.std()) == pytest.approx(0.1 * 0.8796, rel=0.02)     # sd of a normal cut at ±2σ
    assert all(float(l.bias.abs().max()) == 0.0 for l in ae.linears())


@pytest.mark.parametrize("tied", [False, True])
def test_pretrained_rbms_become_the_encoder_and_decoder(tied):
    """After adoption the encoder's pre-activations are the RBMs' hidden inputs ((v/σ)W + b, then h W + b),
    and the last decoder layer's pre-activation is the Gaussian RBM's visible mean a + σ W h; adoption
    happens once."""
    torch.manual_seed(4)
    ae = Autoencoder(SIZES, tied=tied, pretraining="rbm", learn_sigma=True)
    with torch.no_grad():
        for rbm in ae.pretrain:
            rbm.W.normal_(0, 0.3); rbm.a.normal_(0, 0.2); rbm.b.normal_(0, 0.2)
        ae.pretrain[0].log_sigma.normal_(0, 0.2)
    assert ae.adopt_pretraining() and not ae.adopt_pretraining()
    g, r = ae.pretrain
    v = torch.randn(6, 36)
    with torch.no_grad():
        assert torch.allclose(ae.encoder[0](v), g.hidden_input(v), atol=1e-5)
        h = torch.rand(6, 9)
        assert torch.allclose(ae.encoder[1](h), h @ r.W + r.b, atol=1e-5)
        if not tied:       # (tied, the decoder reuses the encoder's W/σ: σ = 1 makes them agree)
            assert torch.allclose(ae.decoder[1](h), g.mean_v_given_h(h), atol=1e-5)
        z = torch.rand(6, 4)
        assert torch.allclose(torch.nn.functional.linear(z, ae._decoder_weight(0), ae.decoder[0].bias),
                              z @ r.W.T + r.a, atol=1e-5)


def test_stage_pretrains_then_fine_tunes(tmp_path, critical_ensemble):
    """A job with pretraining = "rbm": one Gaussian and one binary RBM phase (their own epochs), then the
    fine-tuning; the saved model starts from the pretrained weights and reloads with its options."""
    text = (f'[job]\nname = "t"\nseed = 5\nout = "run"\n[train.ae]\nkind = "autoencoder"\n'
            f'ensemble = "{critical_ensemble}"\nlayers = [729, 36, 9]\nepochs = 2\nbatch_size = 50\n'
            'optimizer = "sgd"\nlr = 0.01\nmomentum = 0.9\nl1 = 5e-5\nl1_placement = "encoder"\n'
            'l1_target = "weights+biases"\nloss = "rmse"\ninit = "truncated_normal"\ntied = true\n'
            'pretraining = "rbm"\npretrain_epochs = 1\npretrain_lr = 0.005\n')
    (tmp_path / "job.toml").write_text(text)
    cfg = loads(text, tmp_path / "job.toml")
    run_train(cfg, World(None, 0, 1), resume=False)
    model, meta = load_model(tmp_path / "run" / "models" / "ae.pt")
    assert model.tied and model.pretraining == "rbm" and int(model.adopted) == 1
    hist = meta["history"]
    assert [("test_free_energy" in h, "test_mse" in h) for h in hist] == [(True, False)] * 2 + [(False, True)] * 2
    assert all(np.isfinite(h["test_mse"]) for h in hist[2:])
    info = json.loads((tmp_path / "run" / "models" / "ae.json").read_text())
    assert info["config"]["l1_placement"] == "encoder" and info["config"]["loss"] == "rmse"
