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
STAGE_COMMANDS = ("simulate", "train", "analyze", "run")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hpc-rg", description=__doc__.split("\n\n")[0])
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    c = sub.add_parser("check", help="validate a job file and print the resolved job")
    c.add_argument("job", type=Path)
    for name, text in (("simulate", "run the Monte Carlo chains and write <out>/ensemble.h5"),
                       ("train", "train the models of [train.*] on the ensemble"),
                       ("analyze", "run the reductions of [analyze.*] and write <out>/results.h5"),
                       ("run", "run every stage the job names, in order")):
        s = sub.add_parser(name, help=text)
        s.add_argument("job", type=Path)
        s.add_argument("--resume", action="store_true", help="continue from the last checkpoint (or extend "
                                                             "a finished run whose samples were raised)")
        s.add_argument("--force", action="store_true", help="overwrite this stage's outputs in the run folder")
    t = sub.add_parser("tune", help="search the training settings of [tune.*] (Optuna studies in <out>/tune/)")
    t.add_argument("job", type=Path)
    t.add_argument("--resume", action="store_true", help="continue the studies (finished trials are kept)")
    t.add_argument("--force", action="store_true", help="start the searches over (their outputs are removed)")
    t.add_argument("--worker", action="store_true", help="join the studies as an extra asynchronous worker "
                                                         "(e.g. Slurm array tasks); the main run retrains")
    r = sub.add_parser("report", help="write report.md and report.html for a run folder")
    r.add_argument("run_dir", type=Path)
    st = sub.add_parser("status", help="progress of a run (while it runs or after it stopped)")
    st.add_argument("run_dir", type=Path)
    i = sub.add_parser("info", help="summarise an ensemble.h5 or results.h5 file")
    i.add_argument("file", type=Path)
    return p


def _stage_not_built(stage: str, module: str) -> None:
    from hpc_rg.config import ConfigError
    raise ConfigError("hpc_rg", stage, "(requested)", f"a stage this installation provides ({module} is missing)")


def run_stage(stage: str, cfg, world, resume: bool, force: bool, worker: bool = False) -> int:
    from hpc_rg.io import run_folder
    from hpc_rg.parallel import get_logger
    log = get_logger()
    if stage not in ("report", "tune"):   # tune checks its own outputs (hpc_rg.learn.tune.prepare)
        run_folder.prepare(cfg, stage, resume, force, world)
    tic = time.time()
    log.info("stage %s of job '%s' on %d rank(s) -> %s", stage, cfg.job.name, world.size, cfg.out)
    if stage == "simulate":
        if cfg.simulate is None:
            from hpc_rg.config import ConfigError
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
            from hpc_rg.reduce.stage import run_analyze
        except ModuleNotFoundError as e:
            if "hpc_rg.reduce.stage" not in str(e):
                raise
            _stage_not_built("analyze", "hpc_rg.reduce.stage")
        code = run_analyze(cfg, world) or 0
    elif stage == "report":
        code = 0
        if world.is_root:
            path = _report(cfg.out)
            log.info("report: %s", path)
        world.barrier()
    else:
        raise ValueError(stage)
    if code == 0:
        log.info("stage %s done in %.1f s", stage, time.time() - tic)
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
    from hpc_rg import config
    if args.command == "check":
        cfg = config.load(args.job)
        if world.is_root:
            print(config.dumps(cfg))
        return 0
    if args.command == "tune":
        cfg = config.load(args.job)
        if not cfg.tune:
            raise config.ConfigError(cfg.file, "tune", "(missing)", "[tune.<model>] tables for hpc-rg tune")
        return run_stage("tune", cfg, world, args.resume, args.force, args.worker)
    if args.command in STAGE_COMMANDS:
        cfg = config.load(args.job)
        stages = cfg.stages if args.command == "run" else (args.command,)
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
        print(_report(args.run_dir))
    elif args.command == "status":
        from hpc_rg.summary import status
        print(status(args.run_dir))
    elif args.command == "info":
        from hpc_rg.summary import info
        print(info(args.file))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from hpc_rg.config import ConfigError
    from hpc_rg.parallel import setup_logging, world
    w = world()
    setup_logging(args.verbose)
    try:
        return _main(args, w)
    except ConfigError as e:
        # Validation is deterministic, so normally every rank raises the same error: rank 0 speaks and all
        # exit 2. If only some ranks raised, the others would wait forever: abort them after a moment.
        if w.is_root:
            print(f"hpc-rg: error: {e}", file=sys.stderr, flush=True)
        if w.size > 1:
            _abort_stragglers(w, EXIT_USAGE, None if w.is_root else f"hpc-rg: error (rank {w.rank}): {e}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BaseException as e:
        if isinstance(e, SystemExit):
            raise
        traceback.print_exc()
        print(f"hpc-rg: rank {w.rank} of {w.size} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        w.abort(1)
        return 1


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
