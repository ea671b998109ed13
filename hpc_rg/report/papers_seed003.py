"""Seed 003 (a DBN/autoencoder replication of Mehta & Schwab on Wolff samples at T_c) beside our run:
`rows(run_dir)` for `[report] paper = "seed003"`.

The paper reports no numbers with errors, only three figures; each row states what the paper shows and puts
our number next to the baseline that would contradict it:
  samples  energy per site at T_c against Kaufman's exact value on the same finite torus
  Fig. 1   reconstruction loss (MSE on ±1 spins) "approaches and then passes 1": 1 is the lazy all-zero
           output; the stronger baselines are the best output that knows only the configuration's
           magnetization m (every site = m), MSE = 1 − ⟨m²⟩ (from the ensemble), and PCA-25 (25 linear
           components, the autoencoder's code size), both read from the reconstructions reduction
  Fig. 2   reconstructions keep the structure: fraction of spins whose sign is wrong against 1/2 (chance) and
           (1 − ⟨|m|⟩)/2 (a uniform picture with the right overall sign)
  Fig. 3   receptive fields r^(l) = W^(1)...W^(l) are spatially concentrated: weight fraction in the best b×b
           window (b = blocking factor of the layer) against b²/N of a field spread uniformly
Both nets (the job's `autoencoder` models, e.g. `large` = 1600-400-100-25 and `small` = 1600-100-25) are
evaluated here from their model files: MSE and mismatch over all stored configurations, errors from the
spread over the independent Markov chains; locality: mean ± standard error over a layer's units.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from hpc_rg.report.papers import pull, verdict, row as _row, results_of as _results
from hpc_rg.summary import _fmt

T_C = 2.0 / math.log(1.0 + math.sqrt(2.0))
PAPER_NETS = {"large": (1600, 400, 100, 25), "small": (1600, 100, 25)}
PAPER_EPOCHS, PAPER_L1 = 400, 5e-4


def autoencoders(run: Path) -> list[str]:
    """Names of the run's trained autoencoders (models/<name>.json with kind autoencoder), sorted."""
    out = []
    for p in sorted((run / "models").glob("*.json")):
        try:
            if json.loads(p.read_text()).get("kind") == "autoencoder":
                out.append(p.stem)
        except (OSError, ValueError):
            continue
    return out


def evaluate(run: Path, name: str, max_per_chain: int = 400) -> dict:
    """Reconstruction MSE and sign mismatch of autoencoder `name` on the stored configurations (first
    temperature), mean ± standard error over chains; receptive-field locality per layer; the loss history."""
    import torch
    from hpc_rg.io.ensemble import open_ensemble
    from hpc_rg.learn.modelfile import load_model
    from hpc_rg.reduce import receptive_fields as rf
    model, meta = load_model(run / "models" / f"{name}.pt")
    with open_ensemble(run / "ensemble.h5") as e:
        shape = tuple(int(x) for x in e.lattice_shape)
        n_s = min(e.n_samples, max_per_chain)
        mse, mis = [], []
        for c in range(e.n_chains):
            x = np.asarray(e.spins[0, c, :n_s]).reshape(n_s, -1).astype(np.float32)
            with torch.no_grad():
                y = model(torch.as_tensor(x)).numpy()
            mse.append(float(((y - x) ** 2).mean()))
            mis.append(float((np.sign(y) != x).mean()))
    se = (lambda a: float(np.std(a, ddof=1) / np.sqrt(len(a))) if len(a) > 1 else float("nan"))
    layers = []
    for l in range(1, len(model.sizes)):
        f = rf.layer_fields(model, "autoencoder", l).T.reshape((-1,) + shape)
        b = rf.block_side(int(np.prod(shape)), model.sizes[l])
        s = rf.locality_summary(f, b)
        # null model: the same weights on randomly permuted sites (no spatial structure); the best window of a
        # noisy field holds more than b²/N by chance, so b²/N alone would call noise "local"
        rng = np.random.default_rng(1000 + l)
        flat = f.reshape(len(f), -1)
        shuf = np.stack([row[rng.permutation(row.size)] for row in flat]).reshape(f.shape)
        ns = rf.locality_summary(shuf, b)
        layers.append({"layer": l, "window": b, "uniform": b * b / float(np.prod(shape)),
                       "window_fraction": s["window_fraction_mean"], "radius": s["radius_mean"],
                       "shuffled": ns["window_fraction_mean"], "shuffled_radius": ns["radius_mean"]})
    return {"sizes": tuple(model.sizes), "mse": (float(np.mean(mse)), se(mse)),
            "mismatch": (float(np.mean(mis)), se(mis)), "layers": layers,
            "uniform_radius": rf.uniform_radius(shape), "history": meta.get("history", []),
            "metrics": meta.get("metrics", {}), "config": meta.get("config", {}), "shape": shape}


def _ensemble_rows(run: Path, res: dict) -> tuple[list[dict], dict]:
    obs = res.get("observables")
    ens = run / "ensemble.h5"
    if obs is None or not ens.exists():
        return [], {}
    from hpc_rg.exact.kaufman import energy as kaufman_energy
    from hpc_rg.io.ensemble import open_ensemble
    with open_ensemble(ens) as e:
        shape = tuple(int(x) for x in e.lattice_shape)
        J = float(e.attrs.get("J", 1.0))
        n = int(e.n_chains * e.n_samples)
    T = float(np.asarray(obs["axes"]["temperatures"], dtype=float)[0])
    E, dE = (float(np.asarray(obs[q]).reshape(-1)[0]) for q in ("energy", "energy_err"))
    exact = float(kaufman_energy(shape, T, J))
    p = pull(E, dE, exact)
    out = [_row(f"energy per site, {shape[0]}x{shape[1]} at T = {T:.6g}", _fmt(E, dE),
                f"{exact:.6f} (Kaufman, exact)", p,
                "checks the Wolff training samples: " + verdict(p, "under-thermalised or biased sampler")),
           _row("ensemble", f"{shape[0]}x{shape[1]}, {n} configurations at T = {T:.6g}",
                "40x40 at T_c (Wolff; ours: seed 001's 20,000 for training)", "",
                "as in the paper" if shape == (40, 40) and abs(T - T_C) < 1e-3 else
                "scaled-down (quick) job: smaller lattice, nets scaled with it")]
    base = {k: (float(np.asarray(obs[k]).reshape(-1)[0]), float(np.asarray(obs[k + "_err"]).reshape(-1)[0]))
            for k in ("m2", "abs_m")}
    base.update(baselines(res))
    return out, base


def baselines(res: dict) -> dict:
    """{"magnetization": (mse, err), "pca25": (mse, err), ...} of the first temperature, as the
    reconstructions reduction stored them (read only; {} for runs written before the baselines existed)."""
    rc = res.get("reconstructions") or {}
    names = rc.get("attrs", {}).get("baselines")
    if names is None or "baseline_mse" not in rc:
        return {}
    names = (names.decode() if isinstance(names, bytes) else str(names)).split(",")
    v = np.asarray(rc["baseline_mse"], dtype=float).reshape(-1, len(names))[0]
    e = np.asarray(rc.get("baseline_mse_err", np.full(v.shape, np.nan)), dtype=float).reshape(-1, len(names))[0]
    return {n: (float(a), float(b)) for n, a, b in zip(names, v, e)}


def settings(cfg: dict) -> str:
    """One line naming the training settings a net was run with (the bracket's axes)."""
    place = cfg.get("l1_placement", "all") if cfg.get("l1") else "none"
    return (f"{cfg.get('optimizer')} lr {cfg.get('lr')}, L1 {cfg.get('l1')} on {place}"
            f" ({cfg.get('l1_target', 'weights')}), {cfg.get('loss', 'mse')} loss, init {cfg.get('init', 'default')}, "
            f"pretraining {cfg.get('pretraining', 'none')}" + (", tied decoder" if cfg.get("tied") else ""))


def is_ours(cfg: dict) -> bool:
    """The settings of the original seed-003 runs: L1 over all weights with Adam at 1e-2."""
    return cfg.get("l1_placement", "all") == "all" and bool(cfg.get("l1")) and cfg.get("optimizer") == "adam" \
        and float(cfg.get("lr", 0)) >= 1e-2


def _net_rows(name: str, ev: dict, base: dict) -> list[dict]:
    sizes = ev["sizes"]
    label = {"large": "LargeNet", "small": "SmallNet"}.get(name, name)
    cfg = ev["config"]
    paper = PAPER_NETS.get(name)
    paper = paper or PAPER_NETS.get(name.split("_")[0])
    out = [_row(f"{label}: architecture, epochs, settings", f"{'-'.join(map(str, sizes))}, {cfg.get('epochs')} epochs, "
                + settings(cfg), f"{'-'.join(map(str, paper)) if paper else '?'}, {PAPER_EPOCHS} epochs, "
                f"L1 {PAPER_L1} (placement, optimiser, loss, init: bracketed in analysis/RESULTS.md)", "",
                ("as in the paper" if paper == sizes and cfg.get("epochs") == PAPER_EPOCHS else
                 "fewer epochs than the paper (CPU time)" if paper == sizes else
                 "scaled with the lattice (each layer keeps 1/4 of the units)"))]
    m, me = ev["mse"]
    hist = [h.get("test_mse") for h in ev["history"] if h.get("test_mse") is not None]
    first = f"; first epoch {hist[0]:.3f}, last {hist[-1]:.3f}" if hist else ""
    m2, m2e = base.get("m2", (float("nan"), float("nan")))
    lazy = 1.0 - m2
    z1 = (1.0 - m) / me if me > 0 else math.inf
    zb = (lazy - m) / math.hypot(me, m2e) if me > 0 else math.inf
    pca = base.get("pca25")
    pca_txt = f"; PCA-25 (fitted to the other chains): {_fmt(*pca)}" if pca else ""
    zp = (pca[0] - m) / math.hypot(me, pca[1]) if pca and me > 0 else None
    ours = is_ours(cfg)
    out.append(_row(f"{label} Fig. 1: reconstruction MSE (±1 spins)", _fmt(m, me),
                    f"falls below 1 (lazy zero output); magnetization-only output: {lazy:.4f}{pca_txt}", "",
                    f"test MSE by epoch{first}; "
                    + ("below 1 as in the paper" if z1 > 4 else
                       "stuck at the lazy plateau MSE ~ 1"
                       + (" with our original settings (L1 summed over all six weight matrices, Adam 1e-2: the "
                          "penalty outweighs the MSE and the weights collapse; see the seed003_bracket job for the "
                          "settings that leave it)" if ours else f" with {settings(cfg)}"))
                    + ("; beats the magnetization-only output" if zb > 4 else
                       "; NOT better than an output that knows only the magnetization")
                    + ("" if zp is None else "; beats PCA-25" if zp > 4 else "; NOT better than PCA-25")))
    mm, mme = ev["mismatch"]
    am, ame = base.get("abs_m", (float("nan"), float("nan")))
    out.append(_row(f"{label} Fig. 2: reconstruction, fraction of spins with the wrong sign", _fmt(mm, mme),
                    f"smooth, structured (chance 0.5; uniform with the right sign: {(1 - am) / 2:.4f})", "",
                    "keeps local structure (below the uniform-picture value)" if mm + 4 * mme < (1 - am) / 2 else
                    "no better than a uniform picture with the right overall sign" if mm + 4 * mme < 0.5 else
                    "no better than chance"))
    for lay in ev["layers"]:
        wf, wfe = lay["window_fraction"]
        nf, nfe = lay["shuffled"]
        sig = (wf - nf) / math.hypot(wfe, nfe) if math.hypot(wfe, nfe) > 0 else math.inf
        out.append(_row(f"{label} Fig. 3: receptive fields of layer {lay['layer']}, weight in the best "
                        f"{lay['window']}x{lay['window']} window", _fmt(wf, wfe),
                        f"spatially concentrated; same weights on shuffled sites: {_fmt(nf, nfe)} "
                        f"(b²/N = {lay['uniform']:.4f})", "",
                        f"{wf / nf:.2f}x the shuffled value ({sig:.0f}σ above it): "
                        + ("concentrated, as in the paper" if sig > 4 else
                           "NOT concentrated beyond chance"
                           + (" (our original settings: the weights collapse under L1 before they organise)"
                              if ours else f" with these settings after {cfg.get('epochs')} epochs"))))
    return out


def rows(run_dir) -> list[dict]:
    run = Path(run_dir)
    res = _results(run)
    if not res:
        return [_row("(no results.h5)", "", "seed003", "", "run the analyze stage first")]
    out, base = _ensemble_rows(run, res)
    if (run / "ensemble.h5").exists():
        for name in autoencoders(run):
            out += _net_rows(name, evaluate(run, name), base)
    return out or [_row("(nothing to compare)", "", "seed003", "", "the job has no observables or autoencoders")]
