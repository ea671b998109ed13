"""Our numbers beside a paper's: one comparison per study, chosen by the job's `[report] paper = "..."`.

A comparison is `fn(run_dir) -> list of rows`, each row a dict with `quantity`, `ours` (value ± error as
text), `paper` (the published number), `pull` (|ours - paper| / combined error, as text) and `note` (one line
on the difference and its likely cause). Comparisons live in `hpc_rg.report.papers_<study>` modules listed
in COMPARISONS (imported only when a report asks for them: this module stays import-cheap for validation).
"""
from __future__ import annotations

import importlib

# study -> module that defines `rows(run_dir)`
COMPARISONS: dict[str, str] = {
    "seed000": "hpc_rg.report.papers_seed000",
    "seed001": "hpc_rg.report.papers_seed001",
    "seed002": "hpc_rg.report.papers_seed002",
    "seed003": "hpc_rg.report.papers_seed003",
}


def pull(ours: float, ours_err: float, paper: float, paper_err: float = 0.0) -> str:
    """|difference| in units of the combined error, as text ('' when no error is known)."""
    import math
    combined = math.hypot(ours_err or 0.0, paper_err or 0.0)
    if not combined or not math.isfinite(combined):
        return ""
    return f"{abs(ours - paper) / combined:.1f}σ"


def verdict(p: str, cause: str) -> str:
    """One line on a difference, from its pull text p ("2.3σ"): within 1σ it agrees; 1-4σ is what statistics
    gives in a table this size (the systematic candidate is named too); beyond 4σ the cause."""
    if not p:
        return cause
    z = float(p[:-1])
    if z <= 1:
        return "agrees within 1σ"
    if z < 4:
        return f"consistent within 4σ ({z:.1f}σ; if not chance: {cause})"
    return "differs: " + cause


def row(quantity, ours, paper, p="", note="") -> dict:
    return {"quantity": quantity, "ours": ours, "paper": paper, "pull": p, "note": note}


def results_of(run) -> dict:
    """The run's results.h5 as {reduction: {quantity: array, ...}}, or {} before `analyze` has run."""
    from pathlib import Path
    path = Path(run) / "results.h5"
    if not path.exists():
        return {}
    from hpc_rg.reduce.results import read_results
    return read_results(path)


def value_error(d: dict, q: str):
    """(value, error) arrays of quantity q of a results group (NaN errors where none is stored)."""
    import numpy as np
    v = np.asarray(d[q], dtype=float)
    e = np.asarray(d.get(q + "_err", np.full(v.shape, np.nan)), dtype=float)
    return v, e


def comparison_table(paper: str, runs, with_run: bool = True) -> str:
    """Markdown table of `compare(paper, run)` for each run folder (with a run column when `with_run`)."""
    head = ["quantity", "ours", "paper", "pull", "note"]
    if with_run:
        head = ["run"] + head
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in runs:
        for r in compare(paper, run):
            cells = [r["quantity"], r["ours"], r["paper"], r.get("pull", ""), r.get("note", "")]
            lines.append("| " + " | ".join(str(c) for c in ([run.name] if with_run else []) + cells) + " |")
    return "\n".join(lines) + "\n"


def compare(paper: str, run_dir) -> list[dict]:
    try:
        module = importlib.import_module(COMPARISONS[paper])
    except ModuleNotFoundError as e:
        if COMPARISONS[paper] not in str(e):
            raise
        return [{"quantity": "(comparison not available)", "ours": "", "paper": paper,
                 "note": f"{COMPARISONS[paper]} is not part of this installation"}]
    return module.rows(run_dir)
