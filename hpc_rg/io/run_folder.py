"""Who owns a run folder, and what a stage may do to it.

A stage writes `<out>/job.toml` (the job text that produced the folder) on its first run. A later run of a
*different* job (another name, or changed physics keys) is refused unless the user passes `--force` (start
over: the stage's own outputs are removed, nothing else) or `--resume` for the same job. This holds for every
stage: results.h5, figures and models of another job are never overwritten without --force.

job.toml is a convenience, not the evidence: which job made a folder and whether its physics match are
decided in `hpc_rg.io.folder_owner` from the checkpoint record and ensemble.h5's attributes.

Safety of the folder itself: `out` must be a writable folder; nothing inside a run folder may be a symbolic
link (a link would make the project write or delete files elsewhere), and every path a stage derives from
a name must lie inside the folder after resolution. Rank 0 holds an exclusive lock on `<out>/.lock` for the
whole stage (`hpc_rg.io.folder_lock`), so that a second run on the same folder fails at once instead of
unlinking the first run's files. All checks run before any work starts, and a stage that fails with a user error (exit 2) leaves the
folder as it found it (no job.toml, no empty models/).
"""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from hpc_rg.config import Config
from hpc_rg.io.atomic import atomic_write_bytes, atomic_write_text
from hpc_rg.io.folder_errors import RelayedError, RunFolderError, on_root
from hpc_rg.io.folder_lock import LOCK_NAME, lock
from hpc_rg.io.folder_owner import (check_physics, describe_difference, differing_key, job_physics, owner_job,
                                    physics_diff, previous_job, record_physics, recorded_job)
from hpc_rg.schema import ConfigError

# importable from here, where the stages and the driver have always found them
__all__ = ["STAGE_OUTPUTS", "RunFolderError", "RelayedError", "check", "prepare", "stage", "lock", "LOCK_NAME",
           "check_out_usable", "refuse_symlinks", "inside", "check_derived_paths", "previous_job", "recorded_job",
           "owner_job", "differing_key", "job_physics", "physics_diff", "record_physics", "check_physics"]

STAGE_OUTPUTS = {
    "simulate": ("ensemble.h5", "parts", "checkpoint", "ladder.json", "simulate.json", "tune"),
    "train": ("models",),
    "analyze": ("results.h5", "figures"),
    "report": ("report.md", "report.html"),
}


# -- the folder itself ----------------------------------------------------------------------------------

def check_out_usable(out: Path) -> None:
    """`out` is, or can be made, a folder this process may write into."""
    out = Path(out)
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            what = "a file" if out.is_file() else "not a folder (a device, a dangling link or a special file)"
            raise RunFolderError(out, f"[job] out is {what}; choose a folder")
        if not os.access(out, os.W_OK | os.X_OK):
            raise RunFolderError(out, "[job] out is a read-only folder; choose a folder you can write to")
        return
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise RunFolderError(out, f"[job] out cannot be created ({parent} is not a writable folder)")


def refuse_symlinks(out: Path) -> None:
    """No entry of a run folder (at any depth) may be a symbolic link: they are refused, never followed."""
    out = Path(out)
    if not out.is_dir():
        return
    stack = [out]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_symlink():
                    raise RunFolderError(entry.path, "is a symbolic link inside a run folder; the project never "
                                                     "follows links there: replace it by the file or folder itself")
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))


def inside(out: Path, path: Path, what: str = "") -> Path:
    """`path`, checked to lie inside the run folder `out` once resolved (links and `..` included)."""
    root = Path(out).resolve()
    resolved = Path(path).resolve()
    if resolved != root and not resolved.is_relative_to(root):
        raise RunFolderError(path, f"{what or 'a path the project would write'} resolves to {resolved}, outside "
                                   f"the run folder {root}; names must not lead out of it")
    return resolved


def check_derived_paths(cfg: Config) -> None:
    """Paths the stages make from model and reduction names stay inside the run folder."""
    out = cfg.out
    for name in cfg.train or {}:
        inside(out, out / "models" / f"{name}.pt", f"model [train.{name}]")
        inside(out, out / "models" / name, f"model [train.{name}]")
    for name in cfg.analyze or {}:
        inside(out, out / "figures" / f"{name}.png", f"reduction [analyze.{name}]")
        inside(out, out / "figures" / name, f"reduction [analyze.{name}]")


# -- claiming the folder ----------------------------------------------------------------------------------

def _check(cfg: Config, stage: str, resume: bool, force: bool) -> list[Path]:
    """Every refusal, before anything is written. Returns the stage's outputs present now."""
    out = cfg.out
    refuse_symlinks(out)
    check_derived_paths(cfg)
    outputs = [out / name for name in STAGE_OUTPUTS[stage]]
    held = [p for p in outputs if p.exists()]
    old = owner_job(out) if held else previous_job(out)
    changed = differing_key(old, cfg) if old is not None else None
    if held and not force:
        if old is not None and changed is not None:
            raise RunFolderError(out, f"holds the results of another job ({describe_difference(old, cfg, changed)}, recorded "
                                      f"in {old.file}); choose another [job] out, or pass --force to overwrite "
                                      "them")
        if old is None and stage != "simulate":
            raise RunFolderError(out, f"holds {held[0].name} of an unknown job (no job.toml); choose another "
                                      "[job] out, or pass --force to overwrite it")
        if not resume and stage == "simulate":
            raise RunFolderError(out, f"already holds {held[0].name} of job '{cfg.job.name}'; pass --resume to "
                                      "continue or extend it, or --force to start over")
    check_physics(cfg, stage, resume, force)
    return held


def check(cfg: Config, stage: str, resume: bool, force: bool) -> None:
    """What `prepare` would refuse (a RunFolderError, exit 2), without writing or locking anything: a sweep
    checks every point's folder this way before its first point runs."""
    check_out_usable(cfg.out)
    if cfg.out.is_dir():
        _check(cfg, stage, resume, force)


def _write_job_toml(out: Path, text: str) -> None:
    atomic_write_text(inside(out, out / "job.toml", "job.toml"), text)


def prepare(cfg: Config, stage: str, resume: bool, force: bool, world) -> None:
    """Check (rank 0, the others get the same answer) and claim the run folder for `stage`. Rank 0 writes."""
    out = cfg.out

    def claim():
        check_out_usable(out)
        held = _check(cfg, stage, resume, force)
        out.mkdir(parents=True, exist_ok=True)
        if force:
            for p in held:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        old = previous_job(out)
        if old is None or force or differing_key(old, cfg) is None:
            _write_job_toml(out, cfg.text)

    on_root(world, claim)
    world.barrier()


@contextmanager
def stage(cfg: Config, stage_name: str, resume: bool, force: bool, world):
    """The run folder for one stage: usable, locked by rank 0 for the whole stage, checked and claimed; on
    a user error (ConfigError, exit 2) rank 0 leaves it as it was: job.toml restored, the empty folders this
    stage made removed, and the folder itself if this stage created it."""
    out = cfg.out
    before: dict = {}

    def snapshot():
        check_out_usable(out)
        job = out / "job.toml"
        before["created"] = not out.exists()
        before["job"] = job.read_bytes() if job.is_file() and not job.is_symlink() else None
        before["outputs"] = {n for n in STAGE_OUTPUTS.get(stage_name, ()) if (out / n).exists()}
        out.mkdir(parents=True, exist_ok=True)

    on_root(world, snapshot)
    try:
        with lock(out, world):
            try:
                if stage_name not in ("report", "tune"):   # tune checks its own outputs (tune.stage.prepare)
                    prepare(cfg, stage_name, resume, force, world)
                yield
            except ConfigError:
                if world.is_root:
                    _roll_back(out, stage_name, before)
                raise
    finally:
        if world.is_root and before.get("created") and out.is_dir() \
                and not any(p.name != LOCK_NAME for p in out.iterdir()):
            shutil.rmtree(out, ignore_errors=True)      # a refused first run leaves no folder behind


def _roll_back(out: Path, stage_name: str, before: dict) -> None:
    made = [out / n for n in STAGE_OUTPUTS.get(stage_name, ()) if n not in before.get("outputs", ())
            and (out / n).exists()]
    for p in made:
        if p.is_dir() and not p.is_symlink() and not any(p.iterdir()):
            p.rmdir()
    if any(p.exists() for p in made):
        return                          # the stage produced results (e.g. a checkpoint): keep its job.toml
    job = out / "job.toml"
    if before.get("job") is None:
        job.unlink(missing_ok=True)
    elif not job.is_symlink() and (not job.is_file() or job.read_bytes() != before["job"]):
        atomic_write_bytes(job, before["job"])
