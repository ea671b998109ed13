"""`[analyze.<name>]` tables of the reductions of ensembles alone (`reductions`), the import-light face of
each reduction (no numba/torch/matplotlib: the job validator imports it); `SPECS` and `OUTPUTS`, every
declared reduction's spec class and result labels by name, read from the plugin declarations.

A table's name is the reduction's name (e.g. `[analyze.mcrg]`).  Temperatures select the nearest ladder
points of the ensemble (empty: all); `files` name further ensembles (one per L), relative to the job file.
Besides its keys a spec class may carry (see `registry`): `validate()`, `check_lattice(shape, source)` ->
(key, found, allowed) or None, `OUTPUTS` ({quantity pattern: Output}) and `FIGURE` ("module:function").
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from hpc_rg.schema import spec

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



def shown(shape) -> str:
    return " x ".join(map(str, shape))


def dimension_problem(shape, dim: int, source: str):
    """(key, found, allowed) when the lattice `shape` of `source` is not `dim`-dimensional, else None."""
    if dim == 1 and len(shape) != 1:
        return "", f"{shown(shape)} lattice", f"a 1D chain (model ising1d); {source} is {len(shape)}D"
    if dim == 2 and len(shape) != 2:
        return "", f"{shown(shape)} lattice", f"a 2D lattice; {source} is {len(shape)}D"
    return None


def max_levels(side: int, b: int, least: int) -> int:
    """The most blockings by b of a side that leave at least `least` sites."""
    n = 0
    while side // b ** (n + 1) >= least:
        n += 1
    return n


def windows_problem(spec):
    """(key, found, allowed) when a fit window `window_spin` / `window_energy` is not [r_min >= 1, r_max]."""
    for key in ("window_spin", "window_energy"):
        w = getattr(spec, key)
        if len(w) != 2 or w[0] < 1 or (w[1] and w[1] <= w[0]):
            return key, list(w), "[r_min >= 1, r_max > r_min or 0]"
    return None


def weights_problem(spec, kernel_named_weights: bool):
    """(key, found, allowed) when the 'weights' kernel is chosen without b² weights, else None."""
    if kernel_named_weights and len(spec.weights) != spec.block ** 2:
        return "weights", list(spec.weights), f"{spec.block ** 2} numbers (block²) for the weights kernel"
    return None


T_DOC = "ladder temperatures to reduce (nearest stored ones; empty: all)"
_FILES_DOC = "ensemble files, one per L (relative to the job file; empty: the job's <out>/ensemble.h5)"


@dataclass(frozen=True)
class ObservablesSpec:
    files: tuple[str, ...] = spec((), doc=_FILES_DOC)
    n_blocks: int = spec(32, min=2, doc="jackknife blocks (chain stretches) per temperature")
    reweight_points: int = spec(0, min=0, doc="grid points of a reweighted curve across the ladder (0: off)")
    OUTPUTS = {
        "energy*": Output(("temperature",), "J", "energy per spin ⟨e⟩"),
        "abs_m*": Output(("temperature",), "1", "mean absolute magnetization per spin ⟨|m|⟩"),
        "m2*": Output(("temperature",), "1", "mean squared magnetization per spin ⟨m²⟩"),
        "susceptibility*": Output(("temperature",), "1/J", "susceptibility per spin N(⟨m²⟩ − ⟨|m|⟩²)/T"),
        "specific_heat*": Output(("temperature",), "k_B", "specific heat per spin N(⟨e²⟩ − ⟨e⟩²)/T²"),
        "binder*": Output(("temperature",), "1", "Binder cumulant U = 1 − ⟨m⁴⟩/(3⟨m²⟩²)"),
        "tau_int_*": Output(("temperature",), "samples", "integrated autocorrelation time"),
    }
    FIGURE = "hpc_rg.reduce.ensemble_figures:plot_observables"


@dataclass(frozen=True)
class BinderCrossingSpec:
    files: tuple[str, ...] = spec(doc="ensemble files, one per L, the same ladder region (>= 2)")
    n_grid: int = spec(401, min=10, doc="temperature grid points between the ladder ends")
    reweighting: bool = spec(True, doc="single-histogram reweighting between ladder points (else linear)")
    n_blocks: int = spec(16, min=2, doc="jackknife blocks per ensemble")
    OUTPUTS = {
        "T_c": Output(("pair",), "J/k_B", "temperature where U_L and U_L' cross"),
        "U_cross": Output(("pair",), "1", "Binder cumulant at the crossing"),
    }
    FIGURE = "hpc_rg.reduce.ensemble_figures:plot_binder"

    def validate(self):
        if len(self.files) < 2:
            return "files", list(self.files), "at least two ensemble files (different L)"
        return None


@dataclass(frozen=True)
class CorrelatorsSpec:
    temperatures: tuple[float, ...] = spec((), doc=T_DOC)
    mode: str = spec("axes", choices=("axes", "radial"), doc="distance: along the axes or binned Euclidean")
    n_blocks: int = spec(32, min=2, doc="jackknife blocks")
    batch: int = spec(32, min=1, doc="configurations per streamed batch (memory bound)")
    max_samples: int = spec(0, min=0, doc="use at most this many samples per chain (0: all)")
    OUTPUTS = {
        "G_s": Output(("temperature", "r"), "1", "spin-spin correlator G(r)"),
        "G_eps": Output(("temperature", "r"), "J²", "connected energy-density correlator"),
        "abs_m": Output(("temperature",), "1", "mean absolute magnetization per spin ⟨|m|⟩"),
        "m2": Output(("temperature",), "1", "mean squared magnetization per spin ⟨m²⟩"),
        "eps": Output(("temperature",), "J", "energy density ε"),
    }
    FIGURE = "hpc_rg.reduce.ensemble_figures:plot_correlators"


@dataclass(frozen=True)
class ScalingDimensionsSpec:
    temperatures: tuple[float, ...] = spec((), doc=T_DOC)
    window_spin: tuple[int, ...] = spec((2, 0), doc="[r_min, r_max] of the spin fit (r_max 0: L/4)")
    window_energy: tuple[int, ...] = spec((2, 0), doc="[r_min, r_max] of the energy-density fit (0: L/4)")
    files: tuple[str, ...] = spec((), doc="ensembles at other L for the finite-size estimators")
    fss_r_over_L: tuple[float, ...] = spec((0.125, 0.25), min=0.0, max=0.5,
                                           doc="r/L range whose mean correlator scales as L^{-2Δ}")
    mode: str = spec("axes", choices=("axes", "radial"), doc="distance convention of the profiles")
    n_blocks: int = spec(32, min=2, doc="jackknife blocks")
    batch: int = spec(32, min=1, doc="configurations per streamed batch")
    max_samples: int = spec(0, min=0, doc="use at most this many samples per chain (0: all)")
    OUTPUTS = {
        "delta_*_chi2_dof": Output(("temperature",), "1", "χ² per degree of freedom of the fit"),
        "delta_*": Output(("temperature",), "1", "scaling dimension Δ"),
        "fss_*": Output(("fss_L",), "1", "finite-size scaling input at each L"),
    }
    FIGURE = "hpc_rg.reduce.ensemble_figures:plot_scaling"

    def validate(self):
        problem = windows_problem(self)
        if problem:
            return problem
        if len(self.fss_r_over_L) != 2 or not self.fss_r_over_L[0] <= self.fss_r_over_L[1]:
            return "fss_r_over_L", list(self.fss_r_over_L), "[low, high] with low <= high"
        return None


@dataclass(frozen=True)
class MutualInformationSpec:
    temperatures: tuple[float, ...] = spec((), doc=T_DOC)
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
    OUTPUTS = {
        "I_*": Output(("temperature",), "bit", "mutual information"),
    }
    FIGURE = "hpc_rg.reduce.ensemble_figures:plot_mi"

    def validate(self):
        for k in self.kernels:
            if k not in ("majority", "average", "decimation", "weights"):
                return "kernels", list(self.kernels), "majority, average, decimation or weights"
        return weights_problem(self, "weights" in self.kernels)

    def check_lattice(self, shape, source):
        return dimension_problem(shape, 2, source)


@dataclass(frozen=True)
class BlockRGSpec:
    temperatures: tuple[float, ...] = spec((), doc=T_DOC)
    block: int = spec(2, min=2, doc="block side b")
    kernel: str = spec("majority", choices=("majority", "average", "decimation", "weights"), doc="block rule")
    weights: tuple[float, ...] = spec((), doc="b×b kernel weights for kernel = weights")
    levels: int = spec(3, min=1, doc="blockings applied (64 → 32 → 16 → 8 is 3)")
    n_blocks: int = spec(32, min=2, doc="jackknife blocks")
    batch: int = spec(32, min=1, doc="configurations per streamed batch")
    OUTPUTS = {
        "abs_m": Output(("temperature", "level"), "1", "⟨|m|⟩ of the blocked lattice"),
        "m2": Output(("temperature", "level"), "1", "⟨m²⟩ of the blocked lattice"),
        "binder": Output(("temperature", "level"), "1", "Binder cumulant of the blocked lattice"),
        "nn": Output(("temperature", "level"), "1", "nearest-neighbour correlation of the blocked lattice"),
        "*": Output(("temperature", "level")),
    }
    FIGURE = "hpc_rg.reduce.ensemble_figures:plot_block_rg"
    MIN_SIDE = 2   # a 1 x 1 lattice has no nearest-neighbour pair

    def validate(self):
        return weights_problem(self, self.kernel == "weights")

    def check_lattice(self, shape, source):
        problem = dimension_problem(shape, 2, source)
        side = min(shape)
        if problem is None and side // self.block ** self.levels < self.MIN_SIDE:
            return "levels", self.levels, (f"at most {max_levels(side, self.block, self.MIN_SIDE)} blockings by "
                                           f"{self.block} of the {shown(shape)} lattice of {source} (the coarsest "
                                           f"must be at least {self.MIN_SIDE} x {self.MIN_SIDE})")
        return problem


@dataclass(frozen=True)
class MCRGSpec:
    temperatures: tuple[float, ...] = spec((), doc=T_DOC)
    block: int = spec(2, min=2, doc="block side b")
    kernel: str = spec("majority", choices=("majority", "decimation", "weights"), doc="block rule (±1 images)")
    weights: tuple[float, ...] = spec((), doc="b×b kernel weights for kernel = weights")
    levels: int = spec(0, min=0, doc="blockings (0: down to an 8×8 lattice)")
    n_even: int = spec(4, min=1, max=4, doc="even operators used (nn, nnn, third, plaquette)")
    n_odd: int = spec(2, min=1, max=2, doc="odd operators used (m, three-spin)")
    n_blocks: int = spec(32, min=2, doc="jackknife blocks")
    batch: int = spec(32, min=1, doc="configurations per streamed batch")
    OUTPUTS = {
        "y_t": Output(("temperature", "level_from"), "1", "thermal RG eigenvalue exponent y_t"),
        "y_h": Output(("temperature", "level_from"), "1", "magnetic RG eigenvalue exponent y_h"),
    }
    FIGURE = "hpc_rg.reduce.ensemble_figures:plot_mcrg"
    MIN_SIDE = 4   # third-neighbour and plaquette operators on a 2 x 2 lattice coincide: a singular fit

    def validate(self):
        return weights_problem(self, self.kernel == "weights")

    def levels_on(self, side: int) -> int:
        """The blockings applied to a lattice of this side (levels = 0: down to about 8 x 8)."""
        return self.levels or max(1, int(math.floor(math.log(side / 8) / math.log(self.block))))

    def check_lattice(self, shape, source):
        problem = dimension_problem(shape, 2, source)
        side = min(shape)
        if problem is None and side // self.block ** self.levels_on(side) < self.MIN_SIDE:
            return "levels", self.levels, (f"at most {max_levels(side, self.block, self.MIN_SIDE)} blockings by "
                                           f"{self.block} of the {shown(shape)} lattice of {source} (the coarsest "
                                           f"must be at least {self.MIN_SIDE} x {self.MIN_SIDE}; 0 means down to "
                                           "about 8 x 8)")
        return problem


@dataclass(frozen=True)
class Decimation1DSpec:
    temperatures: tuple[float, ...] = spec((), doc=T_DOC)
    steps: int = spec(3, min=1, doc="decimations applied (b = 2 each)")
    n_blocks: int = spec(32, min=2, doc="jackknife blocks")
    batch: int = spec(256, min=1, doc="configurations per streamed batch")
    OUTPUTS = {
        "K": Output(("temperature", "step"), "1", "nearest-neighbour coupling K = J/T after each decimation"),
        "K_exact": Output(("temperature", "step"), "1", "exact coupling tanh K' = tanh² K"),
    }
    FIGURE = "hpc_rg.reduce.ensemble_figures:plot_decimation"

    def check_lattice(self, shape, source):
        problem = dimension_problem(shape, 1, source)
        step = 2 ** self.steps
        if problem is None and (shape[0] % step or shape[0] // step < 2):
            return "steps", self.steps, (f"decimations that leave a periodic chain of >= 2 sites: L = {shape[0]} of "
                                         f"{source} divisible by 2^steps")
        return problem


class _Declared(Mapping):
    """{reduction name: value} over the declared reduction plugins, read when asked (a plugin registered
    later, or named in HPC_RG_PLUGINS, is in it); importing it imports no reduction."""

    def __init__(self, value):
        self._value = value

    def _table(self):
        from hpc_rg.reduce import registry     # registry -> plugins; imported when first read
        return registry, registry.declared()

    def __getitem__(self, name):
        registry, table = self._table()
        if name not in table:
            raise KeyError(name)
        return self._value(registry, name)

    def __iter__(self):
        return iter(self._table()[1])

    def __len__(self):
        return len(self._table()[1])


# every declared reduction's spec class, and its results.h5 labels, by name (config.py, docs_gen, results.py)
SPECS: Mapping[str, type] = _Declared(lambda registry, name: registry.spec_class(name))
OUTPUTS: Mapping[str, dict] = _Declared(lambda registry, name: registry.outputs(name))
