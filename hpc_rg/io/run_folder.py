"""Who owns a run folder, and what a stage may do to it.

A stage writes `<out>/job.toml` (the job text that produced the folder) on its first run. A later run of a
*different* job (another name, or changed physics keys) is refused unless the user passes `--force` (start
over: the stage's own outputs are removed, nothing else) or `--resume` for the same job. This holds for every
stage: results.h5, figures and models of another job are never overwritten without --force.

job.toml is a convenience, not the evidence: it may be missing or rewritten. What a run folder's ensemble
*is* is recorded where it was made, in the checkpoint record and in ensemble.h5's attributes, and a resume
(or a stage reading the ensemble) compares the job's physics keys with those, always.

Safety of the folder itself: `out` must be a writable folder; nothing inside a run folder may be a symbolic
link (a link would make the project write or delete files elsewhere), and every path a stage derives from
a name must lie inside the folder after resolution. Rank 0 holds an exclusive lock on `<out>/.lock` for the
whole stage, so that a second run on the same folder fails at once instead of unlinking the first run's
files. All checks run before any work starts, and a stage that fails with a user error (exit 2) leaves the
folder as it found it (no job.toml, no empty models/).
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from hpc_rg.config import Config, loads

from hpc_rg.schema import ConfigError

STAGE_OUTPUTS = {
    "simulate": ("ensemble.h5", "parts", "checkpoint", "ladder.json", "simulate.json", "tune"),
    "train": ("models",),
    "analyze": ("results.h5", "figures"),
    "report": ("report.md", "report.html"),
}
LOCK_NAME = ".lock"
# "flock" (default, falls back to "excl" where the file system has no flock) or "excl" (an O_EXCL lock file
# with host and pid, for file systems known to lack flock; the test suite forces it to test that path)
LOCK_MODE_ENV = "HPC_RG_LOCK"
# The O_EXCL lock file is touched every HEARTBEAT seconds by its holder; one untouched for STALE seconds was
# left by a run that is gone (killed on another node, where its pid cannot be checked).
LOCK_HEARTBEAT_SECONDS = 30.0
LOCK_STALE_SECONDS = float(os.environ.get("HPC_RG_LOCK_STALE_SECONDS", 300))


class RunFolderError(ConfigError):
    """A refused run folder: one line naming the folder, what it holds and the way out."""

    def __init__(self, folder: Path | str, message: str):
        ValueError.__init__(self, f"{folder}: {message}")
        self.file, self.key, self.found, self.allowed = str(folder), "", None, message


class RelayedError(ConfigError):
    """Rank 0's refusal, raised with the same line on the other ranks (so every rank exits 2 together)."""

    def __init__(self, line: str, file: str):
        ValueError.__init__(self, line)
        self.file, self.key, self.found, self.allowed = file, "", None, line


def _on_root(world, fn):
    """Run fn on rank 0 only and share its outcome: its result, or its ConfigError on every rank."""
    result, error = None, None
    if world.is_root:
        try:
            result = fn()
        except ConfigError as e:
            error = e
        except OSError as e:                # a full disk while claiming: every rank exits 2 with its one line
            from hpc_rg.io import diskfull
            if not diskfull.is_disk_full(e):
                raise
            error = diskfull.as_disk_full(e)
    shared = world.bcast(None if error is None else (str(error), error.file))
    if shared is not None:
        raise error if world.is_root else RelayedError(*shared)
    return result


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


# -- who owns the folder ----------------------------------------------------------------------------------

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


def _values(old: Config, new: Config, key: str) -> str:
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
            raise RunFolderError(out, f"holds the results of another job ({_values(old, cfg, changed)}, recorded "
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
    path = inside(out, out / "job.toml", "job.toml")
    tmp = path.with_name(".job.toml.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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

    _on_root(world, claim)
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

    _on_root(world, snapshot)
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
        job.write_bytes(before["job"])


# -- the lock -------------------------------------------------------------------------------------------

def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "an unknown process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("time", 0)))
    return f"host {info.get('host')}, pid {info.get('pid')} (since {since})"


def _identity() -> str:
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()})


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _FolderLock:
    """An exclusive lock on `<out>/.lock`: flock where the file system has it, else an O_EXCL lock file
    holding host and pid (a lock left by a dead process on this host is taken over)."""

    def __init__(self, out: Path):
        self.path = Path(out) / LOCK_NAME
        self.fd: int | None = None
        self.mode = ""
        self._beating: threading.Event | None = None

    def acquire(self) -> None:
        if self.path.is_symlink():
            raise RunFolderError(self.path, "is a symbolic link inside a run folder; remove it")
        if os.environ.get(LOCK_MODE_ENV, "flock") != "excl" and self._flock():
            return
        self._excl()      # no flock on this file system (or asked for the lock file)

    def _flock(self) -> bool:
        """Take the flock; False where the file system does not support it. The holder removes the file when
        it is done, so a lock is only ours if the file we locked is still the one at the path."""
        for _ in range(100):
            try:
                fd, created = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644), True
            except FileExistsError:
                try:
                    fd, created = os.open(self.path, os.O_RDWR | os.O_NOFOLLOW), False
                except FileNotFoundError:
                    continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                self._refuse()
            except OSError as e:
                os.close(fd)
                if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    raise
                if created:              # not a lock: leave the lock file to the O_EXCL protocol
                    self.path.unlink(missing_ok=True)
                return False
            try:
                same = os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, _identity().encode())
                self.fd, self.mode = fd, "flock"
                return True
            os.close(fd)              # locked a file its holder had just removed: try the new one
        self._refuse()

    def _excl(self) -> None:
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            except FileExistsError:
                if self._stale():
                    self.path.unlink(missing_ok=True)
                    continue
                self._refuse()
            os.write(fd, _identity().encode())
            os.fsync(fd)
            os.close(fd)
            self.mode = "excl"
            self._beating = threading.Event()
            threading.Thread(target=self._heartbeat, args=(self._beating,), daemon=True).start()
            return
        self._refuse()

    def _heartbeat(self, stop: threading.Event) -> None:
        while not stop.wait(LOCK_HEARTBEAT_SECONDS):
            try:
                os.utime(self.path)
            except OSError:
                return

    def _stale(self) -> bool:
        """Left by a process that is gone: on this host, no such pid; on another (whose pids cannot be
        checked), no heartbeat for LOCK_STALE_SECONDS."""
        try:
            info = json.loads(self.path.read_text() or "{}")
            age = time.time() - self.path.stat().st_mtime
        except (OSError, ValueError):
            return False
        if age > LOCK_STALE_SECONDS:
            return True
        if not isinstance(info, dict) or info.get("host") != socket.gethostname():
            return False
        pid = info.get("pid")
        return isinstance(pid, int) and not _pid_alive(pid)

    def _refuse(self):
        raise RunFolderError(self.path.parent, f"in use by another run ({_holder(self.path)}); wait for it to "
                                               f"finish, or remove {self.path} if that run is gone")

    def release(self) -> None:
        if self.mode == "flock" and self.fd is not None:
            self.path.unlink(missing_ok=True)        # before unlocking: see `_flock`
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
        elif self.mode == "excl":
            self._beating.set()
            self.path.unlink(missing_ok=True)
        self.fd, self.mode = None, ""


@contextmanager
def lock(out: Path, world):
    """Rank 0 holds the run folder's lock while the block runs; every rank fails with exit 2 when another
    run holds it."""
    held = _FolderLock(out)
    _on_root(world, held.acquire)
    try:
        yield
    finally:
        if world.is_root:
            held.release()
