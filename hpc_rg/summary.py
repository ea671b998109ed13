"""Human-readable summaries: `hpc-rg info FILE.h5` and `hpc-rg status RUN_DIR`.

Both only read files, so they work while a job runs, after it died, or on a copy of its folder.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import h5py
import numpy as np

from hpc_rg.progress import duration


def format_value(mean: float, err: float) -> str:
    """`mean ± err` with the error's first significant digit and one more (the mean alone when there is no
    finite positive error): the one way every table of the CLI and the reports writes a measured number."""
    if not np.isfinite(err) or err <= 0:
        return f"{mean:.6g}"
    digits = max(0, int(-np.floor(np.log10(err))) + 1)
    return f"{mean:.{digits}f} ± {err:.{digits}f}"




def info(path: Path) -> str:
    """Refuses (FileError, exit 2) a folder, a missing file, a file that is not HDF5 or is damaged."""
    return info_text(info_record(path))


def info_record(path: Path) -> dict:
    """What `hpc-rg info --json` prints: see INFO_KEYS. Refuses a bad path like `info`."""
    from hpc_rg.io.ensemble import FileError, hdf5_reason, open_hdf5
    path = Path(path)
    with open_hdf5(path, "an .h5 file (ensemble.h5 or results.h5)") as f:
        fmt = f.attrs.get("format", "")
    fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
    if fmt.startswith("hpc_rg.ensemble"):
        return ensemble_record(path)
    try:
        return generic_record(path, fmt)
    except (OSError, KeyError, ValueError, RuntimeError) as e:
        raise FileError(path, f"is damaged: {hdf5_reason(e)}; copy it again or re-create it") from None


# The keys of `hpc-rg info --json` (kept stable: scripts read them). Every record has path, kind, format and
# warnings (a list of sentences, empty when nothing is wrong).
INFO_KEYS = {
    "ensemble": ("path", "kind", "format", "warnings", "model", "lattice_shape", "J", "h", "alpha", "images",
                 "algorithm", "update_unit", "seed", "thermalize", "thin", "n_temperatures", "n_chains",
                 "n_samples", "spins_mib", "series", "temperatures", "replica_exchange"),
    "per_temperature": ("T", "energy", "energy_error", "abs_m", "abs_m_error", "tau_int_energy", "tau_int_abs_m",
                        "series_length", "too_short"),
    "other": ("path", "kind", "format", "warnings", "items"),
}


def _plain(v):
    """An HDF5 attribute as a JSON value."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def ensemble_record(path: Path) -> dict:
    from hpc_rg.io.ensemble import FileError, hdf5_reason, open_ensemble
    with open_ensemble(path) as ens:         # checks the file and every part its /spins reads
        try:
            return _ensemble_record(path, ens)
        except (OSError, KeyError, ValueError, RuntimeError) as e:
            raise FileError(path, f"is damaged: {hdf5_reason(e)}; copy it again or re-create it") from None


def _ensemble_record(path: Path, ens) -> dict:
    from hpc_rg.reduce.stats import chains_too_short, mean_error, tau_int_warning
    a = ens.attrs
    long_range = a.get("model") == "longrange2d"
    have_ts = ens.has("timeseries/energy")
    e_ts = ens.timeseries("energy") if have_ts else ens.energy
    m_ts = ens.timeseries("magnetization") if have_ts else ens.magnetization
    rows = []
    for t, T in enumerate(ens.temperatures):
        e, de, tau_e = mean_error(e_ts[t], axis_chains=True)
        m, dm, tau_m = mean_error(np.abs(m_ts[t]), axis_chains=True)
        n = int(np.shape(e_ts[t])[-1])
        rows.append({"T": float(T), "energy": e, "energy_error": de, "abs_m": m, "abs_m_error": dm,
                     "tau_int_energy": tau_e, "tau_int_abs_m": tau_m, "series_length": n,
                     "too_short": bool(chains_too_short(n, max(tau_e, tau_m)))})
    warnings = []
    if rows:
        note = tau_int_warning(rows[0]["series_length"], [max(r["tau_int_energy"], r["tau_int_abs_m"]) for r in rows],
                               [r["T"] for r in rows], "E, |m|", "measurements" if have_ts else "samples")
        if note:
            warnings.append(note)
    exchange = None
    if ens.has("exchange/acceptance"):
        exchange = {"attempts": int(ens.file["exchange/attempts"][()]),
                    "acceptance": [float(x) for x in ens.file["exchange/acceptance"][()]],
                    "round_trips": int(ens.file["exchange/round_trips"][()].sum()),
                    "replicas": int(ens.file["exchange/round_trips"][()].size)}
    rec = {"path": str(path), "kind": "ensemble", "format": _plain(a.get("format")), "warnings": warnings,
           "model": _plain(a.get("model")), "lattice_shape": [int(x) for x in ens.lattice_shape],
           "J": _plain(a.get("J")), "h": _plain(a.get("h")),
           "alpha": _plain(a.get("alpha")) if long_range else None,
           "images": _plain(a.get("images")) if long_range else None,
           "algorithm": _plain(a.get("algorithm")), "update_unit": _plain(a.get("update_unit", "sweep")),
           "seed": _plain(a.get("seed")), "thermalize": _plain(a.get("thermalize")), "thin": _plain(a.get("thin")),
           "n_temperatures": int(ens.n_temperatures), "n_chains": int(ens.n_chains), "n_samples": int(ens.n_samples),
           "spins_mib": round(ens.spins.nbytes / 2**20, 3),
           "series": "timeseries" if have_ts else "samples", "temperatures": rows, "replica_exchange": exchange}
    assert tuple(rec) == INFO_KEYS["ensemble"]
    return rec


def generic_record(path: Path, fmt: str) -> dict:
    """Any other HDF5 file (results.h5 and the like): its tree, small datasets with their values."""
    items = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            item = {"name": name, "dtype": str(obj.dtype), "shape": list(obj.shape)}
            if obj.size <= 8:
                item["value"] = _plain(np.asarray(obj[()]))
            items.append(item)
        else:
            items.append({"name": name + "/"})
    warnings = []
    with h5py.File(path, "r") as f:
        f.visititems(visit)
        for name, group in f.items():      # a reduction's own warning (observables: chains shorter than 50 τ)
            note = group.attrs.get("tau_int_warning", "") if isinstance(group, h5py.Group) else ""
            note = _plain(note)
            if note:
                warnings.append(f"{name}: {note}")
    kind = "results" if fmt.startswith("hpc_rg.results") else "hdf5"
    return {"path": str(path), "kind": kind, "format": fmt, "warnings": warnings, "items": items}


def info_text(rec: dict) -> str:
    if rec["kind"] == "ensemble":
        out = _ensemble_lines(rec)
    else:
        out = [f"{rec['path']}: {rec['format'] or 'HDF5 file'}"]
        for item in rec["items"]:
            name = item["name"].rstrip("/")
            indent = "  " * (name.count("/") + 1)
            leaf = name.split("/")[-1]
            if "dtype" not in item:
                out.append(f"{indent}{leaf}/")
            elif "value" in item:
                val = np.array2string(np.asarray(item["value"]), precision=6, separator=", ")
                out.append(f"{indent}{leaf} = {val}")
            else:
                out.append(f"{indent}{leaf}: {item['dtype']} {tuple(item['shape'])}")
    out += [f"  warning: {w}" for w in rec["warnings"]]
    return "\n".join(out)


def _ensemble_lines(r: dict) -> list[str]:
    shape = "x".join(map(str, r["lattice_shape"]))
    out = [f"{r['path']}: {r['format']} ensemble",
           f"  model {r['model']} {shape}, J = {r['J']}, h = {r['h']}"
           + (f", alpha = {r['alpha']} ({r['images']} images)" if r["model"] == "longrange2d" else ""),
           f"  algorithm {r['algorithm']} (one update = one {r['update_unit']}), "
           f"seed {r['seed']}, thermalize {r['thermalize']}, thin {r['thin']}",
           f"  {r['n_temperatures']} temperatures x {r['n_chains']} chains x {r['n_samples']} samples "
           f"({r['spins_mib']:.1f} MiB of spins)"]
    out.append("  T            energy/site          |m|                  tau_int(E)")
    for row in r["temperatures"]:
        out.append(f"  {row['T']:<12.6g} {format_value(row['energy'], row['energy_error']):<20} "
                   f"{format_value(row['abs_m'], row['abs_m_error']):<20} {row['tau_int_energy']:.3g}"
                   + ("  (chains too short)" if row["too_short"] else ""))
    x = r["replica_exchange"]
    if x is not None:
        out.append(f"  replica exchange: {x['attempts']} attempts; acceptance per pair (T_i, T_i+1):")
        out.append("    " + " ".join(f"{v:.2f}" for v in x["acceptance"]))
        out.append(f"  round trips (bottom -> top -> bottom): {x['round_trips']} over {x['replicas']} replicas")
    return out


def ensemble_problem(path: Path):
    """Why `path` (an ensemble.h5) cannot be read (the ConfigError opening it raises), or None when it and
    every part it reads check out."""
    from hpc_rg.schema import ConfigError
    from hpc_rg.io.ensemble import open_ensemble
    try:
        with open_ensemble(path):
            return None
    except ConfigError as e:
        return e


def status(run_dir: Path) -> str:
    """The status text; a damaged ensemble.h5 is reported in it (see `status_report` for the exit code)."""
    return status_report(run_dir)[0]


def status_report(run_dir: Path):
    """(the status text, None or the FileError of a run folder whose ensemble.h5 is damaged).
    'complete' is said only when ensemble.h5 exists and it and its parts check out."""
    rec, problem = status_record(run_dir)
    return status_text(rec), problem


# What marks a folder as a run folder (any one of them; `.lock` alone: a stage has just claimed it).
RUN_FOLDER_MARKS = ("job.toml", ".lock", "checkpoint", "parts", "ensemble.h5", "results.h5", "models", "tune")

# The keys of `hpc-rg status --json` (kept stable: scripts read them); absent facts are null.
STATUS_KEYS = ("path", "kind", "job", "simulate", "files", "models", "tune", "last_simulate", "problem")
SIMULATE_KEYS = ("state", "update", "updates_total", "percent", "samples_done", "ranks", "checkpoint",
                 "checkpoint_age_seconds", "updates_per_second", "seconds_left", "exchange_acceptance",
                 "round_trips")


def check_run_folder(run_dir: Path) -> Path:
    """`run_dir`, or a one-line ConfigError (exit 2): missing, a file, or a folder no stage ever wrote to."""
    from hpc_rg.schema import ConfigError
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        what = "is a file" if run_dir.exists() else "not found"
        raise ConfigError(run_dir, "", None, f"a run folder ({what})")
    if not any((run_dir / m).exists() for m in RUN_FOLDER_MARKS):
        raise ConfigError(run_dir, "", None, "a run folder (this folder holds no job.toml, ensemble.h5, "
                          "results.h5, checkpoint or models: no stage has run here)")
    return run_dir


def status_record(run_dir: Path):
    """(the record `hpc-rg status --json` prints, see STATUS_KEYS; None or the FileError of a damaged
    ensemble.h5)."""
    from hpc_rg.io.checkpoint import read_commit
    run_dir = check_run_folder(run_dir)
    rec: dict = {"path": str(run_dir), "kind": "run", "job": None, "simulate": None, "files": {}, "models": [],
                 "tune": [], "last_simulate": None, "problem": None}
    job = run_dir / "job.toml"
    if job.exists():
        from hpc_rg.config import loads
        cfg = loads(job.read_text(), job)
        rec["job"] = {"name": cfg.job.name, "seed": cfg.job.seed, "stages": list(cfg.stages)}
    ens = run_dir / "ensemble.h5"
    ens_problem = ensemble_problem(ens) if ens.exists() else None
    if ens_problem is not None:
        rec["problem"] = str(ens_problem)
    commit = read_commit(run_dir / "checkpoint")
    if commit is not None:
        t, total = commit["t"], commit["updates_total"]
        if t < total:
            state = "in progress or stopped"
        elif not ens.exists():
            state = "sampling done, ensemble.h5 not written (run simulate --resume to assemble it)"
        elif ens_problem:
            state = "sampling done, ensemble.h5 DAMAGED (see below)"
        else:
            state = "complete"
        rate = commit.get("updates_per_second") or 0
        sim = {"state": state, "update": t, "updates_total": total, "percent": round(100 * t / max(total, 1), 1),
               "samples_done": commit["samples_done"], "ranks": commit["ranks"], "checkpoint": commit["checkpoint"],
               "checkpoint_age_seconds": round(time.time() - commit["time"], 1), "updates_per_second": rate or None,
               "seconds_left": (total - t) / rate if t < total and rate > 0 else None,
               "exchange_acceptance": None, "round_trips": None}
        tp = commit.get("tempering")
        if tp:
            att = np.asarray(tp["pair_attempts"]).sum(axis=0)
            sim["exchange_acceptance"] = (np.asarray(tp["pair_accepts"]).sum(axis=0) / np.maximum(att, 1)).tolist()
            sim["round_trips"] = int(np.asarray(tp["round_trips"]).sum())
        rec["simulate"] = sim
    for name in ("ensemble.h5", "results.h5", "report.md"):
        p = run_dir / name
        if p.exists():
            rec["files"][name] = {"mib": round(p.stat().st_size / 2**20, 3),
                                  "damaged": bool(name == "ensemble.h5" and ens_problem)}
    models = sorted((run_dir / "models").glob("*.pt")) if (run_dir / "models").is_dir() else []
    rec["models"] = [m.stem for m in models]
    if (run_dir / "tune").is_dir():   # `hpc-rg tune` studies: trials done / running / pruned
        from hpc_rg.tune.study import status_lines
        rec["tune"] = [line.strip() for line in status_lines(run_dir)]
    stats = run_dir / "simulate.json"
    if stats.exists():
        try:
            st = json.loads(stats.read_text())
            rec["last_simulate"] = {"wall_seconds": float(st["wall_seconds"]), "ranks": int(st["ranks"]),
                                    "ns_per_site_update": float(st["ns_per_site_update"])}
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):    # timing only: say so, go on
            rec["last_simulate"] = "unreadable"
    assert tuple(rec) == STATUS_KEYS
    return rec, ens_problem


def status_text(rec: dict) -> str:
    lines = [f"{rec['path']}:"]
    if rec["job"]:
        j = rec["job"]
        lines.append(f"  job '{j['name']}' (seed {j['seed']}), stages {', '.join(j['stages'])}")
    sim = rec["simulate"]
    if sim is None:
        lines.append("  simulate: no checkpoint yet" + (" (ensemble.h5 present)" if "ensemble.h5" in rec["files"] else ""))
    else:
        lines.append(f"  simulate: {sim['state']}: update {sim['update']} of {sim['updates_total']} "
                     f"({sim['percent']:.1f}%), {sim['samples_done']} samples stored per chain and temperature, "
                     f"on {sim['ranks']} rank(s)")
        lines.append(f"  last checkpoint {sim['checkpoint']} written {duration(sim['checkpoint_age_seconds'])} ago")
        if sim["seconds_left"] is not None:
            lines.append(f"  estimated time left at {sim['updates_per_second']:.3g} updates/s: "
                         f"{duration(sim['seconds_left'])}")
        if sim["exchange_acceptance"] is not None:
            lines.append("  exchange acceptance per pair: " + " ".join(f"{x:.2f}" for x in sim["exchange_acceptance"]))
            lines.append(f"  round trips: {sim['round_trips']}")
    for name, f in rec["files"].items():
        lines.append(f"  {name}: {f['mib']:.1f} MiB" + (" (DAMAGED: not readable)" if f["damaged"] else ""))
    if rec["models"]:
        lines.append("  models: " + ", ".join(rec["models"]))
    lines += ["  " + line for line in rec["tune"]]
    last = rec["last_simulate"]
    if last == "unreadable":
        lines.append("  last simulate run: simulate.json unreadable (timings lost; the ensemble is not)")
    elif last is not None:
        lines.append(f"  last simulate run: {last['wall_seconds']:.1f} s wall on {last['ranks']} rank(s), "
                     f"{last['ns_per_site_update']:.2f} ns per site update")
    return "\n".join(lines)


def sweep_status_record(folder: Path) -> dict:
    """`hpc-rg status --json` on a sweep folder: the index and each point's state (see sweep.status)."""
    from hpc_rg import sweep
    folder = Path(folder)
    index = sweep.read_index(folder)
    points = [{"index": p.get("index"), "folder": p["folder"], "values": p["values"],
               **sweep.point_state(folder / p["folder"])} for p in index["points"]]
    return {"path": str(folder), "kind": "sweep", "name": index.get("name"), "mode": index.get("mode"),
            "keys": index.get("keys", []), "points": points}
