"""Which job made a run folder, and whether a job may use what it holds.

job.toml is a convenience, not the evidence: it may be missing or rewritten. What a run folder's ensemble
*is* is recorded where it was made, in the checkpoint record and in ensemble.h5's attributes, and a resume
(or a stage reading the ensemble) compares the job's physics keys with those, always (`check_physics`).
"""
from __future__ import annotations

import json
from pathlib import Path

from hpc_rg.config import Config, loads
from hpc_rg.io.folder_errors import RunFolderError
from hpc_rg.schema import ConfigError


def previous_job(out: Path) -> Config | None:
    p = Path(out) / "job.toml"
    if not p.exists():
        return None
    try:
        return loads(p.read_text(), p)
    except (ConfigError, OSError, UnicodeDecodeError):
        return None


def _h5_attr(path: Path, name: str):
    import h5py
    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get(name)
    except (OSError, ValueError) as e:
        raise RunFolderError(path, f"unreadable HDF5 file ({e}); remove it or pass --force to start over") from None
    return value.decode() if isinstance(value, bytes) else value


def recorded_job(path: Path) -> Config | None:
    """The job stored in an HDF5 file's `job_toml` attribute (ensemble.h5, results.h5), if any."""
    text = _h5_attr(path, "job_toml")
    if not isinstance(text, str):
        return None
    try:
        return loads(text, path)
    except ConfigError:
        return None


def owner_job(out: Path) -> Config | None:
    """The job that made the folder: job.toml, else the job recorded in ensemble.h5 or results.h5."""
    old = previous_job(out)
    if old is not None:
        return old
    for name in ("ensemble.h5", "results.h5"):
        if (Path(out) / name).is_file():
            job = recorded_job(Path(out) / name)
            if job is not None:
                return job
    return None


def differing_key(old: Config, new: Config) -> str | None:
    """The first job key that changes the physics of the ensemble, or None."""
    if old.job.name != new.job.name:
        return "job.name"
    if old.job.seed != new.job.seed:
        return "job.seed"
    if (old.simulate is None) != (new.simulate is None):
        return "simulate"
    if old.simulate is not None:
        a, b = old.simulate.physics(), new.simulate.physics()
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return f"simulate.{k}"
    return None


def describe_difference(old: Config, new: Config, key: str) -> str:
    """"key differs: run has X, job has Y" for a differing key (no values when a side lacks it)."""
    def value(cfg):
        if key.startswith("job."):
            return getattr(cfg.job, key[4:])
        if key.startswith("simulate.") and cfg.simulate is not None:
            return _plain(cfg.simulate.physics().get(key[9:]))
        return None
    a, b = value(old), value(new)
    return f"{key} differs" if a is None or b is None else \
        f"{key} differs: run has {json.dumps(a)}, job has {json.dumps(b)}"


# -- the physics of what the folder holds ----------------------------------------------------------------

def _plain(x):
    """JSON round trip, so that tuples and lists, numpy and Python numbers compare alike."""
    return json.loads(json.dumps(x, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


def job_physics(seed: int, physics: dict) -> dict:
    """The keys that define an ensemble, as "simulate.<key>" (and "job.seed") -> plain values."""
    return _plain({"job.seed": seed, **{f"simulate.{k}": v for k, v in physics.items()}})


def physics_diff(run: dict, job: dict, skip: tuple[str, ...] = ()) -> str | None:
    """`key differs: run has X, job has Y` for the first physics key that differs, or None."""
    for k in sorted(set(run) | set(job)):
        if k in skip:
            continue
        if k in run and k in job and run[k] != job[k]:
            return f"{k} differs: run has {json.dumps(run[k])}, job has {json.dumps(job[k])}"
        if (k in run) != (k in job):
            return f"{k} differs: run has {json.dumps(run.get(k))}, job has {json.dumps(job.get(k))}"
    return None


def record_physics(record: dict) -> tuple[dict | None, tuple[str, ...]]:
    """The physics a checkpoint record stores, and the keys it cannot vouch for. Records name the job's
    declared physics ("job_physics", "seed"); older ones only the run's (tuned temperatures, no seed)."""
    if isinstance(record.get("job_physics"), dict):
        return job_physics(record.get("seed"), record["job_physics"]), ()
    if isinstance(record.get("physics"), dict):
        run = job_physics(None, record["physics"])
        run.pop("job.seed")
        skip = ("job.seed",) + (("simulate.temperatures",) if run.get("simulate.ladder") == "tune" else ())
        return run, skip
    return None, ()


def check_physics(cfg: Config, stage: str, resume: bool, force: bool) -> None:
    """A resume (and any stage reading the folder's ensemble) must be the physics that made it: compare
    with the checkpoint record and ensemble.h5, whatever job.toml says."""
    # imported here: checkpoint imports h5py, which a stage that reads no ensemble (report) need not load
    from hpc_rg.io import checkpoint as ckpt
    if cfg.simulate is None or (force and stage == "simulate"):
        return
    out = cfg.out
    job = job_physics(cfg.job.seed, cfg.simulate.physics())
    fix = "resume with the job that made the run, or pass --force to start over" if stage == "simulate" else \
        "run this stage with the job that made the ensemble, or simulate it again with --force"
    if stage == "simulate" and resume:
        record = ckpt.read_commit(out / "checkpoint")
        if record is not None:
            run, skip = record_physics(record)
            diff = physics_diff(run, job, skip) if run is not None else None
            if diff:
                raise RunFolderError(out / "checkpoint" / ckpt.COMMIT, f"{diff}; {fix}")
            done = record["samples_done"]
            if done > cfg.simulate.samples:
                raise ConfigError(cfg.file, "simulate.samples", cfg.simulate.samples,
                                  f">= {done} (the samples already stored in {out})")
    ensemble = out / "ensemble.h5"
    if ensemble.is_file() and (resume or stage != "simulate"):
        made = recorded_job(ensemble)
        if made is not None and made.simulate is not None:
            diff = physics_diff(job_physics(made.job.seed, made.simulate.physics()), job)
            if diff:
                raise RunFolderError(ensemble, f"{diff}; {fix}")
