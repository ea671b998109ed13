"""Task-parallel training: units (a whole small model, one repeat, or a group of repeats a learner trains as
one batched model) trained one after another on this rank, each repeat saved as `<name>.repeats/<r>.pt`; then
rank 0 gathers the repeats into `models/<name>.pt` (repeat 0's weights, mean and standard error of each
metric)."""
from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass

import numpy as np
import torch

from hpc_rg.learn import checkpoints
from hpc_rg.learn.job import SINGLE, TrainingJob, close
from hpc_rg.learn.modelfile import save_model
from hpc_rg.learn.trainer import Interrupted, State, fit, resolve_device
from hpc_rg.learn.whole_model import train_whole
from hpc_rg.parallel import World, get_logger


@dataclass
class Unit:
    """Task-parallel work: a whole model (repeats None), one repeat, or a group of repeats."""
    job: TrainingJob
    repeats: range | None = None


def repeat_units(job: TrainingJob) -> list[Unit]:
    """A table's repeats as units: one each, or fixed blocks [0, K), [K, 2K), ... of `group` repeats for a
    learner that trains them batched (the block, not the rank count, decides a repeat's result)."""
    n = job.spec.repeats
    if job.learner.batched_repeats:
        return [Unit(job, range(lo, min(lo + job.spec.group, n))) for lo in range(0, n, job.spec.group)]
    return [Unit(job, range(r, r + 1)) for r in range(n)]


def train_units(units: list[Unit], stop) -> dict[str, list]:
    """This rank's units, one after another, each alone on this rank. Returns {model name: [repeat results]}
    and {"": [log lines of whole models]}; raises Interrupted on a stop request (between units, or after an
    epoch of a whole model)."""
    results: dict[str, list] = {"": []}
    current, data = None, None
    threads = torch.get_num_threads()
    try:
        for u in units:
            if stop.requested():
                raise Interrupted("stop requested")
            job = u.job
            with torch.random.fork_rng(devices=[]):
                if u.repeats is None:
                    results[""].append(train_whole(job, SINGLE, stop.requested, shared=False))
                    continue
                if current is not job:
                    close(data)
                    current, data = job, job.data(SINGLE)
                    (job.models / f"{job.name}.repeats").mkdir(parents=True, exist_ok=True)
                device = resolve_device(job.spec.device, SINGLE)
                torch.set_num_threads(1)   # many small models: one thread each beats threads fighting
                try:
                    if job.learner.batched_repeats:
                        res = _train_repeat_group(job, u.repeats, data, device)
                    else:
                        res = [_train_repeat(job, u.repeats.start, data, device)]
                finally:
                    torch.set_num_threads(threads)
                results.setdefault(job.name, []).extend(res)
    finally:
        close(data)
    return results


def _result(job: TrainingJob, r: int, model, metrics: dict) -> dict:
    return {"repeat": r, "metrics": metrics,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            **job.learner.repeat_extras(model)}


def _train_repeat_group(job: TrainingJob, reps: range, data, device) -> list[dict]:
    """Repeats `reps` trained at once by the learner (the same training as one `fit` per repeat, up to float
    summation order); the repeat files are written when the group finishes, and `resume` skips a group whose
    files all exist."""
    files = [job.repeat_file(r) for r in reps]
    if job.resume and all(f.exists() for f in files):
        return [checkpoints.load_repeat(f) for f in files]
    t0 = time.perf_counter()
    models = [job.model_and_tasks(data, device, r)[0] for r in reps]
    opts = [job.options(r, 0, f"train.{job.name} repeat {r}", {}, verbose=False) for r in reps]
    metrics = job.learner.train_group(models, data, opts, device)
    results = []
    for r, model, met, f in zip(reps, models, metrics, files):
        res = _result(job, r, model, met)
        checkpoints.save(res, f)
        results.append(res)
    acc = np.array([met["test_accuracy"] for met in metrics]) if "test_accuracy" in metrics[0] else None
    get_logger().info(f"train.{job.name}: repeats {reps.start}..{reps.stop - 1}"
                      + (f" test_accuracy {acc.mean():.4g} (min {acc.min():.4g}, max {acc.max():.4g})"
                         if acc is not None else "") + f" ({(time.perf_counter() - t0) / len(reps):.3g} s/repeat)")
    return results


def _train_repeat(job: TrainingJob, r: int, data, device) -> dict:
    """Repeat r through `trainer.fit`, alone on this rank; saved as <name>.repeats/<r>.pt."""
    rfile = job.repeat_file(r)
    if job.resume and rfile.exists():
        return checkpoints.load_repeat(rfile)
    t0 = time.perf_counter()
    model, tasks = job.model_and_tasks(data, device, r)
    history: list = []
    for phase, task in enumerate(tasks):
        opts = job.options(r, phase, f"train.{job.name} repeat {r}", {}, verbose=False)
        history = fit(task, SINGLE, opts, State(history=history)).history
    res = _result(job, r, model, job.learner.metrics(model, tasks, history))
    checkpoints.save(res, rfile)
    get_logger().info(f"train.{job.name}: repeat {r} "
                      + " ".join(f"{k}={v:.4g}" for k, v in res["metrics"].items() if k.startswith("test_"))
                      + f" ({time.perf_counter() - t0:.3g} s)")
    return res


def _repeat_statistics(allres: list[dict]) -> dict:
    """Mean and standard error over repeats of every float metric all repeats have."""
    metrics = {}
    for key in allres[0]["metrics"]:
        vals = np.array([res["metrics"][key] for res in allres if isinstance(res["metrics"].get(key), float)])
        if len(vals) == len(allres):
            metrics[f"{key}_mean"] = float(vals.mean())
            metrics[f"{key}_stderr"] = float(vals.std(ddof=1) / math.sqrt(len(vals))) if len(vals) > 1 else 0.0
    return metrics


def gather_repeats(world: World, todo: list[TrainingJob], results: dict[str, list]) -> None:
    """Rank 0 collects every repeat's result and the other ranks' log lines, checks no repeat is missing or
    doubled, and writes models/<name>.pt for each table with repeats."""
    log = get_logger()
    gathered = world.gather(results)
    if world.is_root:
        if world.size > 1:   # the whole models trained on other ranks (rank 0 logged its own)
            for part in gathered[1:]:
                for line in part.get("", []):
                    if line:
                        log.info(line)
        for job in todo:
            if job.spec.repeats == 1:
                continue
            allres = sorted((res for part in gathered for res in part.get(job.name, [])), key=lambda d: d["repeat"])
            got = [res["repeat"] for res in allres]
            if got != list(range(job.spec.repeats)):
                raise RuntimeError(f"train.{job.name}: gathered repeats {got} != 0..{job.spec.repeats - 1}")
            metrics = _repeat_statistics(allres)
            model = job.untrained_model()
            model.load_state_dict(allres[0]["state_dict"])
            repeats = [{k: v for k, v in res.items() if k != "state_dict"} for res in allres]
            save_model(job.models / f"{job.name}.pt", kind=job.kind, name=job.name, model=model, optimizer=None,
                       config=job.config, history=[], metrics=metrics, data=job.info, repeats=repeats)
            shutil.rmtree(job.models / f"{job.name}.repeats", ignore_errors=True)
            log.info(f"train.{job.name}: {job.spec.repeats} repeats "
                     + " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    world.barrier()
