"""`hpc-rg report RUN_DIR`: report.md and report.html from the files a run left behind.

Reads only files (job.toml, ensemble.h5, simulate.json, models/*.json, results.h5, figures/*.png), so it
can be re-run on a copy of the folder. Sections: the job, the ensemble (per-temperature observables with
errors, replica-exchange statistics, throughput), the trained models (final metrics), every reduction's
numbers with their error bars, the figures, and, when the job's `[report] paper = "..."` names a study, a
table of our numbers beside the paper's (`hpc_rg.report.papers`).
"""
from __future__ import annotations

import base64
import contextlib
import html
import json
import os
from pathlib import Path

import numpy as np

from hpc_rg.summary import _fmt


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


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
            out += ["", f"Simulation: {s['wall_seconds']:.1f} s wall on {s['ranks']} rank(s), "
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
    from hpc_rg.reduce.stats import mean_error
    out = []
    a = ens.attrs
    out.append(f"{a.get('model')} on {'x'.join(map(str, ens.lattice_shape))}, algorithm {a.get('algorithm')} "
               f"(one update = one {a.get('update_unit', 'sweep')}), {ens.n_temperatures} temperatures x "
               f"{ens.n_chains} chains x {ens.n_samples} samples; thermalize {a.get('thermalize')}, thin "
               f"{a.get('thin')}.")
    out.append("")
    e_ts = ens.timeseries("energy") if ens.has("timeseries/energy") else ens.energy
    m_ts = ens.timeseries("magnetization") if ens.has("timeseries/magnetization") else ens.magnetization
    rows = []
    for t, T in enumerate(ens.temperatures):
        e, de, tau = mean_error(e_ts[t], axis_chains=True)
        m, dm, taum = mean_error(np.abs(m_ts[t]), axis_chains=True)
        rows.append([f"{T:.6g}", _fmt(e, de), _fmt(m, dm), f"{tau:.3g}", f"{taum:.3g}"])
    out += _table(["T", "energy per site", "⟨∣m∣⟩", "τ_int(E)", "τ_int(∣m∣)"], rows)
    out.append("")
    out.append("Errors: Γ-method integrated autocorrelation time, chains combined.")
    if ens.has("exchange/acceptance"):
        acc = ens.file["exchange/acceptance"][()]
        rt = int(ens.file["exchange/round_trips"][()].sum())
        out += ["", "Replica exchange acceptance per neighbouring pair: "
                + ", ".join(f"{x:.2f}" for x in acc) + f"; {rt} round trips."]
    return out


def _models_section(run: Path) -> list[str]:
    folder = run / "models"
    metrics = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not metrics:
        return []
    out = ["## Trained models", ""]
    rows = []
    for p in metrics:
        try:
            m = json.loads(p.read_text())
        except json.JSONDecodeError:
            continue
        final = m.get("final", m.get("metrics", {}))
        if isinstance(final, dict):
            shown = ", ".join(f"{k} = {v:.4g}" if isinstance(v, (int, float)) else f"{k} = {v}"
                              for k, v in list(final.items())[:8])
        else:
            shown = str(final)[:200]
        rows.append([p.stem, str(m.get("kind", "")), shown])
    out += _table(["model", "kind", "final metrics"], rows)
    return out + [""]


def _results_section(run: Path) -> list[str]:
    path = run / "results.h5"
    if not path.exists():
        return []
    from hpc_rg.io.ensemble import FileError, open_hdf5
    from hpc_rg.reduce.results import FORMAT, read_results
    with open_hdf5(path, f"a results file ({FORMAT})") as f:      # a folder, not HDF5, truncated: exit 2
        fmt = f.attrs.get("format")
    if (fmt.decode() if isinstance(fmt, bytes) else fmt) != FORMAT:
        raise FileError(path, f"attribute format = {fmt!r}: expected {FORMAT!r} (not a results file)")
    with _damaged_is_refused(path):
        results = read_results(path)
    out = ["## Reductions", ""]
    for name, d in results.items():
        out.append(f"### {name}")
        note = d["attrs"].get("method") or d["attrs"].get("note")
        if note:
            out += ["", str(note)]
        rows = []
        for q, v in d.items():
            if q in ("attrs", "axes") or q.endswith("_err"):
                continue
            v = np.asarray(v)
            err = np.asarray(d.get(q + "_err", np.full(v.shape, np.nan)))
            if v.size == 1:
                rows.append([q, _fmt(float(v.reshape(-1)[0]), float(err.reshape(-1)[0]) if err.size else np.nan)])
            elif v.size <= 12 and v.ndim == 1:
                rows.append([q, "; ".join(_fmt(float(x), float(e)) for x, e in zip(v, err.reshape(-1)))])
            else:
                rows.append([q, f"array {v.shape} (see results.h5)"])
        out += [""] + _table(["quantity", "value ± error"], rows) + [""]
    return out


def _paper_section(run: Path, paper: str) -> list[str]:
    if not paper:
        return []
    from hpc_rg.report.papers import compare
    rows = compare(paper, run)
    out = [f"## Beside the paper ({paper})", ""]
    out += _table(["quantity", "ours", "paper", "difference / combined error", "note"],
                  [[r["quantity"], r["ours"], r["paper"], r.get("pull", ""), r.get("note", "")] for r in rows])
    return out + [""]


def write_report(run: Path) -> Path:
    run = Path(run)
    if not run.is_dir():
        from hpc_rg.config import ConfigError
        raise ConfigError(run, "", None, f"a run folder ({'is a file' if run.exists() else 'not found'})")
    from hpc_rg.config import loads
    job = run / "job.toml"
    cfg = loads(job.read_text(), job) if job.exists() else None
    title = (cfg.report.get("title") if cfg else None) or f"hpc_rg report: {cfg.job.name if cfg else run.name}"
    md = [f"# {title}", ""]
    if cfg is not None:
        md += [f"Job `{cfg.job.name}` (seed {cfg.job.seed}); stages {', '.join(cfg.stages)}.", ""]
    md += _ensemble_section(run) + _models_section(run) + _results_section(run)
    md += _paper_section(run, (cfg.report.get("paper", "") if cfg else ""))
    figures = sorted((run / "figures").glob("*.png")) if (run / "figures").is_dir() else []
    if figures:
        md += ["## Figures", ""]
        md += [f"![{f.stem}](figures/{f.name})" for f in figures]
        md.append("")
    if cfg is not None:
        md += ["## Job file", "", "```toml", cfg.text.strip(), "```", ""]
    text = "\n".join(md)
    _atomic(run / "report.md", text)
    _atomic(run / "report.html", _html(text, run, title))
    return run / "report.md"


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _html(md: str, run: Path, title: str) -> str:
    """A self-contained page: markdown tables and headings rendered, figures embedded as data URIs."""
    body, in_code, table = [], False, []

    def flush_table():
        if not table:
            return
        rows = [r.strip("|").split(" | ") for r in table if not r.startswith("|---")]
        body.append("<table>" + "".join(
            "<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{html.escape(c.strip(' |'))}</{'th' if i == 0 else 'td'}>"
                             for c in r) + "</tr>" for i, r in enumerate(rows)) + "</table>")
        table.clear()

    for line in md.splitlines():
        if line.startswith("```"):
            flush_table()
            body.append("</pre>" if in_code else "<pre>")
            in_code = not in_code
            continue
        if in_code:
            body.append(html.escape(line))
            continue
        if line.startswith("|"):
            table.append(line)
            continue
        flush_table()
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line[level:].strip())}</h{level}>")
        elif line.startswith("![") and "](" in line:
            src = line[line.index("](") + 2:-1]
            data = base64.b64encode((run / src).read_bytes()).decode()
            body.append(f'<figure><img src="data:image/png;base64,{data}" style="max-width:100%">'
                        f"<figcaption>{html.escape(src)}</figcaption></figure>")
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    flush_table()
    style = ("body{font-family:sans-serif;max-width:60em;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #bbb;padding:2px 6px}pre{background:#f4f4f4;padding:6px}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>" + "\n".join(body) + "</body></html>")
