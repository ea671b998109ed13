"""The report stage, `hpc-rg report RUN_DIR` (`run(run_dir)`): report.md and report.html from the files a run
left behind.

Reads only files (job.toml, ensemble.h5, simulate.json, models/*.json, results.h5, figures/*.png), so it
can be re-run on a copy of the folder. Sections: the job, the ensemble (per-temperature observables with
errors, replica-exchange statistics, throughput), the trained models (final metrics), every reduction's
numbers with their error bars (small arrays as tables, larger ones by their figure) and its figures, and,
when the job's `[report] paper = "..."` (a study shipped in studies/) or `study = "path/to/paper.toml"`
names a study, a table of our numbers beside the paper's (`hpc_rg.report.compare`). Nothing is computed
here beyond formatting: no torch, no model file is opened (what a comparison needs, a reduction stores).

report.html is report.md rendered by markdown-it-py into a jinja2 template (hpc_rg/report/templates/), with
the figures as relative <img> links to figures/*.png (keep the folder together). Text read from files is
escaped on its way into the markdown (`hpc_rg.report.markdown`), so no file can inject markup.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np

from hpc_rg.report.markdown import code, fence, inline, render_html, table as _table
from hpc_rg.summary import format_value

def _ensemble_section(run: Path) -> list[str]:
    path = run / "ensemble.h5"
    if not path.exists():
        return []
    from hpc_rg.io.ensemble import open_ensemble
    out = ["## Ensemble", ""]
    with open_ensemble(path) as ens:          # refuses a damaged file or missing parts (exit 2)
        with _damaged_is_refused(path):
            out += _ensemble_lines(ens)
    stats = run / "simulate.json"
    if stats.exists():
        try:
            s = json.loads(stats.read_text())
            out += ["", f"Simulation: {s['wall_seconds']:.1f} s wall on {inline(s['ranks'])} rank(s), "
                        f"{s['ns_per_site_update']:.2f} ns per site update (sampler time)."]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):    # timing only: say so, go on
            out += ["", "Simulation timings: simulate.json is unreadable (written on a full disk?)."]
    return out + [""]


@contextlib.contextmanager
def _damaged_is_refused(path: Path):
    """A read error inside an input file that opened: one line naming the file (exit 2), not a traceback."""
    from hpc_rg.io.ensemble import FileError, hdf5_reason
    try:
        yield
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
        if isinstance(e, FileError):
            raise
        raise FileError(path, f"is damaged: {hdf5_reason(e)}; copy it again or re-create it") from None


def _ensemble_lines(ens) -> list[str]:
    from hpc_rg.reduce.stats import TAU_TOL, chains_too_short, mean_error
    out = []
    a = ens.attrs
    def say(v):
        return inline(v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
    schedule = ", ".join(f"{k} {say(a[k])}" for k in ("thermalize", "thin") if a.get(k) is not None)
    out.append(f"{say(a.get('model'))} on {'×'.join(map(str, ens.lattice_shape))}, algorithm "
               f"{say(a.get('algorithm'))} (one update = one {say(a.get('update_unit', 'sweep'))}), "
               f"{ens.n_temperatures} temperatures × {ens.n_chains} chains × {ens.n_samples} samples"
               + (f"; {schedule}." if schedule else "."))
    out.append("")
    e_ts = _series(ens, "timeseries/energy" if ens.has("timeseries/energy") else "energy")
    m_ts = _series(ens, "timeseries/magnetization" if ens.has("timeseries/magnetization") else "magnetization")
    rows, short = [], []
    for t, T in enumerate(ens.temperatures):
        e, de, tau = mean_error(e_ts[t], axis_chains=True)
        m, dm, taum = mean_error(np.abs(m_ts[t]), axis_chains=True)
        rows.append([f"{T:.6g}", format_value(e, de), format_value(m, dm), f"{tau:.3g}", f"{taum:.3g}"])
        n = np.shape(e_ts[t])[-1]
        if chains_too_short(n, max(tau, taum)):     # emcee's rule, one helper for info, analyze, report
            short.append(f"T = {T:.6g} ({n} points per chain, τ_int = {max(tau, taum):.3g})")
    from hpc_rg.reduce.labels import short_label
    out += _table([inline(short_label(q)) for q in ("temperatures", "energy", "abs_m", "tau_int_energy",
                                                    "tau_int_abs_m")], rows)
    out.append("")
    out.append("Errors: Γ-method integrated autocorrelation time, chains combined.")
    if short:
        out += ["", f"> **Warning:** chains shorter than {TAU_TOL} autocorrelation times (emcee's rule) at " + "; ".join(short)
                + ": τ_int and the error bars are unreliable there; run longer chains."]
    if ens.has("exchange/acceptance"):
        acc = _numbers(ens, "exchange/acceptance", 1)
        rt = int(_numbers(ens, "exchange/round_trips", None).sum()) if ens.has("exchange/round_trips") else 0
        out += ["", "Replica exchange acceptance per neighbouring pair: "
                + ", ".join(f"{x:.2f}" for x in acc) + f"; {rt} round trips."]
    return out


def _numbers(ens, name: str, ndim: int | None) -> np.ndarray:
    """Dataset `name` of the ensemble as numbers of `ndim` axes, or FileError naming it (a 0-d or string
    dataset would otherwise fail deep inside the statistics with a message about numpy, not the file)."""
    from hpc_rg.io.ensemble import FileError, check_sources
    d = ens.file[name]
    if getattr(d, "is_virtual", False):        # hpc-rg writes only /spins virtual, but a file may say otherwise
        check_sources(ens.path, d)
    if not hasattr(d, "dtype") or d.dtype.kind not in "fiu" or (ndim is not None and d.ndim != ndim):
        what = f"{d.dtype} {tuple(d.shape)}" if hasattr(d, "dtype") else "a group"
        axes = f" with {ndim} {'axis' if ndim == 1 else 'axes'}" if ndim else ""
        raise FileError(ens.path, f"/{name} is {what}: expected numbers{axes} (damaged, or not written by hpc-rg)")
    return d[()]


def _series(ens, name: str) -> np.ndarray:
    """A (temperature, chain, measurement) series of the ensemble, checked (FileError naming it)."""
    from hpc_rg.io.ensemble import FileError
    a = _numbers(ens, name, 3)
    if a.shape[:2] != (ens.n_temperatures, ens.n_chains) or a.shape[2] < 1:
        raise FileError(ens.path, f"/{name} has shape {a.shape}: expected ({ens.n_temperatures}, {ens.n_chains}, "
                                  "measurements) (temperatures x chains x measurements)")
    return a


def _models_section(run: Path) -> list[str]:
    folder = run / "models"
    metrics = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not metrics:
        return []
    out = ["## Trained models", ""]
    rows = []
    for p in metrics:
        try:
            m = json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, OSError):     # not JSON, not UTF-8 (both ValueErrors), a folder: say so, go on
            rows.append([inline(p.stem), "", "unreadable: not a JSON metrics file"])
            continue
        if not isinstance(m, dict):
            rows.append([inline(p.stem), "", f"unreadable: a JSON {type(m).__name__}, not a metrics object"])
            continue
        final = m.get("final", m.get("metrics", {}))
        if isinstance(final, dict):
            shown = ", ".join(f"{k} = {v:.4g}" if isinstance(v, (int, float)) else f"{k} = {v}"
                              for k, v in list(final.items())[:8])
        else:
            shown = str(final)[:200]
        rows.append([inline(p.stem), inline(m.get("kind", "")), inline(shown)])
    out += _table(["model", "kind", "final metrics"], rows)
    return out + [""]


def _results_section(run: Path, figures: set[str]) -> tuple[list[str], set[str]]:
    """Every reduction: its warnings and method, its numbers (hpc_rg.report.arrays), its figures.
    Returns the markdown and the figure stems shown here (the rest go to the Figures section)."""
    path = run / "results.h5"
    if not path.exists():
        return [], set()
    from hpc_rg.io.ensemble import FileError, open_hdf5
    from hpc_rg.reduce.results import FORMAT
    from hpc_rg.report.arrays import LOAD_LIMIT, read_reductions, reduction_markdown
    with open_hdf5(path, f"a results file ({FORMAT})") as f:      # a folder, not HDF5, truncated: exit 2
        fmt = f.attrs.get("format")
    if (fmt.decode() if isinstance(fmt, bytes) else fmt) != FORMAT:
        raise FileError(path, f"attribute format = {fmt!r}: expected {FORMAT!r} (not a results file)")
    with _damaged_is_refused(path):
        reductions = read_reductions(path, LOAD_LIMIT)
    out, shown = ["## Reductions", ""], set()
    for red in reductions:
        out += [f"### {inline(red.name.replace('_', ' '))}", ""]
        warning = red.attrs.get("tau_int_warning")
        if warning is not None and _text(warning).strip():
            out += [f"> **Warning:** {inline(_text(warning))}", ""]
        # `or` would ask an array attribute for its truth value: take the first one that says something
        note = next((_text(v) for v in (red.attrs.get("method"), red.attrs.get("note"))
                     if v is not None and _text(v).strip()), None)
        if note is not None:
            out += [f"Method: {inline(note)}", ""]
        stems = _figure_stems(red)
        out += reduction_markdown(red, stems, "figures", figures)
        mine = [s for s in _builder_stems(red) if s in figures and s not in shown]     # in drawing order
        for stem in mine:
            out += _figure_markdown(stem, (run / "figures" / f"{stem}.pdf").exists())
        shown.update(mine)
    return out, shown


def _text(v) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.size == 1:
        return _text(v.reshape(-1)[0])
    if isinstance(v, np.ndarray) and v.dtype.kind in "SOU":       # an array of strings: its items, not repr
        return "; ".join(_text(x) for x in v.reshape(-1))
    return str(v)


def _plots() -> dict:
    from hpc_rg.reduce.figures import plots
    return plots()


def _builder_stems(red) -> list[str]:
    plot = _plots().get(red.name)
    if plot is None:
        return []
    try:
        return [f.name for f in plot.figures(red.as_result())]
    except (KeyError, IndexError, ValueError, TypeError, AttributeError):   # a group this version did not write
        return []


def _figure_stems(red) -> dict[str, str]:
    """{quantity: the figure stem showing it}, from the reduction's figure builder (nothing is drawn)."""
    plot = _plots().get(red.name)
    if plot is None:
        return {}
    from hpc_rg.reduce.figures import figure_of
    try:
        return figure_of(red.as_result(), plot)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError):
        return {}


def _figure_markdown(stem: str, has_pdf: bool) -> list[str]:
    from urllib.parse import quote
    png, pdf = quote(f"figures/{stem}.png"), quote(f"figures/{stem}.pdf")
    return [f"![{inline(stem.replace('_', ' '))}]({png})", "",
            f"*Figure {inline(stem)}* ([PNG]({png})" + (f", [PDF]({pdf}))" if has_pdf else ")"), ""]


def _paper_section(run: Path, report: dict) -> list[str]:
    """The table of the job's study beside this run (none when the job names no study)."""
    if not report.get("paper") and not report.get("study"):
        return []
    from hpc_rg.report.compare import load_study, rows, study_path
    study = load_study(study_path(report.get("paper", ""), report.get("study", ""), run))
    out = [f"## Beside the paper ({inline(report.get('paper') or study.title)})", ""]
    out += _table(["quantity", "ours", "paper", "difference / combined error", "note"],
                  [[inline(r[k]) for k in ("quantity", "ours", "paper", "pull", "note")] for r in rows(study, run)])
    return out + [""]


def run(run_dir: Path) -> Path:
    """Write report.md and report.html into the run folder; returns report.md's path."""
    return write_report(run_dir)


def write_report(run: Path) -> Path:
    run = Path(run)
    if not run.is_dir():
        from hpc_rg.schema import ConfigError
        raise ConfigError(run, "", None, f"a run folder ({'is a file' if run.exists() else 'not found'})")
    from hpc_rg.summary import check_run_folder
    check_run_folder(run)          # `hpc-rg report ~`: one line, no report.md there (the CLI's own check)
    from hpc_rg.config import load
    job = run / "job.toml"
    cfg = load(job) if job.exists() else None       # not UTF-8, a folder, unreadable: one line (exit 2)
    title = (cfg.report.get("title") if cfg else None) or f"hpc_rg report: {cfg.job.name if cfg else run.name}"
    md = [f"# {inline(title)}", ""]
    if cfg is not None:
        md += [f"Job {code(cfg.job.name)} (seed {cfg.job.seed}); stages {inline(', '.join(cfg.stages))}.", ""]
    folder = run / "figures"
    figures = {f.stem for f in folder.glob("*.png")} if folder.is_dir() else set()
    results, shown = _results_section(run, figures)
    md += _ensemble_section(run) + _models_section(run) + results
    md += _paper_section(run, cfg.report if cfg else {})
    rest = sorted(figures - shown)
    if rest:
        md += ["## Figures", ""]
        for stem in rest:
            md += _figure_markdown(stem, (folder / f"{stem}.pdf").exists())
    if cfg is not None:
        md += ["## Job file", ""] + fence(cfg.text.strip(), "toml") + [""]
    text = "\n".join(md)
    write_text(run / "report.md", text)
    write_text(run / "report.html", html_page(text, run, title))
    return run / "report.md"


def write_text(path: Path, text: str) -> None:
    """`path` holds `text` or what it held before; an unwritable folder is one line (exit 2)."""
    from hpc_rg.io.atomic import atomic_write_text
    try:
        atomic_write_text(path, text)            # the page says charset utf-8, whatever the locale
    except OSError as e:
        from hpc_rg.io import diskfull
        if diskfull.is_disk_full(e):                  # the CLI's own message and exit code for a full disk
            raise
        from hpc_rg.schema import ConfigError
        raise ConfigError(path, "", None, f"a report file that can be written ({e.strerror}: {e.filename})") \
            from None


def html_page(md: str, run: Path, title: str) -> str:
    """The page of `md` (figures stay relative links into `run`, so the page is read beside them)."""
    return render_html(md, title)
