"""results.h5 (format `hpc_rg.results/1`): every number with its error bar and provenance.

Layout: / attrs format, job_toml (the job text), hpc_rg_version, created (UTC ISO time), n_ranks;
/<reduction name>/ one group per reduction, attrs = its provenance and method notes;
  <q>, <q>_err   float64 datasets side by side (no <q>_err where the number is exact bookkeeping)
  axes/<a>       coordinates (temperatures, r, L, level, ...).
Written by rank 0 only, atomically (<name>.tmp, then os.replace).
"""
from __future__ import annotations

import datetime
import os
from pathlib import Path

import h5py
import numpy as np

FORMAT = "hpc_rg.results/1"


def _attr(v):
    if isinstance(v, (str, int, float, np.integer, np.floating, np.ndarray)):
        return v
    if isinstance(v, (list, tuple)):
        return np.asarray(v)
    return str(v)


def write_results(path: Path, results: dict, job_toml: str, n_ranks: int = 1, version: str = "") -> Path:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["job_toml"] = job_toml
        f.attrs["hpc_rg_version"] = version
        f.attrs["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
        f.attrs["n_ranks"] = n_ranks
        for name, res in results.items():
            g = f.create_group(name)
            for k, v in res.attrs.items():
                g.attrs[k] = _attr(v)
            for q, (v, e) in res.values.items():
                g[q] = np.asarray(v, dtype=np.float64)
                if e is not None:
                    g[q + "_err"] = np.asarray(e, dtype=np.float64)
            for a, v in res.axes.items():
                g[f"axes/{a}"] = np.asarray(v)
    os.replace(tmp, path)
    return path


def read_results(path: Path) -> dict:
    """{reduction: {name: array, ..., 'attrs': {...}}} for reports and tests."""
    out = {}
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise ValueError(f"{path}: not an {FORMAT} file")
        for name, g in f.items():
            d = {k: g[k][()] for k in g if isinstance(g[k], h5py.Dataset)}
            if "axes" in g:
                d["axes"] = {k: g["axes"][k][()] for k in g["axes"]}
            d["attrs"] = dict(g.attrs)
            out[name] = d
    return out
