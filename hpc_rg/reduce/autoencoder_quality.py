"""`[analyze.autoencoder_quality]`: how well the run's autoencoders reconstruct the ensemble, and how local
their receptive fields are, with the baselines and the exact energy a comparison with a paper needs.

Stored (per net `<n>`, every autoencoder of models/ unless `models` names some):
  mse_<n>, mismatch_<n>      reconstruction MSE (±1 spins) and fraction of spins whose sign is wrong, over the
                             first `max_per_chain` configurations of each chain at the first temperature;
                             mean ± standard error over the independent chains
  window_fraction_<n>        per layer l (axis layer_<n>): weight of |r^(l)|, r^(l) = W^(1)...W^(l), in the
                             best b×b window (b: the layer's blocking factor, axis window_<n>), mean ± standard
                             error over the layer's units; shuffled_window_fraction_<n>: the same weights on
                             randomly permuted sites (the null: the best window of a noisy field holds more
                             than b²/N by chance); uniform_window_fraction_<n> = b²/N; radius_<n>,
                             shuffled_radius_<n>: radius of gyration of |r^(l)| and its null
  magnetization_only_mse     1 − ⟨m²⟩, the MSE of the best output that knows only the configuration's
                             magnetization; uniform_picture_mismatch (1 − ⟨|m|⟩)/2, the wrong-sign fraction of
                             a uniform picture with the right overall sign (first temperature, Γ-method errors)
  energy_exact               Kaufman's exact energy per site on the ensemble's finite torus, per temperature
                             (2D Ising only)
Attributes: sizes_<n>, epochs_<n>, settings_<n> (the training settings in one line).
This is what `hpc-rg report` used to compute itself with torch; the report stage now reads it from results.h5.
Every rank computes the same (a few forward passes over at most max_per_chain × chains configurations).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpc_rg.plugins import Plugin
from hpc_rg.schema import spec

# torch, the ensemble reader and the model loader are imported inside the functions: the job validator
# loads this module's spec, which must not cost a torch import

PLUGINS = (Plugin("reduction", "autoencoder_quality", "run_autoencoder_quality", spec="AutoencoderQualitySpec",
                  imports=("torch",), needs=("ensemble", "models"),
                  doc="autoencoder reconstruction MSE / wrong signs, receptive-field locality against a "
                      "shuffled null, magnetization-only baselines and Kaufman's exact energy"),)


@dataclass(frozen=True)
class AutoencoderQualitySpec:
    models: tuple[str, ...] = spec((), doc="autoencoders of the run's models/ to evaluate (default: every one)")
    max_per_chain: int = spec(400, min=1, doc="configurations per chain evaluated (the first ones)")


def settings(cfg: dict) -> str:
    """One line naming the training settings a net was run with (the axes of the seed-003 bracket)."""
    place = cfg.get("l1_placement", "all") if cfg.get("l1") else "none"
    return (f"{cfg.get('optimizer')} lr {cfg.get('lr')}, L1 {cfg.get('l1')} on {place}"
            f" ({cfg.get('l1_target', 'weights')}), {cfg.get('loss', 'mse')} loss, init {cfg.get('init', 'default')}, "
            f"pretraining {cfg.get('pretraining', 'none')}" + (", tied decoder" if cfg.get("tied") else ""))


def autoencoder_names(models_dir) -> list[str]:
    """Names of the trained autoencoders in a models/ folder (<name>.json with kind autoencoder), sorted."""
    import json
    out = []
    for p in sorted(models_dir.glob("*.json")):
        try:
            if json.loads(p.read_text()).get("kind") == "autoencoder":
                out.append(p.stem)
        except (OSError, ValueError):
            continue
    return out


def _standard_error(a) -> float:
    return float(np.std(a, ddof=1) / np.sqrt(len(a))) if len(a) > 1 else float("nan")


def reconstruction_quality(model, spins_of_chain, n_chains: int, n_per_chain: int) -> tuple:
    """((mse, err), (mismatch, err)) of `model` on spins_of_chain(c)[:n_per_chain], c < n_chains."""
    import torch
    mse, mis = [], []
    for c in range(n_chains):
        x = np.asarray(spins_of_chain(c)[:n_per_chain]).reshape(n_per_chain, -1).astype(np.float32)
        with torch.no_grad():
            y = model(torch.as_tensor(x)).numpy()
        mse.append(float(((y - x) ** 2).mean()))
        mis.append(float((np.sign(y) != x).mean()))
    return (float(np.mean(mse)), _standard_error(mse)), (float(np.mean(mis)), _standard_error(mis))


def layer_locality(model, shape) -> list[dict]:
    """Per layer: window side b, b²/N, window fraction and radius of r^(l) and of the shuffled-site null."""
    from hpc_rg.reduce import receptive_fields as rf
    n = int(np.prod(shape))
    out = []
    for l in range(1, len(model.sizes)):
        f = rf.layer_fields(model, "autoencoder", l).T.reshape((-1,) + tuple(shape))
        b = rf.block_side(n, model.sizes[l])
        s = rf.locality_summary(f, b)
        # a fixed stream per layer (as the report computed it before this reduction existed): the null
        # is a property of the weights, not of the job's seed
        rng = np.random.default_rng(1000 + l)
        flat = f.reshape(len(f), -1)
        shuf = np.stack([row[rng.permutation(row.size)] for row in flat]).reshape(f.shape)
        ns = rf.locality_summary(shuf, b)
        out.append({"layer": l, "window": b, "uniform": b * b / float(n), "window_fraction": s["window_fraction_mean"],
                    "radius": s["radius_mean"], "shuffled": ns["window_fraction_mean"],
                    "shuffled_radius": ns["radius_mean"]})
    return out


def _put_net(res, name: str, sizes, meta: dict, quality, layers) -> None:
    (mse, mis) = quality
    res.put(f"mse_{name}", mse[0], mse[1])
    res.put(f"mismatch_{name}", mis[0], mis[1])
    res.axes[f"layer_{name}"] = np.array([d["layer"] for d in layers])
    res.axes[f"window_{name}"] = np.array([d["window"] for d in layers])
    res.put(f"uniform_window_fraction_{name}", [d["uniform"] for d in layers])
    for q, key in (("window_fraction", "window_fraction"), ("shuffled_window_fraction", "shuffled"),
                   ("radius", "radius"), ("shuffled_radius", "shuffled_radius")):
        res.put(f"{q}_{name}", [d[key][0] for d in layers], [d[key][1] for d in layers])
    cfg = meta.get("config", {})
    res.attrs[f"sizes_{name}"] = "-".join(str(int(s)) for s in sizes)
    res.attrs[f"epochs_{name}"] = int(cfg.get("epochs") or 0)
    res.attrs[f"settings_{name}"] = settings(cfg)


def _put_ensemble(res, ens) -> None:
    from hpc_rg.reduce.stats import mean_error
    m = np.asarray(ens.magnetization[0], dtype=np.float64)         # (chains, samples), first temperature
    m2, m2e, _ = mean_error(m ** 2, axis_chains=True)
    am, ame, _ = mean_error(np.abs(m), axis_chains=True)
    res.put("magnetization_only_mse", 1.0 - m2, m2e)
    res.put("uniform_picture_mismatch", (1.0 - am) / 2.0, ame / 2.0)
    shape = tuple(int(x) for x in ens.lattice_shape)
    res.axes["temperatures"] = np.asarray(ens.temperatures, dtype=np.float64)
    if ens.attrs.get("model") == "ising2d" and len(shape) == 2:
        from hpc_rg.exact.kaufman import energy as kaufman_energy
        J = float(ens.attrs.get("J", 1.0))
        res.put("energy_exact", [float(kaufman_energy(shape, float(t), J)) for t in ens.temperatures])


def run_autoencoder_quality(spec: AutoencoderQualitySpec, ctx):
    from hpc_rg.io.ensemble import open_ensemble
    from hpc_rg.learn.modelfile import load_model
    from hpc_rg.reduce.registry import Result
    folder = ctx.out / "models"
    names = list(spec.models) or (autoencoder_names(folder) if folder.is_dir() else [])
    if not names:
        from hpc_rg.schema import ConfigError
        raise ConfigError(getattr(ctx.cfg, "file", ""), "analyze.autoencoder_quality.models", list(spec.models),
                          f"autoencoders in {folder} (none found: run the train stage first)")
    res = Result(attrs={"models": ",".join(names),
                        "method": "reconstruction over the first max_per_chain configurations of each chain at "
                                  "the first temperature, mean ± standard error over chains; locality: mean ± "
                                  "standard error over a layer's units, null = the same weights on shuffled sites"})
    with open_ensemble(ctx.ensemble_path) as ens:
        shape = tuple(int(x) for x in ens.lattice_shape)
        n_per_chain = min(ens.n_samples, spec.max_per_chain)
        _put_ensemble(res, ens)
        for name in names:
            model, meta = load_model(folder / f"{name}.pt")
            if meta.get("kind") != "autoencoder":
                from hpc_rg.schema import ConfigError
                raise ConfigError(getattr(ctx.cfg, "file", ""), "analyze.autoencoder_quality.models", name,
                                  f"an autoencoder (models/{name} is a {meta.get('kind')})")
            quality = reconstruction_quality(model, lambda c: ens.spins[0, c, :n_per_chain], ens.n_chains,
                                             n_per_chain)
            _put_net(res, name, model.sizes, meta, quality, layer_locality(model, shape))
    return res
