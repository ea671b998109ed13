"""The `neural_mi` reduction (issue #21): I(X; Y) of neighbouring b×b blocks and/or of a block and its
environment ring, by a variational bound (InfoNCE or NWJ, the estimators of `mi_neural`) over several seeds,
beside the bias-corrected histogram MI of the same pairs (`mutual_info`); with trained rsmi / coarse_cnn
models, the MI of their real-valued block images. Seeds are dealt over the ranks; the result does not depend
on their number. The pair helpers here serve `coarse_rules` too. torch is imported inside the functions only.
"""
from __future__ import annotations

import numpy as np

from hpc_rg.io.ensemble import open_ensemble
from hpc_rg.plugins import Plugin
from hpc_rg.reduce import mutual_info as mi
from hpc_rg.reduce.blocks import t_indices
from hpc_rg.reduce.registry import Context, Result
from hpc_rg.reduce.seeding import seed_for, sequence
from hpc_rg.schema import ConfigError

PLUGINS = (Plugin("reduction", "neural_mi", "run_neural_mi",
                  spec="hpc_rg.reduce.model_specs:NeuralMISpec", imports=("torch",), needs=("ensemble", "models"),
                  doc="neural lower bounds on the MI of blocks and block-environment pairs"),)

# how many sample blocks the histogram's bootstrap resamples
HIST_BLOCKS = 16


def load_configurations(ens, t: int, max_samples: int = 0) -> np.ndarray:
    """All configurations of temperature index t, (chains × samples, *shape) int8 (first `max_samples` of
    each chain when > 0)."""
    n = ens.n_samples if max_samples <= 0 else min(max_samples, ens.n_samples)
    x = np.asarray(ens.spins[t, :, :n])
    return x.reshape((-1,) + x.shape[2:])


def subset_pairs(spins: np.ndarray, kind: str, b: int, buffer: int, shell: int, max_pairs: int, seed,
                 chunk: int = 256):
    """`variable_pairs`, keeping the same seeded subset of `max_pairs` pair positions of every configuration
    (0: all), built `chunk` configurations at a time so that the full pair arrays never exist at once.
    Returns (x, y, kept positions: an index array or slice)."""
    first_x, _ = variable_pairs(spins[:1], kind, b, buffer, shell)
    n_pairs = first_x.shape[1]
    keep = np.sort(np.random.default_rng(seed).choice(n_pairs, max_pairs, replace=False)) \
        if max_pairs and max_pairs < n_pairs else slice(None)
    xs, ys = [], []
    for lo in range(0, len(spins), chunk):
        x, y = variable_pairs(spins[lo:lo + chunk], kind, b, buffer, shell)
        xs.append(x[:, keep])
        ys.append(y[:, keep])
    return np.concatenate(xs), np.concatenate(ys), keep


def histogram_mi(a_codes: np.ndarray, b_codes: np.ndarray, estimator: str, seed: int) -> tuple[float, float]:
    """(I, bootstrap error) in bits of (N, P) integer codes: HIST_BLOCKS blocks of consecutive configurations."""
    h = mi.JointHistogram()
    for blk, part in enumerate(np.array_split(np.arange(len(a_codes)), HIST_BLOCKS)):
        h.add(a_codes[part].ravel(), b_codes[part].ravel(), blk)
    return mi.mi_with_error(h, estimator, 100, seed=seed)


def codes(v: np.ndarray) -> np.ndarray:
    """(N, P, n) ±1 -> (N, P) int64 codes Σ_k 2^k (s_k + 1)/2."""
    return (v > 0).astype(np.int64) @ (np.int64(1) << np.arange(v.shape[-1], dtype=np.int64))


def variable_pairs(spins: np.ndarray, kind: str, b: int, buffer: int, shell: int):
    """(x, y) pair arrays (N, P, d) of one kind: blocks | block_environment."""
    from hpc_rg.reduce import mi_neural as mn     # torch: imported when the reduction runs
    if kind == "blocks":
        return mn.neighbour_block_pairs(spins, b)
    return mn.block_environment_pairs(spins, b, buffer, shell)


def run_neural_mi(spec, ctx: Context) -> Result:
    """I(X; Y) in bits by a neural lower bound (mean over seeds; error = √(spread² + held-out stderr²)),
    its spread over seeds, held-out standard error and train − held-out gap, the histogram MI beside it,
    and the cost per training step and per held-out estimate."""
    from hpc_rg.reduce import mi_neural as mn     # torch: imported when the reduction runs
    opts = mn.BoundOptions(estimator=spec.estimator, critic=spec.critic, hidden=spec.hidden, layers=spec.layers,
                           embed=spec.embed, steps=spec.steps, batch=spec.batch, lr=spec.lr)
    res = Result(attrs={"method": f"{spec.estimator} bound, {spec.critic} critic ({spec.layers}x{spec.hidden}"
                                  f"{', embed ' + str(spec.embed) if spec.critic == 'separable' else ''}), "
                                  f"{spec.steps} Adam steps of {spec.batch} pairs from distinct configurations, "
                                  f"held-out fraction {spec.test_fraction}, {spec.seeds} seeds dealt over ranks; "
                                  "error = sqrt(spread over seeds² + held-out stderr²); histogram: Miller-Madow "
                                  "and Grassberger, bootstrap over blocks of configurations",
                        "estimator": spec.estimator, "critic": spec.critic, "block": spec.block,
                        "buffer": spec.buffer, "shell": spec.shell, "units": "bits"})
    with open_ensemble(ctx.ensemble_path) as ens:
        ts = t_indices(ens, spec.temperatures)
        res.axes["temperatures"] = ens.temperatures[ts]
        out: dict[str, tuple[list, list]] = {}

        def put(name, v, e=None):
            out.setdefault(name, ([], []))
            out[name][0].append(v)
            out[name][1].append(np.nan if e is None else e)

        for t in ts:
            spins = load_configurations(ens, t, spec.max_samples)
            for k, kind in enumerate(spec.pairs):
                x, y, _ = subset_pairs(spins, kind, spec.block, spec.buffer, spec.shell, spec.max_pairs,
                                    sequence(ctx.seed, "neural_mi", "pairs", t, k))
                r = mn.estimate(x, y, opts, spec.seeds, ctx.seed, key=("neural_mi", t, k),
                                test_fraction=spec.test_fraction,
                                world=ctx.world)
                spread = 0.0 if spec.seeds == 1 else r["spread_bits"]
                put(f"I_{kind}", r["bits"], float(np.hypot(spread, r["stderr_bits"])))
                put(f"I_{kind}_spread", r["spread_bits"])
                put(f"I_{kind}_stderr", r["stderr_bits"])
                put(f"I_{kind}_gap", r["gap_bits"])
                put(f"seconds_per_step_{kind}", float(np.mean([p["seconds_per_step"] for p in r["per_seed"]])))
                put(f"seconds_per_estimate_{kind}", float(np.mean([p["seconds_per_estimate"] for p in r["per_seed"]])))
                if spec.histogram and x.shape[-1] <= 31 and y.shape[-1] <= 31 and \
                        (kind == "block_environment" or spec.block <= 4):
                    for method, tag in (("miller_madow", ""), ("grassberger", "_grassberger")):
                        v, e = histogram_mi(codes(x), codes(y), method, seed=seed_for(ctx.seed, "neural_mi", "boot", t))
                        put(f"I_{kind}_histogram{tag}", v, e)
            for k, name in enumerate(spec.models):
                # seed 000's Table 2 for a learned kernel without discretisation: the real-valued images of
                # neighbouring blocks, beside the histograms of their exact values and of their signs
                real = image_table(ctx, name, spec.block)
                x, y, _ = subset_pairs(spins, "blocks", spec.block, 0, 1, spec.max_pairs,
                                       sequence(ctx.seed, "neural_mi", "pairs", t, 100 + k))
                cx, cy = codes(x), codes(y)
                r = mn.estimate(real[cx].astype(np.float32), real[cy].astype(np.float32), opts, spec.seeds,
                                ctx.seed, key=("neural_mi", t, 100 + k), test_fraction=spec.test_fraction,
                                world=ctx.world)
                spread = 0.0 if spec.seeds == 1 else r["spread_bits"]
                put(f"I_images_{name}", r["bits"], float(np.hypot(spread, r["stderr_bits"])))
                exact = np.unique(np.round(real, 8), axis=0, return_inverse=True)[1].ravel()
                sign = (real > 0).astype(np.int64) @ (np.int64(1) << np.arange(real.shape[1], dtype=np.int64))
                for tag, lev in (("exact", exact), ("sign", sign)):
                    v, e = histogram_mi(lev[cx], lev[cy], "grassberger",
                                        seed=seed_for(ctx.seed, "neural_mi", "boot", t))
                    put(f"I_images_{name}_histogram_{tag}", v, e)
        res.attrs["log2_batch"] = float(np.log2(min(spec.batch, r["n_train"], r["n_test"])))
        for name, (v, e) in out.items():
            res.put(name, v, None if np.all(np.isnan(e)) else e)
        res.record_sources([ctx.ensemble_path], ens)
    return res


def best_repeat(meta: dict) -> dict | None:
    """Of an rsmi model's repeats, the one with the largest held-out bound (its own objective): RSMI's training
    can stop in a local optimum (seen: a kernel on one diagonal pair of a 2×2 block). None for other kinds."""
    reps = [r for r in (meta.get("repeats") or []) if isinstance(r, dict) and r.get("kernel") is not None]
    if meta.get("kind") != "rsmi" or not reps:
        return None
    return max(reps, key=lambda r: r.get("metrics", {}).get("test_mi_bits") or -np.inf)


def image_table(ctx: Context, name: str, b: int) -> np.ndarray:
    """(2^{b²}, channels) real-valued coarse variables of every b×b block state (indexed by its code) under
    the map of model `name` (coarse_cnn: tanh(w·s + c); rsmi: its relaxed output at the final τ)."""
    import torch
    from hpc_rg.learn.modelfile import load_model     # torch: imported when the reduction runs
    model, meta = load_model(ctx.model_path(name))
    if meta["kind"] not in ("rsmi", "coarse_cnn") or int(meta["args"].get("block", 0)) != b:
        raise ConfigError(ctx.cfg.file, "analyze.neural_mi.models", name, f"an rsmi or coarse_cnn model with "
                          f"block = {b} (models/{name}.pt: {meta['kind']}, block {meta['args'].get('block')})")
    best = best_repeat(meta)
    if best is not None and not meta["args"].get("mlp"):     # the linear map is the kernel alone
        with torch.no_grad():
            model.coarse.weight.copy_(torch.as_tensor(np.asarray(best["kernel"]).reshape(model.coarse.weight.shape)))
    states = torch.from_numpy(mi.all_block_states(b).astype(np.float32))
    with torch.no_grad():
        if meta["kind"] == "coarse_cnn":
            img = model.coarse_grain(states[:, None]).reshape(len(states), -1)
        else:
            img = model.coarse_grain(states.reshape(len(states), -1))
    return img.double().numpy()
