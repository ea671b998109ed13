"""Seed 003 (DBN/autoencoder replication of Mehta & Schwab) end to end at CI size: jobs/seed003_dbn_quick.toml
through `hpc-rg run` (simulate -> train -> analyze -> report) in a subprocess, then studies/seed003/figures.py.
Checked: loss curves finite for every epoch of both nets, receptive-field and reconstruction results finite
with error bars, figures non-empty, the paper table filled. Physics that can fail: the Wolff samples' energy
at T_c against Kaufman's exact finite-torus value (4σ, τ_int-aware jackknife error); the receptive fields
the reduction stores are the products of the encoder weights r^(l) = W^(1)...W^(l) of the saved model; the
reconstructions beat the lazy all-zero output (MSE 1) by more than 4σ."""
from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from seed_jobs import copy_job, finite_with_errors, load_figures, png_nonempty, run_job

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
NAME = "seed003_dbn_quick"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seed003")
    seconds, proc = run_job(copy_job(f"{NAME}.toml", tmp))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return tmp / NAME


def test_samples_match_kaufman(run):
    from hpc_rg.exact.kaufman import energy
    from hpc_rg.reduce.results import read_results
    obs = read_results(run / "results.h5")["observables"]
    T = float(np.asarray(obs["axes"]["temperatures"])[0])
    E, dE = float(np.asarray(obs["energy"])[0]), float(np.asarray(obs["energy_err"])[0])
    exact = float(energy((16, 16), T, 1.0))
    assert dE > 0 and abs(E - exact) < 4 * dE, (E, dE, exact)


def test_products_finite_with_errors(run):
    from hpc_rg.learn.modelfile import load_model
    with h5py.File(run / "results.h5", "r") as f:
        rf = f["receptive_fields"]
        assert finite_with_errors(rf["window_fraction_mean"][()], rf["window_fraction_mean_err"][()])
        assert finite_with_errors(rf["radius_mean"][()], rf["radius_mean_err"][()])
        stored = rf["fields_layer2"][()]
        rc = f["reconstructions"]
        assert finite_with_errors(rc["mse"][()], rc["mse_err"][()])
        assert np.all(rc["mse"][()] + 4 * rc["mse_err"][()] < 1.0)      # beats the lazy zero output
        # the baselines beside it: magnetization-only (1 − m² per configuration) and PCA-25
        assert str(rc.attrs["baselines"]) == "magnetization,pca25"
        assert finite_with_errors(rc["baseline_mse"][()], rc["baseline_mse_err"][()])
    model, meta = load_model(run / "models" / "large.pt")
    r2 = (model.encoder[0].weight.T @ model.encoder[1].weight.T).detach().numpy().T.reshape(-1, 16, 16)
    # the stored fields are some of layer 2's units: each must be one of the exact weight products
    for fld in stored:
        assert np.min(np.abs(r2 - fld).reshape(len(r2), -1).max(axis=1)) < 1e-5
    for name, epochs in (("large", 20), ("small", 20)):
        _, meta = load_model(run / "models" / f"{name}.pt")
        h = meta["history"]
        assert len(h) == epochs and all(np.isfinite([r["train_mse"] for r in h] + [r["test_mse"] for r in h]))
    for fig in ("receptive_fields_layer1.png", "receptive_fields_locality.png", "reconstructions_T0.png"):
        assert png_nonempty(run / "figures" / fig), fig
    assert "## Beside the paper (seed003)" in (run / "report.md").read_text()


def test_analysis_script_and_paper_table(run, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    assert load_figures(3).main([str(run), "--out", str(tmp_path)]) == 0
    for fig in ("fig1_loss.png", "fig2_reconstructions.png", "fig3_receptive_fields_large_layer3.png",
                "fig3_receptive_fields_small_layer2.png"):
        assert png_nonempty(tmp_path / fig), fig
    from hpc_rg.report.compare import STUDIES, load_study, rows
    table = rows(load_study(STUDIES / "seed003" / "paper.toml"), run)
    q = {r["quantity"]: r for r in table}
    assert sum("receptive fields, weight in the best" in k for k in q) == 5        # LargeNet 3 layers, SmallNet 2
    assert all("±" in r["ours"] for k, r in q.items() if "Fig." in k)
    assert all(r["note"] for r in table)
    assert "nan" not in " ".join(r["ours"] for r in table)
    fig1 = [r for k, r in q.items() if "Fig. 1" in k and "PCA-25" in k]
    assert len(fig1) == 2 and all(r["pull"].endswith("σ") for r in fig1)


def test_autoencoder_quality_is_the_models_own_reconstruction(run):
    """The reduction's MSE and wrong-sign fraction are those of the saved net on the stored configurations
    (recomputed here from the model file), and its exact energy is Kaufman's."""
    import torch

    from hpc_rg.exact.kaufman import energy
    from hpc_rg.io.ensemble import open_ensemble
    from hpc_rg.learn.modelfile import load_model
    from hpc_rg.reduce.results import read_results
    aq = read_results(run / "results.h5")["autoencoder_quality"]
    model, _ = load_model(run / "models" / "small.pt")
    with open_ensemble(run / "ensemble.h5") as e:
        n = min(e.n_samples, 400)
        per_chain = []
        for c in range(e.n_chains):
            x = np.asarray(e.spins[0, c, :n]).reshape(n, -1).astype(np.float32)
            with torch.no_grad():
                y = model(torch.as_tensor(x)).numpy()
            per_chain.append((((y - x) ** 2).mean(), (np.sign(y) != x).mean()))
        T = float(e.temperatures[0])
    mse, mis = np.mean(per_chain, axis=0)
    assert float(aq["mse_small"]) == pytest.approx(mse, rel=1e-6)
    assert float(aq["mismatch_small"]) == pytest.approx(mis, rel=1e-6)
    assert float(np.asarray(aq["energy_exact"])[0]) == pytest.approx(float(energy((16, 16), T, 1.0)), rel=1e-12)
    assert list(aq["axes"]["layer_large"]) == [1, 2, 3] and list(aq["axes"]["window_large"]) == [2, 4, 8]
