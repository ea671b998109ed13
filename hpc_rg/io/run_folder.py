"""Who owns a run folder, and what a stage may do to it.

A stage writes `<out>/job.toml` (the job text that produced the folder) on its first run. A later run of a
*different* job (another name, or changed physics keys) is refused unless the user passes `--force` (start
over: the stage's own outputs are removed, nothing else) or `--resume` for the same job. All of it is
decided before any work starts, so a refused run has written nothing.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from hpc_rg.config import Config, ConfigError, loads

STAGE_OUTPUTS = {
    "simulate": ("ensemble.h5", "parts", "checkpoint", "ladder.json"),
    "train": ("models",),
    "analyze": ("results.h5", "figures"),
    "report": ("report.md", "report.html"),
}


class RunFolderError(ConfigError):
    """A refused run folder: one line naming the folder, what it holds and the way out."""

    def __init__(self, folder: Path, message: str):
        ValueError.__init__(self, f"{folder}: {message}")
        self.file, self.key = str(folder), ""


def previous_job(out: Path) -> Config | None:
    p = Path(out) / "job.toml"
    if not p.exists():
        return None
    try:
        return loads(p.read_text(), p)
    except ConfigError:
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


def prepare(cfg: Config, stage: str, resume: bool, force: bool, world) -> None:
    """Check (on every rank, same answer) and claim the run folder for `stage`. Rank 0 writes."""
    out = cfg.out
    outputs = [out / name for name in STAGE_OUTPUTS[stage]]
    held = [p for p in outputs if p.exists()]
    old = previous_job(out)
    changed = differing_key(old, cfg) if old is not None else None
    if held and not force:
        if old is not None and changed is not None and stage == "simulate":
            raise RunFolderError(out, f"holds the results of another job ({changed} differs from {old.file}); "
                                      "choose another [job] out, or pass --force to overwrite them")
        if not resume and stage == "simulate":
            raise RunFolderError(out, f"already holds {held[0].name} of job '{cfg.job.name}'; pass --resume to "
                                      "continue or extend it, or --force to start over")
    if world.is_root:
        out.mkdir(parents=True, exist_ok=True)
        if force:
            for p in held:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        if old is None or force or changed is None:
            (out / "job.toml").write_text(cfg.text)
    world.barrier()
