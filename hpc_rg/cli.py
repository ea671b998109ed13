"""`hpc-rg`: one command per stage, the same under `mpiexec -n N`, `srun` or plainly.

Exit codes: 0 done; 2 a problem the user can fix (one line on stderr naming the file, key, value and what is
allowed; nothing written); 3 stopped by a signal or the time limit after a checkpoint (resume with
--resume); 1 anything else (a traceback, and every rank of the job is aborted so nothing hangs).

This module maps commands to work: the stages through `STAGE_ENTRIES`, the file commands (report, status,
info, assemble) directly. The arguments are declared in `cli_parser`, the logging options in `cli_logging`,
the ways out (exit 2 on every rank, a closed stdout) in `cli_exits`.
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass
from importlib.resources import files
from pkgutil import resolve_name

from hpc_rg import config, progress, sweep
from hpc_rg.cli_exits import EXIT_PIPE, EXIT_USAGE, disk_full, flush_stdout, stdout_closed, user_error
from hpc_rg.cli_logging import apply_log_options
from hpc_rg.cli_parser import build_parser
from hpc_rg.docs_gen import explain
from hpc_rg.extras import MissingExtra, from_import_error, require_for_stage
from hpc_rg.io import diskfull, run_folder
from hpc_rg.parallel import get_logger, setup_logging, world
from hpc_rg.schema import ConfigError

__all__ = ["EXIT_PIPE", "EXIT_USAGE", "STAGE_ENTRIES", "main", "run_stage"]

STAGE_COMMANDS = ("simulate", "train", "analyze", "run")


@dataclass(frozen=True)
class StageEntry:
    """Where a stage's work starts: "module:function", called as function(cfg, world, **options) with the
    options it names (of resume, force, worker) and returning an exit code (0, or 3 after a stop request).
    `on_run_folder`: rank 0 calls function(run_folder) -> path, reading the files the other stages wrote."""
    entry: str
    options: tuple[str, ...] = ()
    on_run_folder: bool = False

    def load(self):
        return resolve_name(self.entry)     # imported when the stage runs: torch, numba, matplotlib stay out


# One line per stage (the stage modules are imported only when their stage runs).
STAGE_ENTRIES = {
    "simulate": StageEntry("hpc_rg.mc.stage:run", ("resume",)),
    "train": StageEntry("hpc_rg.learn.stage:run", ("resume",)),
    "tune": StageEntry("hpc_rg.tune.stage:run", ("resume", "force", "worker")),
    "analyze": StageEntry("hpc_rg.reduce.stage:run"),
    "report": StageEntry("hpc_rg.report.stage:run", on_run_folder=True),
}


def require_extras(stages, cfg) -> None:
    """Every optional package the stages need, checked before the first runs (a missing one: one line naming
    its extra, exit 2, nothing written)."""
    for stage in stages:
        require_for_stage(stage, cfg)


def run_stage(stage: str, cfg, world, resume: bool, force: bool, worker: bool = False) -> int:
    require_extras((stage,), cfg)
    if stage == "tune" and worker:
        # an extra worker joins a study that the main run (which holds the folder's lock) drives: the
        # journal storage is its shared state, and it writes nothing else
        return _run_stage(stage, cfg, world, resume=resume, force=force, worker=worker)
    # checked, claimed and locked (rank 0) for the whole stage; left as found on a user error
    with run_folder.stage(cfg, stage, resume, force, world):
        return _run_stage(stage, cfg, world, resume=resume, force=force, worker=worker)


def _run_stage(stage: str, cfg, world, **options) -> int:
    log = get_logger()
    tic = time.time()
    log.info("stage %s of job '%s' on %d rank(s) -> %s", stage, cfg.job.name, world.size, cfg.out)
    if stage == "simulate" and cfg.simulate is None:     # `hpc-rg simulate JOB` on a job without one
        raise ConfigError(cfg.file, "simulate", "(missing)", config.STAGE_NEEDS["simulate"])
    entry = STAGE_ENTRIES[stage]
    if entry.on_run_folder:
        code = 0
        if world.is_root:
            log.info("%s: %s", stage, entry.load()(cfg.out))
        world.barrier()
    else:
        code = entry.load()(cfg, world, **{k: options[k] for k in entry.options}) or 0
    if code == 0:
        log.info("stage %s done in %s", stage, progress.duration(time.time() - tic))
    return code


def _run_stages(stages, cfg, world, args) -> int:
    """The stages of one job, in order, stopping at the first that does not finish (exit code 3 or more)."""
    require_extras(stages, cfg)
    for stage in stages:
        code = run_stage(stage, cfg, world, args.resume, args.force)
        if code:
            return code
    return 0


def _main(args, world) -> int:
    if args.command in ("check", *STAGE_COMMANDS):
        job = sweep.load(args.job)                 # a Config, or a Sweep whose points are all validated
        if isinstance(job, sweep.Sweep):
            return _sweep_command(args, job, world)
        if args.point is not None:
            raise ConfigError(args.job, "--point", args.point, "a job file with a [sweep] table "
                                                               "(this one is a single job: leave --point out)")
        if args.command == "check":
            if world.is_root:
                print(explain(job) if args.explain else config.dumps(job))
            return 0
        code = _run_stages(job.stages if args.command == "run" else (args.command,), job, world, args)
        if code == 0 and args.command == "run" and world.is_root and (job.out / "report.md").exists():
            print(f"report: {job.out / 'report.md'}")
        return code
    if args.command == "demo":
        return _demo(args, world)
    if args.command == "tune":
        cfg = config.load(args.job)
        if not cfg.tune:
            raise ConfigError(cfg.file, "tune", "(missing)", "[tune.<model>] tables for hpc-rg tune")
        return run_stage("tune", cfg, world, args.resume, args.force, args.worker)
    if world.is_root:                              # the file commands: rank 0 reads and prints
        _file_command(args)
    return 0


def _file_command(args) -> None:
    """report, status, info, assemble: they read (or copy) files of a run folder, on rank 0."""
    # h5py: imported by the commands that read HDF5 files, not by check or the stages' start
    from hpc_rg import summary, sweep_report
    from hpc_rg.io.assemble import copy_ensemble
    if args.command == "report":
        if sweep.is_sweep_folder(args.run_dir):
            print(sweep_report.write_report(args.run_dir))
        else:
            require_extras(("report",), None)
            run_dir = summary.check_run_folder(args.run_dir)
            print(STAGE_ENTRIES["report"].load()(run_dir))
    elif args.command == "status":
        if sweep.is_sweep_folder(args.run_dir):
            print(_json(summary.sweep_status_record(args.run_dir)) if args.json
                  else sweep_report.status(args.run_dir))
        else:
            rec, problem = summary.status_record(args.run_dir)
            print(_json(rec) if args.json else summary.status_text(rec), flush=True)
            if problem is not None:      # a damaged ensemble.h5: shown above, and exit 2 with its one line
                raise problem
    elif args.command == "info":
        rec = summary.info_record(args.file)
        print(_json(rec) if args.json else summary.info_text(rec))
    elif args.command == "assemble":
        print(copy_ensemble(args.run_dir, args.compression))


def _json(record: dict) -> str:
    """One JSON object; NaN and infinities (no JSON) become null."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v
    return json.dumps(clean(record), indent=1, allow_nan=False)


def _demo(args, world) -> int:
    """`hpc-rg demo`: the quickstart job shipped in the package (hpc_rg/data/quickstart.toml, the same file as
    jobs/quickstart.toml), with its `out` pointed at --out, run like `hpc-rg run`."""
    text = files("hpc_rg.data").joinpath("quickstart.toml").read_text(encoding="utf-8")
    out = args.out.expanduser().resolve()
    # TOML's basic strings read JSON's string escapes, so json.dumps quotes any path safely
    text, n = re.subn(r"(?m)^out\s*=.*$", lambda _: f"out = {json.dumps(str(out))}", text, count=1)
    if n != 1:
        raise RuntimeError("the packaged quickstart.toml has no `out = ...` line in [job]")
    cfg = config.loads(text, out.parent / "quickstart.toml")
    code = _run_stages(cfg.stages, cfg, world, args)
    if code == 0 and world.is_root:
        print(f"report: {cfg.out / 'report.md'}" if (cfg.out / "report.md").exists() else f"run folder: {cfg.out}")
    return code


def _sweep_command(args, job, world) -> int:
    """check/run/a stage on a sweep job (hpc_rg.sweep): every point, or only --point K, in order."""
    points = job.points if args.point is None else (job.point(args.point),)
    if args.command == "check":
        if world.is_root:
            if args.point is None and not args.explain:
                print(job.describe())
            elif args.point is None:                # the list as comments, then point 0 explained
                print("\n".join(line if line.startswith("#") else "# " + line for line in job.describe().splitlines()))
                print(f"# point 0 below; hpc-rg check --explain --point K {args.job} shows point K")
                print(explain(points[0].cfg))
            else:
                print(explain(points[0].cfg) if args.explain else config.dumps(points[0].cfg))
        return 0
    sweep.check_folders(points, args.command, args.resume, args.force)
    for point in points:
        require_extras(point.cfg.stages if args.command == "run" else (args.command,), point.cfg)
    if world.is_root:                              # before any point runs, so status/report see every point
        job.write_index()
    world.barrier()
    for point in points:
        get_logger().info("sweep point %d of %d: %s", point.index, len(job.points), point.name)
        code = _run_stages(point.cfg.stages if args.command == "run" else (args.command,), point.cfg, world, args)
        if code:
            return code
    if args.command == "run" and args.point is None and any("report" in p.cfg.stages for p in points):
        if world.is_root:
            from hpc_rg import sweep_report     # reads the points' HDF5 files (h5py): only at the very end
            print(f"report: {sweep_report.write_report(job.out, point_reports=False)}")
        world.barrier()
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except BrokenPipeError:                  # `hpc-rg --help | head -1`
        return stdout_closed()
    except SystemExit:                       # --help, --version, a usage error: flush while we can tell
        if not flush_stdout():
            return stdout_closed()
        raise
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        w = world()
    except MissingExtra as e:            # launched on several ranks without mpi4py
        print(e.line(), file=sys.stderr, flush=True)
        return EXIT_USAGE
    setup_logging(args.verbose)
    progress.configure(args.progress_every)
    restore_logging = _nothing
    diskfull.quiet_dealloc_errors()
    try:
        restore_logging = apply_log_options(args, w)
        code = _main(args, w)
        sys.stdout.flush()                   # inside the try: a closed pipe is noticed here, not at exit
        return code
    except BrokenPipeError:
        return stdout_closed()
    except ConfigError as e:
        return user_error(w, e, args.command)
    except KeyboardInterrupt:
        return 130
    except BaseException as e:
        if isinstance(e, SystemExit):
            raise
        missing = from_import_error(e, args.command)    # an optional package imported deep inside a stage
        if missing is not None:
            return user_error(w, missing, args.command)
        if diskfull.is_disk_full(e):
            return disk_full(w, diskfull.as_disk_full(e))
        traceback.print_exc()
        print(f"hpc-rg: rank {w.rank} of {w.size} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        w.abort(1)
        return 1
    finally:
        restore_logging()
        progress.configure(None)


def _nothing() -> None:
    pass


if __name__ == "__main__":
    raise SystemExit(main())
