"""`[analyze.<name>]` tables of the reductions that read trained models or train networks of their own (the
RG <-> deep-learning diagnostics, issues #8 and #21); import-light (no torch, numba or matplotlib) because the
job validator imports it. Each is named by its reduction's PLUGINS declaration; the class attributes
(`check_lattice`, OUTPUTS, FIGURE) are described in `hpc_rg.reduce.specs`.

Trained models are named by their `[train.<name>]` table, resolved to `<out>/models/<name>.pt`
(`model = "dbn"`, `thermometer = "thermo"`). Temperatures pick the nearest stored ladder points of the
ensemble (empty: all).
"""
from __future__ import annotations

from dataclasses import dataclass

from hpc_rg.reduce.specs import T_DOC, Output, dimension_problem, shown, windows_problem
from hpc_rg.schema import spec

_FIGURES = "hpc_rg.reduce.model_figures:"

_MODEL_DOC = "name of a [train.<name>] table (read from <out>/models/<name>.pt)"
_THERMO_DOC = "thermometer [train.<name>] table name (empty: no temperature read-out)"


@dataclass(frozen=True)
class ReceptiveFieldsSpec:
    model: str = spec(doc=_MODEL_DOC + "; a dbn, autoencoder or rbm")
    layers: tuple[int, ...] = spec((), min=1, doc="layers to analyse, 1-based (empty: all)")
    window: tuple[int, ...] = spec((), min=1, doc="side b of the b×b locality window per layer "
                                   "(empty: sqrt(n_visible / n_hidden of the layer), the blocking factor)")
    show: int = spec(25, min=1, doc="receptive fields drawn (and stored) per layer")
    bins: int = spec(20, min=2, doc="histogram bins of the per-unit locality distributions")
    OUTPUTS = {
        "*_mean": Output(("layer",), "1", "mean over the layer's units"),
        "*_median": Output(("layer",), "1", "median over the layer's units"),
        "uniform_window_fraction": Output(("layer",), "1", "window fraction of uniform weights (null model)"),
    }
    FIGURE = _FIGURES + "plot_receptive_fields"


@dataclass(frozen=True)
class ReconstructionsSpec:
    model: str = spec(doc=_MODEL_DOC + "; a dbn, rbm or autoencoder")
    temperatures: tuple[float, ...] = spec((), doc=T_DOC)
    show: int = spec(3, min=1, doc="samples (and their reconstructions) stored and drawn per temperature")
    n_blocks: int = spec(16, min=2, doc="jackknife blocks (chain stretches)")
    batch: int = spec(256, min=1, doc="configurations per streamed batch")
    max_samples: int = spec(0, min=0, doc="use at most this many samples per chain (0: all)")
    pca: tuple[int, ...] = spec((), min=1, doc="baselines: PCA with these numbers of components (fitted to the "
                                "other half of the chains), beside the magnetization-only output (default for "
                                "an autoencoder: 25)")
    pca_fit_samples: int = spec(10000, min=2, doc="configurations each PCA half is fitted to (at most)")
    FIGURE = _FIGURES + "plot_reconstructions"


@dataclass(frozen=True)
class RBMFlowSpec:
    model: str = spec(doc=_MODEL_DOC + "; an rbm whose visible layer is the lattice")
    thermometer: str = spec("", doc=_THERMO_DOC)
    temperatures: tuple[float, ...] = spec((), doc="initial sets: the ensemble's samples at these temperatures")
    lengths: tuple[int, ...] = spec((0, 1, 2, 3, 5, 10, 20, 30, 50), min=0,
                                    doc="flow lengths n recorded (v^(n+1) after n steps v->h->v; 0: the data)")
    window_spin: tuple[int, ...] = spec((1, 0), doc="[r_min, r_max] of the Δ_s fit (r_max 0: L/4)")
    window_energy: tuple[int, ...] = spec((1, 0), doc="[r_min, r_max] of the Δ_ε fit (r_max 0: L/4)")
    mode: str = spec("axes", choices=("axes", "radial"), doc="distance convention of the correlators")
    n_blocks: int = spec(16, min=2, doc="jackknife blocks (chain stretches of initial configurations)")
    batch: int = spec(250, min=1, doc="flows run together")
    max_samples: int = spec(0, min=0, doc="initial configurations per chain (0: all)")
    FIGURE = _FIGURES + "plot_rbm_flow"

    def validate(self):
        if not self.lengths or list(self.lengths) != sorted(set(self.lengths)):
            return "lengths", list(self.lengths), "strictly increasing flow lengths"
        return windows_problem(self)


@dataclass(frozen=True)
class VHCorrelatorsSpec:
    model: str = spec("", doc=_MODEL_DOC + "; a dbn (empty: block-spin RG only)")
    thermometer: str = spec("", doc=_THERMO_DOC)
    temperatures: tuple[float, ...] = spec((), doc=T_DOC)
    rg_steps: int = spec(3, min=0, doc="block-spin RG steps compared (64 -> 32 -> 16 -> 8 is 3)")
    block: int = spec(2, min=2, doc="block side b of the RG steps")
    kernel: str = spec("average", choices=("average", "majority", "decimation"),
                       doc="block rule (seed 002: Kadanoff averaging)")
    thermometer_rg: str = spec("kernel", choices=("kernel", "majority"),
                               doc="RG lattices the thermometer reads: kernel = the blocks of `kernel` (for "
                                   "average: the block means, as seed 002); majority = majority rule with "
                                   "coin-flip ties (the earlier choice)")
    show: int = spec(4, min=1, doc="maps stored and drawn per level")
    n_blocks: int = spec(8, min=2, doc="jackknife blocks (each needs one pass over its maps: keep it small)")
    batch: int = spec(128, min=1, doc="configurations per streamed batch")
    max_samples: int = spec(0, min=0, doc="use at most this many samples per chain (0: all)")
    OUTPUTS = {
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
    }
    FIGURE = _FIGURES + "plot_vh_correlators"


@dataclass(frozen=True)
class ThermometerCalibrationSpec:
    thermometer: str = spec(doc=_THERMO_DOC.split(" (")[0])
    files: tuple[str, ...] = spec((), doc="held-out ensembles (relative to the job file; empty: the job's)")
    temperatures: tuple[float, ...] = spec((), doc=T_DOC)
    n_blocks: int = spec(16, min=2, doc="jackknife blocks")
    batch: int = spec(256, min=1, doc="configurations per streamed batch")
    max_samples: int = spec(0, min=0, doc="use at most this many samples per chain (0: all)")
    FIGURE = _FIGURES + "plot_thermometer_calibration"


@dataclass(frozen=True)
class LearnedCoarseGrainingSpec:
    models: tuple[str, ...] = spec(doc="coarse_cnn [train.<name>] tables (e.g. frozen, 1, 2, 3 channels)")
    temperatures: tuple[float, ...] = spec((), doc=T_DOC + " (MI, iteration and MCRG)")
    discretize: tuple[str, ...] = spec(("sign", "exact"), doc="coarse variable for the MI: sign of tanh(w·s+c) "
                                       "per channel, and/or its exact finite set of values")
    estimator: str = spec("miller_madow", choices=("plugin", "miller_madow", "grassberger"),
                          doc="entropy bias correction")
    n_boot: int = spec(100, min=10, doc="bootstrap replicas of the MI")
    levels: int = spec(0, min=0, doc="blockings for the iterated kernel and MCRG (0: down to >= 3×3 blocks)")
    mcrg: bool = spec(True, doc="MCRG y_t, y_h of the learned kernel (sign(w·s)) vs majority rule")
    bins: int = spec(20, min=2, doc="accuracy histogram bins")
    n_blocks: int = spec(16, min=2, doc="sample blocks (jackknife / bootstrap)")
    batch: int = spec(64, min=1, doc="configurations per streamed batch")
    max_samples: int = spec(0, min=0, doc="use at most this many samples per chain (0: all)")
    FIGURE = _FIGURES + "plot_learned_coarse_graining"

    def validate(self):
        if not self.models:
            return "models", [], "at least one coarse_cnn model name"
        for d in self.discretize:
            if d not in ("sign", "exact"):
                return "discretize", list(self.discretize), "sign and/or exact"
        return None


@dataclass(frozen=True)
class DecimationNetworkSpec:
    temperatures: tuple[float, ...] = spec((), doc=T_DOC + " (a chain ensemble, model ising1d)")
    layers: int = spec(4, min=1, doc="decimation layers (each halves the chain)")
    flow_couplings: tuple[float, ...] = spec((0.5, 1.0, 1.5, 2.0, 3.0), gt=0,
                                             doc="starting couplings K = J/T of the drawn exact flows")
    n_blocks: int = spec(16, min=2, doc="jackknife blocks")
    batch: int = spec(512, min=1, doc="configurations per streamed batch")
    FIGURE = _FIGURES + "plot_decimation_network"

    def check_lattice(self, shape, source):
        problem = dimension_problem(shape, 1, source)
        if problem is None and (shape[0] % 2 or shape[0] < 4):
            return "", f"{shown(shape)} lattice", (f"a chain that can be halved at least once (L even, >= 4); "
                                                   f"{source} has L = {shape[0]}")
        return problem


@dataclass(frozen=True)
class NeuralMISpec:
    temperatures: tuple[float, ...] = spec((), doc=T_DOC)
    pairs: tuple[str, ...] = spec(("blocks",), doc="what I(X; Y) is of: blocks = neighbouring b×b blocks "
                                  "(the pairs of mutual_information); block_environment = a b×b block and its "
                                  "environment ring (width `shell`, beyond a `buffer`)")
    block: int = spec(3, min=1, max=8, doc="block side b")
    buffer: int = spec(0, min=0, doc="sites between a block and its environment ring (block_environment)")
    shell: int = spec(1, min=1, doc="width of the environment ring (block_environment)")
    estimator: str = spec("infonce", choices=("infonce", "nwj"), doc="variational lower bound: infonce "
                          "(low variance, at most log2 batch bits) or nwj (MINE-f: unbiased, noisier)")
    critic: str = spec("separable", choices=("separable", "concat"), doc="separable f = g(x)·h(y) (batch "
                       "evaluations per step) or concat f = MLP([x, y]) (batch² evaluations)")
    hidden: int = spec(64, min=1, doc="units per hidden layer of the critic")
    layers: int = spec(2, min=1, doc="hidden layers of the critic MLP(s)")
    embed: int = spec(16, min=1, doc="embedding dimension of the separable critic")
    steps: int = spec(2000, min=1, doc="Adam steps per critic")
    batch: int = spec(256, min=2, doc="pairs per batch, each from a different configuration (the others are "
                      "the negatives)")
    lr: float = spec(1e-3, gt=0, doc="Adam learning rate")
    seeds: int = spec(3, min=1, doc="independent critics (dealt to the ranks): mean and spread")
    test_fraction: float = spec(0.25, gt=0, max=0.9, doc="configurations held out for the evaluation")
    max_pairs: int = spec(0, min=0, doc="pairs kept per configuration (a seeded subset; 0: all)")
    models: tuple[str, ...] = spec((), doc="coarse_cnn or rsmi [train.<name>] tables (block = b <= 4): the MI of "
                                   "the real-valued images of neighbouring blocks (no discretisation), beside the "
                                   "histograms of their exact values and of their signs (seed 000's Table 2)")
    histogram: bool = spec(True, doc="also the bias-corrected histogram MI of the same pairs (blocks: b <= 4; "
                           "block_environment: at most 31 environment sites)")
    max_samples: int = spec(0, min=0, doc="use at most this many samples per chain (0: all)")

    def validate(self):
        for p in self.pairs:
            if p not in ("blocks", "block_environment"):
                return "pairs", list(self.pairs), "blocks and/or block_environment"
        if not self.pairs:
            return "pairs", [], "at least one of blocks, block_environment"
        if self.models and self.block > 4:
            return "block", self.block, "at most 4 with models (every block state's image is tabulated)"
        return None

    def check_lattice(self, shape, source):
        problem = dimension_problem(shape, 2, source)
        if problem is None and "blocks" in self.pairs and any(n % self.block for n in shape):
            return "block", self.block, (f"a block side dividing the {shown(shape)} lattice of {source} "
                                         "(neighbouring blocks of a periodic tiling)")
        return problem


@dataclass(frozen=True)
class CoarseRulesSpec:
    temperatures: tuple[float, ...] = spec((), doc=T_DOC)
    block: int = spec(2, min=2, doc="block side b of every rule")
    rules: tuple[str, ...] = spec(("majority",), doc="built-in rules: majority (sign of the block sum, ties by "
                                  "a seeded coin)")
    models: tuple[str, ...] = spec((), doc="rsmi or coarse_cnn [train.<name>] tables whose b×b kernel (first "
                                   "channel) becomes the rule sign(w·s); rbm or dbn tables: the mean b×b window "
                                   "of largest Σ|W| of the first-layer fields (docs/rsmi.md)")
    rbm_min_share: float = spec(0.05, gt=0, max=1, doc="rbm/dbn models: a hidden unit's field enters the rule "
                                "when its best b×b window holds at least this share of Σ|W| (b²/N: spread evenly)")
    rbm_min_units: int = spec(8, min=1, doc="rbm/dbn models: fewer qualifying hidden units is refused (exit 2)")
    buffer: int = spec(1, min=0, doc="sites between a block and its environment ring, for I(H; E)")
    shell: int = spec(1, min=1, doc="width of the environment ring, for I(H; E)")
    estimator: str = spec("infonce", choices=("infonce", "nwj"), doc="neural bound for I(H; E)")
    steps: int = spec(1000, min=1, doc="Adam steps per critic")
    batch: int = spec(256, min=2, doc="pairs per batch (from distinct configurations)")
    lr: float = spec(1e-3, gt=0, doc="Adam learning rate of the critic")
    seeds: int = spec(2, min=1, doc="independent critics per rule (dealt to the ranks)")
    test_fraction: float = spec(0.25, gt=0, max=0.9, doc="configurations held out for the MI evaluation")
    max_pairs: int = spec(0, min=0, doc="blocks per configuration used for I(H; E) (a seeded subset; 0: all)")
    mcrg: bool = spec(True, doc="MCRG y_t, y_h per level for every rule")
    n_blocks: int = spec(16, min=2, doc="jackknife blocks (couplings, MCRG)")
    max_samples: int = spec(0, min=0, doc="use at most this many samples per chain (0: all)")

    def validate(self):
        for r in self.rules:
            if r != "majority":
                return "rules", list(self.rules), "majority (learned rules come from `models`)"
        if not self.rules and not self.models:
            return "rules", [], "at least one rule or model"
        return None

    def check_lattice(self, shape, source):
        return dimension_problem(shape, 2, source)
