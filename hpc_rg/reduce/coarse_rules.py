"""Reductions built on the neural MI estimators (`mi_neural`, issue #21); torch is imported inside the
functions only (the analyze stage imports every reduction module).

  neural_mi     I(X; Y) of neighbouring b×b blocks and/or of a block and its environment ring, by a variational
                bound (InfoNCE or NWJ) over several seeds, beside the bias-corrected histogram MI of the same
                pairs (`mutual_info`). Seeds are dealt over the ranks; the result does not depend on their number.
  coarse_rules  block-spin rules side by side (majority = sign of the block sum, and the b×b kernels of trained
                rsmi / coarse_cnn models, or of an rbm / dbn's first-layer fields (`rbm_rule`), as sign(w·s)):
                per rule I(H; E) of the coarse spin and its block's
                environment (neural bound, and histogram when the ring has <= 31 sites), the couplings of the
                coarse Hamiltonian fitted by pseudo-likelihood for ranges 1, √2, 2 on the once-blocked
                lattice (jackknife errors), and the MCRG exponents y_t, y_h per level (as `mcrg`).
"""
from __future__ import annotations

import numpy as np

from hpc_rg.io.ensemble import open_ensemble
from hpc_rg.reduce import mutual_info as mi
from hpc_rg.reduce.registry import Context, Result, reduction

# how many sample blocks the histogram's bootstrap resamples
HIST_BLOCKS = 16


def _t_indices(ens, temperatures) -> list[int]:
    if not temperatures:
        return list(range(ens.n_temperatures))
    return sorted({int(np.argmin(np.abs(ens.temperatures - T))) for T in temperatures})


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


def _codes(v: np.ndarray) -> np.ndarray:
    """(N, P, n) ±1 -> (N, P) int64 codes Σ_k 2^k (s_k + 1)/2."""
    return (v > 0).astype(np.int64) @ (np.int64(1) << np.arange(v.shape[-1], dtype=np.int64))


def variable_pairs(spins: np.ndarray, kind: str, b: int, buffer: int, shell: int):
    """(x, y) pair arrays (N, P, d) of one kind: blocks | block_environment."""
    from hpc_rg.reduce import mi_neural as mn
    if kind == "blocks":
        return mn.neighbour_block_pairs(spins, b)
    return mn.block_environment_pairs(spins, b, buffer, shell)


@reduction("neural_mi")
def run_neural_mi(spec, ctx: Context) -> Result:
    """I(X; Y) in bits by a neural lower bound (mean over seeds; error = √(spread² + held-out stderr²)),
    its spread over seeds, held-out standard error and train − held-out gap, the histogram MI beside it,
    and the cost per training step and per held-out estimate."""
    from hpc_rg.reduce import mi_neural as mn
    from hpc_rg.parallel import seed_sequence
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
        ts = _t_indices(ens, spec.temperatures)
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
                                    seed_sequence(ctx.seed, 21, t, k, purpose="analysis"))
                r = mn.estimate(x, y, opts, spec.seeds, ctx.seed, key=(21, t, k), test_fraction=spec.test_fraction,
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
                        v, e = histogram_mi(_codes(x), _codes(y), method, seed=int(ctx.seed) + t)
                        put(f"I_{kind}_histogram{tag}", v, e)
            for k, name in enumerate(spec.models):
                # seed 000's Table 2 for a learned kernel without discretisation: the real-valued images of
                # neighbouring blocks, beside the histograms of their exact values and of their signs
                real = image_table(ctx, name, spec.block)
                x, y, _ = subset_pairs(spins, "blocks", spec.block, 0, 1, spec.max_pairs,
                                       seed_sequence(ctx.seed, 21, t, 100 + k, purpose="analysis"))
                cx, cy = _codes(x), _codes(y)
                r = mn.estimate(real[cx].astype(np.float32), real[cy].astype(np.float32), opts, spec.seeds,
                                ctx.seed, key=(21, t, 100 + k), test_fraction=spec.test_fraction, world=ctx.world)
                spread = 0.0 if spec.seeds == 1 else r["spread_bits"]
                put(f"I_images_{name}", r["bits"], float(np.hypot(spread, r["stderr_bits"])))
                exact = np.unique(np.round(real, 8), axis=0, return_inverse=True)[1].ravel()
                sign = (real > 0).astype(np.int64) @ (np.int64(1) << np.arange(real.shape[1], dtype=np.int64))
                for tag, lev in (("exact", exact), ("sign", sign)):
                    v, e = histogram_mi(lev[cx], lev[cy], "grassberger", seed=int(ctx.seed) + t)
                    put(f"I_images_{name}_histogram_{tag}", v, e)
        res.attrs["log2_batch"] = float(np.log2(min(spec.batch, r["n_train"], r["n_test"])))
        for name, (v, e) in out.items():
            res.put(name, v, None if np.all(np.isnan(e)) else e)
        res.attrs["ensembles"] = str(ctx.ensemble_path)
        res.attrs["n_chains"] = int(ens.n_chains)
        res.attrs["n_samples"] = int(ens.n_samples)
        res.attrs["lattice_shape"] = np.array(ens.lattice_shape)
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
    from hpc_rg.schema import ConfigError
    from hpc_rg.learn.modelfile import load_model
    model, meta = load_model(ctx.out / "models" / f"{name}.pt")
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


# ------------------------------------------------------------------------------------------ coarse_rules
RANGES = ("1", "sqrt2", "2")


def neighbour_sums(s: np.ndarray) -> np.ndarray:
    """(N, l, l) ±1 -> (N, l, l, 3): the sums of the 4 neighbours at distance 1, √2 and 2 of every site."""
    x = s.astype(np.float64)
    r = lambda dy, dx: np.roll(x, (dy, dx), axis=(1, 2))
    d1 = r(0, 1) + r(0, -1) + r(1, 0) + r(-1, 0)
    d2 = r(1, 1) + r(1, -1) + r(-1, 1) + r(-1, -1)
    d3 = r(0, 2) + r(0, -2) + r(2, 0) + r(-2, 0)
    return np.stack([d1, d2, d3], axis=-1)


def _pl_sums(s: np.ndarray, k: np.ndarray, n_couplings: int, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Per configuration: the gradient (N, n) and Hessian (N, n, n) of the negative log pseudo-likelihood
    Σ_i log(1 + exp(−z_i·K)), z_i = 2 σ_i S_i, summed over the sites; `chunk` configurations at a time."""
    grads, hess = [], []
    for lo in range(0, len(s), chunk):
        part = s[lo:lo + chunk]
        z = 2.0 * part.astype(np.float64)[..., None] * neighbour_sums(part)[..., :n_couplings]
        z = z.reshape(len(part), -1, n_couplings)
        p = 0.5 * (1.0 - np.tanh(0.5 * (z @ k)))               # sigmoid(−z·K), stably
        grads.append(-(z * p[..., None]).sum(1))
        hess.append(np.einsum("nsi,ns,nsj->nij", z, p * (1 - p), z))
    return np.concatenate(grads), np.concatenate(hess)


def pseudo_likelihood_fit(s: np.ndarray, n_blocks: int = 0, n_couplings: int = 3, iters: int = 30):
    """Couplings K_r of H = −Σ_r K_r Σ_{pairs at range r} σσ (ranges 1, √2, 2; the first n_couplings) that
    maximise the pseudo-likelihood Π_i P(σ_i | rest) = Π_i 1 / (1 + exp(−2 σ_i Σ_r K_r S_r,i)) of the
    configurations s (N, l, l): a convex logistic regression, solved by Newton's method. With n_blocks > 1
    also the leave-one-block-out couplings (blocks of consecutive configurations), each one Newton step from
    the full solution with that block's gradient and Hessian removed (the loss is a sum over configurations;
    one step is exact to second order). Returns K, or (K, (n_blocks, n) leave-one-out K)."""
    k = np.zeros(n_couplings)
    for _ in range(iters):
        g, h = _pl_sums(s, k, n_couplings)
        step = np.linalg.solve(h.sum(0), g.sum(0))
        k -= step
        if np.max(np.abs(step)) < 1e-12:
            break
    if n_blocks <= 1:
        return k
    g, h = _pl_sums(s, k, n_couplings)
    G, H = g.sum(0), h.sum(0)
    loo = []
    for part in np.array_split(np.arange(len(s)), n_blocks):
        loo.append(k - np.linalg.solve(H - h[part].sum(0), G - g[part].sum(0)))
    return k, np.array(loo)


def pseudo_likelihood_couplings(s: np.ndarray, n_couplings: int = 3) -> np.ndarray:
    """The couplings K alone (`pseudo_likelihood_fit`)."""
    return pseudo_likelihood_fit(s, 0, n_couplings)


def _rule_kernels(spec, ctx: Context) -> tuple[dict, dict, dict]:
    """(name -> (b, b) weights, name -> chosen repeat, name -> RBM extraction info): the rules of the spec,
    then the first channel of each named rsmi / coarse_cnn model's kernel (an rsmi model with repeats: the
    repeat of the largest held-out bound), or the b×b kernel of an rbm / dbn model's first-layer filters
    (`rbm_rule.rbm_block_kernel`)."""
    from hpc_rg.schema import ConfigError
    from hpc_rg.learn.modelfile import load_model
    b = spec.block
    out, chosen, rbm_info = {}, {}, {}
    for r in spec.rules:
        out[r] = np.ones((b, b))        # majority: the sign of the block sum (ties: a seeded coin)
    for name in spec.models:
        model, meta = load_model(ctx.out / "models" / f"{name}.pt")
        if meta["kind"] in ("rbm", "dbn"):
            out[name], rbm_info[name] = _rbm_kernel(spec, ctx, name, model, meta)
            continue
        if meta["kind"] not in ("rsmi", "coarse_cnn"):
            raise ConfigError(ctx.cfg.file, "analyze.coarse_rules.models", name,
                              f"an rsmi, coarse_cnn, rbm or dbn model (models/{name}.pt is a {meta['kind']})")
        if meta["kind"] == "rsmi" and meta["args"].get("mlp"):
            raise ConfigError(ctx.cfg.file, "analyze.coarse_rules.models", name,
                              f"a linear rsmi model (models/{name}.pt has an MLP map, mlp = "
                              f"{meta['args']['mlp']}: no b×b kernel rule)")
        k = model.kernel().cpu().numpy()
        best = best_repeat(meta)
        if best is not None:
            k = np.asarray(best["kernel"])
            chosen[name] = int(best["repeat"])
        if k.shape[-1] != b:
            raise ConfigError(ctx.cfg.file, "analyze.coarse_rules.block", b,
                              f"the block of model {name} ({k.shape[-1]})")
        w = k[0].astype(np.float64)
        # a learned kernel's overall sign is arbitrary (Z2: H and −H carry the same information); a negative
        # one would flip the odd operators at every blocking and leave MCRG's odd eigenvalue negative (y_h NaN)
        out[name] = -w if w.sum() < 0 else w
    return out, chosen, rbm_info


def _rbm_kernel(spec, ctx: Context, name: str, model, meta) -> tuple[np.ndarray, dict]:
    """The b×b rule of an rbm (or a dbn's first layer) from its weight fields; ConfigError when the fields are
    not local enough (too few units qualify) or do not fit a 2D lattice."""
    from hpc_rg.schema import ConfigError
    from hpc_rg.reduce.rbm_rule import NotLocal, rbm_block_kernel
    w = (model.W if meta["kind"] == "rbm" else model.rbms[0].W).detach().cpu().numpy()
    shape = tuple(int(n) for n in (meta.get("data") or {}).get("lattice_shape") or ())
    if len(shape) != 2:
        side = int(round(np.sqrt(w.shape[0])))
        if shape or side * side != w.shape[0]:
            raise ConfigError(ctx.cfg.file, "analyze.coarse_rules.models", name,
                              f"an rbm or dbn trained on a 2D lattice (models/{name}.json: lattice_shape "
                              f"{list(shape) or 'missing'}, {w.shape[0]} visible units)")
        shape = (side, side)
    try:
        return rbm_block_kernel(w, shape, spec.block, spec.rbm_min_share, spec.rbm_min_units)
    except NotLocal as e:
        raise ConfigError(ctx.cfg.file, "analyze.coarse_rules.rbm_min_share", spec.rbm_min_share,
                          f"a threshold that at least rbm_min_units = {spec.rbm_min_units} first-layer fields of "
                          f"model {name} meet ({e})") from None
    except ValueError as e:
        raise ConfigError(ctx.cfg.file, "analyze.coarse_rules.models", name, f"an rbm or dbn whose first "
                          f"layer gives a {spec.block}×{spec.block} rule ({e})") from None


@reduction("coarse_rules")
def run_coarse_rules(spec, ctx: Context) -> Result:
    """Per rule and temperature: I(H; E) (neural bound; histogram when cheap), pseudo-likelihood couplings
    K_1, K_√2, K_2 of the once-blocked lattice (and their ratios to K_1), MCRG y_t and y_h per level."""
    from hpc_rg.parallel import seed_sequence
    from hpc_rg.reduce import mi_neural as mn, rg
    from hpc_rg.reduce.blocks import block_means
    from hpc_rg.reduce.stats import jackknife_blocks
    kernels, chosen, rbm_info = _rule_kernels(spec, ctx)
    b = spec.block
    opts = mn.BoundOptions(estimator=spec.estimator, steps=spec.steps, batch=spec.batch, lr=spec.lr)
    res = Result(attrs={"method": f"rules as sign(w·s) (majority: w = 1, ties by a seeded coin; learned kernels "
                                  f"with Σw < 0 negated; rbm/dbn: the mean of the first-layer fields' b×b "
                                  f"windows of largest Σ|W|, units with a window share >= "
                                  f"{spec.rbm_min_share:g}); I(H;E): "
                                  f"{spec.estimator} bound ({spec.seeds} seeds, error = sqrt(spread² + "
                                  f"stderr²)) of the coarse spin and its environment ring (buffer {spec.buffer}, "
                                  f"shell {spec.shell}); couplings: pseudo-likelihood on the once-blocked lattice, "
                                  f"jackknife over {spec.n_blocks} blocks of configurations; MCRG as `mcrg`",
                        "rules": ",".join(kernels), "block": b, "units": "bits"})
    for name, w in kernels.items():
        res.attrs[f"kernel_{name}"] = w.ravel()
    for name, r in chosen.items():
        res.attrs[f"repeat_{name}"] = r
    for name, info in rbm_info.items():     # how local the RBM's fields were, and how many made its rule
        for q, v in info.items():
            res.attrs[f"rbm_{q}_{name}"] = v
    with open_ensemble(ctx.ensemble_path) as ens:
        ts = _t_indices(ens, spec.temperatures)
        res.axes["temperatures"] = ens.temperatures[ts]
        side = min(ens.lattice_shape)
        levels = max(1, int(np.floor(np.log(side / 8) / np.log(b))))
        res.axes["level_from"] = np.arange(levels)
        out: dict[str, tuple[list, list]] = {}

        def put(q, v, e=None):
            out.setdefault(q, ([], []))
            out[q][0].append(v)
            out[q][1].append(np.full(np.shape(v), np.nan) if e is None else e)

        for t in ts:
            spins = load_configurations(ens, t, spec.max_samples)
            _, env, keep = subset_pairs(spins, "block_environment", b, spec.buffer, spec.shell, spec.max_pairs,
                                        seed_sequence(ctx.seed, 21, 3, t, purpose="analysis"))
            for k, (name, w) in enumerate(kernels.items()):
                rng = np.random.default_rng(seed_sequence(ctx.seed, 21, 1, t, k, purpose="analysis"))
                coarse = rg.block(spins, b, w, rng)                        # (N, L/b, L/b)
                h = coarse.reshape(len(coarse), -1, 1)[:, keep]     # the blocks whose environments were kept
                r = mn.estimate(h, env, opts, spec.seeds, ctx.seed, key=(21, 2, t, k),
                                test_fraction=spec.test_fraction, world=ctx.world)
                put(f"I_HE_{name}", r["bits"], float(np.hypot(0.0 if spec.seeds == 1 else r["spread_bits"],
                                                              r["stderr_bits"])))
                if env.shape[-1] <= 31:
                    v, e = histogram_mi(_codes(h), _codes(env), "grassberger", seed=int(ctx.seed) + t)
                    put(f"I_HE_{name}_histogram", v, e)
                full, loo = pseudo_likelihood_fit(coarse, spec.n_blocks)
                nb = len(loo)
                err = np.sqrt((nb - 1) / nb * ((loo - loo.mean(0)) ** 2).sum(0))
                for j, rr in enumerate(RANGES):
                    put(f"K{rr}_{name}", full[j], err[j])
                ratio = np.abs(full[1:]).sum() / abs(full[0])
                loo_ratio = np.abs(loo[:, 1:]).sum(1) / np.abs(loo[:, 0])
                put(f"longer_range_ratio_{name}", ratio,
                    float(np.sqrt((nb - 1) / nb * ((loo_ratio - loo_ratio.mean()) ** 2).sum())))
                if spec.mcrg:
                    def fn(x, where, w=w, k=k):
                        return rg.mcrg_primaries(rg.block_levels(np.asarray(x), b, levels, w,
                                                                 seed=int(ctx.seed) + 7919 * k + where[2]))
                    bm, _ = block_means(ens, t, fn, ctx.world, spec.n_blocks, 64, spec.max_samples)
                    y, e = rg.mcrg_exponents(bm, b)
                    for j in range(levels):     # one entry per level pair n -> n+1 (1D over temperatures)
                        put(f"y_t_{name}_level{j}", y[j, 0], e[j, 0])
                        put(f"y_h_{name}_level{j}", y[j, 1], e[j, 1])
        for q, (v, e) in out.items():
            e = np.asarray(e, dtype=np.float64)
            res.put(q, v, None if np.all(np.isnan(e)) else e)
        res.attrs["ensembles"] = str(ctx.ensemble_path)
        res.attrs["lattice_shape"] = np.array(ens.lattice_shape)
    return res
