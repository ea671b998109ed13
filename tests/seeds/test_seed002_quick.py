"""Seed 002 (de Mello Koch et al.) end to end at CI size: the two -quick jobs run through `hpc-rg run`
(simulate -> train -> analyze -> report) in a subprocess, flows first (its 10x10 ensemble trains the
stacked job's thermometer), and their products are checked: numbers finite with error bars, figures
non-empty, the report's paper table filled. Exact checks that can fail: at T = 0.5 the 10x10 long-range
lattice sits in its ground state (a flip costs 2 sum_d J(d) ~ 18, Boltzmann weight e^-36), so the energy per
site is -sum_d J(d)/2 exactly; the first RG step's <v h> map with the averaging kernel equals the block
average of the spin correlations computed directly from the ensemble."""
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
    tmp = tmp_path_factory.mktemp("seed002")
    out = {}
    for name in ("seed002_flows_quick", "seed002_stacked_quick"):     # order matters: the thermometer data
        seconds, proc = run_job(copy_job(name + ".toml", tmp))
        assert proc.returncode == 0, proc.stderr[-4000:]
        out[name] = (tmp / name, seconds)
    return out


def test_flows_quick_products(runs):
    run, _ = runs["seed002_flows_quick"]
    with h5py.File(run / "results.h5", "r") as f:
        sd = f["scaling_dimensions"]
        T = sd["axes/temperatures"][()]
        hot = T > 1.0                      # at T = 0.5 the lattice is frozen: no correlator to fit
        for q in ("delta_s_plain", "delta_eps_plain", "delta_s_chord", "delta_eps_chord"):
            assert finite_with_errors(sd[q][()][hot], sd[q + "_err"][()][hot]), q
            assert np.all(sd[q + "_err"][()][hot] > 0), q
        fl = f["rbm_flow"]
        for q in ("delta_s", "delta_eps", "T_thermo", "abs_m"):
            v, e = fl[q][()], fl[q + "_err"][()]
            assert v.shape == (3, 6) and finite_with_errors(v[:, 1:], e[:, 1:]), q
        tc = f["thermometer_calibration"]
        assert finite_with_errors(tc["T_mean"][()], tc["T_mean_err"][()])
        p = tc["p_mean"][()]
        assert np.allclose(p.sum(axis=1), 1.0, atol=1e-6)
        # the paper's read-out beside the posterior mean: the peak of the average probability vector
        Tk = tc["axes/thermometer_temperatures"][()]
        assert np.array_equal(tc["T_peak"][()], Tk[p.argmax(axis=1)])
        Tk = fl["axes/thermometer_temperatures"][()]
        assert np.array_equal(fl["T_peak"][()], Tk[fl["p_thermo"][()].argmax(axis=-1)])
    for need in ("scaling_dimensions.png", "rbm_flow.png", "rbm_flow_temperature.png",
                 "thermometer_calibration.png"):
        assert png_nonempty(run / "figures" / need), need


def test_ground_state_energy_exact(runs):
    from hpc_rg.lattice.longrange import LongRange
    run, _ = runs["seed002_flows_quick"]
    with h5py.File(run / "results.h5", "r") as f:
        T = f["observables/axes/temperatures"][()]
        E = f["observables/energy"][()].reshape(len(T), -1)[:, 0]
    lat = LongRange((10, 10), J=1.0, alpha=3.0, images="minimum")
    assert T[0] == pytest.approx(0.5)
    assert E[0] == pytest.approx(-lat.coupling_sum / 2, abs=1e-9)


def test_stacked_quick_rg_map_is_block_average(runs):
    from hpc_rg.io.ensemble import open_ensemble
    run, _ = runs["seed002_stacked_quick"]
    with open_ensemble(run / "ensemble.h5") as ens:
        s = ens.spins[0].reshape((-1, 16, 16)).astype(np.float64)
    block = s[:, 0:2, 0:2].mean(axis=(1, 2))                 # block spin of RG unit 0 (top-left 2x2 block)
    direct = np.einsum("kij,k->ij", s, block) / len(s)
    with h5py.File(run / "results.h5", "r") as f:
        vh = f["vh_correlators"]
        assert np.allclose(vh["map_rg1"][()][0, 0], direct, atol=1e-10)
        for who in ("rg", "rbm"):
            for q in ("radius", "window_fraction"):
                assert finite_with_errors(vh[f"{who}_{q}"][()], vh[f"{who}_{q}_err"][()]), (who, q)
        assert finite_with_errors(vh["rg_T_thermo"][()], vh["rg_T_thermo_err"][()])
        assert finite_with_errors(vh["rbm_T_thermo"][()], vh["rbm_T_thermo_err"][()])
        Tk = vh["axes/thermometer_temperatures"][()]
        for who in ("rg", "rbm"):
            assert np.array_equal(vh[f"{who}_T_peak"][()], Tk[vh[f"{who}_p_thermo"][()].argmax(axis=-1)]), who
        # Kadanoff blocks are local: the first step's maps hold more than the uniform b^2/N in their window
        assert vh["rg_window_fraction"][0, 0] > 4 / 256 + 4 * vh["rg_window_fraction_err"][0, 0]
    for need in ("vh_layer1.png", "vh_locality.png", "vh_temperature.png"):
        assert png_nonempty(run / "figures" / need), need


def test_reports_have_paper_tables(runs):
    from functools import partial

    from hpc_rg.report.compare import STUDIES, load_study, rows
    rows = partial(rows, load_study(STUDIES / "seed002" / "paper.toml"))
    for name, (run, seconds) in runs.items():
        md = (run / "report.md").read_text()
        assert "## Beside the paper (seed002)" in md
        html = (run / "report.html").read_text()
        assert html.count('<img src="figures/') >= 3  # figures are relative links beside the page
        table = rows(run)
        assert table and all(r["note"] for r in table), name
    flows = {r["quantity"]: r for r in rows(runs["seed002_flows_quick"][0])}
    assert any(q.startswith("Δ_s at T = 7.7") and "±" in r["ours"] for q, r in flows.items())
    stacked = {r["quantity"]: r for r in rows(runs["seed002_stacked_quick"][0])}
    assert any(q.startswith("thermometer T") and "after 1 RG step" in q for q in stacked)
    # the thermometer rows read the peak (the paper's read-out), its error widened by half the ladder spacing
    rg1 = next(r for q, r in stacked.items() if q.startswith("thermometer T") and "after 1 RG step" in q)
    assert "peak" in rg1["quantity"] and "±" in rg1["ours"] and rg1["pull"].endswith("σ")
