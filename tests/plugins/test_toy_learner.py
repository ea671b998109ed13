"""A model kind added from outside the package: its own file plus this test, nothing else edited.

The toy module below declares `PLUGINS = (Plugin("learner", ...),)` with its spec and learner beside it (torch
imported only when a model is built, so validating a job never imports it); the user names the module in
HPC_RG_PLUGINS, and `hpc-rg check` validates its table against the job's data, `hpc-rg train` trains it
through the train stage, and the model file it writes loads back."""
import subprocess
import sys

import torch

from tests.plugins.plugin_cli import hpc_rg, plugin_env

TOY = '''
import functools
import math
from dataclasses import dataclass
from typing import ClassVar

from hpc_rg.learn.learner import Learner
from hpc_rg.learn.specs import TrainSpec
from hpc_rg.plugins import Plugin
from hpc_rg.schema import spec

PLUGINS = (Plugin("learner", "toy_pca", "ToyPCALearner", spec="ToyPCASpec",
                  doc="a tied linear autoencoder (a toy)"),)


@dataclass(frozen=True)
class ToyPCASpec(TrainSpec):
    tune_metrics: ClassVar[dict] = {"val_mse": "minimize"}
    components: int = spec(2, min=1, doc="linear components")
    batch_size: int = spec(10, min=1, doc="global mini-batch size")

    def check_data(self, shape, temperatures, source):
        if self.components > math.prod(shape):
            return "components", self.components, f"at most the {math.prod(shape)} sites of {source}"
        return None


@functools.cache
def _classes():
    import torch
    from hpc_rg.learn.objectives import LatticeVectors

    class ToyPCA(torch.nn.Module):
        def __init__(self, n_visible, components):
            super().__init__()
            self.n_visible, self.components = n_visible, components
            self.W = torch.nn.Parameter(0.1 * torch.randn(n_visible, components))

        def args(self):
            return {"n_visible": self.n_visible, "components": self.components}

        def forward(self, x):
            return torch.tanh(x @ self.W @ self.W.T)

    class ToyPCATask(LatticeVectors):
        def __init__(self, model, source, train_idx, test_idx, device):
            super().__init__(source, train_idx, test_idx, device)
            self.model = self.trainable = model

        def loss(self, x, y, noise):
            mse = ((self.model(x) - x) ** 2).mean()
            return mse, {"mse": mse.item()}

        def eval_keys(self):
            return ["mse"]

        def eval_sums(self, x, y, noise):
            return {"mse": ((self.model(x) - x) ** 2).mean(-1).sum()}

    return ToyPCA, ToyPCATask


class ToyPCALearner(Learner):
    @classmethod
    def build(cls, args):
        return _classes()[0](**args)

    def model_args(self, lattice_shape, temperatures):
        return {"n_visible": math.prod(lattice_shape), "components": self.spec.components}

    def tasks(self, model, data, device):
        return [_classes()[1](model, *data, device)]
'''

JOB = '''
[job]
name = "toy"
seed = 7
out = "run"
[simulate]
model = "ising2d"
L = 8
temperatures = [2.0, 3.0]
chains = 2
thermalize = 50
samples = 20
thin = 2
[train.pca]
kind = "toy_pca"
components = {components}
epochs = 3
'''


def _env(tmp_path):
    return plugin_env(tmp_path, "toy_learner_plugin")


def _cli(tmp_path, *args):
    return hpc_rg(tmp_path, "toy_learner_plugin", *args)


def test_a_toy_learner_plugin_trains_end_to_end(tmp_path, monkeypatch):
    (tmp_path / "toy_learner_plugin.py").write_text(TOY)
    (tmp_path / "bad.toml").write_text(JOB.format(components=100))    # more components than the 64 sites
    bad = _cli(tmp_path, "check", "bad.toml")
    assert bad.returncode == 2 and "train.pca.components = 100" in bad.stderr and "64 sites" in bad.stderr, \
        bad.stderr
    (tmp_path / "job.toml").write_text(JOB.format(components=3))
    # validating the job reads the toy's spec (torch is not imported); SPECS lists the new kind
    probe = subprocess.run([sys.executable, "-c", "import sys; from hpc_rg.config import load; load('job.toml'); "
                            "from hpc_rg.learn.specs import SPECS; print(sorted(SPECS), 'torch' in sys.modules)"],
                           cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert "'toy_pca'" in probe.stdout and probe.stdout.split()[-1] == "False", probe.stdout + probe.stderr
    for stage in ("simulate", "train"):
        run = _cli(tmp_path, stage, "job.toml")
        assert run.returncode == 0, run.stderr
    # read back here, as the analyze stage would: the plugin is found by the same variable
    monkeypatch.setenv("HPC_RG_PLUGINS", "toy_learner_plugin")
    monkeypatch.syspath_prepend(str(tmp_path))
    from hpc_rg import plugins
    from hpc_rg.learn import load_model
    monkeypatch.setattr(plugins, "_FOUND", None)
    try:
        model, meta = load_model(tmp_path / "run" / "models" / "pca.pt")
    finally:
        plugins._FOUND = None      # forget the toy for the tests that follow
    assert meta["kind"] == "toy_pca" and meta["args"] == {"n_visible": 64, "components": 3}
    assert [row["epoch"] for row in meta["history"]] == [1, 2, 3] and meta["metrics"]["test_mse"] > 0
    assert meta["data"]["n_train"] + meta["data"]["n_test"] == 2 * 2 * 20
    blob = torch.load(tmp_path / "run" / "models" / "pca.pt", weights_only=True)
    assert torch.equal(model.W.detach(), blob["state_dict"]["W"])
