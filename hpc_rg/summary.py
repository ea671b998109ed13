"""Human-readable summaries: `hpc-rg info FILE.h5` and `hpc-rg status RUN_DIR`.

Both only read files, so they work while a job runs, after it died, or on a copy of its folder.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import h5py
import numpy as np


def _fmt(mean: float, err: float) -> str:
    if not np.isfinite(err) or err <= 0:
        return f"{mean:.6g}"
    digits = max(0, int(-np.floor(np.log10(err))) + 1)
    return f"{mean:.{digits}f} ± {err:.{digits}f}"


def info(path: Path) -> str:
    """Refuses (FileError, exit 2) a folder, a missing file, a file that is not HDF5 or is damaged."""
    from hpc_rg.io.ensemble import FileError, hdf5_reason, open_hdf5
    path = Path(path)
    with open_hdf5(path, "an .h5 file (ensemble.h5 or results.h5)") as f:
        fmt = f.attrs.get("format", "")
    fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
    if fmt.startswith("hpc_rg.ensemble"):
        return ensemble_info(path)
    try:
        return generic_info(path, fmt)
    except (OSError, KeyError, ValueError, RuntimeError) as e:
        raise FileError(path, f"is damaged: {hdf5_reason(e)}; copy it again or re-create it") from None


def ensemble_info(path: Path) -> str:
    from hpc_rg.io.ensemble import FileError, hdf5_reason, open_ensemble
    with open_ensemble(path) as ens:         # checks the file and every part its /spins reads
        try:
            return _ensemble_lines(path, ens)
        except (OSError, KeyError, ValueError, RuntimeError) as e:
            raise FileError(path, f"is damaged: {hdf5_reason(e)}; copy it again or re-create it") from None


def _ensemble_lines(path: Path, ens) -> str:
    from hpc_rg.reduce.stats import mean_error
    a = ens.attrs
    shape = "x".join(map(str, ens.lattice_shape))
    out = [f"{path}: {a.get('format')} ensemble",
           f"  model {a.get('model')} {shape}, J = {a.get('J')}, h = {a.get('h')}"
           + (f", alpha = {a.get('alpha')} ({a.get('images')} images)" if a.get("model") == "longrange2d" else ""),
           f"  algorithm {a.get('algorithm')} (one update = one {a.get('update_unit', 'sweep')}), "
           f"seed {a.get('seed')}, thermalize {a.get('thermalize')}, thin {a.get('thin')}",
           f"  {ens.n_temperatures} temperatures x {ens.n_chains} chains x {ens.n_samples} samples "
           f"({ens.spins.nbytes / 2**20:.1f} MiB of spins)"]
    have_ts = ens.has("timeseries/energy")
    e_ts = ens.timeseries("energy") if have_ts else ens.energy
    m_ts = ens.timeseries("magnetization") if have_ts else ens.magnetization
    out.append("  T            energy/site          |m|                  tau_int(E)")
    for t, T in enumerate(ens.temperatures):
        e, de, tau = mean_error(e_ts[t], axis_chains=True)
        m, dm, _ = mean_error(np.abs(m_ts[t]), axis_chains=True)
        out.append(f"  {T:<12.6g} {_fmt(e, de):<20} {_fmt(m, dm):<20} {tau:.3g}")
    if ens.has("exchange/acceptance"):
        acc = ens.file["exchange/acceptance"][()]
        rt = ens.file["exchange/round_trips"][()]
        n_att = int(ens.file["exchange/attempts"][()])
        out.append(f"  replica exchange: {n_att} attempts; acceptance per pair (T_i, T_i+1):")
        out.append("    " + " ".join(f"{x:.2f}" for x in acc))
        out.append(f"  round trips (bottom -> top -> bottom): {int(rt.sum())} over {rt.size} replicas")
    return "\n".join(out)


def generic_info(path: Path, fmt: str) -> str:
    out = [f"{path}: {fmt or 'HDF5 file'}"]

    def visit(name, obj):
        depth = name.count("/")
        if isinstance(obj, h5py.Dataset):
            if obj.size <= 8:
                val = np.array2string(np.asarray(obj[()]), precision=6, separator=", ")
                out.append(f"{'  ' * (depth + 1)}{name.split('/')[-1]} = {val}")
            else:
                out.append(f"{'  ' * (depth + 1)}{name.split('/')[-1]}: {obj.dtype} {obj.shape}")
        else:
            out.append(f"{'  ' * (depth + 1)}{name.split('/')[-1]}/")
    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return "\n".join(out)


def ensemble_problem(path: Path):
    """Why `path` (an ensemble.h5) cannot be read (the ConfigError opening it raises), or None when it and
    every part it reads check out."""
    from hpc_rg.config import ConfigError
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
    from hpc_rg.io.checkpoint import read_commit
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        from hpc_rg.config import ConfigError
        what = "is a file" if run_dir.exists() else "not found"
        raise ConfigError(run_dir, "", None, f"a run folder ({what})")
    lines = [f"{run_dir}:"]
    job = run_dir / "job.toml"
    if job.exists():
        from hpc_rg.config import loads
        cfg = loads(job.read_text(), job)
        lines.append(f"  job '{cfg.job.name}' (seed {cfg.job.seed}), stages {', '.join(cfg.stages)}")
    ens = run_dir / "ensemble.h5"
    ens_problem = ensemble_problem(ens) if ens.exists() else None
    problem = ens_problem
    rec = read_commit(run_dir / "checkpoint")
    if rec is None:
        lines.append("  simulate: no checkpoint yet" + (" (ensemble.h5 present)" if ens.exists() else ""))
    else:
        t, total = rec["t"], rec["updates_total"]
        age = time.time() - rec["time"]
        if t < total:
            state = "in progress or stopped"
        elif not ens.exists():
            state = "sampling done, ensemble.h5 not written (run simulate --resume to assemble it)"
        elif ens_problem:
            state = "sampling done, ensemble.h5 DAMAGED (see below)"
        else:
            state = "complete"
        lines.append(f"  simulate: {state}: update {t} of {total} ({100 * t / max(total, 1):.1f}%), "
                     f"{rec['samples_done']} samples stored per chain and temperature, on {rec['ranks']} rank(s)")
        lines.append(f"  last checkpoint {rec['checkpoint']} written {age:.0f} s ago")
        rate = rec.get("updates_per_second") or 0
        if t < total and rate > 0:
            lines.append(f"  estimated time left at {rate:.3g} updates/s: {(total - t) / rate:.0f} s")
        tp = rec.get("tempering")
        if tp:
            att = np.asarray(tp["pair_attempts"]).sum(axis=0)
            acc = np.asarray(tp["pair_accepts"]).sum(axis=0) / np.maximum(att, 1)
            lines.append("  exchange acceptance per pair: " + " ".join(f"{x:.2f}" for x in acc))
            lines.append(f"  round trips: {int(np.asarray(tp['round_trips']).sum())}")
    for name in ("ensemble.h5", "results.h5", "report.md"):
        p = run_dir / name
        if p.exists():
            lines.append(f"  {name}: {p.stat().st_size / 2**20:.1f} MiB"
                         + (" (DAMAGED: not readable)" if name == "ensemble.h5" and ens_problem else ""))
    models = sorted((run_dir / "models").glob("*.pt")) if (run_dir / "models").is_dir() else []
    if models:
        lines.append("  models: " + ", ".join(m.stem for m in models))
    if (run_dir / "tune").is_dir():   # `hpc-rg tune` studies: trials done / running / pruned
        from hpc_rg.learn.tune_search import status_lines
        lines += status_lines(run_dir)
    stats = run_dir / "simulate.json"
    if stats.exists():
        try:
            s = json.loads(stats.read_text())
            lines.append(f"  last simulate run: {s['wall_seconds']:.1f} s wall on {s['ranks']} rank(s), "
                         f"{s['ns_per_site_update']:.2f} ns per site update")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):    # timing only: say so, go on
            lines.append("  last simulate run: simulate.json unreadable (timings lost; the ensemble is not)")
    return "\n".join(lines), problem
