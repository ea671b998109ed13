"""The `hpc-rg train` stage: every [train.<name>] table -> <out>/models/<name>.pt and <name>.json.

Any number of ranks; the trainer plans from the job and the world size (`plan_training`, logged in one line):
  data-parallel   a model with repeats = 1 and at least DDP_MIN_PARAMETERS weights is trained by all ranks
                  together (each takes its share of every global batch, `trainer.fit`); checkpoint
                  `<name>.ckpt.pt` after every epoch, `resume` continues from it.
  task-parallel   everything else (small models: the seed RBMs, CNNs, thermometers; every repeat) is cut into
                  units (a whole model, one repeat, or for coarse_cnn one group of `group` repeats trained as
                  one batched model) dealt round-robin to the ranks, each trained alone on its rank: one
                  all-reduce per step costs more than a small model's share of the work saves. Whole models
                  checkpoint per epoch like above; each finished repeat is saved as `<name>.repeats/<r>.pt`
                  and results are gathered to rank 0. Idle ranks wait (sleeping, not spinning).
Every unit is seeded from its identity (seed_sequence(job_seed, model_index, repeat, purpose="train")), never
from the rank, so the models do not depend on the rank count (task-parallel: bit for bit; data-parallel: up
to float summation order). `resume` skips models whose <name>.pt exists.

SIGTERM/SIGINT/SIGUSR1 on any rank: the ranks agree (`parallel.StopRequests`), every rank stops after its
current epoch (checkpoint written) or repeat, and the stage returns EXIT_INTERRUPTED (3) on every rank;
`--resume` continues and gives the models an uninterrupted run gives.

Checkpoints and repeat files hold only tensors and plain Python values, loaded with weights_only=True.
"""
from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpc_rg.schema import ConfigError, dataclass_to_table
from hpc_rg.learn.specs import SPECS
from hpc_rg.learn.validate import validate as validate_training
from hpc_rg.parallel import EXIT_INTERRUPTED, StopRequests, World, deal, get_logger, init_torch_distributed, \
    seed_sequence, shutdown_torch_distributed

SINGLE = World(None, 0, 1)

# A model with fewer weights than this trains task-parallel, never data-parallel. Measured with
# `benchmarks/train.py --mode comm` (2 ranks, shared 2-core node): the flat all-reduce of a 1600-400 RBM's
# gradient (640,000 weights) takes ~3.5 ms next to a ~13 ms CD-1 step on a 50-row share; a model a few times
# smaller spends a step of well under a millisecond per share, so its ranks would mostly wait on each other.
DDP_MIN_PARAMETERS = 200_000


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


@dataclass
class Model:
    """One [train.<name>] table still to train: its index in the job (part of every seed) and its data."""
    index: int
    name: str
    spec: object
    kind: str
    info: dict = field(default_factory=dict)     # the data description (`_describe`)
    n_parameters: int = 0


@dataclass
class Unit:
    """Task-parallel work: a whole model (repeats None), one repeat, or a coarse_cnn group of repeats."""
    model: Model
    repeats: range | None = None


def plan_training(todo: list[Model], size: int) -> tuple[list[Model], list[Unit]]:
    """(models trained data-parallel by all ranks, task-parallel units in a fixed order). The units are
    dealt round-robin (`units[rank::size]`); which rank trains a unit never changes its result."""
    shared = [m for m in todo if m.spec.repeats == 1 and m.n_parameters >= DDP_MIN_PARAMETERS]
    units = []
    for m in todo:
        if m in shared:
            continue
        if m.spec.repeats == 1:
            units.append(Unit(m))
        elif m.kind == "coarse_cnn":
            units += [Unit(m, g) for g in _repeat_groups(m.spec.repeats, m.spec.group)]
        else:
            units += [Unit(m, range(r, r + 1)) for r in range(m.spec.repeats)]
    return shared, units


def _plan_line(shared: list[Model], units: list[Unit], size: int) -> str:
    def what(u):
        if u.repeats is None:
            return u.model.name
        r = u.repeats
        return f"{u.model.name}[{r.start}]" if len(r) == 1 else f"{u.model.name}[{r.start}..{r.stop - 1}]"
    parts = [f"train: {size} rank(s)"]
    if shared:
        parts.append("data-parallel over all ranks: " + ", ".join(f"{m.name} ({m.n_parameters:,} weights)"
                                                                   for m in shared))
    if units:
        per_rank = [units[r::size] for r in range(size)]
        busy = sum(1 for p in per_rank if p)
        shown = "; ".join(f"rank {r}: " + ", ".join(map(what, p[:3])) + (f" +{len(p) - 3}" if len(p) > 3 else "")
                          for r, p in enumerate(per_rank[:4]) if p)
        parts.append(f"task-parallel (models under {DDP_MIN_PARAMETERS:,} weights, and repeats): {len(units)} "
                     f"unit(s) on {busy} rank(s)" + (f", {size - busy} idle" if busy < size else "")
                     + f" ({shown}{'; ...' if size > 4 else ''})")
    return "; ".join(parts)


def run_train(cfg, world: World, resume: bool) -> int:
    """Train every [train.<name>] model of the job. Returns 0, or EXIT_INTERRUPTED on every rank after a
    stop request (see the module docstring)."""
    log = get_logger()
    validate_training(cfg)      # every model against its data before any trains or anything is written
    models = cfg.out / "models"
    todo = []
    for i, (name, spec) in enumerate(cfg.train.items()):
        if resume and (models / f"{name}.pt").exists():
            log.info(f"train.{name}: {models / (name + '.pt')} exists; skipped (resume)")
        else:
            todo.append(Model(i, name, spec, kind_of(spec)))
    return train_models(cfg, world, todo, resume)


def train_models(cfg, world: World, todo: list[Model], resume: bool) -> int:
    """Train these models (each keeps its index in the job, and so its seeds) into <out>/models, planned
    over the ranks as `plan_training` says. Returns 0, or EXIT_INTERRUPTED on every rank after a stop request.
    The tune stage retrains a searched setting through here."""
    import torch
    from hpc_rg.learn.trainer import Interrupted, resolve_device, share_threads
    log = get_logger()
    models = cfg.out / "models"
    for m in todo:   # every user error, on every rank, before anything is written or trained
        m.info = _describe(cfg, m)
        m.n_parameters = _n_parameters(m.kind, m.spec, m.info)
    if world.is_root:
        models.mkdir(parents=True, exist_ok=True)
    world.barrier()
    share_threads(world)
    shared, units = plan_training(todo, world.size)
    if todo:
        log.info(_plan_line(shared, units, world.size))
    cuda = world.size > 1 and any(resolve_device(m.spec.device, world).type == "cuda" for m in shared)
    if cuda:   # GPU gradients are summed by nccl; CPU ones over MPI directly
        init_torch_distributed()
    results: dict[str, list] = {}
    try:
        with StopRequests(world) as stop:
            try:
                for m in shared:
                    if stop.agree():
                        raise Interrupted("stop requested")
                    with torch.random.fork_rng(devices=[]):
                        _train_model(cfg, world, m, resume, stop.agree, shared=True)
                results = _train_units(cfg, units[world.rank::world.size], resume, stop)
            except Interrupted as e:
                log.debug(str(e))
            if stop.agree():
                log.warning(f"train: stopped by {stop.why()}; finished models, repeats and per-epoch checkpoints "
                            "are kept, resume with --resume")
                return EXIT_INTERRUPTED
            _gather_repeats(cfg, world, todo, results)
    finally:
        if cuda:
            shutdown_torch_distributed()
    return 0


# ------------------------------------------------------------------------------------------ data
def _describe(cfg, m: Model) -> dict:
    """Check a model's data against its table (one-line errors naming the key) and describe it: ensemble,
    temperatures, lattice shape, sample counts. Cheap: reads the ensemble's metadata only."""
    from hpc_rg.learn.data import EnsembleSource
    name, spec, kind = m.name, m.spec, m.kind
    path = ensemble_path(cfg, name, spec)
    try:
        source = EnsembleSource(path, spec.temperatures, spec.samples)
    except KeyError as e:
        raise ConfigError(cfg.file, f"train.{name}.temperatures", list(spec.temperatures),
                          f"temperatures of the ensemble ({e.args[0]})") from None
    try:
        info = {"ensemble": str(path), "temperatures": list(source.temperatures),
                "lattice_shape": list(source.lattice_shape), "n_configurations": source.n,
                "model": str(source.attrs.get("model", ""))}
        if kind == "coarse_cnn":
            side = spec.block * spec.block
            if len(source.lattice_shape) != 2 or min(source.lattice_shape) < side:
                raise ConfigError(cfg.file, f"train.{name}.block", spec.block,
                                  f"a block b with b^2 <= the lattice side {list(source.lattice_shape)}")
            info.update(n_train=spec.n_train, n_test=spec.n_test, block=spec.block, control=spec.control)
        else:
            n_sites = int(np.prod(source.lattice_shape))
            if kind in ("dbn", "autoencoder") and spec.layers[0] != n_sites:
                raise ConfigError(cfg.file, f"train.{name}.layers", list(spec.layers),
                                  f"first size {n_sites} (the lattice has {list(source.lattice_shape)} sites)")
            if kind == "rsmi":
                from hpc_rg.learn.validate import check_rsmi_window
                check_rsmi_window(cfg.file, name, spec, tuple(source.lattice_shape), str(path))
            if kind == "thermometer" and (len(source.temperatures) < 2 or len(source.lattice_shape) != 2):
                raise ConfigError(cfg.file, f"train.{name}.temperatures", list(source.temperatures),
                                  "at least two temperatures of a 2D ensemble (it classifies temperatures)")
            n_test = int(round(spec.test_fraction * source.n))
            info.update(n_train=source.n - n_test, n_test=n_test, units=getattr(spec, "units", "spin"))
    finally:
        source.close()
    if spec.batch_size > info["n_train"]:
        raise ConfigError(cfg.file, f"train.{name}.batch_size", spec.batch_size,
                          f"at most the {info['n_train']} training samples")
    return info


def _data(cfg, world, m: Model):
    """The model's training data: (source, train_idx, test_idx), or for coarse_cnn the patch sets (built on
    rank 0 of `world` and broadcast). Seeded by the model's index, so every rank builds the same."""
    from hpc_rg.learn.data import EnsembleSource, patch_dataset, split
    spec = m.spec
    source = EnsembleSource(Path(m.info["ensemble"]), spec.temperatures, spec.samples)
    seed = seed_sequence(cfg.job.seed, m.index, purpose="data")
    if m.kind == "coarse_cnn":
        patches = patch_dataset(source, spec.n_train, spec.n_test, spec.block, seed, spec.control) \
            if world.is_root else None
        source.close()
        return world.bcast(patches)
    train_idx, test_idx = split(source.n, spec.test_fraction, seed)
    return source, train_idx, test_idx


# ------------------------------------------------------------------------------------------ models, tasks
def _model_and_tasks(kind, spec, data, device, job_seed, index, repeat):
    """The model (seeded init) and the list of training phases (one task each; one per layer for a DBN)."""
    import torch
    from hpc_rg.learn import objectives as ob
    from hpc_rg.learn.modelfile import build
    from hpc_rg.learn.trainer import torch_seed
    torch.manual_seed(torch_seed(seed_sequence(job_seed, index, repeat, purpose="train")))
    if kind == "coarse_cnn":
        model = build(kind, _model_args(kind, spec, 0, ())).to(device)
        return model, [ob.PatchTask(model, data["x_train"], data["y_train"], data["x_test"], data["y_test"],
                                    device)]
    source, train_idx, test_idx = data
    temperatures = source.temperatures if kind == "thermometer" else ()   # the thermometer's classes only
    model = build(kind, _model_args(kind, spec, int(np.prod(source.lattice_shape)), temperatures))
    model = model.to(device)
    if kind == "rbm":
        return model, [ob.RBMTask(model, source, train_idx, test_idx, device, spec.units, spec.cd_k,
                                  spec.persistent, spec.l1)]
    if kind == "dbn":
        tasks = []
        for layer in range(model.n_layers):
            def lift(x, noise, layer=layer):
                with torch.no_grad():
                    return model.up(x, layer, sample=spec.propagate == "sample", noise=noise)[-1] if layer else x
            tasks.append(ob.RBMTask(model.rbms[layer], source, train_idx, test_idx, device, spec.units, spec.cd_k,
                                    spec.persistent, spec.l1, lift=lift, average_last=spec.average_last))
        return model, tasks
    if kind == "autoencoder":
        return model, ob.autoencoder_tasks(model, spec, source, train_idx, test_idx, device)
    if kind == "thermometer":
        return model, [ob.ThermometerTask(model, source, train_idx, test_idx, device)]
    if kind == "rsmi":
        from hpc_rg.learn.rsmi import RSMITask
        return model, [RSMITask(model, source, train_idx, test_idx, device, spec.batch_size)]
    raise ValueError(kind)


def _model_args(kind, spec, n_sites: int, temperatures) -> dict:
    """`modelfile.build`'s arguments for a table: the one place that maps spec keys to model arguments (the
    trained model and the one `_gather_repeats` loads weights into must have the same layout)."""
    if kind == "coarse_cnn":
        return {"block": spec.block, "channels": spec.channels, "hidden": spec.hidden, "frozen": spec.frozen,
                "head": spec.head}
    if kind == "rbm":
        return {"n_visible": n_sites, "n_hidden": spec.n_hidden, "units": spec.units,
                "init_scale": spec.init_scale}
    if kind == "dbn":
        return {"layers": list(spec.layers), "units": spec.units, "init_scale": spec.init_scale}
    if kind == "autoencoder":
        return {"layers": list(spec.layers), "tied": spec.tied, "init": spec.init, "init_scale": spec.init_scale,
                "pretraining": spec.pretraining, "learn_sigma": spec.learn_sigma}
    if kind == "thermometer":
        return {"temperatures": list(temperatures), "channels": spec.channels, "hidden": spec.hidden,
                "inputs": spec.inputs}
    if kind == "rsmi":
        return {"block": spec.block, "channels": spec.channels, "buffer": spec.buffer, "shell": spec.shell,
                "mlp": spec.mlp, "hidden": spec.hidden, "layers": spec.layers, "embed": spec.embed,
                "relax": spec.relax, "tau_start": spec.tau_start, "tau_end": spec.tau_end}
    raise ValueError(kind)


def _model_only(m: Model):
    """The untrained model of a table, on the CPU (to load gathered weights into): no data needed."""
    from hpc_rg.learn.modelfile import build
    return build(m.kind, _model_args(m.kind, m.spec, int(np.prod(m.info["lattice_shape"])),
                                     m.info.get("temperatures", ())))


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


# ------------------------------------------------------------------------------------------ files
def _plain(x):
    """A checkpoint/repeat blob reduced to what torch.load(weights_only=True) accepts: tensors and plain
    Python values (numpy arrays become tensors, numpy scalars Python numbers)."""
    import torch
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(v) for v in x)
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, np.generic):
        return x.item()
    return x


def _load_blob(path: Path, keys: tuple[str, ...], device="cpu") -> dict:
    """A checkpoint or repeat file, read without unpickling code (weights_only=True): a planted, corrupt or
    foreign file is refused with a one-line error naming it (exit 2), never executed."""
    import torch
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
        missing = [k for k in keys if k not in blob]
    except Exception as e:   # UnpicklingError (an object that is not a tensor or plain value), truncation, ...
        text = str(e).strip()
        reason = ("it holds something other than tensors and plain values, or is not a torch file"
                  if text.startswith("Weights only load failed") or not text else text.splitlines()[0][:160])
        raise ConfigError(path, "", None, f"not a checkpoint that hpc-rg can read safely ({reason}); delete it "
                          "to train this model from the start") from None
    if missing:
        raise ConfigError(path, "", None, f"not a checkpoint of hpc-rg train (no {', '.join(missing)}); delete it "
                          "to train this model from the start")
    return blob


def _load_repeat(path: Path) -> dict:
    res = _load_blob(path, ("repeat", "metrics", "state_dict"))
    if "kernel" in res:
        res["kernel"] = res["kernel"].numpy()
    return res


# ------------------------------------------------------------------------------------------ one model
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


def _train_model(cfg, world, m: Model, resume, stop, shared: bool) -> str | None:
    """Train one whole model (repeats = 1): data-parallel over `world` when `shared`, else alone (`world`
    is SINGLE). Writes models/<name>.pt; returns the log line saying so (on the writing rank)."""
    import torch
    from hpc_rg.learn.trainer import resolve_device
    info = m.info
    device = resolve_device(m.spec.device, world)
    get_logger().info(f"train.{m.name}: {m.kind} on {info['n_configurations']} configurations "
                      f"{info['lattice_shape']} at T = {info['temperatures'][:6]}"
                      f"{'...' if len(info['temperatures']) > 6 else ''}, device {device}, "
                      + (f"data-parallel over {world.size} rank(s)" if shared else "on one rank"))
    data = _data(cfg, world, m)
    threads = torch.get_num_threads()
    if device.type == "cpu" and m.n_parameters < SMALL_MODEL:
        torch.set_num_threads(1)
    try:
        return _train_single(cfg, world, m, data, device, resume, stop, shared)
    finally:
        torch.set_num_threads(threads)
        if isinstance(data, tuple):
            data[0].close()


def _train_single(cfg, world, m: Model, data, device, resume, stop, shared):
    from hpc_rg.learn.modelfile import save_model
    from hpc_rg.learn.trainer import State, fit, save_atomic
    name, spec, kind = m.name, m.spec, m.kind
    models = cfg.out / "models"
    ckpt = models / f"{name}.ckpt.pt"
    model, tasks = _model_and_tasks(kind, spec, data, device, cfg.job.seed, m.index, 0)
    # this rank's rows of every global batch (persistent chains are stored whole and re-dealt on resume, so
    # a run may resume on another rank count)
    share = deal(spec.batch_size, world.size, world.rank) if shared else range(spec.batch_size)
    start_phase, state = 0, State()
    if resume and ckpt.exists():
        blob = _load_blob(ckpt, ("phase", "epoch", "history", "optimizer", "extra", "state_dict"), device)
        model.load_state_dict(blob["state_dict"])
        start_phase = blob["phase"]
        state = State(epoch=blob["epoch"], history=blob["history"], optimizer=blob["optimizer"], extra={})
        extra = {}
        for k, v in blob["extra"].items():
            v = v.cpu().numpy()[share.start:share.stop] if v is not None else None
            extra[k] = v if v is not None and len(v) else None
        tasks[start_phase].load_state(extra, SINGLE)
        get_logger().info(f"train.{name}: resuming at phase {start_phase}, epoch {state.epoch}")
    history = state.history
    for phase in range(start_phase, len(tasks)):
        task = tasks[phase]
        if phase != start_phase:
            state = State(history=history)

        def checkpoint_all(st, phase=phase, task=task):
            # every rank joins the gather of its rows of the persistent chains (none on a rank without rows)
            gathered = {k: world.gather(x) for k, x in task.state().items()} if shared else \
                {k: [x] for k, x in task.state().items()}
            if world.is_root:
                extra = {}
                for k, parts in gathered.items():
                    parts = [x for x in parts if x is not None]
                    extra[k] = np.concatenate(parts) if parts else None
                save_atomic(_plain({"phase": phase, "epoch": st.epoch, "history": st.history,
                                    "optimizer": st.optimizer, "extra": extra, "state_dict": model.state_dict()}),
                            ckpt)
            if shared:
                world.barrier()
        label = f"train.{name}" + (f" layer {phase + 1}/{len(tasks)}" if kind == "dbn" else "")
        tag = {"layer": phase + 1} if kind == "dbn" else {}
        opts = _options(spec, cfg.job.seed, m.index, 0, phase, label, tag)
        if getattr(task, "options", None):   # a phase with its own settings (autoencoder pretraining)
            import dataclasses
            opts = dataclasses.replace(opts, **task.options)
        state = fit(task, world if shared else SINGLE, opts, state, checkpoint_all, distributed=shared, stop=stop)
        history = state.history
    line = None
    if world.is_root:
        metrics = _final_metrics(kind, spec, model, tasks, history)
        save_model(models / f"{name}.pt", kind=kind, name=name, model=model, optimizer=state.optimizer,
                   config={"kind": kind, **dataclass_to_table(spec)}, history=history, metrics=metrics,
                   data=m.info)
        ckpt.unlink(missing_ok=True)
        line = (f"train.{name}: wrote {models / (name + '.pt')} "
                + " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float)))
        get_logger().info(line)
    if shared:
        world.barrier()
    return line


# ------------------------------------------------------------------------------------------ task-parallel units
def _train_units(cfg, units: list[Unit], resume, stop) -> dict[str, list]:
    """This rank's units, one after another, each alone on this rank. Returns {model name: [repeat results]}
    and {"": [log lines of whole models]}; raises Interrupted on a stop request (between units, or after an
    epoch of a whole model)."""
    import torch
    from hpc_rg.learn.trainer import Interrupted, resolve_device
    results: dict[str, list] = {"": []}
    current, data = None, None
    threads = torch.get_num_threads()
    try:
        for u in units:
            if stop.requested():
                raise Interrupted("stop requested")
            m = u.model
            with torch.random.fork_rng(devices=[]):
                if u.repeats is None:
                    line = _train_model(cfg, SINGLE, m, resume, stop.requested, shared=False)
                    results[""].append(line)
                    continue
                if current is not m:
                    if isinstance(data, tuple):
                        data[0].close()
                    current, data = m, _data(cfg, SINGLE, m)
                    (cfg.out / "models" / f"{m.name}.repeats").mkdir(parents=True, exist_ok=True)
                device = resolve_device(m.spec.device, SINGLE)
                torch.set_num_threads(1)   # many small models: one thread each beats threads fighting
                try:
                    if m.kind == "coarse_cnn":
                        res = _train_repeat_group(cfg, m, u.repeats, data, device, resume)
                    else:
                        res = [_train_repeat(cfg, m, u.repeats.start, data, device, resume)]
                finally:
                    torch.set_num_threads(threads)
                results.setdefault(m.name, []).extend(res)
    finally:
        if isinstance(data, tuple):
            data[0].close()
    return results


def _repeat_groups(repeats: int, group: int) -> list[range]:
    """Fixed blocks [0, K), [K, 2K), ... of repeat indices: the unit dealt to ranks, so a repeat's result does
    not depend on the rank count."""
    return [range(lo, min(lo + group, repeats)) for lo in range(0, repeats, group)]


def _repeat_file(cfg, m: Model, r: int) -> Path:
    return cfg.out / "models" / f"{m.name}.repeats" / f"{r:05d}.pt"


def _train_repeat_group(cfg, m: Model, reps: range, data, device, resume) -> list[dict]:
    """coarse_cnn repeats `reps` trained at once (`batched_cnn.train_group`: the same training as one `fit`
    per repeat, up to float summation order); the K repeat files are written when the group finishes, and
    `resume` skips a group whose files all exist."""
    from hpc_rg.learn.batched_cnn import train_group
    from hpc_rg.learn.trainer import save_atomic
    files = [_repeat_file(cfg, m, r) for r in reps]
    if resume and all(f.exists() for f in files):
        return [_load_repeat(f) for f in files]
    t0 = time.perf_counter()
    models = [_model_and_tasks("coarse_cnn", m.spec, data, device, cfg.job.seed, m.index, r)[0] for r in reps]
    opts = [_options(m.spec, cfg.job.seed, m.index, r, 0, f"train.{m.name} repeat {r}", {}, verbose=False)
            for r in reps]
    metrics = train_group(models, data, opts, device)
    results = []
    for r, model, met, f in zip(reps, models, metrics, files):
        res = {"repeat": r, "metrics": met,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "kernel": model.kernel().detach().cpu().numpy()}
        save_atomic(_plain(res), f)
        results.append(res)
    acc = np.array([met["test_accuracy"] for met in metrics]) if "test_accuracy" in metrics[0] else None
    get_logger().info(f"train.{m.name}: repeats {reps.start}..{reps.stop - 1}"
                      + (f" test_accuracy {acc.mean():.4g} (min {acc.min():.4g}, max {acc.max():.4g})"
                         if acc is not None else "") + f" ({(time.perf_counter() - t0) / len(reps):.3g} s/repeat)")
    return results


def _train_repeat(cfg, m: Model, r: int, data, device, resume) -> dict:
    """Repeat r of any kind through `trainer.fit`, alone on this rank; saved as <name>.repeats/<r>.pt."""
    from hpc_rg.learn.trainer import State, fit, save_atomic
    rfile = _repeat_file(cfg, m, r)
    if resume and rfile.exists():
        return _load_repeat(rfile)
    t0 = time.perf_counter()
    model, tasks = _model_and_tasks(m.kind, m.spec, data, device, cfg.job.seed, m.index, r)
    history: list = []
    for phase, task in enumerate(tasks):
        opts = _options(m.spec, cfg.job.seed, m.index, r, phase, f"train.{m.name} repeat {r}", {}, verbose=False)
        history = fit(task, SINGLE, opts, State(history=history)).history
    res = {"repeat": r, "metrics": _final_metrics(m.kind, m.spec, model, tasks, history),
           "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    if m.kind in ("coarse_cnn", "rsmi"):     # the learned kernels, kept per repeat in the .json
        res["kernel"] = model.kernel().detach().cpu().numpy()
    save_atomic(_plain(res), rfile)
    get_logger().info(f"train.{m.name}: repeat {r} "
                      + " ".join(f"{k}={v:.4g}" for k, v in res["metrics"].items() if k.startswith("test_"))
                      + f" ({time.perf_counter() - t0:.3g} s)")
    return res


def _gather_repeats(cfg, world, todo: list[Model], results: dict[str, list]) -> None:
    """Rank 0 collects every repeat's result and the other ranks' log lines, checks no repeat is missing or
    doubled, and writes models/<name>.pt for each model with repeats (repeat 0's weights as the model, mean
    and standard error of each metric over repeats)."""
    from hpc_rg.learn.modelfile import save_model
    log = get_logger()
    models = cfg.out / "models"
    gathered = world.gather(results)
    if world.is_root:
        if world.size > 1:   # the whole models trained on other ranks (rank 0 logged its own)
            for part in gathered[1:]:
                for line in part.get("", []):
                    if line:
                        log.info(line)
        for m in todo:
            if m.spec.repeats == 1:
                continue
            allres = sorted((res for part in gathered for res in part.get(m.name, [])), key=lambda d: d["repeat"])
            got = [res["repeat"] for res in allres]
            if got != list(range(m.spec.repeats)):
                raise RuntimeError(f"train.{m.name}: gathered repeats {got} != 0..{m.spec.repeats - 1}")
            metrics = {}
            for key in allres[0]["metrics"]:
                vals = np.array([res["metrics"][key] for res in allres if isinstance(res["metrics"].get(key), float)])
                if len(vals) == len(allres):
                    metrics[f"{key}_mean"] = float(vals.mean())
                    metrics[f"{key}_stderr"] = float(vals.std(ddof=1) / math.sqrt(len(vals))) if len(vals) > 1 else 0.0
            model = _model_only(m)
            model.load_state_dict(allres[0]["state_dict"])
            repeats = [{k: v for k, v in res.items() if k != "state_dict"} for res in allres]
            save_model(models / f"{m.name}.pt", kind=m.kind, name=m.name, model=model, optimizer=None,
                       config={"kind": m.kind, **dataclass_to_table(m.spec)}, history=[], metrics=metrics,
                       data=m.info, repeats=repeats)
            shutil.rmtree(models / f"{m.name}.repeats", ignore_errors=True)
            log.info(f"train.{m.name}: {m.spec.repeats} repeats "
                     + " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    world.barrier()


# ------------------------------------------------------------------------------------------ in memory
def model_data(cfg, index: int, name: str, spec, world: World = SINGLE):
    """The data a [train.<name>] table trains on, as `train_spec` takes it: (source, train_idx, test_idx)
    (the caller closes `source`; split the indices again for a validation set) or coarse_cnn's patch dict
    (x_train, y_train, x_test, y_test). User errors as in the stage (ConfigError naming the key)."""
    m = Model(index, name, spec, kind_of(spec))
    m.info = _describe(cfg, m)
    return _data(cfg, world, m)


def train_spec(cfg, index: int, name: str, spec, *, data=None, world: World = SINGLE, repeat: int = 0,
               on_epoch=None, stop=None):
    """Train one model of a [train.<name>] table in memory (no files; for searches over its settings):
    returns (model, history, metrics). `index` is the table's place in the job (with `repeat`, the seed);
    `data` as `model_data` returns it (default: the table's own data and split: "test_*" monitors are then
    on its held-out part; pass a validation split to keep a test set unseen); `on_epoch(row)` after every
    epoch with that epoch's history row (it may raise, e.g. to prune a trial); `world`: ranks sharing this
    training (data-parallel; default one rank); `stop()` as in `trainer.fit`."""
    import torch
    from hpc_rg.learn.trainer import State, fit, resolve_device
    m = Model(index, name, spec, kind_of(spec))
    m.info = _describe(cfg, m)
    own = data is None
    data = _data(cfg, world, m) if own else data
    device = resolve_device(spec.device, world)
    try:
        with torch.random.fork_rng(devices=[]):
            model, tasks = _model_and_tasks(m.kind, spec, data, device, cfg.job.seed, index, repeat)
            history: list = []
            for phase, task in enumerate(tasks):
                opts = _options(spec, cfg.job.seed, index, repeat, phase, f"train.{name}",
                                {"layer": phase + 1} if m.kind == "dbn" else {}, verbose=False)
                report = (lambda st: on_epoch(st.history[-1])) if on_epoch is not None else None
                history = fit(task, world, opts, State(history=history), report, distributed=world.size > 1,
                              stop=stop).history
            return model, history, _final_metrics(m.kind, spec, model, tasks, history)
    finally:
        if own and isinstance(data, tuple):
            data[0].close()
