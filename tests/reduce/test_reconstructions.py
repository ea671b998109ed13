"""Baselines of the reconstruction reduction with exact answers: the magnetization-only output (MSE 1 − m²
per configuration) and PCA-k fitted to the other half of the chains (exact for data in a k-dim subspace)."""
import numpy as np
import pytest
import torch

from model_helpers import context, save, spec_of, write
from hpc_rg.learn.autoencoder import Autoencoder
from hpc_rg.reduce import reconstructions as rc


def _patterns():
    g = np.random.default_rng(4)
    a, b = (np.where(g.random(36) < 0.7, 1, -1) for _ in range(2))
    return np.stack([a, -a, b, -b]).astype(np.int8)


@pytest.fixture
def run_dir(tmp_path):
    p = _patterns()
    spins = np.stack([p[(np.arange(40) + c) % 4] for c in range(4)]).reshape(1, 4, 40, 6, 6)
    write(tmp_path / "ensemble.h5", [2.3], spins, "ising2d")
    torch.manual_seed(0)
    save(tmp_path, "ae", "autoencoder", Autoencoder((36, 4, 2)), (6, 6))
    return tmp_path


def test_magnetization_only_and_pca_baselines_are_exact(run_dir, reductions):
    res = reductions["reconstructions"](spec_of("reconstructions", model="ae", pca=(1, 3), n_blocks=8),
                                        context(run_dir))
    assert res.attrs["baselines"].split(",") == ["magnetization", "pca1", "pca3"]
    mse, err = res.values["baseline_mse"]
    m = _patterns().mean(axis=1)
    assert mse[0, 0] == pytest.approx(float(np.mean(1 - m ** 2)), abs=1e-12)     # every pattern equally often
    assert mse[0, 2] == pytest.approx(0.0, abs=1e-20)                            # ±a, ±b span 3 dims with the mean
    assert mse[0, 1] > 0.1                                                        # one component cannot
    assert res.values["baseline_mismatch"][0][0, 2] == 0.0
    # the network's own rows are unchanged by the baselines
    assert res.values["mse"][0].shape == (1, 1)


def test_pca_is_fitted_to_the_other_chains():
    """Even chains are reconstructed with the odd chains' fit: a pattern only the even chains hold is not
    reproduced exactly (an in-sample fit would)."""
    p = _patterns()
    fit_odd = rc.fit_pca(np.concatenate([p[:2], p[:2]]).astype(float), 1)          # odd chains: ±a only
    assert np.allclose(rc.pca_reconstruct(fit_odd, p[:2]), p[:2])
    assert not np.allclose(rc.pca_reconstruct(fit_odd, p[2:]), p[2:])
    assert np.allclose(rc.magnetization_only(p)[:, 0], p.mean(axis=1))
