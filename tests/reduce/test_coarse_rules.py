"""coarse_rules and neural_mi reductions: pseudo-likelihood couplings against the exact nearest-neighbour
Hamiltonian, and both reductions end to end from a job file (a trained-model rule equal to majority gives
majority's numbers)."""
import math

import numpy as np
import pytest
import torch

from hpc_rg.config import loads

from hpc_rg.schema import ConfigError
from hpc_rg.learn.modelfile import save_model
from hpc_rg.learn.rbm import RBM
from hpc_rg.learn.rsmi import RSMI
from hpc_rg.parallel import World
from hpc_rg.reduce.coarse_rules import pseudo_likelihood_couplings, pseudo_likelihood_fit
from hpc_rg.reduce.results import read_results
from hpc_rg.reduce.stage import run as run_stage
from ising_data import T_C, make_ensemble, wolff_samples


def test_pseudo_likelihood_recovers_nearest_neighbour_coupling():
    """Samples of H = −K Σ_nn σσ at K = 1/T = 0.3: the fit gives K_1 = K and K_√2 = K_2 = 0 within errors;
    the one-Newton-step leave-one-block-out fits equal refits without the block."""
    T = 1 / 0.3
    s = wolff_samples((24, 24), T, 600, 1.0, seed=9)
    full, loo = pseudo_likelihood_fit(s, 8)
    refit = np.array([pseudo_likelihood_couplings(np.delete(s, np.s_[75 * i:75 * (i + 1)], axis=0))
                      for i in range(8)])
    err = np.sqrt(7 / 8 * ((loo - loo.mean(0)) ** 2).sum(0))
    assert np.abs(loo - refit).max() < 0.05 * err.min()
    assert abs(full[0] - 0.3) < 4 * err[0] + 1e-3, (full, err)
    assert np.all(np.abs(full[1:]) < 4 * err[1:] + 1e-3), (full, err)
    assert np.all(err < 0.02)


JOB = """
[job]
name = "t"
seed = 5
out = "{out}"
[analyze.neural_mi]
pairs = ["blocks", "block_environment"]
models = ["uniform"]
block = 2
shell = 1
steps = 150
batch = 64
seeds = 2
[analyze.coarse_rules]
block = 2
models = {models}
rbm_min_share = 0.5
rbm_min_units = 4
buffer = 0
shell = 1
steps = 150
batch = 64
n_blocks = 4
"""


def test_reductions_end_to_end(tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "run"
    out.mkdir()
    make_ensemble(out / "ensemble.h5", (16, 16), [T_C], 2, 200, seed=3)
    # an "rsmi" model with two repeats: repeat 0 (the model's own weights) a poor diagonal-pair kernel, repeat 1
    # uniform with the larger held-out bound; coarse_rules must take repeat 1, whose rule sign(Σ s) is majority
    (out / "models").mkdir()
    m = RSMI(block=2, buffer=0, shell=1)
    diagonal = np.array([[[-1.9, 0.09], [0.09, -1.9]]], np.float32)
    with torch.no_grad():
        m.coarse.weight.copy_(torch.from_numpy(diagonal.reshape(1, 4)))
    reps = [{"repeat": 0, "metrics": {"test_mi_bits": 0.3}, "kernel": diagonal},
            {"repeat": 1, "metrics": {"test_mi_bits": 0.5}, "kernel": np.ones((1, 2, 2), np.float32)}]
    save_model(out / "models" / "uniform.pt", kind="rsmi", name="uniform", model=m, optimizer=None, config={},
               history=[], metrics={}, data={}, repeats=reps)
    save_rbm(out / "models" / "rbm.pt", (16, 16), n_local=6, n_flat=3)
    cfg = loads(JOB.format(out=out, models='["uniform", "rbm"]'), tmp_path / "job.toml")
    assert run_stage(cfg, World(None, 0, 1)) == 0
    r = read_results(out / "results.h5")
    nm = r["neural_mi"]
    for kind in ("blocks", "block_environment"):
        v, e = float(nm[f"I_{kind}"][0]), float(nm[f"I_{kind}_err"][0])
        hist = float(nm[f"I_{kind}_histogram_grassberger"][0])
        assert 0 < v < hist + 3 * e + 3 * float(nm[f"I_{kind}_histogram_grassberger_err"][0]), (kind, v, e, hist)
        assert nm[f"seconds_per_step_{kind}"][0] > 0
    # the real-valued images of the (diagonal-pair) kernel: 9 distinct values of 16 states, sign 2 values
    img, img_err = float(nm["I_images_uniform"][0]), float(nm["I_images_uniform_err"][0])
    exact = float(nm["I_images_uniform_histogram_exact"][0])
    exact_err = float(nm["I_images_uniform_histogram_exact_err"][0])
    assert float(nm["I_images_uniform_histogram_sign"][0]) <= exact + 3 * exact_err   # a function of the exact
    assert 0 < img < exact + 3 * img_err + 3 * exact_err
    cr = r["coarse_rules"]
    assert cr["attrs"]["rules"] == "majority,uniform,rbm" and cr["attrs"]["repeat_uniform"] == 1
    # the planted RBM: 6 units with a uniform 2x2 blob (the flat ones left out) give w = 1/4: majority again
    np.testing.assert_array_equal(cr["attrs"]["kernel_rbm"], np.full(4, 0.25))
    assert cr["attrs"]["rbm_n_qualified_rbm"] == 6 and cr["attrs"]["rbm_n_units_rbm"] == 9
    for other in ("uniform", "rbm"):
        for q in ("I_HE", "K1", "Ksqrt2", "K2", "longer_range_ratio"):
            a, b = float(np.ravel(cr[f"{q}_majority"])[0]), float(np.ravel(cr[f"{q}_{other}"])[0])
            ea, eb = float(np.ravel(cr[f"{q}_majority_err"])[0]), float(np.ravel(cr[f"{q}_{other}_err"])[0])
            # the same rule up to the coin flips of tied blocks (different streams): equal within errors
            assert abs(a - b) < 4 * math.hypot(ea, eb) + 0.02, (other, q, a, b, ea, eb)
    assert cr["K1_majority"][0] > 0 and cr["y_t_majority_level0"].shape == (1,)


def save_rbm(path, shape, n_local: int, n_flat: int, seed: int = 1):
    """An rbm whose first n_local hidden units see one uniform 2x2 blob each (random place and sign, tiny
    noise elsewhere) and whose last n_flat units are spread over the whole lattice."""
    rng = np.random.default_rng(seed)
    ly, lx = shape
    fields = 1e-4 * rng.standard_normal((n_local + n_flat, ly, lx))
    for j in range(n_local):
        y, x = rng.integers(ly), rng.integers(lx)
        fields[j][np.ix_([y, (y + 1) % ly], [x, (x + 1) % lx])] = rng.choice([-1.0, 1.0])
    fields[n_local:] = rng.standard_normal((n_flat, ly, lx))
    m = RBM(ly * lx, n_local + n_flat, "spin")
    with torch.no_grad():
        m.W.copy_(torch.from_numpy(fields.reshape(len(fields), -1).T.astype(np.float32)))
    save_model(path, kind="rbm", name=path.stem, model=m, optimizer=None, config={}, history=[], metrics={},
               data={"lattice_shape": list(shape)}, repeats=None)


def test_rbm_without_local_fields_is_refused(tmp_path):
    """An rbm whose units are all spread out gives no rule: a one-line ConfigError naming rbm_min_share."""
    out = tmp_path / "run"
    (out / "models").mkdir(parents=True)
    make_ensemble(out / "ensemble.h5", (16, 16), [T_C], 1, 20, seed=3)
    save_rbm(out / "models" / "flat.pt", (16, 16), n_local=2, n_flat=6)
    job = JOB.format(out=out, models='["flat"]').split("[analyze.neural_mi]")[0] + \
        "[analyze.coarse_rules]" + JOB.format(out=out, models='["flat"]').split("[analyze.coarse_rules]")[1]
    cfg = loads(job, tmp_path / "job.toml")
    with pytest.raises(ConfigError, match="rbm_min_share.*only 2 of 8 hidden units"):
        run_stage(cfg, World(None, 0, 1))
