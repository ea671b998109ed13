"""Seed 002 (de Mello Koch, de Mello Koch, Kastanos & Cheng 2020, "Short sighted deep learning") beside our
run: `rows(run_dir)` for `[report] paper = "seed002"`.

The paper's numbers (none carries an error bar; those read off a figure are marked so):
  Fig. 2a,b (10x10, alpha = 3, Metropolis)  Delta_eps = 1 at T = 7.7 (their T_c); Delta_s(7.7) = 0.53
  Fig. 2c   T_c between 5 and 8 from the magnetization curves
  Fig. 3    RBM flow from T = 0:    Delta_s -> 0.175, Delta_eps -> 0.25, thermometer T -> 6
  Fig. 4    RBM flow from T = 7.7:  Delta_s -> ~0,    Delta_eps -> 1.2,  thermometer T -> 3.75
  Fig. 5    RBM flow from T = 14:   Delta_s < 0 (unphysical), Delta_eps does not converge, T stays high
  Fig. 8    thermometer T after 1, 2, 3 RG steps: 6.25, 7, 7.5 (rises); after RBM layers 1, 2, 3: 12.5, then
            "just above 7.5" twice (falls)
  Figs. 6-7 <vh> maps: RG local patches growing with the step; stacked-RBM maps without that structure
Paper values read from a figure get a read-off uncertainty (half the quoted precision) in the pull; the
others are treated as exact. Our flow values are the longest recorded flow length.

Thermometer read-outs: the paper plots the average probability over its temperatures and reads the peak,
so the compared value is `T_peak` (the ladder temperature where the average probability vector peaks; its
error combines the jackknife error with half the ladder spacing, the resolution of a ladder read-out), and
the posterior mean Σ p T is given beside it in the note. Where the run also read Monte Carlo lattices of an
RG step's size at the start temperature (`thermometer_calibration` with held-out ensembles of that size),
the note gives that same-size reading: the difference is the RG's effect net of the thermometer's size bias.
Notes describe what this run's numbers show; they are not claims about other runs.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from hpc_rg.report.papers import pull, verdict, row as _row, value_error as _val
from hpc_rg.summary import _fmt

PAPER_TC = 7.7
PAPER_DELTA_S_TC = 0.53
# start temperature -> (Delta_s, Delta_eps, thermometer T) at the end of the RBM flow, with read-off errors
PAPER_FLOWS = {0.0: ((0.175, 0.0125), (0.25, 0.05), (6.0, 0.25)),
               7.7: ((0.0, 0.05), (1.2, 0.05), (3.75, 0.125)),
               14.0: (None, None, None)}
PAPER_RG_T = (6.25, 7.0, 7.5)
PAPER_RBM_T = (12.5, 7.5, 7.5)


def _p(text: str) -> float:
    return float(text[:-1]) if text else 0.0


def crossing(T, y, ye, target: float = 1.0, half_width: float = 0.8):
    """Where y(T) crosses `target` upward, from a weighted straight-line fit of y over the ladder points
    within `half_width` of the highest interpolated upward crossing: (T*, dT*) or (nan, nan).
    The highest crossing because the energy correlator vanishes in the fully ordered phase, where the fitted
    Delta_eps is meaningless and can cross 1 spuriously; a local fit rather than the two bracketing points
    because point-to-point noise makes the interpolated crossing jump between neighbours. The error is the
    delta-method error of -a/b from the fit covariance, scaled by sqrt(chi2/dof) when that exceeds 1."""
    T, y, ye = (np.asarray(a, dtype=float) for a in (T, y, ye))
    ok = np.isfinite(y) & np.isfinite(ye) & (ye > 0)
    T, y, ye = T[ok], y[ok] - target, ye[ok]
    T0 = None
    for i in range(len(T) - 2, -1, -1):
        if y[i] < 0 <= y[i + 1]:
            T0 = T[i] - y[i] * (T[i + 1] - T[i]) / (y[i + 1] - y[i])
            break
    if T0 is None:
        return float("nan"), float("nan")
    sel = np.abs(T - T0) <= half_width
    if sel.sum() < 3:
        return float(T0), float("nan")
    x, w = T[sel] - T0, 1.0 / ye[sel] ** 2
    A = np.stack([np.ones_like(x), x], axis=1)
    cov = np.linalg.inv(A.T @ (A * w[:, None]))
    a, b = cov @ (A.T @ (w * y[sel]))
    chi2 = float(np.sum(w * (y[sel] - a - b * x) ** 2))
    dof = int(sel.sum()) - 2
    if dof > 0 and chi2 / dof > 1:
        cov = cov * (chi2 / dof)
    if b <= 0:
        return float(T0), float("nan")
    g = np.array([-1.0 / b, a / b ** 2])              # d(-a/b)/d(a, b)
    return float(T0 - a / b), float(np.sqrt(g @ cov @ g))


def _interp(T, v, e, T0):
    """Linear interpolation of v (errors too, conservatively) at T0 inside the ladder."""
    T = np.asarray(T, dtype=float)
    if not (T[0] <= T0 <= T[-1]) or len(T) < 2:
        i = int(np.argmin(np.abs(T - T0)))
        return float(v[i]), float(e[i])
    i = min(int(np.searchsorted(T, T0)) - 1, len(T) - 2)
    i = max(i, 0)
    w = (T0 - T[i]) / (T[i + 1] - T[i])
    return float((1 - w) * v[i] + w * v[i + 1]), float((1 - w) * e[i] + w * e[i + 1])


def _scaling_rows(res: dict, lattice: str) -> list[dict]:
    sd = res.get("scaling_dimensions")
    if sd is None:
        return []
    T = np.asarray(sd["axes"]["temperatures"], dtype=float)
    out = []
    for form in ("plain", "chord"):
        de, dee = _val(sd, f"delta_eps_{form}")
        ds, dse = _val(sd, f"delta_s_{form}")
        Tc, dTc = crossing(T, de, dee)
        p = pull(Tc, dTc, PAPER_TC, 0.05) if np.isfinite(Tc) else ""
        spacing = float(np.median(np.diff(T))) if len(T) > 1 else float("nan")
        out.append(_row(f"T where Δ_ε = 1 ({lattice}, {form} fit)", _fmt(Tc, dTc), "7.7 (their T_c, Fig. 2a)", p,
                        verdict(p, f"the fit form (plain r^-2Δ vs chord on the torus) and window move Δ_ε by "
                                   "~0.1 at fixed T, i.e. T* by ~0.3 (measured: the plain and chord rows)"
                                   + (f"; ladder spacing here {spacing:.2g} vs the paper's 0.1" if spacing > 0.15 else ""))))
        v, e = _interp(T, ds, dse, PAPER_TC)
        p = pull(v, e, PAPER_DELTA_S_TC, 0.005)
        out.append(_row(f"Δ_s at T = 7.7 ({lattice}, {form} fit)", _fmt(v, e), "0.53 (Fig. 2b)", p,
                        verdict(p, "plain vs chord (finite-L) form and fit window change Δ_s on a 10x10 lattice "
                                   "by ~0.07, more than the statistical error (measured: the plain and chord rows)")))
        if np.isfinite(Tc):
            v, e = _interp(T, ds, dse, Tc)
            out.append(_row(f"Δ_s at our Δ_ε = 1 temperature {Tc:.3g} ({form} fit)", _fmt(v, e),
                            "0.5 (long-range, σ = 1: (d − σ)/2)", pull(v, e, 0.5),
                            verdict(pull(v, e, 0.5), "the exact Δ_σ holds in the scaling limit (with log "
                                    "corrections at σ = d/2); a 10x10 lattice fitted at r = 1..4 is far from it")))
    return out


def magnetization_curves(ob: dict) -> list:
    """[(L, T, <|m|>, error)] from an observables result of one ensemble or of several (per-L keys)."""
    ax = ob["axes"]
    Ls = np.atleast_1d(np.asarray(ax.get("L", [0]))).astype(int)
    if "temperatures" in ax:
        T = np.asarray(ax["temperatures"], dtype=float)
        m, me = _val(ob, "abs_m")
        return [(int(Ls[0]), T, m.reshape(-1)[:len(T)], me.reshape(-1)[:len(T)])]
    out = []
    for L in Ls:
        if f"temperatures_L{L}" in ax and f"abs_m_L{L}" in ob:
            m, me = _val(ob, f"abs_m_L{L}")
            out.append((int(L), np.asarray(ax[f"temperatures_L{L}"], dtype=float), m, me))
    return out


def _observables_rows(res: dict) -> list[dict]:
    ob = res.get("observables")
    if ob is None:
        return []
    out = []
    for L, T, m, me in magnetization_curves(ob):
        if len(T) < 3 or T[-1] - T[0] < 5:      # only a scan wide enough to show the drop (Fig. 2c)
            continue
        # steepest descent of <|m|>(T): where the magnetization curve drops (a finite-size T_c proxy)
        i = int(np.argmin(np.gradient(m, T)))
        out.append(_row(f"steepest drop of ⟨|m|⟩(T), L = {L}", f"{T[i]:.3g} (ladder point)",
                        "T_c between 5 and 8 (Fig. 2c)", "",
                        "inside the paper's range" if 5 <= T[i] <= 8 else
                        "outside the paper's bracket: finite-size rounding at this L"))
    return out


def _binder_rows(res: dict) -> list[dict]:
    bc = res.get("binder_crossing")
    if bc is None:
        return []
    Tc, dTc = _val(bc, "T_c")
    Ls, Ll = (np.asarray(bc["axes"][k]).astype(int) for k in ("L_small", "L_large"))
    text = " ".join(str(v) for v in bc["attrs"].values())
    images_note = ("; Ewald-summed (physically periodic) couplings, as here, also shift T_c from the paper's "
                   "minimum-image lattice" if "fss" in text or "ewald" in text.lower() else "")
    out = []
    for i in range(len(Tc)):
        p = pull(Tc[i], dTc[i], PAPER_TC, 0.05)
        out.append(_row(f"T_c from the Binder crossing L = {Ls[i]} / {Ll[i]} (beyond the paper)",
                        _fmt(Tc[i], dTc[i]), "7.7 (Δ_ε = 1 on 10x10)", p,
                        verdict(p, "the paper's T_c is a 10x10 estimate from a fit criterion (Δ_ε = 1), not a "
                                   "thermodynamic-limit T_c" + images_note)))
    if len(Tc) > 1:
        d, dd = Tc[-1] - Tc[0], math.hypot(dTc[-1], dTc[0])
        out.append(_row("T_c drift with L (largest pair minus smallest)", _fmt(d, dd), "(not in the paper)", "",
                        "no drift resolved between these pairs" if abs(d) < 2 * dd else
                        "corrections to scaling (log corrections at the mean-field boundary σ = d/2): "
                        "crossings converge slowly, larger L needed"))
    return out


def _flow_rows(res: dict) -> list[dict]:
    fl = res.get("rbm_flow")
    if fl is None:
        return []
    T = np.asarray(fl["axes"]["temperatures"], dtype=float)
    n = np.asarray(fl["axes"]["length"]).astype(int)
    ds, dse = _val(fl, "delta_s")
    de, dee = _val(fl, "delta_eps")
    th = _val(fl, "T_thermo") if "T_thermo" in fl else None
    peak = _peak(fl, "T_peak")
    out = []
    for i, t0 in enumerate(T):
        key = min(PAPER_FLOWS, key=lambda k: abs(k - t0))
        paper = PAPER_FLOWS[key] if abs(key - t0) <= 0.6 else (None, None, None)
        label = f"RBM flow from T = {t0:.3g}, length {n[-1]}"
        for name, (v, e), ref, txt in (("Δ_s", (ds, dse), paper[0], "Δ_s"), ("Δ_ε", (de, dee), paper[1], "Δ_ε")):
            vv, ee = float(v[i, -1]), float(e[i, -1])
            if ref is None:
                paper_txt = {14.0: ("< 0 (unphysical, Fig. 5a)" if name == "Δ_s" else "does not converge (Fig. 5b)")}.get(
                    key, "(not in the paper)") if abs(key - t0) <= 0.6 else "(not in the paper)"
                out.append(_row(f"{label}: {txt}", _fmt(vv, ee), paper_txt, "", _flow_note(name, vv, ee, None, t0)))
            else:
                p = pull(vv, ee, ref[0], ref[1])
                out.append(_row(f"{label}: {txt}", _fmt(vv, ee), f"{ref[0]:g} (read off Fig. {_fig(key)})", p,
                                _flow_note(name, vv, ee, ref, t0, p)))
        if th is not None:
            mean_txt = f"posterior mean {_fmt(float(th[0][i, -1]), float(th[1][i, -1]))}"
            if peak is not None:
                vv, ee = float(peak[0][i, -1]), float(peak[1][i, -1])
                t_start, what = float(peak[0][i, 0]), "thermometer T (peak)"
            else:     # a run made before the peak read-out existed: the posterior mean only
                vv, ee = float(th[0][i, -1]), float(th[1][i, -1])
                t_start, what = float(th[0][i, 0]), "thermometer T (posterior mean)"
            ref = paper[2]
            if ref is None:
                paper_txt = "stays high (Fig. 5c)" if abs(key - 14.0) < 0.6 else "(not in the paper)"
                out.append(_row(f"{label}: {what}", _fmt(vv, ee), paper_txt, "",
                                (f"in this run the reading falls from {t_start:.3g} (the data) to {vv:.3g} along the "
                                 "flow" if vv < t_start - 4 * ee else "stays high in this run, as in the paper")
                                + f"; {mean_txt}"))
            else:
                p = pull(vv, ee, ref[0], ref[1])
                out.append(_row(f"{label}: {what}", _fmt(vv, ee), f"{ref[0]:g} (read off Fig. {_fig(key)}c)", p,
                                verdict(p, "the flow's end point is a property of the trained RBM (measured: the "
                                        "optimiser moves it most, init scale by <= 0.14 in Δ_ε; bracket jobs "
                                        "seed002_rbm_flow_bracket_* and *_sgd_paper, analysis/RESULTS.md) and "
                                        "the thermometer is our CNN") + f"; {mean_txt}"))
    return out


def _fig(key: float) -> str:
    return {0.0: "3", 7.7: "4", 14.0: "5"}[key]


def _flow_note(name, v, e, ref, t0, p="") -> str:
    if ref is None:
        if name == "Δ_s":
            return ("Δ_s < 0 as in the paper" if v + 4 * e < 0 else
                    f"not negative in this run ({v:.3f}); an RBM whose flow produced Δ_s < 0 would have to "
                    "anti-correlate distant spins")
        return "see the flow figure for convergence"
    if p and _p(p) < 4:
        return verdict(p, "the end point of a flow depends on the trained RBM")
    return ("differs: the flow's end point is that RBM's fixed point, which depends on the training run "
            "(measured: SGD vs Adam moves Δ_ε from T_c by ~0.2-0.8, the initial scale by <= 0.14: jobs "
            "seed002_rbm_flow_bracket_* and seed002_rbm_flow_sgd_paper, analysis/RESULTS.md); this run's flow "
            "ends at "
            + ("an ordered (Δ ≈ 0) point" if abs(v) < 0.05 else f"{v:.2f}"))


def _peak(group: dict, q: str):
    """(value, error) of a peak read-out, the error widened by half the thermometer's ladder spacing (the
    resolution of reading a ladder point); None when the run has no such quantity."""
    if q not in group:
        return None
    v, e = _val(group, q)
    Tk = np.asarray(group["axes"].get("thermometer_temperatures", []), dtype=float)
    half = 0.5 * float(np.median(np.diff(Tk))) if len(Tk) > 1 else 0.0
    return v, np.hypot(np.nan_to_num(e), half)


def _same_size_reading(res: dict, side, T: float):
    """The thermometer's peak reading of Monte Carlo lattices of this side at T (held-out ensembles of the
    run's `thermometer_calibration`), as (value, error), or None."""
    tc = res.get("thermometer_calibration")
    if tc is None or side is None or "lattice_side" not in tc["axes"] or "T_peak" not in tc:
        return None
    sides = np.asarray(tc["axes"]["lattice_side"]).astype(int)
    temps = np.asarray(tc["axes"]["temperatures"], dtype=float)
    hit = np.flatnonzero((sides == side) & (np.abs(temps - T) < 1e-6))
    if not len(hit):
        return None
    v, e = _peak(tc, "T_peak")
    return float(v[hit[0]]), float(e[hit[0]])


def _vh_rows(res: dict, thermo_side=None) -> list[dict]:
    vh = res.get("vh_correlators")
    if vh is None:
        return []
    out = []
    T = np.asarray(vh["axes"]["temperatures"], dtype=float)
    side0 = vh["attrs"].get("lattice_shape")
    side0 = int(np.asarray(side0).reshape(-1)[0]) if side0 is not None else None
    block = int(vh["attrs"].get("block", 2))
    rule = str(vh["attrs"].get("thermometer_rg", "majority"))   # runs before the option read majority blocks
    for i, t in enumerate(T):
        if "rg_T_thermo" in vh:
            mv, me = _val(vh, "rg_T_thermo")
            pk = _peak(vh, "rg_T_peak")
            v, e = pk if pk is not None else (mv, me)
            kind = "peak" if pk is not None else "posterior mean"
            for s in range(0, min(v.shape[1], 4)):
                side = side0 // block ** s if side0 else None
                mc = _same_size_reading(res, side, t)
                extra = f"; posterior mean {_fmt(mv[i, s], me[i, s])}" if pk is not None else ""
                if mc is not None:
                    extra += (f"; Monte Carlo {side}x{side} lattices at T = {t:.3g} read {_fmt(*mc)} (peak) with "
                              f"this thermometer: RG step − same-size MC = {_fmt(v[i, s] - mc[0], math.hypot(e[i, s], mc[1]))}")
                if s == 0:
                    out.append(_row(f"thermometer T ({kind}) of the data (RG step 0), T = {t:.3g}",
                                    _fmt(v[i, 0], e[i, 0]), "(not given)", "",
                                    "the thermometer's reading of the unblocked lattices: compare with the true T"
                                    + extra))
                    continue
                p = pull(v[i, s], e[i, s], PAPER_RG_T[s - 1], 0.125)
                out.append(_row(f"thermometer T ({kind}) after {s} RG step(s), start T = {t:.3g}",
                                _fmt(v[i, s], e[i, s]), f"{PAPER_RG_T[s - 1]:g} (Fig. 8b)", p,
                                verdict(p, _rg_note(v[i], rule, side, thermo_side)) + extra))
        if "rbm_T_thermo" in vh:
            mv, me = _val(vh, "rbm_T_thermo")
            pk = _peak(vh, "rbm_T_peak")
            v, e = pk if pk is not None else (mv, me)
            kind = "peak" if pk is not None else "posterior mean"
            layers = np.asarray(vh["axes"].get("thermo_layer", np.arange(1, v.shape[1] + 1))).astype(int)
            for j, l in enumerate(layers[:3]):
                p = pull(v[i, j], e[i, j], PAPER_RBM_T[l - 1], 0.25)
                extra = f"; posterior mean {_fmt(mv[i, j], me[i, j])}" if pk is not None else ""
                out.append(_row(f"thermometer T ({kind}) of RBM layer {l} hidden units, start T = {t:.3g}",
                                _fmt(v[i, j], e[i, j]), f"{PAPER_RBM_T[l - 1]:g} (Fig. 8a)", p,
                                verdict(p, "sampled hidden units are read as a lattice by a thermometer trained on "
                                        + (f"{thermo_side}x{thermo_side} " if thermo_side else "")
                                        + "physical spins; their statistics depend on the RBM's training "
                                        "(measured bracket: 3 and 20 epochs per layer, Adam, sampled and mean "
                                        "propagation, analysis/RESULTS.md)") + extra))
        for who in ("rg", "rbm"):
            if f"{who}_window_fraction" not in vh:
                continue
            v, e = _val(vh, f"{who}_window_fraction")
            wins = np.asarray(vh["axes"]["window"]).astype(int)
            wins = wins[:v.shape[1]] if who == "rg" else wins[-v.shape[1]:]
            shape = vh["attrs"].get("lattice_shape")
            N = int(np.prod(shape)) if shape is not None else None
            uni = [b * b / N for b in wins] if N else [float("nan")] * len(wins)
            out.append(_row(f"⟨vh⟩ locality ({'RG steps' if who == 'rg' else 'RBM layers'}): window fraction",
                            "; ".join(_fmt(a, b) for a, b in zip(v[i], e[i])),
                            "RG: local patches growing with step (Fig. 6)" if who == "rg" else
                            "RBM: no organised local patches (Fig. 7)", "",
                            "non-local value b²/N = " + ", ".join(f"{u:.3g}" for u in uni)
                            + ("; ratio " + ", ".join(f"{a / u:.1f}x" for a, u in zip(v[i], uni)) if N else "")))
    return out


def _rg_note(v, rule: str = "kernel", side=None, thermo_side=None) -> str:
    steps = " -> ".join(f"{x:.3g}" for x in v[:4])
    rising = bool(np.all(np.diff(v[1:4]) > 0))
    trend = (f"in this run the reading rises along the RG flow ({steps} from the data on), as in the paper" if rising
             else f"in this run the reading does not rise along the RG flow ({steps} from the data on), unlike the paper")
    what = ("block averages (the paper's rule)" if rule == "kernel" else
            "majority-rule blocks with coin-flip ties (not the paper's averaging)")
    size = ""
    if side and thermo_side and side != thermo_side:
        size = (f"; the thermometer was trained on {thermo_side}x{thermo_side} lattices and reads {side}x{side} ones, "
                "so part of the change can be size bias (see the same-size Monte Carlo reading where the run has it)")
    return f"{trend}; the RG lattices read are {what}{size}"


def _thermometer_side(run: Path, res: dict):
    """Side of the lattices the run's thermometer was trained on (from its model file's sidecar), or None."""
    import json
    vh = res.get("vh_correlators") or {}
    name = str((vh.get("attrs") or {}).get("thermometer", "")) or "thermo"
    try:
        meta = json.loads((run / "models" / f"{name}.json").read_text())
        return int(meta["data"]["lattice_shape"][0])
    except Exception:
        return None


def rows(run_dir) -> list[dict]:
    run = Path(run_dir)
    path = run / "results.h5"
    if not path.exists():
        return [_row("(no results.h5)", "", "seed002", "", "run the analyze stage first")]
    from hpc_rg.reduce.results import read_results
    res = read_results(path)
    lattice = "?"
    ens = run / "ensemble.h5"
    if ens.exists():
        from hpc_rg.io.ensemble import open_ensemble
        with open_ensemble(ens) as e:
            lattice = "x".join(str(int(x)) for x in e.lattice_shape)
            if "vh_correlators" in res:
                res["vh_correlators"]["attrs"].setdefault("lattice_shape", np.asarray(e.lattice_shape))
    out = (_scaling_rows(res, lattice) + _observables_rows(res) + _binder_rows(res) + _flow_rows(res)
           + _vh_rows(res, _thermometer_side(run, res)))
    return out or [_row("(nothing to compare)", "", "seed002", "",
                        "the job has none of scaling_dimensions, observables, binder_crossing, rbm_flow, vh_correlators")]
