"""Grouped training of coarse_cnn repeats (`hpc_rg.learn.batched_cnn`): K repeats trained as one batched
model must be the same training as K one-at-a-time `trainer.fit` runs (same initial weights, same
per-repeat batch order, same optimiser), up to float summation order; the stage deals fixed groups, writes
the per-repeat files in their usual form and resumes group by group."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from hpc_rg.config import loads

from hpc_rg.schema import ConfigError
from hpc_rg.learn import load_model
from hpc_rg.learn.batched_cnn import BatchedCoarseCNN, train_group, unfold_patches
from hpc_rg.learn.data import EnsembleSource, patch_dataset
from hpc_rg.learn.specs import CoarseCNNSpec
from hpc_rg.learn.stage import SINGLE, _model_and_tasks, _options
from hpc_rg.learn.stage import run as run_train
from hpc_rg.learn.trainer import State, fit

CPU = torch.device("cpu")
JOB_SEED, INDEX = 5, 1


def patches(ensemble, n_train, n_test, control=False):
    src = EnsembleSource(ensemble)
    data = patch_dataset(src, n_train, n_test, 3, np.random.SeedSequence(21), control)
    src.close()
    return data


def models_for(spec, data, repeats):
    return [_model_and_tasks("coarse_cnn", spec, data, CPU, JOB_SEED, INDEX, r)[0] for r in repeats]


def options_for(spec, repeats):
    return [_options(spec, JOB_SEED, INDEX, r, 0, "t", {}, verbose=False) for r in repeats]


def one_at_a_time(spec, data, r):
    model, tasks = _model_and_tasks("coarse_cnn", spec, data, CPU, JOB_SEED, INDEX, r)
    history = fit(tasks[0], SINGLE, _options(spec, JOB_SEED, INDEX, r, 0, "t", {}, verbose=False), State()).history
    return model, history[-1]


# Tolerance of the weight comparison. Both paths do the same float32 arithmetic in a different summation
# order (bmm over the stacked repeats vs conv2d / linear per model): the gradients agree to a few float32
# ulps (~1e-7 relative), but Adam divides by sqrt(v), so a gradient component that is a small difference of
# large terms can carry a larger relative error into an update of size ~lr. Over 8 steps this moves
# weights by at most ~1e-4 lr = 1e-6 (measured: <= 4e-7 absolute, <= 3e-6 relative on weights ~0.1-1);
# a different batch order or a wrong layout moves them by ~lr = 1e-2 (the negative control below).
RTOL, ATOL = 1e-5, 1e-6

VARIANTS = {
    "ch1": {},
    "ch3": {"channels": 3},
    "frozen": {"frozen": True},
    "ch1_relu_on_coarse": {"head": "relu_on_coarse"},
    "ch2_relu_on_coarse": {"channels": 2, "head": "relu_on_coarse"},
    "frozen_relu_on_coarse": {"frozen": True, "head": "relu_on_coarse"},
    "sgd_l2_schedule": {"channels": 2, "optimizer": "sgd", "momentum": 0.5, "lr": 0.05, "l2": 1e-3,
                        "lr_schedule": "exponential", "lr_gamma": 0.5},
}


@pytest.fixture(scope="module")
def small(critical_ensemble):
    return patches(critical_ensemble, 200, 100)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_group_equals_one_at_a_time(small, variant):
    spec = CoarseCNNSpec(n_train=200, n_test=100, epochs=2, repeats=3, group=3, **VARIANTS[variant])
    reps = [4, 5, 6]
    models = models_for(spec, small, reps)
    got = train_group(models, small, options_for(spec, reps))
    for r, model, metrics in zip(reps, models, got):
        ref, row = one_at_a_time(spec, small, r)
        sd, sd_ref = model.state_dict(), ref.state_dict()
        assert sd.keys() == sd_ref.keys()
        for k in sd:
            torch.testing.assert_close(sd[k], sd_ref[k], rtol=RTOL, atol=ATOL, msg=f"repeat {r} {k}")
        assert metrics["test_accuracy"] == row["test_accuracy"]
        for k in ("train_bce", "train_accuracy", "test_bce"):
            assert metrics[k] == pytest.approx(row[k], rel=1e-5), k
        assert list(metrics) == [k for k in row if k.startswith(("train_", "test_"))]
        if spec.frozen:
            assert torch.equal(model.conv.weight, ref.conv.weight) and not model.conv.bias.any()


def test_negative_control_other_batch_order_is_detected(small):
    """The tolerance above is discriminating: repeat 4's weights trained on repeat 5's batch order differ."""
    spec = CoarseCNNSpec(n_train=200, n_test=100, epochs=2, repeats=1, group=1)
    models = models_for(spec, small, [4])
    train_group(models, small, options_for(spec, [5]))
    ref, _ = one_at_a_time(spec, small, 4)
    w, w_ref = models[0].linears()[0].weight.detach(), ref.linears()[0].weight.detach()
    assert not torch.allclose(w, w_ref, rtol=RTOL, atol=ATOL)
    assert float((w - w_ref).abs().max()) > 100 * ATOL


@pytest.mark.parametrize("channels, head", [(1, "dense_input"), (3, "dense_input"), (2, "relu_on_coarse")])
def test_stacked_forward_and_unstack_are_the_coarse_cnns(small, channels, head):
    spec = CoarseCNNSpec(channels=channels, head=head)
    models = models_for(spec, small, range(3))
    net = BatchedCoarseCNN(models)
    x = torch.from_numpy(small["x_test"][:40].astype(np.float32))
    xu = unfold_patches(x, 3)
    logits = net(xu.expand(3, *xu.shape).contiguous())
    for k, m in enumerate(models):
        torch.testing.assert_close(logits[k], m(x), rtol=1e-5, atol=1e-6)
    fresh = models_for(replace(spec, hidden=spec.hidden), small, [7, 8, 9])
    net.unstack(fresh)
    for a, b in zip(fresh, models):
        for k, v in a.state_dict().items():
            assert torch.equal(v, b.state_dict()[k]), k


def test_group_trained_cnn_separates_and_control_is_chance(critical_ensemble):
    n_test = 1000
    spec = CoarseCNNSpec(n_train=2000, n_test=n_test, epochs=12, repeats=2, group=2)
    data = patches(critical_ensemble, 2000, n_test)
    got = train_group(models_for(spec, data, [0, 1]), data, options_for(spec, [0, 1]))
    assert min(m["test_accuracy"] for m in got) > 0.85
    ctrl = replace(spec, control=True, epochs=6)
    data = patches(critical_ensemble, 2000, n_test, control=True)
    got = train_group(models_for(ctrl, data, [0, 1]), data, options_for(ctrl, [0, 1]))
    # binomial error of an accuracy on n_test balanced patches at chance: sqrt(0.25 / n_test) ~ 0.016;
    # two repeats tested, so 4 sigma Bonferroni-widened a little (4.3 sigma ~ 2-sided 1e-5 per repeat)
    for m in got:
        assert abs(m["test_accuracy"] - 0.5) < 4.3 * np.sqrt(0.25 / n_test)


def _job(folder, ensemble, repeats, group):
    body = (f'[job]\nname = "g"\nseed = 2\nout = "{folder / "out"}"\n[train.cnn]\nkind = "coarse_cnn"\n'
            f'ensemble = "{ensemble}"\nn_train = 200\nn_test = 100\nepochs = 1\nrepeats = {repeats}\n'
            f'group = {group}\n')
    return loads(body, folder / "job.toml")


def test_stage_groups_files_and_resume(tmp_path, critical_ensemble):
    cfg = _job(tmp_path, critical_ensemble, 5, 2)
    run_train(cfg, SINGLE, resume=False)
    model, meta = load_model(tmp_path / "out" / "models" / "cnn.pt")
    assert [r["repeat"] for r in meta["repeats"]] == list(range(5))
    assert set(meta["repeats"][0]["metrics"]) == {"train_bce", "train_accuracy", "test_accuracy", "test_bce"}
    assert meta["repeats"][3]["kernel"].shape == (1, 3, 3)
    assert "test_accuracy_mean" in meta["metrics"]
    ref = [r["metrics"]["test_accuracy"] for r in meta["repeats"]]

    # resume: a complete group {0, 1} is loaded as it is (marked), an incomplete one {2, 3} is retrained
    folder = tmp_path / "out" / "models" / "cnn.repeats"
    folder.mkdir()
    for r in (0, 1, 2):
        torch.save({"repeat": r, "metrics": {"test_accuracy": -1.0}, "state_dict": model.state_dict(),
                    "kernel": torch.zeros((1, 3, 3))}, folder / f"{r:05d}.pt")
    (tmp_path / "out" / "models" / "cnn.pt").unlink()
    run_train(cfg, SINGLE, resume=True)
    _, again = load_model(tmp_path / "out" / "models" / "cnn.pt")
    acc = [r["metrics"]["test_accuracy"] for r in again["repeats"]]
    assert acc[:2] == [-1.0, -1.0] and acc[2:] == ref[2:]


def test_group_size_changes_only_summation_order(tmp_path, critical_ensemble):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    run_train(_job(tmp_path / "a", critical_ensemble, 3, 3), SINGLE, resume=False)
    run_train(_job(tmp_path / "b", critical_ensemble, 3, 1), SINGLE, resume=False)
    _, a = load_model(tmp_path / "a" / "out" / "models" / "cnn.pt")
    _, b = load_model(tmp_path / "b" / "out" / "models" / "cnn.pt")
    for ra, rb in zip(a["repeats"], b["repeats"]):
        assert ra["metrics"]["test_accuracy"] == rb["metrics"]["test_accuracy"]
        np.testing.assert_allclose(ra["kernel"], rb["kernel"], rtol=RTOL, atol=ATOL)


def test_group_must_be_positive(tmp_path, critical_ensemble):
    with pytest.raises(ConfigError):
        _job(tmp_path, critical_ensemble, 3, 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_group_on_gpu_equals_cpu(small):
    spec = CoarseCNNSpec(n_train=200, n_test=100, epochs=2, repeats=3, group=3, channels=2)
    reps = [0, 1, 2]
    cpu_models = models_for(spec, small, reps)
    cpu = train_group(cpu_models, small, options_for(spec, reps))
    gpu_models = [m.cuda() for m in models_for(spec, small, reps)]
    gpu = train_group(gpu_models, small, options_for(spec, reps), torch.device("cuda"))
    for a, b, ma, mb in zip(cpu_models, gpu_models, cpu, gpu):
        for k, v in a.state_dict().items():
            torch.testing.assert_close(b.state_dict()[k].cpu(), v, rtol=RTOL, atol=ATOL)
        assert ma["test_accuracy"] == mb["test_accuracy"]
