"""Seed 000 (Nguyen & Howe) end to end at CI size: jobs/seed000_coarse_cnn_quick.toml through `hpc-rg run`
(simulate -> train -> analyze -> report) in a subprocess, then studies/seed000/figures.py on the run folder.
Checked: numbers finite with error bars, figures non-empty, the report's paper table filled. Physics that
can fail: the samples' energy against Kaufman's exact finite-torus value (4σ, τ_int-aware jackknife error);
the leak control (both classes scrambled) at accuracy 0.5 within 4σ of its test set's binomial error; the
real task learnable (every variant above 0.5 by more than 4σ); the frozen kernel exactly the boundary
average; the data-processing inequality I(f(A); f(B)) <= I(A; B) for every coarse variable (4σ)."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from seed_jobs import copy_job, finite_with_errors, load_figures, png_nonempty, run_job

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
NAME = "seed000_coarse_cnn_quick"
VARIANTS = ("frozen", "ch1", "ch2", "ch3")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seed000")
    seconds, proc = run_job(copy_job(f"{NAME}.toml", tmp))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return tmp / NAME


def _n_test(run: Path, model: str) -> int:
    return int(json.loads((run / "models" / f"{model}.json").read_text())["config"]["n_test"])


def test_products_finite_with_errors(run):
    with h5py.File(run / "results.h5", "r") as f:
        g = f["learned_coarse_graining"]
        assert finite_with_errors(g["accuracy_mean"][()], g["accuracy_mean_err"][()])
        assert np.all(g["accuracy_mean_err"][()] > 0)
        for q in [k for k in g if k.startswith("I_") and not k.endswith("_err") and not g[k].is_scale]:
            assert finite_with_errors(g[q][()], g[q + "_err"][()]), q
        for m in VARIANTS:
            assert finite_with_errors(g[f"kernel_mean_{m}"][()], g[f"kernel_mean_{m}_err"][()])
        assert g["kernels_ch3"].shape[1:] == (3, 3, 3)
    for fig in ("learned_coarse_graining.png", "learned_kernels.png"):
        assert png_nonempty(run / "figures" / fig)
    md = (run / "report.md").read_text()
    assert "## Beside the paper (seed000)" in md


def test_samples_match_kaufman(run):
    from hpc_rg.exact.kaufman import energy
    from hpc_rg.reduce.results import read_results
    obs = read_results(run / "results.h5")["observables"]
    T = float(np.asarray(obs["axes"]["temperatures"])[0])
    E, dE = float(np.asarray(obs["energy"])[0]), float(np.asarray(obs["energy_err"])[0])
    exact = float(energy((27, 27), T, 1.0))
    assert dE > 0 and abs(E - exact) < 4 * dE, (E, dE, exact)


def test_control_and_task(run):
    from hpc_rg.reduce.results import read_results
    g = read_results(run / "results.h5")["learned_coarse_graining"]
    models = [m.decode() if isinstance(m, bytes) else str(m) for m in np.asarray(g["axes"]["model"])]
    acc, err, frozen = (np.asarray(g[q]) for q in ("accuracy_mean", "accuracy_mean_err", "kernels_frozen"))
    by = dict(zip(models, zip(acc, err)))
    # leak check: with both classes scrambled no classifier beats chance; the repeats share one test set,
    # so its binomial error sqrt(1/4n) adds to the spread over repeats
    a, e = by["control"]
    sigma = math.hypot(e, math.sqrt(0.25 / _n_test(run, "control")))
    assert abs(a - 0.5) < 4 * sigma, (a, sigma)
    for m in VARIANTS:
        a, e = by[m]
        assert a - 0.5 > 4 * math.hypot(e, math.sqrt(0.25 / _n_test(run, m))), (m, a)
    ref = np.full((3, 3), 1 / 8)
    ref[1, 1] = 0
    assert np.allclose(frozen, ref, atol=1e-7)


def test_data_processing_inequality(run):
    with h5py.File(run / "results.h5", "r") as f:
        g = f["learned_coarse_graining"]
        fine, fe = float(g["I_fine"][0]), float(g["I_fine_err"][0])
        for q in [k for k in g if k.startswith("I_") and k != "I_fine" and not k.endswith("_err") and not g[k].is_scale]:
            v, e = float(g[q][0]), float(g[q + "_err"][0])
            assert v <= fine + 4 * math.hypot(e, fe), (q, v, fine)
            if q.endswith("_sign") and not q.startswith(("I_ch2", "I_ch3")):
                assert v <= math.log2(3) + 4 * e       # one channel's sign(w·s) has three symbols


def _table(run):
    from hpc_rg.report.compare import STUDIES, load_study, rows
    return rows(load_study(STUDIES / "seed000" / "paper.toml"), run)


def test_analysis_script_and_paper_table(run, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    assert load_figures(0).main([str(run), "--out", str(tmp_path)]) == 0
    for fig in ("fig1_accuracy_weights.png", "fig1_kernels.png", "fig2_channels.png", "fig3_samples.png"):
        assert png_nonempty(tmp_path / fig), fig
    table = _table(run)
    q = {r["quantity"]: r for r in table}
    assert sum(k.startswith("Table 1: test accuracy") for k in q) == 4
    assert all("±" in r["ours"] for k, r in q.items() if k.startswith(("Table 1", "Table 2")))
    assert all(r["note"] for r in table)
    assert "nan" not in " ".join(r["ours"] for r in table)
    assert (tmp_path / "seed000_table.md").read_text().count("\n") >= len(table) + 2


def test_table1_pulls_include_the_test_set_error(run):
    """Every Table-1 pull combines our repeat error with the binomial error sqrt(p(1-p)/n_test) of our shared
    test set, and the paper's repeat error with that of its 2000-patch test set."""
    from hpc_rg.reduce.results import read_results
    lcg = read_results(run / "results.h5")["learned_coarse_graining"]
    models = [m.decode() if isinstance(m, bytes) else str(m) for m in lcg["axes"]["model"]]
    paper = {"frozen": (0.918, 2.16e-4), "ch1": (0.924, 3.82e-4), "ch2": (0.921, 3.68e-4), "ch3": (0.927, 3.31e-4)}
    table = [r for r in _table(run) if r["quantity"].startswith("Table 1: test accuracy")]
    assert len(table) == len(VARIANTS)
    for r, m in zip(table, VARIANTS):
        i = models.index(m)
        p, e, n = float(lcg["accuracy_mean"][i]), float(lcg["accuracy_mean_err"][i]), _n_test(run, m)
        ours = math.hypot(e, math.sqrt(p * (1 - p) / n))
        pv, pe = paper[m]
        theirs = math.hypot(pe, math.sqrt(pv * (1 - pv) / 2000))
        assert float(r["pull"][:-1]) == pytest.approx(abs(p - pv) / math.hypot(ours, theirs), abs=0.051), (m, r)
