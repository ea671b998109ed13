"""`[analyze.<name>]` tables: one frozen dataclass per reduction (import-light: no numba/torch/matplotlib).

A table's name is the reduction's name (e.g. `[analyze.mcrg]`).  Temperatures select the nearest ladder
points of the ensemble (empty: all); `files` name further ensembles (one per L), relative to the job file.
"""
from __future__ import annotations

from dataclasses import dataclass

from hpc_rg.schema import spec

_T_DOC = "ladder temperatures to reduce (nearest stored ones; empty: all)"
_FILES_DOC = "ensemble files, one per L (relative to the job file; empty: the job's <out>/ensemble.h5)"


@dataclass(frozen=True)
class ObservablesSpec:
    files: tuple[str, ...] = spec((), doc=_FILES_DOC)
    n_blocks: int = spec(32, min=2, doc="jackknife blocks (chain stretches) per temperature")
    reweight_points: int = spec(0, min=0, doc="grid points of a reweighted curve across the ladder (0: off)")


@dataclass(frozen=True)
class BinderCrossingSpec:
    files: tuple[str, ...] = spec(doc="ensemble files, one per L, the same ladder region (>= 2)")
    n_grid: int = spec(401, min=10, doc="temperature grid points between the ladder ends")
    reweighting: bool = spec(True, doc="single-histogram reweighting between ladder points (else linear)")
    n_blocks: int = spec(16, min=2, doc="jackknife blocks per ensemble")

    def validate(self):
        if len(self.files) < 2:
            return "files", list(self.files), "at least two ensemble files (different L)"
        return None


@dataclass(frozen=True)
class CorrelatorsSpec:
    temperatures: tuple[float, ...] = spec((), doc=_T_DOC)
    mode: str = spec("axes", choices=("axes", "radial"), doc="distance: along the axes or binned Euclidean")
    n_blocks: int = spec(32, min=2, doc="jackknife blocks")
    batch: int = spec(32, min=1, doc="configurations per streamed batch (memory bound)")
    max_samples: int = spec(0, min=0, doc="use at most this many samples per chain (0: all)")


@dataclass(frozen=True)
class ScalingDimensionsSpec:
    temperatures: tuple[float, ...] = spec((), doc=_T_DOC)
    window_spin: tuple[int, ...] = spec((2, 0), doc="[r_min, r_max] of the spin fit (r_max 0: L/4)")
    window_energy: tuple[int, ...] = spec((2, 0), doc="[r_min, r_max] of the energy-density fit (0: L/4)")
    files: tuple[str, ...] = spec((), doc="ensembles at other L for the finite-size estimators")
    fss_r_over_L: tuple[float, ...] = spec((0.125, 0.25), min=0.0, max=0.5,
                                           doc="r/L range whose mean correlator scales as L^{-2Δ}")
    mode: str = spec("axes", choices=("axes", "radial"), doc="distance convention of the profiles")
    n_blocks: int = spec(32, min=2, doc="jackknife blocks")
    batch: int = spec(32, min=1, doc="configurations per streamed batch")
    max_samples: int = spec(0, min=0, doc="use at most this many samples per chain (0: all)")

    def validate(self):
        for key in ("window_spin", "window_energy"):
            w = getattr(self, key)
            if len(w) != 2 or w[0] < 1 or (w[1] and w[1] <= w[0]):
                return key, list(w), "[r_min >= 1, r_max > r_min or 0]"
        if len(self.fss_r_over_L) != 2 or not self.fss_r_over_L[0] <= self.fss_r_over_L[1]:
            return "fss_r_over_L", list(self.fss_r_over_L), "[low, high] with low <= high"
        return None


@dataclass(frozen=True)
class MutualInformationSpec:
    temperatures: tuple[float, ...] = spec((), doc=_T_DOC)
    block: int = spec(3, min=1, max=5, doc="block side b (2^{b²} states)")
    kernels: tuple[str, ...] = spec(("majority", "average"), doc="images: majority | average | decimation | weights")
    weights: tuple[float, ...] = spec((), doc="b×b kernel weights (row-major) for the 'weights' kernel")
    levels: int = spec(0, min=0, doc="bins of a real kernel's output (0: its exact finite set of values)")
    estimator: str = spec("miller_madow", choices=("plugin", "miller_madow", "grassberger"), doc="entropy bias correction")
    shell: int = spec(1, min=0, max=2, doc="environment shell width for block-environment MI (0: off)")
    n_blocks: int = spec(16, min=2, doc="sample blocks for the bootstrap")
    n_boot: int = spec(100, min=10, doc="bootstrap replicas")
    batch: int = spec(64, min=1, doc="configurations per streamed batch")
    max_samples: int = spec(0, min=0, doc="use at most this many samples per chain (0: all)")

    def validate(self):
        for k in self.kernels:
            if k not in ("majority", "average", "decimation", "weights"):
                return "kernels", list(self.kernels), "majority, average, decimation or weights"
        if "weights" in self.kernels and len(self.weights) != self.block ** 2:
            return "weights", list(self.weights), f"{self.block ** 2} numbers (block²) for the weights kernel"
        return None


@dataclass(frozen=True)
class BlockRGSpec:
    temperatures: tuple[float, ...] = spec((), doc=_T_DOC)
    block: int = spec(2, min=2, doc="block side b")
    kernel: str = spec("majority", choices=("majority", "average", "decimation", "weights"), doc="block rule")
    weights: tuple[float, ...] = spec((), doc="b×b kernel weights for kernel = weights")
    levels: int = spec(3, min=1, doc="blockings applied (64 → 32 → 16 → 8 is 3)")
    n_blocks: int = spec(32, min=2, doc="jackknife blocks")
    batch: int = spec(32, min=1, doc="configurations per streamed batch")

    def validate(self):
        if self.kernel == "weights" and len(self.weights) != self.block ** 2:
            return "weights", list(self.weights), f"{self.block ** 2} numbers (block²)"
        return None


@dataclass(frozen=True)
class MCRGSpec:
    temperatures: tuple[float, ...] = spec((), doc=_T_DOC)
    block: int = spec(2, min=2, doc="block side b")
    kernel: str = spec("majority", choices=("majority", "decimation", "weights"), doc="block rule (±1 images)")
    weights: tuple[float, ...] = spec((), doc="b×b kernel weights for kernel = weights")
    levels: int = spec(0, min=0, doc="blockings (0: down to an 8×8 lattice)")
    n_even: int = spec(4, min=1, max=4, doc="even operators used (nn, nnn, third, plaquette)")
    n_odd: int = spec(2, min=1, max=2, doc="odd operators used (m, three-spin)")
    n_blocks: int = spec(32, min=2, doc="jackknife blocks")
    batch: int = spec(32, min=1, doc="configurations per streamed batch")

    def validate(self):
        if self.kernel == "weights" and len(self.weights) != self.block ** 2:
            return "weights", list(self.weights), f"{self.block ** 2} numbers (block²)"
        return None


@dataclass(frozen=True)
class Decimation1DSpec:
    temperatures: tuple[float, ...] = spec((), doc=_T_DOC)
    steps: int = spec(3, min=1, doc="decimations applied (b = 2 each)")
    n_blocks: int = spec(32, min=2, doc="jackknife blocks")
    batch: int = spec(256, min=1, doc="configurations per streamed batch")


SPECS: dict[str, type] = {
    "observables": ObservablesSpec,
    "binder_crossing": BinderCrossingSpec,
    "correlators": CorrelatorsSpec,
    "scaling_dimensions": ScalingDimensionsSpec,
    "mutual_information": MutualInformationSpec,
    "block_rg": BlockRGSpec,
    "mcrg": MCRGSpec,
    "decimation_1d": Decimation1DSpec,
}

# RG <-> deep-learning diagnostics (issue #8): their tables live in their own import-light module
from hpc_rg.reduce.diagnostics_specs import DIAGNOSTIC_SPECS  # noqa: E402

SPECS.update(DIAGNOSTIC_SPECS)


def _plugin_specs() -> dict[str, type]:
    from hpc_rg import plugins
    return {name: p.load_spec() for name, p in plugins.table("reduction").items() if p.spec}


SPECS.update(_plugin_specs())


# -- what each reduction writes into results.h5 (dimensions, units, long names) -----------------------------
@dataclass(frozen=True)
class Output:
    """How results.h5 labels a quantity of a reduction (and its `<q>_err`): the names of its axes, in order
    (an axis named like one of the reduction's `axes` becomes that coordinate: "temperature" is
    axes/temperatures, and "temperature" of a quantity `<q>_L<n>` is axes/temperatures_L<n>), its units
    (temperatures in J/k_B, energies in J, per spin) and a long name."""
    dims: tuple[str, ...]
    units: str = ""
    long_name: str = ""


# reduction -> {quantity name or fnmatch pattern: Output}; the first entry whose dimensions fit the array
# wins; a quantity that no entry fits gets `<q>_dim<k>` dimensions (results.py)
OUTPUTS: dict[str, dict[str, Output]] = {
    "observables": {
        "energy*": Output(("temperature",), "J", "energy per spin ⟨e⟩"),
        "abs_m*": Output(("temperature",), "1", "mean absolute magnetization per spin ⟨|m|⟩"),
        "m2*": Output(("temperature",), "1", "mean squared magnetization per spin ⟨m²⟩"),
        "susceptibility*": Output(("temperature",), "1/J", "susceptibility per spin N(⟨m²⟩ − ⟨|m|⟩²)/T"),
        "specific_heat*": Output(("temperature",), "k_B", "specific heat per spin N(⟨e²⟩ − ⟨e⟩²)/T²"),
        "binder*": Output(("temperature",), "1", "Binder cumulant U = 1 − ⟨m⁴⟩/(3⟨m²⟩²)"),
        "tau_int_*": Output(("temperature",), "samples", "integrated autocorrelation time"),
    },
    "binder_crossing": {
        "T_c": Output(("pair",), "J/k_B", "temperature where U_L and U_L' cross"),
        "U_cross": Output(("pair",), "1", "Binder cumulant at the crossing"),
    },
    "correlators": {
        "G_s": Output(("temperature", "r"), "1", "spin-spin correlator G(r)"),
        "G_eps": Output(("temperature", "r"), "J²", "connected energy-density correlator"),
        "abs_m": Output(("temperature",), "1", "mean absolute magnetization per spin ⟨|m|⟩"),
        "m2": Output(("temperature",), "1", "mean squared magnetization per spin ⟨m²⟩"),
        "eps": Output(("temperature",), "J", "energy density ε"),
    },
    "scaling_dimensions": {
        "delta_*_chi2_dof": Output(("temperature",), "1", "χ² per degree of freedom of the fit"),
        "delta_*": Output(("temperature",), "1", "scaling dimension Δ"),
        "fss_*": Output(("fss_L",), "1", "finite-size scaling input at each L"),
    },
    "mutual_information": {
        "I_*": Output(("temperature",), "bit", "mutual information"),
    },
    "block_rg": {
        "abs_m": Output(("temperature", "level"), "1", "⟨|m|⟩ of the blocked lattice"),
        "m2": Output(("temperature", "level"), "1", "⟨m²⟩ of the blocked lattice"),
        "binder": Output(("temperature", "level"), "1", "Binder cumulant of the blocked lattice"),
        "nn": Output(("temperature", "level"), "1", "nearest-neighbour correlation of the blocked lattice"),
        "*": Output(("temperature", "level")),
    },
    "mcrg": {
        "y_t": Output(("temperature", "level_from"), "1", "thermal RG eigenvalue exponent y_t"),
        "y_h": Output(("temperature", "level_from"), "1", "magnetic RG eigenvalue exponent y_h"),
    },
    "receptive_fields": {
        "*_mean": Output(("layer",), "1", "mean over the layer's units"),
        "*_median": Output(("layer",), "1", "median over the layer's units"),
        "uniform_window_fraction": Output(("layer",), "1", "window fraction of uniform weights (null model)"),
    },
    "vh_correlators": {
        "map_*": Output(("temperature", "hidden_unit", "y", "x"), "1",
                        "correlator <v_i h_a> of the visible units with some hidden units"),
        "rbm_T_peak": Output(("temperature", "thermo_layer"), "J/k_B", "thermometer's most probable temperature"),
        "rg_T_peak": Output(("temperature", "rg_level"), "J/k_B", "thermometer's most probable temperature"),
        "rbm_T_thermo": Output(("temperature", "thermo_layer"), "J/k_B", "thermometer reading of each RBM layer"),
        "rbm_p_thermo": Output(("temperature", "thermo_layer", "thermometer_temperatures"), "1",
                               "thermometer's probability of each temperature, per RBM layer"),
        "rg_T_thermo": Output(("temperature", "rg_level"), "J/k_B", "thermometer reading after each RG step"),
        "rg_p_thermo": Output(("temperature", "rg_level", "thermometer_temperatures"), "1",
                              "thermometer's probability of each temperature, after each RG step"),
        "rbm_*": Output(("temperature", "layer"), "1", "locality of the RBM layers' couplings"),
        "rg_*": Output(("temperature", "rg_step"), "1", "locality of the RG steps' couplings"),
    },
    "decimation_1d": {
        "K": Output(("temperature", "step"), "1", "nearest-neighbour coupling K = J/T after each decimation"),
        "K_exact": Output(("temperature", "step"), "1", "exact coupling tanh K' = tanh² K"),
    },
}
