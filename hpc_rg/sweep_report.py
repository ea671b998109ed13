"""What `hpc-rg status OUT` and `hpc-rg report OUT` show for a sweep folder (`hpc_rg.sweep`): one row per
point, read from the index `<OUT>/sweep.json` and the points' files only (works while the sweep runs)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hpc_rg.io.ensemble import open_ensemble
from hpc_rg.reduce.stats import mean_error
from hpc_rg.report import stage as report_stage
from hpc_rg.report.markdown import render_html, table
from hpc_rg.summary import format_value
from hpc_rg.sweep import point_state, read_index


def _aligned(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header] + rows]


def status(folder: Path) -> str:
    """`hpc-rg status OUT` on a sweep folder: one row per point."""
    folder = Path(folder)
    index = read_index(folder)
    points = index["points"]
    lines = [f"{folder}: sweep '{index.get('name')}' of {len(points)} points ({index.get('mode')} of "
             f"{', '.join(map(str, index.get('keys', [])))})"]
    rows, done = [], 0
    for p in points:
        s = point_state(folder / p["folder"])
        done += s["simulate"] == "complete"
        rows.append([str(p.get("index", "")), p["folder"], s["simulate"] if s["started"] else "not started",
                     str(s["models"]), "yes" if s["results.h5"] else "-", "yes" if s["report.md"] else "-"])
    lines += ["  " + line for line in _aligned(["point", "folder", "simulate", "models", "results", "report"], rows)]
    lines.append(f"  {done} of {len(points)} points simulated")
    return "\n".join(lines)


def _observables(run: Path) -> list[list[str]]:
    """Per temperature: energy per site and <|m|> with errors, tau_int(E), as in a run's report."""
    rows = []
    with open_ensemble(run / "ensemble.h5") as ens:
        e_ts = ens.timeseries("energy") if ens.has("timeseries/energy") else ens.energy
        m_ts = ens.timeseries("magnetization") if ens.has("timeseries/magnetization") else ens.magnetization
        for t, T in enumerate(ens.temperatures):
            e, de, tau = mean_error(e_ts[t], axis_chains=True)
            m, dm, _ = mean_error(np.abs(m_ts[t]), axis_chains=True)
            rows.append([f"{T:.6g}", format_value(e, de), format_value(m, dm), f"{tau:.3g}"])
    return rows


def write_report(folder: Path, point_reports: bool = True) -> Path:
    """`hpc-rg report OUT` on a sweep folder: each started point's own report (as `hpc-rg report` on its
    folder writes it), then `<OUT>/report.md` and `.html` tabulating all points: what each holds, and the
    ensemble observables of every point and temperature side by side."""
    folder = Path(folder)
    index = read_index(folder)
    points = index["points"]
    keys = [str(k) for k in index.get("keys", [])]
    title = f"hpc_rg sweep report: {index.get('name')}"
    md = [f"# {title}", "",
          f"Sweep of {len(points)} points ({index.get('mode')} of {', '.join(f'`{k}`' for k in keys)}) from "
          f"`{index.get('job')}`; each point's job seed is derived from the sweep's seed {index.get('seed')} "
          "and the point.", "", "## Points", ""]
    rows, observables = [], []
    for p in points:
        run = folder / p["folder"]
        s = point_state(run)
        if point_reports and s["started"]:
            report_stage.write_report(run)
            s["report.md"] = True
        values = [json.dumps(p["values"].get(k)) for k in keys]
        link = f"[report]({p['folder']}/report.md)" if s["report.md"] else "-"
        rows.append([str(p.get("index", "")), f"`{p['folder']}`", *values, str(p.get("seed", "")),
                     s["simulate"] if s["started"] else "not started", link])
        if s["ensemble.h5"]:
            observables += [[f"`{p['folder']}`", *r] for r in _observables(run)]
    md += table(["point", "folder", *keys, "seed", "simulate", "report"], rows) + [""]
    if observables:
        md += ["## Observables of every point", ""]
        md += table(["point", "T", "energy per site", "⟨∣m∣⟩", "τ_int(E)"], observables)
        md += ["", "Errors: Γ-method integrated autocorrelation time, chains combined.", ""]
    text = "\n".join(md)
    report_stage.write_text(folder / "report.md", text)
    report_stage.write_text(folder / "report.html", render_html(text, title))
    return folder / "report.md"
