"""What every number in results.h5 means: name -> (long name, symbol, unit), for figures and report tables.

One table (`LABELS`, exact names) plus a few patterns for the names that carry a suffix or prefix
(`abs_m_L16`, `I_blocks`, `radius_layer2`, `rg_window_fraction`, `y_t_mymodel`), so that a figure's axis
label and a report table's row name the same quantity the same way. Units follow the project's conventions:
k_B = 1, temperatures and energies in units of the coupling J; "1" means dimensionless (as in CF/UDUNITS).
Import-light (no numpy, no matplotlib): the report and the file writers use it too.
"""
from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["Label", "LABELS", "label", "axis_label", "short_label", "title", "unit_text"]


class Label(NamedTuple):
    long_name: str          # words, for titles and table rows ("mean absolute magnetisation per site")
    symbol: str             # the physicist's symbol ("⟨|m|⟩")
    unit: str               # "J", "1/J", "bits", "1" (dimensionless), ...


LABELS: dict[str, Label] = {
    # coordinates
    "temperatures": Label("temperature", "T", "J/k_B"),
    "reweight_T": Label("temperature (reweighted)", "T", "J/k_B"),
    "grid": Label("temperature", "T", "J/k_B"),
    "thermometer_temperatures": Label("thermometer class temperature", "T", "J/k_B"),
    "L": Label("linear lattice size", "L", "sites"),
    "L_small": Label("smaller lattice of the pair", "L", "sites"),
    "L_large": Label("larger lattice of the pair", "L", "sites"),
    "fss_L": Label("linear lattice size", "L", "sites"),
    "lattice_side": Label("linear lattice size", "L", "sites"),
    "chain_length": Label("chain length", "N", "sites"),
    "r": Label("distance", "r", "lattice spacings"),
    "level": Label("block-spin level", "n", "1"),
    "level_from": Label("block-spin level (n → n+1)", "n", "1"),
    "step": Label("decimation step", "n", "1"),
    "layer": Label("layer", "n", "1"),
    "rg_step": Label("block-spin RG step", "n", "1"),
    "thermo_layer": Label("RBM layer", "n", "1"),
    "depth": Label("depth (layers up and down)", "d", "1"),
    "length": Label("flow length", "n", "1"),
    "window": Label("window side", "b", "lattice spacings"),
    "flow_start": Label("starting coupling", "K₀", "1"),
    # thermodynamics (observables)
    "energy": Label("energy per site", "e", "J"),
    "abs_m": Label("mean absolute magnetisation", "⟨|m|⟩", "1"),
    "m2": Label("mean squared magnetisation", "⟨m²⟩", "1"),
    "susceptibility": Label("magnetic susceptibility per site", "χ", "1/J"),
    "specific_heat": Label("specific heat per site", "C", "k_B"),
    "binder": Label("Binder cumulant", "U₄", "1"),
    "tau_int_energy": Label("integrated autocorrelation time of E", "τ_int(E)", "samples"),
    "tau_int_abs_m": Label("integrated autocorrelation time of |m|", "τ_int(|m|)", "samples"),
    # Binder crossing
    "T_c": Label("crossing temperature", "T_c", "J/k_B"),
    "U_cross": Label("Binder cumulant at the crossing", "U₄*", "1"),
    "U": Label("Binder cumulant", "U₄", "1"),
    # correlators and scaling dimensions
    "eps": Label("bond energy density s_i Σ_j J_ij s_j", "ε", "J"),
    "G_s": Label("spin-spin correlator", "G_s(r)", "1"),
    "G_eps": Label("energy-energy correlator (connected)", "G_ε(r)", "1"),
    "delta_s": Label("spin scaling dimension", "Δ_s", "1"),
    "delta_eps": Label("energy scaling dimension", "Δ_ε", "1"),
    "chi2_dof": Label("fit χ² per degree of freedom", "χ²/dof", "1"),
    "chi2_s_dof": Label("fit χ² per degree of freedom (Δ_s)", "χ²/dof", "1"),
    "chi2_eps_dof": Label("fit χ² per degree of freedom (Δ_ε)", "χ²/dof", "1"),
    # block RG, MCRG, decimation
    "nn": Label("nearest-neighbour correlation", "⟨s_i s_j⟩", "1"),
    "y_t": Label("thermal RG eigenvalue exponent", "y_t", "1"),
    "y_h": Label("magnetic RG eigenvalue exponent", "y_h", "1"),
    "K": Label("coupling", "K", "1"),
    "K_exact": Label("exact decimated coupling", "K", "1"),
    "K_network": Label("coupling read from the network", "K", "1"),
    "flow_K": Label("coupling along the exact flow", "K", "1"),
    "z_network": Label("network normalisation", "z", "1"),
    "nn_exact": Label("exact nearest-neighbour correlation", "⟨s_i s_j⟩", "1"),
    # mutual information
    "I": Label("mutual information", "I", "bits"),
    # learned models and diagnostics
    "mse": Label("reconstruction mean squared error", "MSE", "1"),
    "mismatch": Label("fraction of mismatched spins", "f_mis", "1"),
    "baseline_mse": Label("baseline mean squared error", "MSE", "1"),
    "baseline_mismatch": Label("baseline fraction of mismatched spins", "f_mis", "1"),
    "T_thermo": Label("thermometer temperature", "T̂", "J/k_B"),
    "T_mean": Label("mean thermometer temperature", "⟨T̂⟩", "J/k_B"),
    "T_peak": Label("most probable thermometer temperature", "T̂_peak", "J/k_B"),
    "p_thermo": Label("thermometer class probability", "p", "1"),
    "radius": Label("radius of gyration", "R_g", "lattice spacings"),
    "radius_mean": Label("mean radius of gyration", "⟨R_g⟩", "lattice spacings"),
    "uniform_radius": Label("radius of gyration of uniform weights", "R_g", "lattice spacings"),
    "window_fraction": Label("fraction of weight in the best b×b window", "f_b", "1"),
    "window_fraction_mean": Label("mean fraction of weight in the best b×b window", "⟨f_b⟩", "1"),
    "uniform_window_fraction": Label("window fraction of uniform weights (b²/N)", "f_b", "1"),
    "fields": Label("receptive field weight", "w", "1"),
    "map": Label("visible-hidden correlation", "⟨v h⟩", "1"),
    "examples": Label("spins and reconstructions", "s", "1"),
    "accuracy": Label("test accuracy", "accuracy", "1"),
    "accuracy_mean": Label("mean test accuracy", "accuracy", "1"),
    "kernels": Label("kernel weight (sign-aligned)", "w", "1"),
    "kernel_mean": Label("mean kernel", "w̄", "1"),
    "kernel_spread": Label("kernel spread between trainings", "σ_w", "1"),
    "dof": Label("degrees of freedom of the fit", "dof", "1"),
    "blob_area": Label("peak blob area", "A", "sites"),
    "half_width": Label("autocorrelation half-width", "w_½", "lattice spacings"),
    "bias": Label("thermometer bias ⟨T̂⟩ − T", "ΔT", "J/k_B"),
    "bias_peak": Label("thermometer bias of the peak T̂_peak − T", "ΔT_peak", "J/k_B"),
    "p_mean": Label("mean thermometer class probability", "p̄", "1"),
    "K_decimated": Label("coupling of the decimated network", "K", "1"),
    "nn_network": Label("nearest-neighbour correlation of the network's spins", "⟨s_i s_j⟩", "1"),
    "corner": Label("corner weight fraction of Σ|w|", "f_corner", "1"),
    "edge": Label("edge weight fraction of Σ|w|", "f_edge", "1"),
    "centre": Label("centre weight fraction of Σ|w|", "f_centre", "1"),
    "corner_edge_ratio": Label("corner-to-edge weight ratio", "w_corner/w_edge", "1"),
    "model": Label("trained model", "model", "1"),
}

# name patterns: (regex, base name, how the captured part is said). Tried in order after an exact match.
_PATTERNS: list[tuple[re.Pattern, str | None, str]] = [
    (re.compile(r"^(?P<base>.+)_L(?P<x>\d+)$"), None, "L = {x}"),
    (re.compile(r"^reweighted_(?P<base>.+)$"), None, "reweighted"),
    (re.compile(r"^U_L(?P<x>\d+)$"), "U", "L = {x}, reweighted"),
    (re.compile(r"^(?P<base>.+)_layer(?P<x>\d+)$"), None, "layer {x}"),
    (re.compile(r"^(?P<base>examples)_T(?P<x>\d+)$"), None, "temperature #{x}"),
    (re.compile(r"^I_(?P<x>.+)$"), "I", "{x}"),
    (re.compile(r"^rg_(?P<base>.+)$"), None, "block-spin RG"),
    (re.compile(r"^rbm_(?P<base>.+)$"), None, "stacked RBM"),
    (re.compile(r"^(?P<base>delta_s|delta_eps)_(?P<x>plain|chord|fss_m2|fss_G)$"), None, "{x}"),
    (re.compile(r"^(?P<base>delta_s|delta_eps)_(?P<x>.+)_chi2_dof$"), "chi2_dof", "Δ fit {x}"),
    (re.compile(r"^delta_eps_fss_chi2_dof$"), "chi2_dof", "Δ_ε finite-size fit"),
    (re.compile(r"^T_delta_eps_1_(?P<x>.+)$"), "temperatures", "where Δ_ε = 1 ({x})"),
    (re.compile(r"^fss_(?P<base>.+)_by_L_T(?P<x>.+)$"), None, "by L at T = {x}"),
    (re.compile(r"^(?P<base>y_t|y_h|kernels|kernel_mean|kernel_spread|accuracy)_(?P<x>.+)$"), None, "{x}"),
    (re.compile(r"^(?P<base>.+)_dof$"), "dof", "{base}"),
    (re.compile(r"^shuffled_(?P<base>.+)$"), None, "shuffled null"),
    (re.compile(r"^(?P<base>.+)_mean$"), None, "mean"),
    (re.compile(r"^(?P<base>.+)_median$"), None, "median"),
    (re.compile(r"^(?P<base>corner|edge|centre|corner_edge_ratio)_(?P<x>.+)$"), None, "{x}"),
    (re.compile(r"^(?P<base>abs_m|binder|nn|m2)_(?P<x>learned|majority|.+)$"), None, "{x} coarse spins"),
    (re.compile(r"^map_(?P<x>.+)$"), "map", "{x}"),
    (re.compile(r"^(?P<base>level)_?(?P<x>.+)$"), None, "{x}"),
]


MAX_PARSED = 120          # longer names (none the reductions write) are not taken apart


def label(name: str) -> Label:
    """The Label of a results.h5 name (a value, its `_err`, or an axis); unknown names get their own name
    as long name and symbol and an empty unit (said as such, never guessed)."""
    name = name[:-4] if name.endswith("_err") else name
    if name in LABELS:
        return LABELS[name]
    if len(name) > MAX_PARSED:             # each pattern peels one suffix: "x_mean_mean..." would recurse
        return Label(name.replace("_", " "), name, "")    # past Python's limit (a RecursionError)
    for pattern, base, how in _PATTERNS:
        m = pattern.match(name)
        if not m:
            continue
        groups = m.groupdict()
        b = base or groups.get("base")
        if b is None or b == name:
            continue
        inner = label(b)
        if inner.unit == "" and b not in LABELS:
            continue
        qualifier = how.format(**{k: v.replace("_", " ") for k, v in groups.items() if v is not None})
        return Label(f"{inner.long_name} ({qualifier})", inner.symbol, inner.unit)
    return Label(name.replace("_", " "), name, "")


def unit_text(unit: str) -> str:
    """How a unit is written beside a number or on an axis: "1" (dimensionless) is said in words."""
    return "dimensionless" if unit == "1" else unit


def axis_label(name: str) -> str:
    """'temperature T (J/k_B)', 'Binder cumulant U₄ (dimensionless)': long name, symbol, unit."""
    lab = label(name)
    # the symbol unless the words already hold it ("test accuracy", not "test accuracy accuracy")
    sym = f" {lab.symbol}" if lab.symbol and lab.symbol.lower() not in lab.long_name.lower().split() else ""
    unit = f" ({unit_text(lab.unit)})" if lab.unit else ""
    return f"{lab.long_name}{sym}{unit}"


def short_label(name: str) -> str:
    """'T (J/k_B)', '⟨|m|⟩ (dimensionless)': symbol and unit, for table headers."""
    lab = label(name)
    return f"{lab.symbol} ({unit_text(lab.unit)})" if lab.unit else lab.symbol


def title(y: str, x: str = "temperatures") -> str:
    """A figure or panel title in words: '⟨|m|⟩ vs T' style, from the two names."""
    return f"{label(y).symbol} vs {label(x).symbol}"
