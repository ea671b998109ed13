"""The report and the figures (issue 19, point 6): markdown rendered by markdown-it into the template (links,
lists, code, tables), text from files escaped, arrays as tables or by their figure, the τ_int warning, and
figures with labelled axes and units, PNG at 150 dpi + PDF, drawable into a caller's axes."""
from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from hpc_rg.config import loads
from hpc_rg.parallel import World
from hpc_rg.reduce.registry import Result
from hpc_rg.reduce.results import write_results
from hpc_rg.report import stage
from hpc_rg.summary import format_value

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


class Elements(HTMLParser):
    """Tags (with attributes) and the text inside each tag kind, of a page."""

    def __init__(self, page: str):
        super().__init__()
        self.tags, self.text, self.stack = [], {}, []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.stack.append(tag)

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data):
        for tag in set(self.stack):
            self.text.setdefault(tag, []).append(data)

    def names(self):
        return [t for t, _ in self.tags]

    def inside(self, tag) -> str:
        return " ".join(self.text.get(tag, []))


# ------------------------------------------------------------------------------------------ markdown -> HTML

def test_markdown_renders_links_lists_code_and_tables(tmp_path):
    md = "\n".join(["# Title", "", "A [link](https://example.org/x) and `inline code`.", "",
                    "- first", "- second", "", "1. one", "2. two", "", "```toml", "[job]", 'name = "x"', "```", "",
                    "| T | e |", "|---|---|", "| 2.0 | -1.5 |", "", "a paragraph", "that continues", "",
                    "[point report](L=8/report.md)"])
    page = stage.html_page(md, tmp_path, "Title")
    el = Elements(page)
    names = el.names()
    assert ("a", {"href": "https://example.org/x"}) in el.tags
    assert names.count("li") == 4 and "ul" in names and "ol" in names
    assert "inline code" in el.inside("code") and 'name = "x"' in el.inside("pre")
    assert {"table", "th", "td"} <= set(names) and "-1.5" in el.inside("td") and "T" in el.inside("th")
    assert "`" not in el.inside("p")                        # backticks rendered, not shown
    assert "a paragraph that continues" in " ".join(el.inside("p").split())    # one paragraph, not two
    assert ("a", {"href": "L=8/report.html"}) in el.tags    # the sweep's point reports: their HTML twin
    assert "<style>" in page and page.count("<title>Title</title>") == 1


def _job(tmp_path, title: str, comment: str) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    text = f'# {comment}\n[job]\nname = "esc"\nseed = 1\n[report]\ntitle = {json.dumps(title)}\n'
    loads(text, run / "job.toml")                            # a valid job file
    (run / "job.toml").write_text(text)
    return run


def test_script_in_job_title_text_and_model_names_is_escaped(tmp_path):
    evil = '<script>alert("x")</script>'
    run = _job(tmp_path, f"{evil} *title* `x", f"{evil} <img src=x onerror=alert(1)> ``` [a](javascript:alert(2))")
    (run / "models").mkdir()
    (run / "models" / "<b>m<i>.json").write_text(json.dumps({"kind": evil, "final": {"loss": 0.25, "note": evil}}))
    stage.run(run)
    page = (run / "report.html").read_text()
    el = Elements(page)
    assert not {"script", "img", "b", "i"} & set(el.names())
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "javascript:" not in " ".join(a.get("href", "") for t, a in el.tags if t == "a")
    assert evil in el.inside("title") and f"{evil} *title* `x" in el.inside("h1")   # shown literally
    assert "<b>m<i>" in el.inside("td") and "[report]" in el.inside("pre")    # model name; the whole job text
    assert "onerror=alert(1)" in el.inside("pre")


# ------------------------------------------------------------------------------------------ arrays in the report

def _hand_results(run: Path, warning: str | None) -> dict:
    """results.h5 with a scalar, small 1-D and 2-D arrays and a large one, written by the stage's writer."""
    T = np.array([2.0, 2.25, 2.5])
    obs = Result(attrs={"method": "block jackknife"})
    obs.put("energy", [-1.71, -1.5, -1.2], [0.011, 0.012, 0.013])
    obs.put("abs_m", [0.91, 0.7, 0.4], [0.004, 0.01, 0.02])
    obs.put("T_c", [2.2691], [0.0012])
    obs.put("<script>x</script>", [1.0, 2.0, 3.0])
    obs.axes["temperatures"] = T
    if warning is not None:
        obs.attrs["tau_int_warning"] = warning
    cor = Result(attrs={})
    r = np.arange(30)
    cor.put("G_s", np.exp(-np.outer([1, 2, 3], r) / 10), np.full((3, 30), 1e-3))
    cor.put("y_t", [[1.01, 0.98], [0.95, 1.02], [0.9, 0.97]], [[0.01] * 2] * 3)
    cor.axes.update(temperatures=T, r=r, level_from=np.arange(2))
    results = {"observables": obs, "correlators": cor}
    write_results(run / "results.h5", results, "")
    return results


def test_small_arrays_become_tables_large_ones_their_figure(tmp_path):
    run = _job(tmp_path, "arrays", "")
    res = _hand_results(run, None)
    from hpc_rg.reduce import figures
    figures.plot_correlators(res["correlators"], run / "figures")
    stage.run(run)
    md = (run / "report.md").read_text()
    page = (run / "report.html").read_text()
    cells = Elements(page).inside("td")
    assert "array (" not in md and "see results.h5)" not in md
    for v, e in zip(*res["observables"].values["energy"]):
        assert format_value(v, e) in cells                       # the numbers, in table cells
    assert "2.25" in cells and format_value(1.02, 0.01) in cells   # the axis values; the 2-D table (T x level)
    assert format_value(2.2691, 0.0012) in cells                  # a scalar
    heads = Elements(page).inside("th")
    assert "T (J/k_B)" in heads and "e (J)" in heads and "⟨|m|⟩ (dimensionless)" in heads
    # the (3, 30) correlator: shape, range, and a link to the figure that shows it
    line = next(line for line in md.splitlines() if "G\\_s" in line or "G_s" in line and "shape" in line)
    assert "shape (3, 30)" in line and "from " in line and "(figures/correlators.png)" in line
    assert ("img", {"src": "figures/correlators.png", "alt": "correlators"}) in Elements(page).tags
    assert "<script>x</script>" not in page and "Warning" not in page


def test_tau_int_warning_is_shown(tmp_path):
    run = _job(tmp_path, "warn", "")
    _hand_results(run, "chains hold 40 samples, fewer than 50 τ_int = 12: <i>unreliable</i>")
    stage.run(run)
    el = Elements((run / "report.html").read_text())
    quote = el.inside("blockquote")
    assert "Warning" in quote and "fewer than 50 τ_int = 12: <i>unreliable</i>" in quote
    assert "i" not in el.names()


# ------------------------------------------------------------------------------------------ hostile results.h5

def _report_cli(run: Path, capsys) -> tuple[int, str]:
    """`hpc-rg report RUN` in this process: exit code and stderr."""
    from hpc_rg.cli import main
    code = main(["report", str(run)])
    return code, capsys.readouterr().err


def test_attributes_not_utf8_or_string_arrays_still_give_a_report(tmp_path, capsys):
    run = _job(tmp_path, "attrs", "")
    _hand_results(run, None)
    with h5py.File(run / "results.h5", "a") as f:
        f["observables"].attrs["method"] = b"jackknife \xff over \xfe stretches"     # not UTF-8
        f["correlators"].attrs["method"] = np.array(["first", "second"], dtype=h5py.string_dtype())
        f["correlators"].attrs["tau_int_warning"] = np.array([b"short", b"chains"])
        f["observables"].create_dataset("nothing", data=np.zeros(0))
    code, err = _report_cli(run, capsys)
    assert code == 0, err
    md = (run / "report.md").read_text(encoding="utf-8")
    assert "Method: jackknife \ufffd over \ufffd stretches" in md and "Method: first; second" in md
    assert "Warning:** short; chains" in md
    assert "(`nothing`): no values" in md


@pytest.mark.parametrize("error, why", [(np.ones(5), r"has shape \(5,\), its value \(3,\)"),
                                        (np.ones((3, 2)), r"has shape \(3, 2\), its value \(3,\)"),
                                        (np.array([b"a", b"b", b"c"]), r"holds \|S1 values, not numbers")])
def test_an_error_bar_that_does_not_fit_its_value_is_refused(tmp_path, capsys, error, why):
    """Before: (5,) errors were paired with the first 3 values (a wrong table, exit 0); others: tracebacks."""
    import re
    run = _job(tmp_path, "errs", "")
    _hand_results(run, None)
    with h5py.File(run / "results.h5", "a") as f:
        del f["observables/energy_err"]
        f["observables/energy_err"] = error
    code, err = _report_cli(run, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert str(run / "results.h5") in err and "/observables/energy_err" in err and re.search(why, err), err
    assert not (run / "report.md").exists() and not (run / "report.html").exists()


# ------------------------------------------------------------------------------------------ a real quick pipeline

def _ensemble(path, shape, temps, chains=2, samples=30, seed=0):
    from hpc_rg.io.ensemble import write_ensemble
    from hpc_rg.lattice.nearest import NearestNeighbour
    rng = np.random.default_rng(seed)
    p = np.linspace(0.9, 0.6, len(temps)).reshape((-1,) + (1,) * (2 + len(shape)))   # ordered at low T
    s = np.where(rng.random((len(temps), chains, samples) + shape) < p, 1, -1).astype(np.int8)
    e = NearestNeighbour(shape).energy_per_site(s.reshape((-1,) + shape)).reshape(s.shape[:3])
    return write_ensemble(path, temps, s, energy=e, attrs={"model": "ising2d", "J": 1.0, "h": 0.0, "alpha": 0.0,
                                                            "algorithm": "test", "seed": 0, "job_toml": ""})


def test_chains_shorter_than_50_tau_int_are_flagged_in_the_ensemble_section(tmp_path):
    run = _job(tmp_path, "short", "")
    _ensemble(run / "ensemble.h5", (4, 4), [2.0, 2.5], samples=20)     # τ_int >= 0.5: 50 τ (emcee) = 100 τ_int >= 50 > 20
    stage.run(run)
    quote = Elements((run / "report.html").read_text()).inside("blockquote")
    assert "shorter than 50 autocorrelation times" in quote and "T = 2 (20 points per chain" in quote
    long = tmp_path / "long"
    long.mkdir()
    (long / "job.toml").write_text((run / "job.toml").read_text())
    _ensemble(long / "ensemble.h5", (4, 4), [2.0], samples=400)       # iid spins: τ_int ~ 0.5, 400 > 100 τ_int
    stage.run(long)
    assert "blockquote" not in Elements((long / "report.html").read_text()).names()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """An analyze run of two reductions on an 8x8 ensemble, then its report (seconds: drawing dominates)."""
    from hpc_rg.reduce.stage import run as run_analyze
    run = tmp_path_factory.mktemp("quick") / "run"
    run.mkdir()
    _ensemble(run / "ensemble.h5", (8, 8), [2.0, 2.27, 2.5])
    text = (f'[job]\nname = "quick"\nseed = 1\nout = "{run}"\n[analyze.observables]\nreweight_points = 5\n'
            "[analyze.mutual_information]\nblock = 2\nn_boot = 10\n")
    (run / "job.toml").write_text(text)
    run_analyze(loads(text, run / "job.toml"), World(None, 0, 1))
    stage.run(run)
    return run


def test_figures_are_png_at_150_dpi_and_pdf(quick_run):
    from PIL import Image
    pngs = sorted((quick_run / "figures").glob("*.png"))
    assert {p.stem for p in pngs} == {"observables", "mutual_information"}
    for p in pngs:
        with Image.open(p) as img:
            assert tuple(round(d) for d in img.info["dpi"]) == (150, 150)         # the pHYs chunk
        assert p.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    with Image.open(quick_run / "figures" / "mutual_information.png") as img:      # a 5.5 x 4.2 inch figure
        assert img.size == (round(5.5 * 150), round(4.2 * 150))


def test_report_of_a_run_embeds_its_figures_and_tabulates_its_numbers(quick_run):
    page = (quick_run / "report.html").read_text()
    el = Elements(page)
    srcs = {a["src"] for t, a in el.tags if t == "img"}
    assert srcs == {f"figures/{s}.png" for s in ("observables", "mutual_information")}
    assert all((quick_run / s).exists() for s in srcs)
    with h5py.File(quick_run / "results.h5") as f:
        v, e = f["observables/binder"][()], f["observables/binder_err"][()]
    cells = el.inside("td")
    assert all(format_value(a, b) in cells for a, b in zip(v, e))
    assert "array (" not in page and "Job file" in el.inside("h2")


def test_a_run_is_redrawn_from_its_file_into_a_notebook_axes(quick_run):
    from hpc_rg.reduce import figures
    fig, ax = plt.subplots()
    res = figures.result_from_file(quick_run / "results.h5", "observables")
    assert figures.plot_observables(res, ax=ax, panels="abs_m") is ax
    x, y = ax.lines[0].get_data()                             # the points: (T, <|m|>) of results.h5
    with h5py.File(quick_run / "results.h5") as f:
        assert np.allclose(x, f["observables/axes/temperatures"][()]) and np.allclose(y, f["observables/abs_m"][()])
    plt.close(fig)
    with pytest.raises(KeyError, match="mcrg"):
        figures.result_from_file(quick_run / "results.h5", "mcrg")


def test_every_quantity_of_the_run_has_a_label_with_a_unit(quick_run):
    from hpc_rg.reduce.labels import axis_label, label
    with h5py.File(quick_run / "results.h5") as f:
        names = [n for g in f.values() for n in list(g) + list(g["axes"])     # scales are the files' axes
                 if n != "axes" and not (n in g and isinstance(g[n], h5py.Dataset) and g[n].is_scale)
                 and not (n in g["axes"] and g["axes"][n].is_scale)]
    assert len(names) > 20
    for n in names:
        lab = label(n)
        assert lab.long_name and lab.symbol and lab.unit, n
        assert axis_label(n).endswith(")"), n


# ------------------------------------------------------------------------------------------ figure functions, ax=

def _res(values: dict, axes: dict, attrs=None):
    return SimpleNamespace(values={k: (np.asarray(v, float) if not isinstance(v, tuple) else
                                       (np.asarray(v[0], float), None if v[1] is None else np.asarray(v[1], float)))
                                   for k, v in values.items()},
                           axes={k: np.asarray(v) for k, v in axes.items()}, attrs=attrs or {})


def _ve(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random(shape) + 0.5, 0.05 * np.ones(shape)


def synthetic_results() -> dict:
    """One Result per figure function, laid out as its reduction writes it (values (value, error), axes)."""
    T, T1, nl = [2.0, 2.5], [2.27], 2
    img = lambda *s: (np.random.default_rng(1).normal(size=s), None)   # noqa: E731
    return {
        "observables": _res({q: _ve(2) for q in ("energy", "abs_m", "m2", "susceptibility", "specific_heat",
                                                  "binder")},
                            {"temperatures": T, "reweight_T": np.linspace(2, 2.5, 5), "L": [8],
                             **{f"reweighted_{q}": np.linspace(0, 1, 5) for q in ("energy", "abs_m", "binder")}}),
        "binder_crossing": _res({"T_c": ([2.27], [0.01]), "U_cross": ([0.61], [0.01])},
                                {"grid": np.linspace(2, 2.5, 10), "U_L8": np.linspace(0.66, 0.4, 10),
                                 "U_L16": np.linspace(0.66, 0.3, 10), "L_small": [8], "L_large": [16]}),
        "correlators": _res({"G_s": _ve((2, 5)), "G_eps": _ve((2, 5))}, {"r": np.arange(5), "temperatures": T}),
        "scaling_dimensions": _res({f"delta_{q}_{f}": _ve(2) for q in ("s", "eps") for f in ("plain", "chord")}
                                   | {"delta_s_fss_m2": _ve(2), "delta_eps_fss_G": _ve(2)}, {"temperatures": T}),
        "mutual_information": _res({"I_blocks": _ve(2), "I_image_majority": _ve(2)}, {"temperatures": T}),
        "block_rg": _res({q: _ve((2, 3)) for q in ("abs_m", "nn", "binder")}, {"temperatures": T, "level": [0, 1, 2]}),
        "mcrg": _res({q: _ve((2, 2)) for q in ("y_t", "y_h")}, {"temperatures": T, "level_from": [0, 1]}),
        "decimation_1d": _res({"K": _ve((2, 4)), "K_exact": (np.ones((2, 4)), None)},
                              {"temperatures": T, "step": np.arange(4)}),
        "receptive_fields": _res({**{f"fields_layer{l}": img(4, 8, 8) for l in (1, 2)},
                                  **{f"{q}_layer{l}": (np.random.default_rng(l).random(4), None)
                                     for l in (1, 2) for q in ("radius", "window_fraction")},
                                  "uniform_radius": ([3.2], None), "radius_mean": _ve(nl),
                                  "window_fraction_mean": _ve(nl), "uniform_window_fraction": ([0.06, 0.25], None)},
                                 {"layer": [1, 2], "window": [2, 4]}, {"bins": 5}),
        "reconstructions": _res({"examples_T0": img(2, 3, 8, 8), "examples_T1": img(2, 3, 8, 8),
                                 "mse": _ve((2, 2)), "mismatch": _ve((2, 2))}, {"temperatures": T, "depth": [1, 2]}),
        "rbm_flow": _res({"delta_s": _ve((2, 3)), "delta_eps": _ve((2, 3)), "T_thermo": _ve((2, 3)),
                          "p_thermo": (np.full((2, 3, 3), 1 / 3), None)},
                         {"temperatures": T, "length": [0, 1, 5], "thermometer_temperatures": [2.0, 2.27, 2.5]}),
        "thermometer_calibration": _res({"T_mean": _ve(3)}, {"temperatures": [2.0, 2.27, 2.5]}),
        "vh_correlators": _res({"rg_radius": _ve((1, 2)), "rbm_radius": _ve((1, 2)), "rg_window_fraction": _ve((1, 2)),
                                "rbm_window_fraction": _ve((1, 2)), "map_rg1": img(1, 4, 8, 8),
                                "rg_p_thermo": (np.full((1, 2, 3), 1 / 3), None),
                                "rbm_p_thermo": (np.full((1, 2, 3), 1 / 3), None)},
                               {"temperatures": T1, "rg_step": [1, 2], "layer": [1, 2], "thermo_layer": [1, 2],
                                "thermometer_temperatures": [2.0, 2.27, 2.5]}),
        "learned_coarse_graining": _res({"accuracy_cnn": (np.array([0.8, 0.81, 0.83]), None),
                                         "kernels_cnn": img(3, 2, 2, 2), "kernel_mean_cnn": _ve((2, 2, 2)),
                                         "I_fine": _ve(2), "I_cnn": _ve(2), "y_t_cnn": _ve((1, 2))},
                                        {"model": np.array([b"cnn"]), "temperatures": T}, {"bins": 5}),
        "decimation_network": _res({"K_network": _ve((2, 3)), "K_exact": (np.ones((2, 3)), None),
                                    "flow_K": (np.linspace(1, 0.1, 14).reshape(2, 7), None)},
                                   {"layer": [0, 1, 2], "temperatures": T}),
    }


def _plots():
    from hpc_rg.reduce.figures import plots
    return plots()


def test_every_figure_function_draws_into_given_axes():
    plots, results = _plots(), synthetic_results()
    assert set(plots) == set(results)
    drawn = 0
    for name, plot in plots.items():
        res = results[name]
        for figure in plot.figures(res):
            keys = [p.key for p in figure.panels]
            fig, axes = plt.subplots(1, len(keys), squeeze=False)
            before = plt.get_fignums()
            row = axes[0]
            assert plot(res, ax=row, panels=keys) is row
            assert plt.get_fignums() == before, name              # no new figure, none closed
            for ax, key in zip(row, keys):
                artists = len(ax.lines) + len(ax.collections) + len(ax.images) + len(ax.patches)
                assert artists > 0, (name, key)
                assert ax.get_title(), (name, key)
                if not ax.images:                                 # a plot, not a mosaic of images
                    for text in (ax.get_xlabel(), ax.get_ylabel()):
                        assert text and text.rstrip().endswith(")"), (name, key, text)   # ... (unit)
                    assert ax.get_legend() is not None, (name, key)
                drawn += 1
            plt.close(fig)
    assert drawn >= 30


def test_default_panels_single_axes_and_a_wrong_count():
    res = synthetic_results()["observables"]
    from hpc_rg.reduce import figures
    fig, ax = plt.subplots()
    assert figures.plot_observables(res, ax=ax, panels="abs_m") is ax
    assert ax.get_title() == "⟨|m|⟩ vs T" and ax.get_xlabel() == "temperature T (J/k_B)"
    with pytest.raises(ValueError, match="5 panels"):
        figures.plot_observables(res, ax=ax)                      # the first figure has 5 panels: 1 axes given
    with pytest.raises(ValueError, match="known"):
        figures.plot_observables(res, ax=ax, panels="nope")
    plt.close(fig)
    made = figures.plot_mcrg(synthetic_results()["mcrg"])         # neither folder nor ax: figures, unsaved
    assert len(made) == 1 and len(made[0].axes) == 2
    plt.close(made[0])


def test_tune_figures_take_ax_and_are_saved_at_150_dpi(tmp_path):
    optuna = pytest.importorskip("optuna")
    from PIL import Image

    from hpc_rg.tune.spec import SpaceEntry, TuneSpec
    from hpc_rg.tune import figures as tf
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # one searched key: Optuna's importance (seconds of PED-ANOVA) is skipped, its panel says why
    tspec = TuneSpec(trials=6, metric="val_loss", direction="minimize", space=(SpaceEntry("lr", "log", 1e-4, 1e-1),))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(lambda t: (math.log10(t.suggest_float("lr", 1e-4, 1e-1, log=True)) + 2.5) ** 2, n_trials=6)
    fig, axes = plt.subplots(1, 3)
    before = plt.get_fignums()
    assert tf.plot_history(study, tspec, "m", ax=axes[0]) is axes[0]
    assert tf.plot_importance(study, tspec, "m", ax=axes[1]) is axes[1]
    assert tf.plot_slices(study, tspec, "m", ax=axes[2:]) is not None
    assert plt.get_fignums() == before
    for ax in axes:
        assert len(ax.lines) + len(ax.patches) + len(ax.texts) > 0 and ax.get_title()
    assert "(" in axes[0].get_xlabel() and "(" in axes[0].get_ylabel()
    plt.close(fig)
    for p in tf.write_figures(study, tspec, tmp_path, "m"):
        with Image.open(p) as img:
            assert tuple(round(d) for d in img.info["dpi"]) == (150, 150)
        assert p.with_suffix(".pdf").exists()


def test_matplotlib_is_imported_to_draw_only_and_files_bypass_pyplot(tmp_path):
    """Importing the figure modules costs no matplotlib; writing files goes through bare Figures (Agg for
    PNG), so no backend is chosen or switched (a notebook's stays) and pyplot holds nothing afterwards."""
    import subprocess
    import sys
    code = ("import sys, numpy as np; from types import SimpleNamespace as NS\n"
            "import hpc_rg.reduce.ensemble_figures as F, hpc_rg.reduce.model_figures, hpc_rg.report.stage, "
            "hpc_rg.tune.figures, hpc_rg.reduce.labels\n"
            "print('matplotlib' in sys.modules)\n"
            "res = NS(values={'y_t': (np.ones((1, 2)), None), 'y_h': (np.ones((1, 2)), None)},"
            "         axes={'temperatures': np.array([2.0]), 'level_from': np.arange(2)}, attrs={})\n"
            f"print(F.plot_mcrg(res, {str(tmp_path)!r})[0].name, 'matplotlib.pyplot' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "mcrg.png", "False"]
    assert (tmp_path / "mcrg.pdf").exists()


def test_unreadable_model_metrics_are_listed_not_a_traceback(tmp_path, capsys):
    """A run with model files but no ensemble and no results; before: a traceback (exit 1) for a metrics file
    that is not UTF-8 or is a JSON list, and a file that is not JSON silently left out."""
    run = _job(tmp_path, "models", "")
    models = run / "models"
    models.mkdir()
    (models / "good.json").write_text(json.dumps({"kind": "rbm", "final": {"loss": 0.25}}))
    (models / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    (models / "text.json").write_text("not json")
    (models / "list.json").write_text("[1, 2]")
    code, err = _report_cli(run, capsys)
    assert code == 0, err
    rows = {r.split(" | ")[0].strip("| "): r for r in (run / "report.md").read_text().splitlines()
            if r.startswith("| ") and not r.startswith("| model ")}
    assert "loss = 0.25" in rows["good"] and "not a JSON metrics file" in rows["binary"]
    assert "not a JSON metrics file" in rows["text"] and "a JSON list, not a metrics object" in rows["list"]


@pytest.mark.parametrize("name, data, said", [
    ("timeseries/magnetization", np.float64(1.0), r"/timeseries/magnetization is float64 \(\): expected numbers "
                                                  "with 3 axes"),
    ("timeseries/energy", np.array([b"x"]), r"/timeseries/energy is \|S1 \(1,\): expected numbers with 3 axes"),
    ("timeseries/energy", np.zeros((2, 5, 4)), r"/timeseries/energy has shape \(2, 5, 4\): expected \(2, 2, "),
    ("exchange/acceptance", np.array([b"a"]), r"/exchange/acceptance is \|S1 \(1,\): expected numbers with 1 axis "),
])
def test_an_ensemble_dataset_of_the_wrong_shape_or_type_is_named(tmp_path, capsys, name, data, said):
    """A run with an ensemble and no results; before: tracebacks (IndexError, exit 1) or a line quoting numpy
    ("ufunc 'absolute' did not contain a loop ...") that did not say which dataset."""
    import re
    run = _job(tmp_path, "ens", "")
    path = _ensemble(run / "ensemble.h5", (4, 4), [2.0, 2.5], samples=20)
    with h5py.File(path, "a") as f:
        f[name] = data
    code, err = _report_cli(run, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert re.search(said, err) and str(path) in err, err


def test_a_large_array_is_summarised_slab_by_slab_and_a_vast_one_is_not_read(tmp_path, capsys, monkeypatch):
    """A results.h5 may declare datasets far larger than itself (unwritten chunks read as the fill value).
    Before: the report read each whole: a declared 10^12 values was a MemoryError traceback (exit 1)."""
    from hpc_rg.report import arrays
    run = _job(tmp_path, "large", "")
    _hand_results(run, None)
    mid = np.arange(50 * 70, dtype=np.float64).reshape(50, 70) - 100.0
    mid[3, 4], mid[40, 1] = np.nan, np.inf
    with h5py.File(run / "results.h5", "a") as f:
        f["correlators"].create_dataset("vast", shape=(10**6, 10**6), dtype="f8", chunks=(1000, 1000),
                                        fillvalue=1.0)
        f["correlators/axes"].create_dataset("vast_axis", shape=(10**12,), dtype="f8", chunks=(10**6,))
        f["correlators"]["mid"] = mid
    seen = []
    read = h5py.Dataset.__getitem__
    monkeypatch.setattr(arrays, "LOAD_LIMIT", 1000, raising=False)
    monkeypatch.setattr(h5py.Dataset, "__getitem__", lambda d, key: seen.append(d.name) or read(d, key))
    code, err = _report_cli(run, capsys)
    assert code == 0, err
    md = (run / "report.md").read_text()
    assert "(`mid`): shape (50, 70), from -100 to 3399" in md           # NaN and inf left out of the range
    assert "(`vast`): shape (1000000, 1000000), range not computed (1000000000000 values)" in md
    assert seen.count("/correlators/mid") == 4 and "/correlators/vast" not in seen     # 3500 values by 1000
    assert "/correlators/axes/vast_axis" not in seen


def test_a_long_quantity_name_is_labelled_by_itself(tmp_path, capsys):
    """Each label pattern peels one suffix and recurses; before: a name of 1000 `_mean`s raised RecursionError,
    and the report refused a valid file as damaged (exit 2)."""
    from hpc_rg.reduce.labels import label
    name = "abs_m" + "_mean" * 1000
    assert label(name) == (name.replace("_", " "), name, "")
    assert label("abs_m_mean").long_name == "mean absolute magnetisation (mean)"      # short names: parsed
    run = _job(tmp_path, "long", "")
    _hand_results(run, None)
    with h5py.File(run / "results.h5", "a") as f:
        f["observables"][name] = [1.0, 2.0, 3.0]
    code, err = _report_cli(run, capsys)
    assert code == 0, err
    assert name.replace("_", "\\_") in (run / "report.md").read_text()


def test_figures_of_a_file_whose_arrays_do_not_fit_name_the_file(tmp_path):
    """result_from_file + plot_* in a notebook. Before: an ensemble.h5 read as results (KeyError 'no reduction'),
    and arrays of the wrong length were matplotlib's "'x' and 'y' must have the same size"."""
    from hpc_rg.schema import ConfigError
    from hpc_rg.reduce.figures import plot_observables, result_from_file
    ens = _ensemble(tmp_path / "ensemble.h5", (4, 4), [2.0, 2.5], samples=10)
    with pytest.raises(ConfigError, match="ensemble.h5: attribute format = 'hpc_rg.ensemble/1'"):
        result_from_file(ens, "observables")
    run = _job(tmp_path, "figs", "")
    _hand_results(run, None)
    with h5py.File(run / "results.h5", "a") as f:
        for q in ("abs_m", "abs_m_err"):
            del f[f"observables/{q}"]
            f[f"observables/{q}"] = np.ones(5)                  # 5 values for 3 temperatures
    res = result_from_file(run / "results.h5", "observables")
    open_before = plt.get_fignums()
    for how in ({"ax": plt.subplots()[1], "panels": "abs_m"}, {"folder": tmp_path / "figs"}, {}):
        with pytest.raises(ConfigError, match=r"results.h5: /observables cannot be drawn \(panel 'abs_m'.*same "
                                              r"size\); its arrays do not have the shapes"):
            plot_observables(res, **how)
    assert len(plt.get_fignums()) == len(open_before) + 1     # the test's own subplots: no half-drawn one left
    plt.close("all")
    energy = plot_observables(res, ax=plt.subplots()[1], panels="energy")       # the rest still draws
    assert energy.get_ylabel()
    plt.close("all")


@pytest.mark.parametrize("make, said", [
    (lambda p: p.write_bytes(b'[job]\nname = "\xff"\n'), "a UTF-8 text file (byte 0xff at offset 14"),
    (lambda p: p.mkdir(), "a readable job file")])
def test_a_run_folder_job_file_that_cannot_be_read_is_one_line(tmp_path, capsys, make, said):
    """Before: UnicodeDecodeError / IsADirectoryError tracebacks (exit 1)."""
    run = tmp_path / "run"
    run.mkdir()
    make(run / "job.toml")
    code, err = _report_cli(run, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and said in err, err
    assert not (run / "report.md").exists()


def test_a_report_that_cannot_be_written_is_one_line(tmp_path, capsys):
    """Before: an IsADirectoryError traceback (exit 1); a read-only run folder is the same path."""
    run = _job(tmp_path, "ro", "")
    (run / "report.md").mkdir()                              # what blocks the write, even as root
    code, err = _report_cli(run, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "report.md: a report file that can be written (Is a directory" in err


def test_simulation_timings_from_a_file_are_escaped(tmp_path):
    """Before: simulate.json's `ranks` went into report.md as it was (a heading or a link could be injected)."""
    run = _job(tmp_path, "timings", "")
    _ensemble(run / "ensemble.h5", (4, 4), [2.0], samples=200)
    (run / "simulate.json").write_text(json.dumps({"wall_seconds": 1.5, "ns_per_site_update": 2.0,
                                                   "ranks": "4 [x](https://evil.example) *y*"}))
    stage.run(run)
    md = (run / "report.md").read_text()
    assert "on 4 \\[x\\](https://evil.example) \\*y\\* rank(s)" in md
    assert not [a for t, a in Elements((run / "report.html").read_text()).tags if t == "a" and "evil" in a["href"]]


@pytest.mark.parametrize("name", ["a|b", "a\\|b", "x\\", "`|`", "\\\\|*", "| |"])
def test_a_name_with_pipes_and_backslashes_stays_in_its_cell_as_it_is(tmp_path, name):
    """Before: in a table, a code span of a name holding a backslash and a pipe lost the backslash."""
    from hpc_rg.report.markdown import code, inline, table
    page = stage.html_page("\n".join(table(["words", "code"], [[inline(name), code(name)]])), tmp_path, "t")
    cells = Elements(page)
    assert cells.inside("td") == f"{name} {name}" and cells.inside("code") == name


@pytest.mark.parametrize("name", ["x #", "a ##", "#", "1. y #"])
def test_a_name_ending_in_a_hash_keeps_it_in_a_heading(tmp_path, name):
    """Before: "### x #" is the heading "x" (CommonMark's closing sequence): a reduction named "x #" lost it."""
    from hpc_rg.report.markdown import inline
    assert Elements(stage.html_page(f"### {inline(name)}", tmp_path, "t")).inside("h3") == name


def test_a_folder_that_is_no_run_gets_no_report(tmp_path, capsys):
    """Before: `hpc-rg report ~` (any folder) wrote a report.md with a title and nothing else, exit 0."""
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    code, err = _report_cli(folder, capsys)
    assert code == 2 and "a run folder" in err and err.count("\n") == 1, err    # the CLI checks first
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("selection", ["slab", "all"])
def test_a_virtual_quantity_whose_source_is_missing_is_refused(tmp_path, capsys, selection):
    """HDF5 reads a virtual dataset's fill value where its source file is missing. Before: the report showed
    e = 0.000 ± 0.011 at every temperature, exit 0; read_results gave zeros too."""
    import hpc_rg
    from hpc_rg.schema import ConfigError
    run = _job(tmp_path, "vds", "")
    _hand_results(run, None)
    with h5py.File(run / "source.h5", "w") as s:
        s["x"] = [-1.7, -1.5, -1.2]
    layout = h5py.VirtualLayout(shape=(3,), dtype="f8")
    source = h5py.VirtualSource("source.h5", "x", shape=(3,))
    if selection == "slab":
        layout[0:3] = source[0:3]
    else:
        layout[:] = source
    with h5py.File(run / "results.h5", "a") as f:
        del f["observables/energy"]
        f["observables"].create_virtual_dataset("energy", layout, fillvalue=0.0)
    (run / "source.h5").unlink()
    said = "parts are missing or damaged: source.h5 (missing)" if selection == "slab" else \
        "is a virtual dataset whose sources cannot be checked"
    code, err = _report_cli(run, capsys)
    assert code == 2 and "/observables/energy" in err and said in err, err
    with pytest.raises(ConfigError, match="/observables/energy"):
        hpc_rg.read_results(run)
