"""The `hpc-rg train` stage: every [train.<name>] table -> <out>/models/<name>.pt and <name>.json.

Two parallel modes (DESIGN.md, "Parallel model"):
  repeats = 1   one model, data-parallel over all ranks (DDP); checkpoint `<name>.ckpt.pt` after every epoch,
                `resume` continues from it (and skips models whose <name>.pt exists).
  repeats = N   N independent trainings (seed 000 trains each variant 500 times) dealt to ranks with
                `parallel.deal`; each finished repeat is saved as `<name>.repeats/<r>.pt`, results are gathered
                to rank 0. Repeat r is seeded from seed_sequence(job_seed, model_index, r, purpose="train"), so
                the results do not depend on the rank count. Coarse-graining CNNs train in fixed groups of
                `group` repeats as one batched model (`batched_cnn`), dealt to ranks whole: the group is the
                resume unit there; other kinds resume per repeat.
"""
from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import numpy as np

from hpc_rg.config import ConfigError, dataclass_to_table
from hpc_rg.learn.specs import SPECS
from hpc_rg.parallel import World, deal, get_logger, init_torch_distributed, seed_sequence, \
    shutdown_torch_distributed

SINGLE = World(None, 0, 1)


def kind_of(spec) -> str:
    for kind, cls in SPECS.items():
        if type(spec) is cls:
            return kind
    raise TypeError(f"not a train spec: {spec!r}")


def ensemble_path(cfg, name: str, spec) -> Path:
    if spec.ensemble:
        p = Path(spec.ensemble)
        p = p if p.is_absolute() else cfg.folder / p
        key = f"train.{name}.ensemble"
    else:
        p, key = cfg.out / "ensemble.h5", f"train.{name}"
    if not p.exists():
        raise ConfigError(cfg.file, key, str(p), "an existing ensemble file (run the simulate stage first)")
    return p


def run_train(cfg, world: World, resume: bool) -> None:
    """Train every [train.<name>] model of the job, in the order of the job file."""
    import torch
    from hpc_rg.learn.trainer import share_threads
    log = get_logger()
    models = cfg.out / "models"
    if world.is_root:
        models.mkdir(parents=True, exist_ok=True)
    world.barrier()
    share_threads(world)
    todo = []
    for i, (name, spec) in enumerate(cfg.train.items()):
        if resume and (models / f"{name}.pt").exists():
            log.info(f"train.{name}: {models / (name + '.pt')} exists; skipped (resume)")
        else:
            todo.append((i, name, spec))
    distributed = world.size > 1 and any(spec.repeats == 1 for _, _, spec in todo)
    if distributed:
        init_torch_distributed()
    try:
        for index, name, spec in todo:
            with torch.random.fork_rng(devices=[]):
                train_one(cfg, world, index, name, spec, resume)
    finally:
        if distributed:
            shutdown_torch_distributed()


# ------------------------------------------------------------------------------------------ data
def _data(cfg, world, index, name, spec, kind, path):
    """(source-or-patches, data description) for a model; patches are built on rank 0 and broadcast."""
    from hpc_rg.learn.data import EnsembleSource, patch_dataset, split
    try:
        source = EnsembleSource(path, spec.temperatures, spec.samples)
    except KeyError as e:
        raise ConfigError(cfg.file, f"train.{name}.temperatures", list(spec.temperatures),
                          f"temperatures of the ensemble ({e.args[0]})") from None
    info = {"ensemble": str(path), "temperatures": list(source.temperatures),
            "lattice_shape": list(source.lattice_shape), "n_configurations": source.n,
            "model": str(source.attrs.get("model", ""))}
    seed = seed_sequence(cfg.job.seed, index, purpose="data")
    if kind == "coarse_cnn":
        side = spec.block * spec.block
        if len(source.lattice_shape) != 2 or min(source.lattice_shape) < side:
            raise ConfigError(cfg.file, f"train.{name}.block", spec.block,
                              f"a block b with b^2 <= the lattice side {list(source.lattice_shape)}")
        patches = patch_dataset(source, spec.n_train, spec.n_test, spec.block, seed, spec.control) \
            if world.is_root else None
        source.close()
        patches = world.bcast(patches)
        info.update(n_train=spec.n_train, n_test=spec.n_test, block=spec.block, control=spec.control)
        return patches, info
    n_sites = int(np.prod(source.lattice_shape))
    if kind in ("dbn", "autoencoder") and spec.layers[0] != n_sites:
        raise ConfigError(cfg.file, f"train.{name}.layers", list(spec.layers),
                          f"first size {n_sites} (the lattice has {list(source.lattice_shape)} sites)")
    if kind == "thermometer" and (len(source.temperatures) < 2 or len(source.lattice_shape) != 2):
        raise ConfigError(cfg.file, f"train.{name}.temperatures", list(source.temperatures),
                          "at least two temperatures of a 2D ensemble (it classifies temperatures)")
    train_idx, test_idx = split(source.n, spec.test_fraction, seed)
    info.update(n_train=len(train_idx), n_test=len(test_idx), units=getattr(spec, "units", "spin"))
    return (source, train_idx, test_idx), info


# ------------------------------------------------------------------------------------------ models, tasks
def _model_and_tasks(kind, spec, data, device, job_seed, index, repeat):
    """The model (seeded init) and the list of training phases (one task each; one per layer for a DBN)."""
    import torch
    from hpc_rg.learn import objectives as ob
    from hpc_rg.learn.modelfile import build
    from hpc_rg.learn.trainer import torch_seed
    torch.manual_seed(torch_seed(seed_sequence(job_seed, index, repeat, purpose="train")))
    if kind == "coarse_cnn":
        model = build(kind, {"block": spec.block, "channels": spec.channels, "hidden": spec.hidden,
                             "frozen": spec.frozen, "head": spec.head}).to(device)
        return model, [ob.PatchTask(model, data["x_train"], data["y_train"], data["x_test"], data["y_test"],
                                    device)]
    source, train_idx, test_idx = data
    n_sites = int(np.prod(source.lattice_shape))
    if kind == "rbm":
        model = build(kind, {"n_visible": n_sites, "n_hidden": spec.n_hidden, "units": spec.units,
                             "init_scale": spec.init_scale}).to(device)
        return model, [ob.RBMTask(model, source, train_idx, test_idx, device, spec.units, spec.cd_k,
                                  spec.persistent, spec.l1)]
    if kind == "dbn":
        model = build(kind, {"layers": list(spec.layers), "units": spec.units}).to(device)
        tasks = []
        for layer in range(model.n_layers):
            def lift(x, noise, layer=layer):
                with torch.no_grad():
                    return model.up(x, layer, sample=spec.propagate == "sample", noise=noise)[-1] if layer else x
            tasks.append(ob.RBMTask(model.rbms[layer], source, train_idx, test_idx, device, spec.units, spec.cd_k,
                                    spec.persistent, spec.l1, lift=lift))
        return model, tasks
    if kind == "autoencoder":
        model = build(kind, {"layers": list(spec.layers)}).to(device)
        return model, [ob.AutoencoderTask(model, source, train_idx, test_idx, device, spec.l1)]
    if kind == "thermometer":
        model = build(kind, {"temperatures": list(source.temperatures), "channels": spec.channels,
                             "hidden": spec.hidden, "inputs": spec.inputs}).to(device)
        return model, [ob.ThermometerTask(model, source, train_idx, test_idx, device)]
    raise ValueError(kind)


def _options(spec, job_seed, index, repeat, layer, label, tag, verbose=True):
    from hpc_rg.learn.trainer import Options
    return Options(verbose=verbose, epochs=spec.epochs, batch_size=spec.batch_size, optimizer=spec.optimizer, lr=spec.lr,
                   momentum=spec.momentum, l2=spec.l2, lr_schedule=spec.lr_schedule, lr_gamma=spec.lr_gamma,
                   job_seed=job_seed, key=(index, repeat, layer), label=label, tag=tag)


def _final_metrics(kind, spec, model, tasks, history) -> dict:
    """Last epoch's test monitors, plus log Z / test log-likelihood for RBMs (exact when the smaller layer
    has <= 20 units, else AIS from a data-matched base)."""
    import torch
    from hpc_rg.learn.rbm import base_bias_from_data
    metrics = {k: v for k, v in (history[-1] if history else {}).items() if k.startswith(("test_", "train_"))}
    if kind not in ("rbm", "dbn"):
        return metrics
    rbms = [model] if kind == "rbm" else list(model.rbms)
    for layer, (rbm, task) in enumerate(zip(rbms, tasks)):
        suffix = "" if kind == "rbm" else f"_layer{layer + 1}"
        idx = task.test_idx[:1000] if len(task.test_idx) else task.train_idx[:1000]
        x, _ = task.inputs(idx)
        with torch.no_grad():
            gen = torch.Generator(device=task.device)
            gen.manual_seed(12345)
            v = task._visible(x, lambda n: torch.rand(len(idx), n, generator=gen, device=task.device))
            if min(rbm.n_visible, rbm.n_hidden) <= 20:
                log_z, err, method = float(rbm.exact_log_z()), 0.0, "exact"
            elif spec.ais_runs:
                base = base_bias_from_data(v.mean(0), rbm.units)
                log_z, err = rbm.ais_log_z(spec.ais_runs, spec.ais_betas, base, gen)
                method = "ais"
            else:
                continue
            metrics[f"log_z{suffix}"] = log_z
            metrics[f"log_z_method{suffix}"] = method
            metrics[f"log_z_rel_weight_error{suffix}"] = err
            metrics[f"test_log_likelihood{suffix}"] = float((-rbm.free_energy(v)).mean()) - log_z
    return metrics


# ------------------------------------------------------------------------------------------ one model
def train_one(cfg, world: World, index: int, name: str, spec, resume: bool) -> None:
    from hpc_rg.learn.trainer import resolve_device
    log = get_logger()
    kind = kind_of(spec)
    path = ensemble_path(cfg, name, spec)
    device = resolve_device(spec.device, world)
    data, info = _data(cfg, world, index, name, spec, kind, path)
    log.info(f"train.{name}: {kind} on {info['n_configurations']} configurations {info['lattice_shape']} at "
             f"T = {info['temperatures'][:6]}{'...' if len(info['temperatures']) > 6 else ''}, device {device}, "
             f"{world.size} rank(s), repeats = {spec.repeats}")
    import torch
    threads = torch.get_num_threads()
    if device.type == "cpu" and _n_parameters(kind, spec, info) < SMALL_MODEL:
        torch.set_num_threads(1)
    try:
        if spec.repeats > 1:
            _train_repeats(cfg, world, index, name, spec, kind, data, info, device, resume)
        else:
            _train_single(cfg, world, index, name, spec, kind, data, info, device, resume)
    finally:
        torch.set_num_threads(threads)
        if isinstance(data, tuple):
            data[0].close()


# Below this many weights an intra-op thread pool costs more in synchronisation than it gains (measured on a
# shared 2-core node: a 256-64 RBM ran 3x faster with one thread); such models train single-threaded.
SMALL_MODEL = 200_000


def _n_parameters(kind, spec, info) -> int:
    n_sites = int(np.prod(info["lattice_shape"]))
    if kind == "rbm":
        return n_sites * spec.n_hidden
    if kind in ("dbn", "autoencoder"):
        return sum(a * b for a, b in zip(spec.layers[:-1], spec.layers[1:]))
    return 0  # coarse_cnn and thermometer are small convolutional networks


def _train_single(cfg, world, index, name, spec, kind, data, info, device, resume):
    import torch
    from hpc_rg.learn.modelfile import save_model
    from hpc_rg.learn.trainer import State, fit, save_atomic
    models = cfg.out / "models"
    ckpt = models / f"{name}.ckpt.pt"
    model, tasks = _model_and_tasks(kind, spec, data, device, cfg.job.seed, index, 0)
    start_phase, state = 0, State()
    if resume and ckpt.exists():
        blob = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(blob["state_dict"])
        start_phase = blob["phase"]
        state = State(epoch=blob["epoch"], history=blob["history"], optimizer=blob["optimizer"], extra=blob["extra"])
        tasks[start_phase].load_state(state.extra, world)
        get_logger().info(f"train.{name}: resuming at phase {start_phase}, epoch {state.epoch}")
    history = state.history
    for phase in range(start_phase, len(tasks)):
        task = tasks[phase]
        if phase != start_phase:
            state = State(history=history)

        def checkpoint_all(st, phase=phase, task=task):
            # every rank joins the gather of the persistent chains; rank 0 writes
            gathered = {k: world.gather(x) for k, x in task.state().items()}
            if world.is_root:
                extra = {k: (np.concatenate(v) if v and v[0] is not None else None) for k, v in gathered.items()}
                save_atomic({"phase": phase, "epoch": st.epoch, "history": st.history, "optimizer": st.optimizer,
                             "extra": extra, "state_dict": model.state_dict()}, ckpt)
            world.barrier()
        label = f"train.{name}" + (f" layer {phase + 1}/{len(tasks)}" if kind == "dbn" else "")
        tag = {"layer": phase + 1} if kind == "dbn" else {}
        opts = _options(spec, cfg.job.seed, index, 0, phase, label, tag)
        state = fit(task, world, opts, state, checkpoint_all, distributed=world.size > 1)
        history = state.history
    if world.is_root:
        metrics = _final_metrics(kind, spec, model, tasks, history)
        save_model(models / f"{name}.pt", kind=kind, name=name, model=model, optimizer=state.optimizer,
                   config={"kind": kind, **dataclass_to_table(spec)}, history=history, metrics=metrics, data=info)
        ckpt.unlink(missing_ok=True)
        get_logger().info(f"train.{name}: wrote {models / (name + '.pt')} "
                          + " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float)))
    world.barrier()


def _train_repeats(cfg, world, index, name, spec, kind, data, info, device, resume):
    """`repeats` independent trainings: coarse_cnn repeats in groups of `spec.group` trained as one batched
    model (`batched_cnn`), other kinds one at a time through `trainer.fit`; then gathered to rank 0."""
    import torch
    models = cfg.out / "models"
    folder = models / f"{name}.repeats"
    folder.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small models: one thread each beats threads fighting over tiny matmuls
    try:
        if kind == "coarse_cnn":
            results = _train_repeat_groups(cfg, world, index, name, spec, data, device, resume, folder)
        else:
            results = _train_repeats_singly(cfg, world, index, name, spec, kind, data, device, resume, folder)
    finally:
        torch.set_num_threads(threads)
    _gather_repeats(cfg, world, index, name, spec, kind, data, info, results, folder)


def _repeat_groups(repeats: int, group: int) -> list[range]:
    """Fixed blocks [0, K), [K, 2K), ... of repeat indices: the unit dealt to ranks, so a repeat's result does
    not depend on the rank count."""
    return [range(lo, min(lo + group, repeats)) for lo in range(0, repeats, group)]


def _train_repeat_groups(cfg, world, index, name, spec, data, device, resume, folder):
    """coarse_cnn repeats: whole groups dealt to ranks; each group trained at once (`batched_cnn.train_group`:
    the same training as one `fit` per repeat, up to float summation order); its K repeat files are written
    when the group finishes (a killed job loses at most one group per rank), and `resume` skips a group whose
    files all exist."""
    import torch
    from hpc_rg.learn.batched_cnn import train_group
    from hpc_rg.learn.trainer import save_atomic
    log = get_logger()
    groups = _repeat_groups(spec.repeats, spec.group)
    mine = [groups[g] for g in deal(len(groups), world.size, world.rank)]
    n_mine = sum(len(g) for g in mine)
    results, done, t0 = [], 0, time.perf_counter()
    for reps in mine:
        files = [folder / f"{r:05d}.pt" for r in reps]
        if resume and all(f.exists() for f in files):
            results += [torch.load(f, map_location="cpu", weights_only=False) for f in files]
            n_mine -= len(reps)
            continue
        models = [_model_and_tasks("coarse_cnn", spec, data, device, cfg.job.seed, index, r)[0] for r in reps]
        opts = [_options(spec, cfg.job.seed, index, r, 0, f"train.{name} repeat {r}", {}, verbose=False)
                for r in reps]
        metrics = train_group(models, data, opts, device)
        for r, model, m, f in zip(reps, models, metrics, files):
            res = {"repeat": r, "metrics": m,
                   "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                   "kernel": model.kernel().cpu().numpy()}
            save_atomic(res, f)
            results.append(res)
        done += len(reps)
        eta = (time.perf_counter() - t0) / done * (n_mine - done)
        acc = np.array([m["test_accuracy"] for m in metrics]) if "test_accuracy" in metrics[0] else None
        log.info(f"train.{name}: repeats {reps.start}..{reps.stop - 1} ({done}/{n_mine} on this rank)"
                 + (f" test_accuracy {acc.mean():.4g} (min {acc.min():.4g}, max {acc.max():.4g})"
                    if acc is not None else "") + f" ({(time.perf_counter() - t0) / done:.3g} s/repeat, ETA {eta:.0f} s)")
    return results


def _train_repeats_singly(cfg, world, index, name, spec, kind, data, device, resume, folder):
    """Any kind: repeats dealt to ranks and trained one at a time through `trainer.fit`."""
    import torch
    from hpc_rg.learn.trainer import State, fit, save_atomic
    log = get_logger()
    results = []
    mine = deal(spec.repeats, world.size, world.rank)
    t0 = time.perf_counter()
    for r in mine:
        rfile = folder / f"{r:05d}.pt"
        if resume and rfile.exists():
            results.append(torch.load(rfile, map_location="cpu", weights_only=False))
            continue
        model, tasks = _model_and_tasks(kind, spec, data, device, cfg.job.seed, index, r)
        history: list = []
        for phase, task in enumerate(tasks):
            opts = _options(spec, cfg.job.seed, index, r, phase, f"train.{name} repeat {r}", {}, verbose=False)
            history = fit(task, SINGLE, opts, State(history=history)).history
        res = {"repeat": r, "metrics": _final_metrics(kind, spec, model, tasks, history),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
        if kind == "coarse_cnn":
            res["kernel"] = model.kernel().cpu().numpy()
        save_atomic(res, rfile)
        results.append(res)
        done = r - mine.start + 1
        eta = (time.perf_counter() - t0) / done * (len(mine) - done)
        log.info(f"train.{name}: repeat {r} ({done}/{len(mine)} on this rank) "
                 + " ".join(f"{k}={v:.4g}" for k, v in res["metrics"].items() if k.startswith("test_"))
                 + f" (ETA {eta:.0f} s)")
    return results


def _gather_repeats(cfg, world, index, name, spec, kind, data, info, results, folder):
    """Rank 0 collects every repeat's result, checks none is missing or doubled, and writes models/<name>.pt
    (repeat 0's weights as the model, mean and standard error of each metric over repeats)."""
    import torch
    from hpc_rg.learn.modelfile import save_model
    log = get_logger()
    models = cfg.out / "models"
    gathered = world.gather(results)
    if world.is_root:
        allres = sorted((res for part in gathered for res in part), key=lambda d: d["repeat"])
        got = [res["repeat"] for res in allres]
        if got != list(range(spec.repeats)):
            raise RuntimeError(f"train.{name}: gathered repeats {got} != 0..{spec.repeats - 1}")
        metrics = {}
        for key in allres[0]["metrics"]:
            vals = np.array([res["metrics"][key] for res in allres if isinstance(res["metrics"].get(key), float)])
            if len(vals) == len(allres):
                metrics[f"{key}_mean"] = float(vals.mean())
                metrics[f"{key}_stderr"] = float(vals.std(ddof=1) / math.sqrt(len(vals))) if len(vals) > 1 else 0.0
        model, _ = _model_and_tasks(kind, spec, data, torch.device("cpu"), cfg.job.seed, index, 0)
        model.load_state_dict(allres[0]["state_dict"])
        repeats = [{k: v for k, v in res.items() if k != "state_dict"} for res in allres]
        save_model(models / f"{name}.pt", kind=kind, name=name, model=model, optimizer=None,
                   config={"kind": kind, **dataclass_to_table(spec)}, history=[], metrics=metrics, data=info,
                   repeats=repeats)
        shutil.rmtree(folder, ignore_errors=True)
        log.info(f"train.{name}: {spec.repeats} repeats " + " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    world.barrier()
