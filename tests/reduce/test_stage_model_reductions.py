"""Reconstruction errors of models with known answers, and every diagnostic from a job file through
`run_analyze`: results.h5 groups with error bars, figures, job validation of the new tables."""
import math

import h5py
import numpy as np
import pytest
import torch

from model_helpers import T_C, context, save, spec_of, wolff_samples, write
from hpc_rg.config import loads
from hpc_rg.schema import ConfigError
from hpc_rg.learn.coarse_cnn import CoarseCNN
from hpc_rg.learn.dbn import DBN
from hpc_rg.learn.rbm import RBM
from hpc_rg.learn.thermometer import Thermometer
from hpc_rg.parallel import World
from hpc_rg.reduce.stage import run as run_stage


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipe") / "run"
    out.mkdir()
    temps = [2.0, T_C, 2.6]
    spins = np.stack([np.stack([wolff_samples(8, T, 64, seed=10 * t + c) for c in range(2)])
                      for t, T in enumerate(temps)])
    write(out / "ensemble.h5", temps, spins, "ising2d")
    torch.manual_seed(0)
    dbn = DBN([64, 16, 4], units="binary").double()
    save(out, "dbn", "dbn", dbn, (8, 8))
    ident = DBN([64, 64, 64], units="spin").double()
    with torch.no_grad():
        for r in ident.rbms:
            r.W.copy_(5 * torch.eye(64, dtype=torch.float64))
    save(out, "ident", "dbn", ident, (8, 8))
    with torch.no_grad():
        blank = RBM(64, 16).double()
        blank.W.zero_()
    save(out, "blank", "rbm", blank, (8, 8))
    save(out, "rbm", "rbm", RBM(64, 36, init_scale=0.3).double(), (8, 8))
    save(out, "thermo", "thermometer", Thermometer(temps, channels=4, hidden=8).double(), (8, 8))
    reps = [{"repeat": r, "metrics": {"test_accuracy": 0.8 + 0.01 * r},
             "kernel": np.random.default_rng(r).normal(size=(2, 2, 2))} for r in range(4)]
    save(out, "cnn", "coarse_cnn", CoarseCNN(2, 2), (8, 8), repeats=reps)
    return out


def test_reconstruction_exact_errors(run_dir, reductions):
    res = reductions["reconstructions"](spec_of("reconstructions", model="ident"), context(run_dir))
    mse, e = res.values["mse"]
    ref = (1 - math.tanh(5 * math.tanh(5))) ** 2          # up: tanh(5 s); down: tanh(5 tanh(5 s)) (float32 5)
    assert mse[:, 0] == pytest.approx(ref, rel=1e-5)
    assert np.all(res.values["mismatch"][0] == 0)
    res = reductions["reconstructions"](spec_of("reconstructions", model="blank"), context(run_dir))
    assert np.all(res.values["mse"][0] == 1.0) and np.all(res.values["mismatch"][0] == 1.0)


JOB = """
[job]
name = "diag"
seed = 5
out = "{out}"
[analyze.receptive_fields]
model = "dbn"
[analyze.reconstructions]
model = "dbn"
show = 2
[analyze.rbm_flow]
model = "rbm"
thermometer = "thermo"
temperatures = [2.0, 2.6]
lengths = [0, 1, 5]
n_blocks = 4
batch = 32
[analyze.vh_correlators]
model = "dbn"
thermometer = "thermo"
temperatures = [2.269]
rg_steps = 2
n_blocks = 2
[analyze.thermometer_calibration]
thermometer = "thermo"
n_blocks = 4
[analyze.learned_coarse_graining]
models = ["cnn"]
n_boot = 10
n_blocks = 4
"""


def test_job_to_results_and_figures(run_dir, reductions):
    cfg = loads(JOB.format(out=run_dir), run_dir.parent / "job.toml")
    run_stage(cfg, World(None, 0, 1))
    with h5py.File(run_dir / "results.h5") as f:
        for name in ("receptive_fields", "reconstructions", "rbm_flow", "vh_correlators",
                     "thermometer_calibration", "learned_coarse_graining"):
            assert name in f
        assert "delta_s_err" in f["rbm_flow"] and f["rbm_flow/T_thermo"].shape == (2, 3)
        assert f["vh_correlators/rg_T_thermo"].shape == (1, 3)
        assert f["vh_correlators/rbm_T_thermo"].shape == (1, 2)
        assert f["vh_correlators/rbm_radius"].shape == (1, 2)
        assert f["learned_coarse_graining/kernel_mean_cnn"].shape == (2, 2, 2)
    figs = {p.name for p in (run_dir / "figures").glob("*.png")}
    for name in ("receptive_fields_layer1.png", "receptive_fields_locality.png", "reconstruction_error.png",
                 "rbm_flow.png", "rbm_flow_temperature.png", "vh_locality.png", "vh_rg1.png",
                 "vh_temperature.png", "thermometer_calibration.png", "learned_coarse_graining.png"):
        assert name in figs


def test_bad_tables_are_config_errors(run_dir, reductions):
    with pytest.raises(ConfigError):
        loads(JOB.format(out=run_dir).replace("lengths = [0, 1, 5]", "lengths = [5, 1]"), run_dir / "j.toml")
    with pytest.raises(ConfigError):
        loads(JOB.format(out=run_dir).replace('models = ["cnn"]', 'models = ["cnn"]\nkernel = 3'), run_dir / "j.toml")
    cfg = loads(JOB.format(out=run_dir).replace('model = "dbn"\nshow', 'model = "nothere"\nshow'), run_dir / "j.toml")
    with pytest.raises(ConfigError):
        reductions["reconstructions"](cfg.analyze["reconstructions"], context(run_dir))
