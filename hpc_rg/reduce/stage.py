"""`hpc-rg analyze`: run the job's `[analyze.<name>]` reductions over MPI ranks, write results.h5 + figures.

Each reduction is a plugin (`hpc_rg.reduce.registry`): this module checks what every reduction of the job
needs before any of them runs (`validate.check_needs`), imports and runs them in the job's order, times
them, writes `<out>/results.h5` atomically on rank 0 and draws `<out>/figures/*.png` with each reduction's
figure function. No torch import here (import cost); matplotlib only on rank 0, at the end.

SIGTERM/SIGINT/SIGUSR1 on any rank: the ranks agree after the reduction in progress (`parallel.StopRequests`)
and every rank returns EXIT_INTERRUPTED (3) without writing results.h5 (the stage has no checkpoints: a
`--resume` runs the reductions again and writes what an uninterrupted run writes).
"""
from __future__ import annotations

import time

from hpc_rg.parallel import EXIT_INTERRUPTED, StopRequests, get_logger
from hpc_rg.progress import duration
from hpc_rg.reduce import registry
from hpc_rg.reduce.registry import Context
from hpc_rg.reduce.results import write_results
from hpc_rg.reduce.validate import check_needs


def run(cfg, world) -> int:
    """Run the reductions; 0, or EXIT_INTERRUPTED on every rank after a stop request."""
    with StopRequests(world) as stop:
        return _run(cfg, world, stop)


def _run(cfg, world, stop: StopRequests) -> int:
    log = get_logger()
    out = cfg.out
    ctx = Context(cfg=cfg, world=world, out=out, seed=int(cfg.job.seed), log=log)
    check_needs(cfg, ctx)       # ensembles, lattices, models of every reduction, before any runs
    functions = {name: registry.load(name) for name in cfg.analyze}
    total = len(cfg.analyze)
    t_stage = time.perf_counter()
    for k, (name, spec) in enumerate(cfg.analyze.items()):
        t0 = time.perf_counter()
        # a line as each reduction starts and ends: a long one is never silent, and the log says which ran long
        log.info("analyze %s (%d of %d): started", name, k + 1, total)
        res = functions[name](spec, ctx)
        res.attrs["seconds"] = time.perf_counter() - t0
        res.attrs["ranks"] = world.size
        ctx.results[name] = res
        left = (time.perf_counter() - t_stage) / (k + 1) * (total - k - 1)
        log.info("analyze %s (%d of %d): done in %s on %d rank(s)%s", name, k + 1, total,
                 duration(res.attrs["seconds"]), world.size,
                 f"; {total - k - 1} left, ETA {duration(left)}" if k + 1 < total else "")
        if res.attrs.get("tau_int_warning"):
            log.warning("analyze %s: %s", name, res.attrs["tau_int_warning"])
        if stop.agree():
            log.warning("analyze: stopped by %s after %s; results.h5 not written, run again with --resume",
                        stop.why(), name)
            return EXIT_INTERRUPTED
    if world.is_root:
        _write(cfg, ctx, world, log)
    stop.agree()    # the closing barrier (the other ranks sleep in it while rank 0 draws)
    return 0


def _write(cfg, ctx: Context, world, log) -> None:
    """results.h5 and every reduction's figures (rank 0)."""
    try:
        from importlib.metadata import version
        ver = version("hpc_rg")
    except Exception:
        ver = ""
    ctx.out.mkdir(parents=True, exist_ok=True)
    path = write_results(ctx.out / "results.h5", ctx.results, cfg.text, world.size, ver)
    log.info("wrote %s", path)
    for name, res in ctx.results.items():
        plot = registry.figure_function(name)
        if plot is not None:
            for p in plot(res, ctx.out / "figures"):
                log.info("figure %s", p)
