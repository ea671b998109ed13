"""The coarse-graining learned by the CNN of seed 000 (Nguyen & Howe), measured.

From the trained `coarse_cnn` models (one per variant: frozen boundary average, 1, 2, 3 channels; each
with its repeats):
  kernels    each repeat's b×b kernel per channel, sign-aligned (the network is symmetric under w → −w
             followed by the MLP's input weights, so a kernel is oriented to a positive sum), then mean and
             spread over repeats; corner / edge / centre weights as fractions of Σ|w| and the corner-to-edge
             ratio (seed 000 Fig. 1 right: "corners weigh more"), mean ± standard error over repeats
  accuracy   test accuracies over repeats (histograms, seed 000 Figs. 1 left, 2; mean ± standard error as
             Table 1)
  MI         I(A; B) in bits of neighbouring b×b blocks of the ensemble (fine grained) and of their coarse
             variables under each model's mean kernel (Table 2): "sign" = sign(w·s) per channel (three
             values: a tie w·s = 0 is its own symbol), "exact" = the exact finite set of values of
             tanh(w·s + c) (bijective in w·s). The conv bias is not kept per repeat, so it is left out
             (h = 0 data are symmetric under s → −s). Bootstrap errors over sample blocks.
Beyond the paper (its "future work"): the mean kernel of channel 0 applied iteratively as a block-spin rule
s' = sign(Σ w s) (ties by a seeded coin, `rg.block`), with ⟨|m|⟩, the nn correlation and the Binder ratio
per level, and Swendsen's MCRG y_t, y_h for the learned kernel next to the majority rule on the same
configurations (same block size b).
"""
from __future__ import annotations

import numpy as np

from hpc_rg.io.ensemble import open_ensemble
from hpc_rg.parallel import deal
from hpc_rg.plugins import Plugin
from hpc_rg.reduce import mutual_info as mi
from hpc_rg.reduce import rg
from hpc_rg.reduce import trained_models as tm
from hpc_rg.reduce.blocks import block_means, iter_segment, segments, t_indices
from hpc_rg.reduce.registry import Context, Result
from hpc_rg.reduce.seeding import seed_for
from hpc_rg.reduce.stats import jackknife_blocks

PLUGINS = (Plugin("reduction", "learned_coarse_graining", "run_learned_coarse_graining",
                  spec="hpc_rg.reduce.model_specs:LearnedCoarseGrainingSpec", needs=("ensemble", "models"),
                  doc="kernels, accuracies, MI and iterated blocking of trained coarse_cnn models (seed 000)"),)


def site_classes(b: int) -> dict:
    """Boolean masks of the corners, the non-corner boundary ("edge") and the interior of a b×b kernel."""
    i, j = np.indices((b, b))
    bnd = (i == 0) | (j == 0) | (i == b - 1) | (j == b - 1)
    corner = ((i == 0) | (i == b - 1)) & ((j == 0) | (j == b - 1))
    return {"corner": corner, "edge": bnd & ~corner, "centre": ~bnd}


def aligned(kernels: np.ndarray) -> np.ndarray:
    """Kernels (R, channels, b, b) with each (repeat, channel) oriented to a non-negative sum."""
    s = np.sign(kernels.sum(axis=(-2, -1), keepdims=True))
    return kernels * np.where(s == 0, 1.0, s)


def kernel_statistics(kernels: np.ndarray) -> dict:
    """Mean, spread and the corner/edge/centre pattern of sign-aligned kernels (R, channels, b, b)."""
    k = aligned(np.asarray(kernels, dtype=np.float64))
    R, _, b, _ = k.shape
    se = lambda x: x.std(axis=0, ddof=1) / np.sqrt(R) if R > 1 else np.zeros_like(x[0])
    out = {"mean": (k.mean(axis=0), se(k)), "spread": k.std(axis=0, ddof=1) if R > 1 else np.zeros_like(k[0])}
    norm = np.abs(k).sum(axis=(-2, -1))
    cls = site_classes(b)
    for name, mask in cls.items():
        if mask.any():
            frac = k[..., mask].mean(axis=-1) / np.where(norm > 0, norm, 1)   # (R, channels)
            out[name] = (frac.mean(axis=0), se(frac))
    ratio = k[..., cls["corner"]].mean(axis=-1) / k[..., cls["edge"]].mean(axis=-1) if cls["edge"].any() else None
    if ratio is not None:
        out["corner_edge_ratio"] = (ratio.mean(axis=0), se(ratio))
    return out


def image_table(kernel: np.ndarray, how: str) -> np.ndarray:
    """Lookup code -> coarse symbol for a (channels, b, b) kernel over all 2^{b²} block states."""
    ch, b, _ = kernel.shape
    states = mi.all_block_states(b).astype(np.float64).reshape(-1, b * b)
    vals = states @ kernel.reshape(ch, b * b).T                        # (2^{b²}, channels)
    code = np.zeros(len(states), np.int64)
    for c in range(ch):
        if how == "sign":
            sym, base = (np.sign(np.round(vals[:, c], 12)) + 1).astype(np.int64), 3
        else:
            _, sym = np.unique(np.round(vals[:, c], 10), return_inverse=True)
            base = int(sym.max()) + 1
        code = code * base + sym
    return code


def _model_data(ctx, name):
    model, meta = tm.load(ctx, name, "analyze.learned_coarse_graining.models", ("coarse_cnn",))
    reps = meta.get("repeats") or []
    if reps:
        kernels = np.array([np.asarray(r["kernel"], dtype=np.float64) for r in reps])
        acc = np.array([float(next((v for k, v in r["metrics"].items() if k.startswith("test_") and
                                    k.endswith("accuracy")), np.nan)) for r in reps])
    else:
        kernels = model.kernel().numpy()[None].astype(np.float64)
        acc = np.array([float(next((v for k, v in meta.get("metrics", {}).items()
                                    if k.startswith("test_") and k.endswith("accuracy")), np.nan))])
    # test patches behind each accuracy: the binomial error sqrt(p(1-p)/n_test) of the one test set all
    # repeats share is left out of the standard error over repeats, so the comparisons add it
    n_test = int((meta.get("config") or {}).get("n_test", 0) or 0)
    return model, kernels, acc, n_test


def run_learned_coarse_graining(spec, ctx: Context) -> Result:
    res = Result(attrs={"models": ",".join(spec.models), "estimator": spec.estimator,
                        "method": "kernels sign-aligned per repeat; errors: standard error over repeats "
                                  "(kernels, accuracy), bootstrap over sample blocks (MI), block jackknife "
                                  "(iterated blocks, MCRG)"})
    data = {name: _model_data(ctx, name) for name in spec.models}
    blocks = {name: int(m.block) for name, (m, _, _, _) in data.items()}
    acc_m, acc_e = [], []
    for name, (model, kernels, acc, n_test) in data.items():
        st = kernel_statistics(kernels)
        res.put(f"kernels_{name}", aligned(kernels))
        res.put(f"kernel_mean_{name}", *st["mean"])
        res.put(f"kernel_spread_{name}", st["spread"])
        for q in ("corner", "edge", "centre", "corner_edge_ratio"):
            if q in st:
                res.put(f"{q}_{name}", *st[q])
        res.put(f"accuracy_{name}", acc)
        ok = acc[np.isfinite(acc)]
        acc_m.append(float(ok.mean()) if ok.size else np.nan)
        acc_e.append(float(ok.std(ddof=1) / np.sqrt(ok.size)) if ok.size > 1 else np.nan)
        res.attrs[f"repeats_{name}"] = int(len(kernels))
        res.attrs[f"frozen_{name}"] = int(bool(model.frozen))
        res.attrs[f"n_test_{name}"] = n_test
        res.attrs[f"head_{name}"] = str(getattr(model, "head", ""))
    res.put("accuracy_mean", acc_m, acc_e)
    res.axes["model"] = np.array([m.encode() for m in spec.models])   # bytes: h5py stores no numpy unicode
    res.attrs["bins"] = spec.bins
    with open_ensemble(ctx.ensemble_path) as ens:
        if len(ens.lattice_shape) != 2:
            raise ValueError("learned_coarse_graining needs a 2D ensemble")
        ts = t_indices(ens, spec.temperatures)
        res.axes["temperatures"] = ens.temperatures[ts]
        _mutual_information(spec, ctx, ens, ts, data, blocks, res)
        _iterate(spec, ctx, ens, ts, data, blocks, res)
        res.record_sources([ctx.ensemble_path], ens)
    return res


def _mutual_information(spec, ctx, ens, ts, data, blocks, res):
    for b in sorted(set(blocks.values())):
        tables = {f"{name}_{how}": image_table(aligned(data[name][1]).mean(axis=0), how)
                  for name in data if blocks[name] == b for how in spec.discretize}
        names = ["fine"] + list(tables)
        n_s = ens.n_samples if spec.max_samples <= 0 else min(spec.max_samples, ens.n_samples)
        segs = segments(ens.n_chains, n_s, spec.n_blocks)
        vals = {n: ([], []) for n in names}
        for t in ts:
            hists = {n: mi.JointHistogram() for n in names}
            for i in deal(len(segs), ctx.world.size, ctx.world.rank):
                for _, x in iter_segment(ens.spins, t, segs[i], spec.batch):
                    a, c = mi.neighbour_pairs(mi.block_codes(np.asarray(x), b))
                    hists["fine"].add(a, c, i)
                    for n, tab in tables.items():
                        hists[n].add(tab[a], tab[c], i)
            for n in names:
                h = mi.JointHistogram()
                # ranks hold disjoint sample blocks; keep their indices so the bootstrap is rank-invariant
                parts = ctx.world.allgather(hists[n].blocks)
                h.blocks = [max((p[j] for p in parts if j < len(p)), key=lambda blk: blk[0].size)
                            for j in range(max(len(p) for p in parts))]
                h.blocks = [blk for blk in h.blocks if blk[0].size]
                v, e = mi.mi_with_error(h, spec.estimator, spec.n_boot,
                                        seed=seed_for(ctx.seed, "learned_coarse_graining", "boot", b, t))
                vals[n][0].append(v)
                vals[n][1].append(e)
        for n in names:
            res.put(f"I_{n}" + ("" if n != "fine" or len(set(blocks.values())) == 1 else f"_b{b}"), *vals[n])


def _iterate(spec, ctx, ens, ts, data, blocks, res):
    L = min(ens.lattice_shape)
    names = list(data)
    for name in names:
        b = blocks[name]
        levels = spec.levels or max(1, int(np.floor(np.log(L / 6) / np.log(b))))
        if L // b ** levels < 2:
            continue
        kern = aligned(data[name][1]).mean(axis=0)[0]
        kernels = {"majority": "majority", name: kern}
        out = {}
        for t in ts:
            def fn(x, where):
                cols = []
                for j, k in enumerate(kernels.values()):
                    lv = rg.block_levels(np.asarray(x), b, levels, k,
                                         seed=seed_for(ctx.seed, "learned_coarse_graining", "coin", j, *where))
                    cols.append(rg.level_observables(lv).reshape(len(x), -1))
                    if spec.mcrg:
                        cols.append(rg.mcrg_primaries(lv).reshape(len(x), -1))
                return np.concatenate(cols, axis=1)

            bm, _ = block_means(ens, t, fn, ctx.world, spec.n_blocks, spec.batch, spec.max_samples)
            off = 0
            for kname in kernels:
                n_obs = (levels + 1) * 4
                ob = bm[:, off:off + n_obs].reshape(len(bm), levels + 1, 4)
                off += n_obs
                for j, q in ((0, "abs_m"), (2, "nn")):
                    v, e = jackknife_blocks(lambda m, j=j: m[:, j], ob)
                    out.setdefault(f"{q}_{kname}", ([], []))
                    out[f"{q}_{kname}"][0].append(v); out[f"{q}_{kname}"][1].append(e)
                v, e = jackknife_blocks(lambda m: 1 - m[:, 3] / (3 * m[:, 1] ** 2), ob)
                out.setdefault(f"binder_{kname}", ([], []))
                out[f"binder_{kname}"][0].append(v); out[f"binder_{kname}"][1].append(e)
                if spec.mcrg:
                    n_m = levels * 84
                    mc = bm[:, off:off + n_m].reshape(len(bm), levels, 84)
                    off += n_m
                    y, e = rg.mcrg_exponents(mc, b)
                    for j, q in ((0, "y_t"), (1, "y_h")):
                        out.setdefault(f"{q}_{kname}", ([], []))
                        out[f"{q}_{kname}"][0].append(y[:, j]); out[f"{q}_{kname}"][1].append(e[:, j])
        tag = "" if len(names) == 1 else f"_{name}"
        for q, (v, e) in out.items():
            q = q.replace(f"_{name}", "_learned") + tag if q.endswith(f"_{name}") else q + tag
            res.put(q, v, e)
        res.axes[f"level{tag}"] = np.arange(levels + 1)
        res.attrs[f"iterated_block{tag}"] = b
