"""The `coarse_rules` reduction: block-spin rules side by side (majority = sign of the block sum, and the b×b
kernels of trained rsmi / coarse_cnn models, or of an rbm / dbn's first-layer fields (`rbm_rule`), as
sign(w·s)): per rule I(H; E) of the coarse spin and its block's environment (neural bound, and histogram when
the ring has <= 31 sites), the couplings of the coarse Hamiltonian fitted by pseudo-likelihood for ranges 1,
√2, 2 on the once-blocked lattice (jackknife errors), and the MCRG exponents y_t, y_h per level (as `mcrg`).
torch is imported inside the functions only.
"""
from __future__ import annotations

import numpy as np

from hpc_rg.io.ensemble import open_ensemble
from hpc_rg.plugins import Plugin
from hpc_rg.reduce import rg
from hpc_rg.reduce.blocks import block_means, t_indices
from hpc_rg.reduce.neural_mi import best_repeat, codes, histogram_mi, load_configurations, subset_pairs
from hpc_rg.reduce.rbm_rule import NotLocal, rbm_block_kernel
from hpc_rg.reduce.registry import Context, Result
from hpc_rg.reduce.seeding import rng_for, seed_for, sequence
from hpc_rg.schema import ConfigError

PLUGINS = (Plugin("reduction", "coarse_rules", "run_coarse_rules",
                  spec="hpc_rg.reduce.model_specs:CoarseRulesSpec",
                  needs=("ensemble", "models"), imports=("torch",),
                  doc="block-spin rules compared: I(H; E), coarse couplings, MCRG"),)

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
    from hpc_rg.learn.modelfile import load_model     # torch: imported when the reduction runs
    b = spec.block
    out, chosen, rbm_info = {}, {}, {}
    for r in spec.rules:
        out[r] = np.ones((b, b))        # majority: the sign of the block sum (ties: a seeded coin)
    for name in spec.models:
        model, meta = load_model(ctx.model_path(name))
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


def run_coarse_rules(spec, ctx: Context) -> Result:
    """Per rule and temperature: I(H; E) (neural bound; histogram when cheap), pseudo-likelihood couplings
    K_1, K_√2, K_2 of the once-blocked lattice (and their ratios to K_1), MCRG y_t and y_h per level."""
    from hpc_rg.reduce import mi_neural as mn     # torch: imported when the reduction runs
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
        ts = t_indices(ens, spec.temperatures)
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
                                        sequence(ctx.seed, "coarse_rules", "pairs", t))
            for k, (name, w) in enumerate(kernels.items()):
                rng = rng_for(ctx.seed, "coarse_rules", "coin", t, k)
                coarse = rg.block(spins, b, w, rng)                        # (N, L/b, L/b)
                h = coarse.reshape(len(coarse), -1, 1)[:, keep]     # the blocks whose environments were kept
                r = mn.estimate(h, env, opts, spec.seeds, ctx.seed, key=("coarse_rules", t, k),
                                test_fraction=spec.test_fraction, world=ctx.world)
                put(f"I_HE_{name}", r["bits"], float(np.hypot(0.0 if spec.seeds == 1 else r["spread_bits"],
                                                              r["stderr_bits"])))
                if env.shape[-1] <= 31:
                    v, e = histogram_mi(codes(h), codes(env), "grassberger",
                                        seed=seed_for(ctx.seed, "coarse_rules", "boot", t))
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
                        coin = seed_for(ctx.seed, "coarse_rules", "mcrg", k, *where)
                        return rg.mcrg_primaries(rg.block_levels(np.asarray(x), b, levels, w, seed=coin))
                    bm, _ = block_means(ens, t, fn, ctx.world, spec.n_blocks, 64, spec.max_samples)
                    y, e = rg.mcrg_exponents(bm, b)
                    for j in range(levels):     # one entry per level pair n -> n+1 (1D over temperatures)
                        put(f"y_t_{name}_level{j}", y[j, 0], e[j, 0])
                        put(f"y_h_{name}_level{j}", y[j, 1], e[j, 1])
        for q, (v, e) in out.items():
            e = np.asarray(e, dtype=np.float64)
            res.put(q, v, None if np.all(np.isnan(e)) else e)
        res.record_sources([ctx.ensemble_path], ens)
    return res
