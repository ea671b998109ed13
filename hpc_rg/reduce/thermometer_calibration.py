"""Calibration of the trained thermometer (seed 002's supervised temperature read-out) on held-out data.

For each stored temperature T of a held-out ensemble: the posterior-mean temperature T̂ = Σ_k p_k T_k
averaged over the samples (block jackknife error over chain stretches), the average probability vector
over the thermometer's temperatures and its peak `T_peak` (the paper's read-out), and the classification
accuracy (argmax = the thermometer
temperature nearest T). A calibrated thermometer has ⟨T̂⟩ = T at its training temperatures (up to the
posterior's shrinkage towards the middle of its ladder between them). The flows and the ⟨vh⟩ reduction
read temperatures with the same function. Held-out ensembles may have other lattice sizes than the
thermometer's training set (`lattice_side` per row): Monte Carlo lattices of the size of an RG step, at
the flow's start temperature, separate the thermometer's size bias from the RG's effect.
"""
from __future__ import annotations

import numpy as np

from hpc_rg.io.ensemble import open_ensemble
from hpc_rg.plugins import Plugin
from hpc_rg.reduce import trained_models as tm
from hpc_rg.reduce.blocks import block_means, t_indices
from hpc_rg.reduce.registry import Context, Result
from hpc_rg.reduce.stats import jackknife_blocks


PLUGINS = (Plugin("reduction", "thermometer_calibration", "run_thermometer_calibration",
                  spec="hpc_rg.reduce.model_specs:ThermometerCalibrationSpec", needs=("files", "models"),
                  doc="the trained thermometer's reading against the true temperature"),)


def run_thermometer_calibration(spec, ctx: Context) -> Result:
    thermo, meta = tm.load(ctx, spec.thermometer, "analyze.thermometer_calibration.thermometer", ("thermometer",))
    Tk = thermo.temperatures.numpy()
    res = Result(attrs={"thermometer_name": spec.thermometer,
                        "trained_on": str(meta.get("data", {}).get("ensemble", "")),
                        "method": "posterior-mean temperature and peak of the average probability, block "
                                  "jackknife over chain stretches"})
    rows = {q: ([], []) for q in ("T_mean", "bias", "accuracy", "p_mean", "T_peak", "bias_peak")}
    temps, files, sides = [], [], []
    for path in ctx.resolve(spec.files):
        with open_ensemble(path) as ens:
            side = int(ens.lattice_shape[0])
            for t in t_indices(ens, spec.temperatures):
                T = float(ens.temperatures[t])
                nearest = int(np.argmin(np.abs(Tk - T)))

                def fn(x, where):
                    p, That = tm.thermometer_read(thermo, x)
                    hit = (p.argmax(axis=1) == nearest).astype(np.float64)
                    return np.concatenate([That[:, None], hit[:, None], p], axis=1)

                bm, _ = block_means(ens, t, fn, ctx.world, spec.n_blocks, spec.batch, spec.max_samples)
                for q, f in (("T_mean", lambda m: m[0]), ("bias", lambda m, T=T: m[0] - T),
                             ("accuracy", lambda m: m[1]), ("p_mean", lambda m: m[2:]),
                             ("T_peak", lambda m: tm.thermometer_peak(m[2:], Tk)),
                             ("bias_peak", lambda m, T=T: tm.thermometer_peak(m[2:], Tk) - T)):
                    v, e = jackknife_blocks(f, bm)
                    rows[q][0].append(v)
                    rows[q][1].append(e)
                temps.append(T)
                files.append(str(path))
                sides.append(side)
    for q, (v, e) in rows.items():
        res.put(q, v, e)
    res.axes["temperatures"] = np.array(temps)
    res.axes["thermometer_temperatures"] = Tk
    # lattice side of each row: held-out ensembles of other sizes give the same-size Monte Carlo reading a
    # coarse-grained lattice of that size is compared with (seed 002 Fig. 8)
    res.axes["lattice_side"] = np.array(sides)
    res.attrs["files"] = ", ".join(sorted(set(files)))
    res.attrs["thermometer_file"] = str(tm.model_path(ctx, spec.thermometer, "analyze.thermometer_calibration"))
    return res
