"""RBM against exact enumeration: log Z, gradients, pseudo-likelihood, AIS, and CD-k learning a known RBM."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from hpc_rg.learn.data import ArraySource
from hpc_rg.learn.objectives import RBMTask
from hpc_rg.learn.rbm import RBM, base_bias_from_data
from hpc_rg.learn.trainer import Options, fit
from hpc_rg.parallel import World

SINGLE = World(None, 0, 1)


def tiny(units, n_v=5, n_h=3, scale=0.7, seed=0):
    torch.manual_seed(seed)
    rbm = RBM(n_v, n_h, units).double()
    with torch.no_grad():
        rbm.W.normal_(0, scale)
        rbm.a.normal_(0, 0.5)
        rbm.b.normal_(0, 0.5)
    return rbm


def brute_log_z(rbm):
    """log sum over the joint (v, h) states of exp(-E)."""
    vals = rbm.unit_values()
    v = torch.tensor(list(itertools.product(vals, repeat=rbm.n_visible)), dtype=torch.float64)
    h = torch.tensor(list(itertools.product(vals, repeat=rbm.n_hidden)), dtype=torch.float64)
    vv = v.repeat_interleave(len(h), 0)
    hh = h.repeat(len(v), 1)
    return torch.logsumexp(-rbm.energy(vv, hh), 0)


@pytest.mark.parametrize("units", ["binary", "spin"])
def test_log_z_both_enumerations_match_joint_sum(units):
    for n_v, n_h in ((5, 3), (3, 5)):
        rbm = tiny(units, n_v, n_h)
        with torch.no_grad():
            assert float(rbm.exact_log_z()) == pytest.approx(float(brute_log_z(rbm)), abs=1e-10)


@pytest.mark.parametrize("units", ["binary", "spin"])
def test_gradient_matches_finite_differences_of_exact_log_likelihood(units):
    rbm = tiny(units)
    gen = torch.Generator().manual_seed(3)
    lo, hi = rbm.unit_values()
    data = torch.where(torch.rand(40, rbm.n_visible, generator=gen, dtype=torch.float64) < 0.7, hi, lo).double()
    grad = rbm.exact_gradient(data)
    eps = 1e-6
    for name in ("W", "a", "b"):
        p = getattr(rbm, name)
        fd = torch.zeros_like(p)
        with torch.no_grad():
            for i in range(p.numel()):
                old = p.view(-1)[i].item()
                p.view(-1)[i] = old + eps
                up = rbm.exact_log_likelihood(data).item()
                p.view(-1)[i] = old - eps
                down = rbm.exact_log_likelihood(data).item()
                p.view(-1)[i] = old
                fd.view(-1)[i] = (up - down) / (2 * eps)
        assert torch.allclose(grad[name], fd, atol=1e-7), name
    # the training surrogate with exact model samples (weights p(v)) has gradient -grad
    v, prob = rbm.visible_distribution()
    loss = rbm.free_energy(data).mean() - (prob.detach() * rbm.free_energy(v)).sum()
    loss.backward()
    for name in ("W", "a", "b"):
        assert torch.allclose(-getattr(rbm, name).grad, grad[name], atol=1e-12), name


@pytest.mark.parametrize("units", ["binary", "spin"])
def test_pseudo_likelihood_is_exact_conditional(units):
    rbm = tiny(units)
    v, prob = rbm.visible_distribution()
    with torch.no_grad():
        for i in range(rbm.n_visible):
            sites = torch.full((len(v),), i)
            pl = rbm.pseudo_log_likelihood(v, sites) / rbm.n_visible
            # p(v_i | v_-i) from the joint table
            flipped = v.clone()
            flipped[:, i] = rbm.flip(v[:, i])
            idx = {tuple(row.tolist()): k for k, row in enumerate(v)}
            p_flip = prob[[idx[tuple(r.tolist())] for r in flipped]]
            assert torch.allclose(pl, torch.log(prob / (prob + p_flip)), atol=1e-12)


@pytest.mark.parametrize("units", ["binary", "spin"])
def test_ais_log_z_within_error_of_exact(units):
    rbm = tiny(units, n_v=14, n_h=10, scale=0.3, seed=2)
    exact = float(rbm.exact_log_z().detach())
    gen = torch.Generator().manual_seed(11)
    v, p = rbm.visible_distribution()
    base = base_bias_from_data((p[:, None] * v).sum(0), units)
    est, rel = rbm.ais_log_z(n_runs=200, n_betas=300, base_bias=base, generator=gen)
    # rel is the relative error of the mean importance weight = the error of log Z (delta method)
    assert abs(est - exact) < max(4 * rel, 1e-3), (est, exact, rel)
    assert abs(est - exact) < 0.05


def exact_kl(p_true: torch.Tensor, rbm: RBM) -> float:
    with torch.no_grad():
        _, q = rbm.visible_distribution()
    return float((p_true * (torch.log(p_true) - torch.log(q))).sum())


@pytest.mark.parametrize("units,persistent", [("spin", False), ("binary", True)])
def test_cd_recovers_known_rbm(units, persistent):
    """Data drawn exactly from a known 6-3 RBM; CD-5 (or PCD) training reaches an exact
    KL(p_true || p_model) below 0.02 nats, from an initial KL above 0.2."""
    true = tiny(units, n_v=6, n_h=3, scale=1.0, seed=5)
    states, p_true = true.visible_distribution()
    p_true = p_true.detach()
    rng = np.random.default_rng(9)
    n = 4000
    draws = rng.choice(len(states), size=n, p=p_true.numpy() / p_true.numpy().sum())
    data = states[draws].numpy()
    spins = (data if units == "spin" else 2 * data - 1).astype(np.int8)   # sources hold ±1 spins
    torch.manual_seed(1)
    model = RBM(6, 3, units)
    kl0 = exact_kl(p_true.float(), model)
    task = RBMTask(model, ArraySource(spins), np.arange(n), np.arange(0), torch.device("cpu"), units,
                   cd_k=5, persistent=persistent)
    opts = Options(epochs=20, batch_size=100, optimizer="adam", lr=0.03, lr_schedule="cosine", job_seed=4,
                   key=(0, 0, 0))
    fit(task, SINGLE, opts)
    kl = exact_kl(p_true.float(), model)
    # sampling noise alone gives ~ (#params)/(2n) = 27/8000 ~ 0.003 nats
    assert kl0 > 0.2, kl0
    assert kl < 0.02, kl


def test_cd_statistics_surrogate_and_infinite_k_limit():
    """The surrogate's gradient is exactly -grads; and CD-k from exact model samples has expectation equal
    to the exact gradient: averaged over many chains with large k it matches within 4 standard errors."""
    rbm = tiny("spin", n_v=5, n_h=3, scale=0.5, seed=8).float()
    gen = torch.Generator().manual_seed(0)
    data = torch.where(torch.rand(20000, 5, generator=gen) < 0.6, 1.0, -1.0)
    grads, _, _ = rbm.cd_statistics(data, k=30, noise=lambda n: torch.rand(len(data), n, generator=gen))
    rbm.surrogate(grads).backward()
    for name in ("W", "a", "b"):
        assert torch.equal(getattr(rbm, name).grad, -grads[name])
    exact = rbm.exact_gradient(data)
    # per-chain spread of the negative-phase statistics bounds the error of their mean (|v h| <= 1)
    err = 4 * 1.0 / math.sqrt(len(data))
    for name in ("W", "a", "b"):
        assert torch.allclose(grads[name], exact[name], atol=err), (name, (grads[name] - exact[name]).abs().max())


@pytest.mark.gpu
def test_rbm_trains_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    dev = torch.device("cuda")
    rng = np.random.default_rng(0)
    spins = np.where(rng.random((400, 64)) < 0.7, 1, -1).astype(np.int8)
    torch.manual_seed(0)
    rbm = RBM(64, 16, "spin").to(dev)
    task = RBMTask(rbm, ArraySource(spins), np.arange(300), np.arange(300, 400), dev, "spin", persistent=True)
    state = fit(task, SINGLE, Options(epochs=2, batch_size=50, job_seed=1, key=(0, 0, 0)))
    assert rbm.W.device.type == "cuda" and np.isfinite(state.history[-1]["test_free_energy"])


class _Recording(RBMTask):
    """Records the weights each update starts from (the previous update's result)."""

    def gradients(self, x, y, noise, weight=1.0):
        self.seen.append(self.rbm.W.detach().double().clone())
        return super().gradients(x, y, noise, weight)


def _trained(average_last, epochs=4, record=False):
    rng = np.random.default_rng(2)
    spins = np.where(rng.random((300, 8)) < 0.6, 1, -1).astype(np.int8)
    torch.manual_seed(3)
    rbm = RBM(8, 4, "binary")
    cls = _Recording if record else RBMTask
    task = cls(rbm, ArraySource(spins), np.arange(300), np.arange(0), torch.device("cpu"), "binary",
               average_last=average_last)
    task.seen = []
    fit(task, SINGLE, Options(epochs=epochs, batch_size=50, optimizer="sgd", lr=0.1, momentum=0.5, job_seed=5,
                              key=(0, 0, 0)))
    return rbm, task


def test_weight_averaging_over_last_epochs_is_the_mean_after_each_update():
    """matrbm's avglast: the weights become the mean of the weights after every update of the last k
    epochs (6 updates per epoch here); the updates themselves are unchanged by the averaging."""
    epochs, k, per_epoch = 4, 2, 6
    plain, rec = _trained(0, epochs, record=True)
    after = rec.seen[1:] + [plain.W.detach().double()]       # the weights after update 1, 2, ..., n
    assert len(after) == epochs * per_epoch
    expected = torch.stack(after[-k * per_epoch:]).mean(0)
    avg, _ = _trained(k, epochs)
    assert torch.allclose(avg.W.double(), expected, atol=1e-6)
    assert not torch.allclose(avg.W.double(), plain.W.double(), atol=1e-4)   # the average is not the end point
    late, _ = _trained(epochs - 1, epochs)                  # the window may start after the first epoch
    assert torch.allclose(late.W.double(), torch.stack(after[per_epoch:]).mean(0), atol=1e-6)


def test_weight_averaging_survives_a_checkpoint_inside_the_window():
    """state() / load_state() carry the running sums: a task restored mid-window ends where the original
    does (the stage gathers each entry over ranks and splits it again)."""
    _, task = _trained(0)
    task.average_last = 2
    task.end_epoch(2, 4)                       # open the window
    task._average_step(); task._average_step(); task._average_step()
    st = {k: (None if v is None else np.concatenate([v, v])) for k, v in task.state().items()}   # 2 "ranks"
    twin = RBMTask(task.rbm, task.source, task.train_idx, task.test_idx, task.device, "binary", average_last=2)
    twin.load_state(st, World(None, 1, 2))
    assert (twin.avg_n, twin.avg_on, twin.avg_skip) == (task.avg_n, task.avg_on, task.avg_skip) == (2, True, False)
    assert all(torch.equal(twin.avg[k], task.avg[k]) for k in ("W", "a", "b"))


def test_dbn_init_scale_option():
    """matrbm initialises W with 0.1·randn; the default stays 0.01."""
    from hpc_rg.learn.dbn import DBN
    torch.manual_seed(0)
    assert float(DBN([400, 100], init_scale=0.1).rbms[0].W.std()) == pytest.approx(0.1, rel=0.03)
    assert float(DBN([400, 100]).rbms[0].W.std()) == pytest.approx(0.01, rel=0.03)


def test_average_last_longer_than_training_is_a_config_error():
    from hpc_rg.config import _named_tables
    from hpc_rg.schema import ConfigError
    from hpc_rg.learn.specs import SPECS
    tables = {"d": {"kind": "dbn", "layers": [16, 4], "epochs": 3, "average_last": 5}}
    with pytest.raises(ConfigError, match="average_last"):
        _named_tables("train", tables, "job.toml", SPECS, "kind")
    tables["d"]["average_last"] = 3           # the window opens at the end of an epoch: at most epochs - 1
    with pytest.raises(ConfigError, match="average_last"):
        _named_tables("train", tables, "job.toml", SPECS, "kind")
    tables["d"]["average_last"] = 2
    assert _named_tables("train", tables, "job.toml", SPECS, "kind")["d"].average_last == 2
