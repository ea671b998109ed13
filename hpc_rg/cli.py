"""`hpc-rg`: one command per stage, the same under `mpiexec -n N`, `srun` or plainly.

Exit codes: 0 done; 2 a problem the user can fix (one line on stderr naming the file, key, value and what is
allowed; nothing written); 3 stopped by a signal or the time limit after a checkpoint (resume with
--resume); 1 anything else (a traceback, and every rank of the job is aborted so nothing hangs).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

EXIT_USAGE = 2
EXIT_PIPE = 128 + 13    # stdout's reader went away (`hpc-rg check JOB | head -1`): what SIGPIPE would give
STAGE_COMMANDS = ("simulate", "train", "analyze", "run")
# `hpc-rg demo` runs jobs/quickstart.toml, shipped in the package as hpc_rg/data/quickstart.toml


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hpc-rg", description=__doc__.split("\n\n")[0])
    p.add_argument("--version", action=_Version)
    _add_log_options(p, top=True)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    c = sub.add_parser("check", help="validate a job file and print the resolved job")
    c.add_argument("job", type=Path)
    c.add_argument("--explain", action="store_true", help="print every key with its meaning as TOML comments")
    c.add_argument("--point", type=int, metavar="K", help="a sweep's point K: print its resolved job")
    for name, text in (("simulate", "run the Monte Carlo chains and write <out>/ensemble.h5"),
                       ("train", "train the models of [train.*] on the ensemble"),
                       ("analyze", "run the reductions of [analyze.*] and write <out>/results.h5"),
                       ("run", "run every stage the job names, in order")):
        s = sub.add_parser(name, help=text)
        s.add_argument("job", type=Path)
        s.add_argument("--resume", action="store_true", help="continue from the last checkpoint (or extend "
                                                             "a finished run whose samples were raised)")
        s.add_argument("--force", action="store_true", help="overwrite this stage's outputs in the run folder")
        s.add_argument("--point", type=int, metavar="K", help="a sweep job ([sweep] table): run only point K "
                                                             "(a Slurm array task: --point $SLURM_ARRAY_TASK_ID)")
    t = sub.add_parser("tune", help="search the training settings of [tune.*] (Optuna studies in <out>/tune/)")
    t.add_argument("job", type=Path)
    t.add_argument("--resume", action="store_true", help="continue the studies (finished trials are kept)")
    t.add_argument("--force", action="store_true", help="start the searches over (their outputs are removed)")
    t.add_argument("--worker", action="store_true", help="join the studies as an extra asynchronous worker "
                                                         "(e.g. Slurm array tasks); the main run retrains")
    r = sub.add_parser("report", help="write report.md and report.html for a run folder")
    r.add_argument("run_dir", type=Path)
    st = sub.add_parser("status", help="progress of a run (while it runs or after it stopped)",
                        epilog=_STATUS_JSON, formatter_class=argparse.RawDescriptionHelpFormatter)
    st.add_argument("run_dir", type=Path)
    st.add_argument("--json", action="store_true", help="one JSON object on stdout (keys below)")
    i = sub.add_parser("info", help="summarise an ensemble.h5 or results.h5 file",
                       epilog=_INFO_JSON, formatter_class=argparse.RawDescriptionHelpFormatter)
    i.add_argument("file", type=Path)
    i.add_argument("--json", action="store_true", help="one JSON object on stdout (keys below)")
    d = sub.add_parser("demo", help="run the packaged quickstart job (simulate, train, analyze, report) into "
                                    "./runs/quickstart or --out")
    d.add_argument("--out", type=Path, default=Path("runs") / "quickstart", help="the run folder to write "
                   "(default: runs/quickstart under the current folder)")
    d.add_argument("--resume", action="store_true", help="continue an interrupted demo")
    d.add_argument("--force", action="store_true", help="overwrite an earlier demo in that folder")
    a = sub.add_parser("assemble", help="rewrite a run's ensemble.h5 as a self-contained file (no parts/ needed)")
    a.add_argument("run_dir", type=Path, metavar="RUN", help="the run folder (or its ensemble.h5)")
    a.add_argument("--copy", action="store_true", required=True,
                   help="copy the configurations out of parts/ into ensemble.h5 (bit-identical)")
    a.add_argument("--compression", choices=("none", "lzf", "gzip"), default="none", help="of the copied /spins")
    for command in sub.choices.values():     # -v/-q/--log-file also after the subcommand: hpc-rg run JOB -q
        _add_log_options(command, top=False)
    return p


def _add_log_options(parser: argparse.ArgumentParser, top: bool) -> None:
    # After the subcommand the defaults are SUPPRESS, so `hpc-rg -v check JOB` keeps the -v given before it.
    default = {} if top else {"default": argparse.SUPPRESS}
    g = parser.add_mutually_exclusive_group()
    g.add_argument("-v", "--verbose", action="store_true", help="debug logging", **default)
    g.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only", **default)
    parser.add_argument("--log-file", metavar="PATH", type=str, help="also log to PATH (appended, dated "
                        "timestamps); {rank} in PATH gives one file per MPI rank, else rank 0 writes it",
                        **({"default": None} if top else default))
    parser.add_argument("--progress-every", metavar="SECONDS", type=_seconds,
                        help="in a log (not a terminal), a progress line with rate and ETA every SECONDS "
                             f"(default: $HPC_RG_PROGRESS_SECONDS or {_progress_default():g})",
                        **({"default": None} if top else default))


def _seconds(text: str) -> float:
    import math
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of seconds > 0")
    return value


def _progress_default() -> float:
    from hpc_rg.progress import DEFAULT_SECONDS
    return DEFAULT_SECONDS


_INFO_JSON = """--json prints one object. Every file: path, kind ("ensemble", "results" or "hdf5"), format, warnings
(a list of sentences, e.g. chains shorter than 50 autocorrelation times; empty when nothing is wrong).
An ensemble adds: model, lattice_shape, J, h, alpha, images, algorithm, update_unit, seed, thermalize, thin,
n_temperatures, n_chains, n_samples, spins_mib, series ("timeseries" or "samples": what the estimates use),
replica_exchange (null, or attempts, acceptance, round_trips, replicas) and temperatures: a list of {T, energy,
energy_error, abs_m, abs_m_error, tau_int_energy, tau_int_abs_m, series_length, too_short}.
Other files add items: a list of {name, dtype, shape, value (datasets of at most 8 numbers)}; groups are
{name} ending in "/". Exit codes as without --json; NaN is written as null."""

_STATUS_JSON = """--json prints one object. A run folder: path, kind "run", job (null or {name, seed, stages}),
simulate (null before the first checkpoint, else {state, update, updates_total, percent, samples_done, ranks,
checkpoint, checkpoint_age_seconds, updates_per_second, seconds_left, exchange_acceptance, round_trips}),
files ({name: {mib, damaged}} of ensemble.h5, results.h5, report.md), models (names), tune (lines), last_simulate
(null, "unreadable" or {wall_seconds, ranks, ns_per_site_update}), problem (null or the damaged ensemble's
one-line error: the exit code is then 2, as without --json). A sweep folder: path, kind "sweep", name, mode,
keys, points (a list of {index, folder, values, started, simulate, models, ensemble.h5, results.h5,
report.md})."""


class _Version(argparse.Action):
    """--version: the package version and, in a git checkout, the commit (computed only when asked)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version (and git commit) and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from hpc_rg.provenance import version_string
        print(f"hpc-rg {version_string()}")
        parser.exit()


def _stage_not_built(stage: str, module: str) -> None:
    from hpc_rg.schema import ConfigError
    raise ConfigError("hpc_rg", stage, "(requested)", f"a stage this installation provides ({module} is missing)")


def require_extras(stages, cfg) -> None:
    """Every optional package the stages need, checked before the first runs (a missing one: one line naming
    its extra, exit 2, nothing written)."""
    from hpc_rg.extras import require_for_stage
    for stage in stages:
        require_for_stage(stage, cfg)


def run_stage(stage: str, cfg, world, resume: bool, force: bool, worker: bool = False) -> int:
    from hpc_rg.io import run_folder
    require_extras((stage,), cfg)
    if stage == "tune" and worker:
        # an extra worker joins a study that the main run (which holds the folder's lock) drives: the
        # journal storage is its shared state, and it writes nothing else
        return _run_stage(stage, cfg, world, resume, force, worker)
    # checked, claimed and locked (rank 0) for the whole stage; left as found on a user error
    with run_folder.stage(cfg, stage, resume, force, world):
        return _run_stage(stage, cfg, world, resume, force, worker)


def _run_stage(stage: str, cfg, world, resume: bool, force: bool, worker: bool = False) -> int:
    from hpc_rg.parallel import get_logger
    log = get_logger()
    tic = time.time()
    log.info("stage %s of job '%s' on %d rank(s) -> %s", stage, cfg.job.name, world.size, cfg.out)
    if stage == "simulate":
        if cfg.simulate is None:
            from hpc_rg.schema import ConfigError
            raise ConfigError(cfg.file, "simulate", "(missing)", "a [simulate] table for stage simulate")
        from hpc_rg.mc.driver import run_simulate
        code = run_simulate(cfg, world, resume)
    elif stage == "train":
        try:
            from hpc_rg.learn.stage import run_train
        except ModuleNotFoundError as e:
            if "hpc_rg.learn.stage" not in str(e):
                raise
            _stage_not_built("train", "hpc_rg.learn.stage")
        code = run_train(cfg, world, resume) or 0
    elif stage == "tune":
        from hpc_rg.learn.tune import run_tune
        code = run_tune(cfg, world, resume, force, worker) or 0
    elif stage == "analyze":
        try:
            from hpc_rg.reduce import stage as analyze_stage
        except ModuleNotFoundError as e:
            if "hpc_rg.reduce.stage" not in str(e):
                raise
            _stage_not_built("analyze", "hpc_rg.reduce.stage")
        code = analyze_stage.run(cfg, world) or 0
    elif stage == "report":
        code = 0
        if world.is_root:
            path = _report(cfg.out)
            log.info("report: %s", path)
        world.barrier()
    else:
        raise ValueError(stage)
    if code == 0:
        from hpc_rg.progress import duration
        log.info("stage %s done in %s", stage, duration(time.time() - tic))
    return code


def _report(run_dir: Path) -> Path:
    try:
        from hpc_rg.report.build import write_report
    except ModuleNotFoundError as e:
        if "hpc_rg.report.build" not in str(e):
            raise
        _stage_not_built("report", "hpc_rg.report.build")
    return write_report(Path(run_dir))


def _main(args, world) -> int:
    from hpc_rg import config, sweep
    if args.command in ("check", *STAGE_COMMANDS):
        job = sweep.load(args.job)                 # a Config, or a Sweep whose points are all validated
        if isinstance(job, sweep.Sweep):
            return _sweep_command(args, job, world)
        if args.point is not None:
            raise config.ConfigError(args.job, "--point", args.point, "a job file with a [sweep] table "
                                                                      "(this one is a single job: leave --point out)")
    if args.command == "check":
        cfg = job
        if world.is_root:
            if args.explain:
                from hpc_rg.docs_gen import explain
                print(explain(cfg))
            else:
                print(config.dumps(cfg))
        return 0
    if args.command == "demo":
        return _demo(args, world)
    if args.command == "tune":
        cfg = config.load(args.job)
        if not cfg.tune:
            raise config.ConfigError(cfg.file, "tune", "(missing)", "[tune.<model>] tables for hpc-rg tune")
        return run_stage("tune", cfg, world, args.resume, args.force, args.worker)
    if args.command in STAGE_COMMANDS:
        cfg = job
        stages = cfg.stages if args.command == "run" else (args.command,)
        require_extras(stages, cfg)
        for stage in stages:
            code = run_stage(stage, cfg, world, args.resume, args.force)
            if code:
                return code
        if args.command == "run" and world.is_root and (cfg.out / "report.md").exists():
            print(f"report: {cfg.out / 'report.md'}")
        return 0
    if not world.is_root:
        return 0
    if args.command == "report":
        if sweep.is_sweep_folder(args.run_dir):
            print(sweep.write_report(args.run_dir))
        else:
            from hpc_rg.summary import check_run_folder
            require_extras(("report",), None)
            print(_report(check_run_folder(args.run_dir)))
    elif args.command == "status":
        from hpc_rg import summary
        if sweep.is_sweep_folder(args.run_dir):
            print(_json(summary.sweep_status_record(args.run_dir)) if args.json else sweep.status(args.run_dir))
        else:
            rec, problem = summary.status_record(args.run_dir)
            print(_json(rec) if args.json else summary.status_text(rec), flush=True)
            if problem is not None:      # a damaged ensemble.h5: shown above, and exit 2 with its one line
                raise problem
    elif args.command == "info":
        from hpc_rg import summary
        rec = summary.info_record(args.file)
        print(_json(rec) if args.json else summary.info_text(rec))
    elif args.command == "assemble":
        from hpc_rg.io.assemble import copy_ensemble
        print(copy_ensemble(args.run_dir, args.compression))
    return 0


def _json(record: dict) -> str:
    """One JSON object; NaN and infinities (no JSON) become null."""
    import json
    import math

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
    import json
    import re
    from importlib.resources import files
    from hpc_rg import config
    text = files("hpc_rg.data").joinpath("quickstart.toml").read_text(encoding="utf-8")
    out = args.out.expanduser().resolve()
    # TOML's basic strings read JSON's string escapes, so json.dumps quotes any path safely
    text, n = re.subn(r"(?m)^out\s*=.*$", lambda _: f"out = {json.dumps(str(out))}", text, count=1)
    if n != 1:
        raise RuntimeError("the packaged quickstart.toml has no `out = ...` line in [job]")
    cfg = config.loads(text, out.parent / "quickstart.toml")
    require_extras(cfg.stages, cfg)
    for stage in cfg.stages:
        code = run_stage(stage, cfg, world, args.resume, args.force)
        if code:
            return code
    if world.is_root:
        print(f"report: {cfg.out / 'report.md'}" if (cfg.out / "report.md").exists() else f"run folder: {cfg.out}")
    return 0


def _sweep_command(args, job, world) -> int:
    """check/run/a stage on a sweep job (hpc_rg.sweep): every point, or only --point K, in order."""
    from hpc_rg import sweep
    from hpc_rg.parallel import get_logger
    points = job.points if args.point is None else (job.point(args.point),)
    if args.command == "check":
        if world.is_root:
            from hpc_rg.config import dumps
            from hpc_rg.docs_gen import explain
            if args.point is None and not args.explain:
                print(job.describe())
            elif args.point is None:                # the list as comments, then point 0 explained
                print("\n".join(line if line.startswith("#") else "# " + line for line in job.describe().splitlines()))
                print(f"# point 0 below; hpc-rg check --explain --point K {args.job} shows point K")
                print(explain(points[0].cfg))
            else:
                print(explain(points[0].cfg) if args.explain else dumps(points[0].cfg))
        return 0
    sweep.check_folders(points, args.command, args.resume, args.force)
    for point in points:
        require_extras(point.cfg.stages if args.command == "run" else (args.command,), point.cfg)
    if world.is_root:                              # before any point runs, so status/report see every point
        job.write_index()
    world.barrier()
    for point in points:
        cfg = point.cfg
        get_logger().info("sweep point %d of %d: %s", point.index, len(job.points), point.name)
        for stage in (cfg.stages if args.command == "run" else (args.command,)):
            code = run_stage(stage, cfg, world, args.resume, args.force)
            if code:
                return code
    if args.command == "run" and args.point is None and any("report" in p.cfg.stages for p in points):
        if world.is_root:
            print(f"report: {sweep.write_report(job.out, point_reports=False)}")
        world.barrier()
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except BrokenPipeError:                  # `hpc-rg --help | head -1`
        return _stdout_closed()
    except SystemExit:                       # --help, --version, a usage error: flush while we can tell
        if not _flush_stdout():
            return _stdout_closed()
        raise
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from hpc_rg import progress
    from hpc_rg.schema import ConfigError
    from hpc_rg.extras import MissingExtra, from_import_error
    from hpc_rg.parallel import setup_logging, world
    try:
        w = world()
    except MissingExtra as e:            # launched on several ranks without mpi4py
        print(e.line(), file=sys.stderr, flush=True)
        return EXIT_USAGE
    setup_logging(args.verbose)
    progress.configure(args.progress_every)
    restore_logging = _nothing
    from hpc_rg.io.diskfull import quiet_dealloc_errors
    quiet_dealloc_errors()
    try:
        restore_logging = _log_options(args, w)
        code = _main(args, w)
        sys.stdout.flush()                   # inside the try: a closed pipe is noticed here, not at exit
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except ConfigError as e:
        return _user_error(w, e, args.command)
    except KeyboardInterrupt:
        return 130
    except BaseException as e:
        if isinstance(e, SystemExit):
            raise
        missing = from_import_error(e, args.command)    # an optional package imported deep inside a stage
        if missing is not None:
            return _user_error(w, missing, args.command)
        from hpc_rg.io import diskfull
        if diskfull.is_disk_full(e):
            return _disk_full(w, diskfull.as_disk_full(e))
        traceback.print_exc()
        print(f"hpc-rg: rank {w.rank} of {w.size} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        w.abort(1)
        return 1
    finally:
        restore_logging()
        progress.configure(None)


def _user_error(w, e, command: str) -> int:
    """A ConfigError (or a MissingExtra, or a full disk): one line on stderr, exit 2."""
    from hpc_rg.extras import MissingExtra
    from hpc_rg.io.diskfull import DiskFullError
    if isinstance(e, DiskFullError):
        return _disk_full(w, e)
    if isinstance(e, MissingExtra) and e.stage is None:
        e.stage = command
    line = e.line() if isinstance(e, MissingExtra) else f"hpc-rg: error: {e}"
    # Validation is deterministic, so normally every rank raises the same error: rank 0 speaks and all
    # exit 2. If only some ranks raised, the others would wait forever: abort them after a moment.
    if w.is_root:
        print(line, file=sys.stderr, flush=True)
    if w.size > 1:
        _abort_stragglers(w, EXIT_USAGE, None if w.is_root else f"hpc-rg: error (rank {w.rank}): {e}")
    return EXIT_USAGE


def _log_options(args, w):
    """-q and --log-file on top of `parallel.setup_logging` (stderr: rank 0 at INFO, the others at WARNING).
    -q quietens the terminal only: a log file gets INFO (DEBUG with -v) either way. Returns a function that
    undoes all this (main() may run several times in one process, e.g. in tests)."""
    import logging
    log = logging.getLogger("hpc_rg")
    saved_level, saved_handlers = log.level, [(h, h.level) for h in log.handlers]
    terminal = max(log.level, logging.WARNING) if args.quiet else log.level
    for h, _ in saved_handlers:
        h.setLevel(max(h.level, terminal))
    file_handler = None
    name = args.log_file
    if name is not None and ("{rank}" in name or w.is_root):
        path = Path(name.replace("{rank}", str(w.rank)))   # not str.format: other braces stay as they are
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            file_handler = logging.FileHandler(path, mode="a", encoding="utf-8")
        except OSError as e:
            from hpc_rg.schema import ConfigError
            raise ConfigError(path, "--log-file", str(path),
                              f"a file that can be written ({e.strerror}: {e.filename})") from None
        file_handler.setFormatter(logging.Formatter(
            f"%(asctime)s [{w.rank}/{w.size}] %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        file_handler.setLevel(logging.DEBUG if args.verbose else logging.INFO)
        log.addHandler(file_handler)
    log.setLevel(min(terminal, file_handler.level) if file_handler else terminal)

    def restore():
        if file_handler is not None:
            log.removeHandler(file_handler)
            file_handler.close()
        for h, level in saved_handlers:
            h.setLevel(level)
        log.setLevel(saved_level)
    return restore


def _nothing() -> None:
    pass


def _flush_stdout() -> bool:
    try:
        sys.stdout.flush()
        return True
    except BrokenPipeError:
        return False


def _stdout_closed() -> int:
    """The reader of stdout is gone. Stop quietly, like a command killed by SIGPIPE, and point stdout at
    /dev/null so that Python's own flush at exit does not print "Exception ignored ... BrokenPipeError"."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_PIPE


def _disk_full(w, e) -> int:
    """A full disk (or quota), on this rank, during any write: one line and exit 2. The HDF5 files being
    written are abandoned, not closed (closing retries the failed write and can crash the interpreter);
    a single process leaves at once, skipping the clean-up that would touch them again."""
    from hpc_rg.io.diskfull import abandon_open_hdf5
    abandon_open_hdf5()
    print(f"hpc-rg: error: {e}" if w.is_root or w.size == 1 else f"hpc-rg: error (rank {w.rank}): {e}",
          file=sys.stderr, flush=True)
    if w.size > 1:                 # the other ranks may be waiting in a collective: agree or abort them
        _abort_stragglers(w, EXIT_USAGE, None)
        return EXIT_USAGE
    sys.stdout.flush()
    os._exit(EXIT_USAGE)


def _abort_stragglers(w, code: int, message: str | None) -> None:
    """All ranks reach here on a deterministic error: agree and leave normally. A rank that is alone in its
    error (the others are blocked in a collective) aborts the job after a grace period."""
    from mpi4py import MPI
    req = w.comm.Ibarrier()
    deadline = time.time() + 3.0
    while time.time() < deadline:
        if req.Test():
            return
        time.sleep(0.01)
    if message:
        print(message, file=sys.stderr, flush=True)
    MPI.COMM_WORLD.Abort(code)


if __name__ == "__main__":
    raise SystemExit(main())
