# ---
# Exploring a run folder from a notebook: the ensemble as a lazy xarray Dataset, ⟨|m|⟩(T) with its error
# bars from results.h5, and the mutual-information table.
#
# Run it as a script:   python docs/examples/explore_run.py runs/quickstart [OUT_FOLDER]
# or cell by cell (`# %%`, the percent format of VS Code, Spyder, PyCharm and jupytext) in a notebook.
# Needs `pip install hpc_rg[xarray,plot]` (xarray, h5netcdf, pandas, matplotlib). The figure and the table
# go into OUT_FOLDER (a new temporary folder when not given); CI runs this on a small run of the
# quickstart's reductions (tests/docs/test_examples.py).
# ---

# %% The run folder, and where the figure and table go
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")                       # a file, not a window (in a notebook, drop this line)
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

import hpc_rg  # noqa: E402
from hpc_rg.exact import T_C  # noqa: E402   (Onsager's T_c of the infinite square lattice)

run = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/quickstart")
out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="explore_run_"))
out.mkdir(parents=True, exist_ok=True)

# %% The ensemble: opening reads the temperatures, nothing else
ens = hpc_rg.open_ensemble(run)             # a run folder or its ensemble.h5
print(ens)

# %% As xarray: dims (temperature, chain, sample, y, x); values are read only when asked for
ds = ens.to_xarray()
print(ds)
# ⟨|m|⟩ per temperature straight from the stored magnetization (reads /magnetization only, no spins)
abs_m_raw = abs(ds.magnetization).mean(("chain", "sample"))
# the last configuration of chain 0 at the temperature closest to T_c: one slab of /spins is read
snapshot = ds.spins.sel(temperature=T_C, method="nearest").isel(chain=0, sample=-1)

# %% The results: one xarray.Dataset per reduction, <q> with <q>_error beside it
if (run / "results.h5").is_file() or run.suffix == ".h5":
    results = hpc_rg.read_results(run)      # a run folder or its results.h5
    print(results)
    table = results.to_dataframe()          # tidy rows: reduction, quantity, T, L, value, error, ...
else:                                       # simulated, not analysed yet: the samples' own numbers only
    print(f"{run} has no results.h5 yet (run its analyze stage); showing the ensemble only")
    results, table = {}, pd.DataFrame(columns=["reduction", "quantity", "T", "L", "value", "error"])

# %% ⟨|m|⟩(T) with error bars (one curve per lattice size), and the snapshot
fig, (ax, ax_snap) = plt.subplots(1, 2, figsize=(9, 3.8), gridspec_kw={"width_ratios": [1.6, 1]})
abs_m = table[(table.reduction == "observables") & (table.quantity == "abs_m")]
for L, rows in abs_m.groupby("L", dropna=False):
    rows = rows.sort_values("T")
    ax.errorbar(rows["T"], rows["value"], yerr=rows["error"], marker="o", ms=4, capsize=3,
                label="observables (jackknife)" if pd.isna(L) else f"L = {L} (observables, jackknife)")
ax.plot(abs_m_raw.temperature, abs_m_raw, "x", color="grey", label="mean |m| of the samples")
ax.axvline(T_C, color="k", ls=":", lw=0.8, label="$T_c$ (Onsager)")
ax.set_xlabel("temperature $T$ [$J/k_B$]")
ax.set_ylabel(r"$\langle |m| \rangle$")
ax.legend(fontsize=8)
if snapshot.ndim == 2:
    ax_snap.imshow(snapshot, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
    ax_snap.set_title(f"spins at T = {float(snapshot.temperature):.4g}", fontsize=9)
ax_snap.axis("off")
fig.tight_layout()
figure = out / "abs_m.png"
fig.savefig(figure, dpi=150, bbox_inches="tight")
print(f"figure: {figure}")

# %% The mutual-information results (I in bits, bootstrap errors), one row per temperature
reduction = next((r for r in ("mutual_information", "observables") if r in results), None)
if reduction == "observables":
    print("this run has no [analyze.mutual_information]; tabulating the observables instead")
rows = table[table.reduction == reduction]
if rows.empty:
    print("no results to tabulate")
else:
    mi = rows.pivot_table(index=["L", "T"], columns="quantity", values=["value", "error"], dropna=False)
    mi.columns = [q if stat == "value" else f"{q}_error" for stat, q in mi.columns]
    mi = mi[sorted(mi.columns)]
    print(mi.to_string(float_format=lambda v: f"{v:.4f}"))
    table_file = out / f"{reduction}.csv"
    mi.to_csv(table_file)
    print(f"table: {table_file}")

# %% Close the file (the Dataset `ds` reads through it)
ens.close()
