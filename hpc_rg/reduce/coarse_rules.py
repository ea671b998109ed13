"""Reductions built on the neural MI estimators (`mi_neural`, issue #21); torch is imported inside the
functions only (the analyze stage imports every reduction module).

  neural_mi     I(X; Y) of neighbouring b×b blocks and/or of a block and its environment ring, by a variational
                bound (InfoNCE or NWJ) over several seeds, beside the bias-corrected histogram MI of the same
                pairs (`mutual_info`). Seeds are dealt over the ranks; the result does not depend on their number.
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


def _subset_pairs(x, y, max_pairs: int, seed) -> tuple[np.ndarray, np.ndarray]:
    if not max_pairs or x.shape[1] <= max_pairs:
        return x, y
    keep = np.sort(np.random.default_rng(seed).choice(x.shape[1], max_pairs, replace=False))
    return x[:, keep], y[:, keep]


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
                                  "error = sqrt(spread over seeds² + held-out stderr²); histogram: Miller-Madow, "
                                  "bootstrap over blocks of configurations",
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
                x, y = variable_pairs(spins, kind, spec.block, spec.buffer, spec.shell)
                x, y = _subset_pairs(x, y, spec.max_pairs, seed_sequence(ctx.seed, 21, t, k, purpose="analysis"))
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
                    v, e = histogram_mi(_codes(x), _codes(y), "miller_madow", seed=int(ctx.seed) + t)
                    put(f"I_{kind}_histogram", v, e)
        res.attrs["log2_batch"] = float(np.log2(min(spec.batch, r["n_train"], r["n_test"])))
        for name, (v, e) in out.items():
            res.put(name, v, None if np.all(np.isnan(e)) else e)
        res.attrs["ensembles"] = str(ctx.ensemble_path)
        res.attrs["n_chains"] = int(ens.n_chains)
        res.attrs["n_samples"] = int(ens.n_samples)
        res.attrs["lattice_shape"] = np.array(ens.lattice_shape)
    return res
