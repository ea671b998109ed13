"""Seed 001 (Mehta & Schwab) end to end at CI size: the -quick jobs run through `hpc-rg run` (simulate ->
train -> analyze -> report) in a subprocess, and their products are checked: numbers finite with error
bars, figures non-empty, the report's paper table filled. Physics that can fail: the training samples'
energy against Kaufman's exact finite-torus value, and the 1D decimation network's couplings against the
exact flow tanh K' = tanh^2 K (Bonferroni-aware 4σ over all layers and couplings)."""
from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from seed_jobs import copy_job, finite_with_errors, png_nonempty, run_job

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seed001")
    out = {}
    for job, name in (("seed001_mehta_schwab_quick.toml", "seed001_mehta_schwab_quick"),
                      ("seed001_decimation_1d_quick.toml", "seed001_decimation_1d_quick")):
        seconds, proc = run_job(copy_job(job, tmp))
        assert proc.returncode == 0, proc.stderr[-4000:]
        out[name] = (tmp / name, seconds)
    return out


def test_dbn_quick_products(runs):
    run, _ = runs["seed001_mehta_schwab_quick"]
    with h5py.File(run / "results.h5", "r") as f:
        rf = f["receptive_fields"]
        assert finite_with_errors(rf["radius_mean"][()], rf["radius_mean_err"][()])
        assert finite_with_errors(rf["window_fraction_mean"][()], rf["window_fraction_mean_err"][()])
        assert rf["fields_layer1"].shape[1:] == (16, 16)
        for q in ("blob_area", "half_width"):      # the block-size measures beside R_g, with their null
            assert finite_with_errors(rf[f"{q}_mean"][()], rf[f"{q}_mean_err"][()])
            assert finite_with_errors(rf[f"shuffled_{q}_mean"][()], rf[f"shuffled_{q}_mean_err"][()])
        rc = f["reconstructions"]
        assert finite_with_errors(rc["mse"][()], rc["mse_err"][()])
        assert finite_with_errors(rc["mismatch"][()], rc["mismatch_err"][()])
        assert np.all(np.abs(rc["examples_T0"][()]) <= 1)
    names = {p.name for p in (run / "figures").glob("*.png")}
    for need in ("receptive_fields_layer1.png", "receptive_fields_layer3.png", "receptive_fields_locality.png",
                 "reconstructions_T0.png"):
        assert need in names
        assert png_nonempty(run / "figures" / need)
    html = (run / "report.html").read_text()
    assert html.count('<img src="figures/') >= 5      # figures are relative links beside the page


def test_dbn_quick_samples_match_kaufman(runs):
    """The training samples at J/T = 0.408 against Kaufman's exact energy of the same finite torus (4σ)."""
    from hpc_rg.exact.kaufman import energy
    from hpc_rg.reduce.results import read_results
    run, _ = runs["seed001_mehta_schwab_quick"]
    obs = read_results(run / "results.h5")["observables"]
    T = float(np.asarray(obs["axes"]["temperatures"])[0])
    E, dE = float(np.asarray(obs["energy"])[0]), float(np.asarray(obs["energy_err"])[0])
    exact = float(energy((16, 16), T, 1.0))
    assert dE > 0 and abs(E - exact) < 4 * dE, (E, dE, exact)


def test_dbn_quick_paper_table(runs):
    from hpc_rg.report.compare import STUDIES, load_study, rows
    run, _ = runs["seed001_mehta_schwab_quick"]
    table = rows(load_study(STUDIES / "seed001" / "paper.toml"), run)
    md = (run / "report.md").read_text()
    assert "## Beside the paper (seed001)" in md
    by = {r["quantity"]: r for r in table}
    layers = [r for q, r in by.items() if q.startswith("receptive fields: weight fraction")]
    assert len(layers) == 3 and all("±" in r["ours"] for r in layers)
    blob = [r for q, r in by.items() if q.startswith("receptive-field peak blob area by layer")]
    width = [r for q, r in by.items() if q.startswith("receptive-field autocorrelation half-width")]
    assert len(blob) == len(width) == 1 and "block a unit sees" in blob[0]["note"]
    assert all(r["note"] for r in table)
    assert "nan" not in " ".join(r["ours"] for r in table)


def test_decimation_quick_matches_exact_flow(runs):
    from scipy.stats import norm
    run, _ = runs["seed001_decimation_1d_quick"]
    with h5py.File(run / "results.h5", "r") as f:
        g = f["decimation_network"]
        K, Ke, Kx = g["K_network"][()], g["K_network_err"][()], g["K_exact"][()]
        Kd, Kde = g["K_decimated"][()], g["K_decimated_err"][()]
        nn, nne, nnx = g["nn_network"][()], g["nn_network_err"][()], g["nn_exact"][()]
    assert finite_with_errors(K, Ke) and finite_with_errors(nn, nne) and finite_with_errors(Kd, Kde)
    # the input chains: nearest-neighbour correlation against the exact finite periodic chain
    z0 = np.abs(nn[:, 0] - nnx[:, 0]) / nne[:, 0]
    assert np.all(z0 < norm.isf(norm.sf(4.0) / z0.size)), z0
    # the network implements decimation (Fig. 2B): the coupling read from each layer's units equals the one
    # read from the decimated input spins; combined errors (conservative: both come from the same input)
    z = np.abs(K[:, 1:] - Kd[:, 1:]) / np.hypot(Ke[:, 1:], Kde[:, 1:])
    assert np.all(z < norm.isf(norm.sf(4.0) / z.size)), z
    # and the decimated couplings follow the exact flow tanh K' = tanh^2 K, to the input's own deviation
    assert np.all(Kx[:, 1:] < Kx[:, :-1])              # the exact flow runs to K = 0 (Fig. 2C)
    assert np.allclose(K[:, 1:], Kx[:, 1:], atol=0.05)
    assert png_nonempty(run / "figures" / "decimation_network.png")
    assert "## Beside the paper (seed001)" in (run / "report.md").read_text()


def test_quick_runtimes_recorded(runs):
    # not a timing assertion (shared CI cores): the runs must simply have finished inside the subprocess limit
    for name, (run, seconds) in runs.items():
        assert seconds > 0 and (run / "report.md").exists()
