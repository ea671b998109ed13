"""The `[train.<name>]` tables: one frozen dataclass per model kind, validated by `hpc_rg.config`.

A kind is declared by a learner plugin in its model's module (`PLUGINS` in rbm.py, ...) naming its spec;
`SPECS` ({kind: spec}) and `KINDS` are derived from those declarations, so a kind from outside the package
(HPC_RG_PLUGINS) is a [train] kind like these. Each spec checks its table against the data (`check_data`)
and says what the tune stage may search for (`tune_metrics`, `loss_monitor`).

Import-cheap on purpose (no torch, no numba): the job-file validator imports it. Defaults are the seed
papers' hyperparameters:
  rbm          seed 002 (de Mello Koch et al.): ±1 units, 100 -> 81, Adam lr 1e-3, batch 1000, 30000 steps
  dbn          seed 001 (Mehta & Schwab): {0,1} units, 1600-400-100-25, CD-1, 200 epochs per layer,
               momentum 0.5, batch 100, L1 2e-4 (learning rate 0.1 of the Hinton-Salakhutdinov code they used)
  autoencoder  seed 003: 1600-400-100-25, ReLU encoder, tanh decoder, MSE + L1 5e-4, batch 100, 400 epochs
  coarse_cnn   seed 000 (Nguyen & Howe): 3x3 conv stride 3 (tanh), Dense 9 ReLU, 10 ReLU, sigmoid; 5000 train /
               2000 test patches of 9x9, Adam, 500 repeats
  rsmi         issue #21 (Koch-Janusz & Ringel 2018; RSMI-NE, Gökmen et al. 2021): a b x b coarse-graining map
               trained to maximise the InfoNCE bound on I(H; environment), critic trained jointly
  thermometer  seed 002: a supervised classifier over the training temperatures (architecture not given in
               the paper; ours is a small translation-invariant CNN, so it also reads coarse-grained lattices)
`batch_size` is always the global batch: under DDP each of N ranks takes batch_size / N samples per step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from hpc_rg import plugins
from hpc_rg.schema import spec

Problem = tuple[str, Any, str] | None    # (key, found, allowed) of a table that cannot train on its data

# the per-epoch validation monitors of the recurrent kinds (`val_<k>` for the task's evaluation keys)
_RBM_MONITORS = {"val_reconstruction": "minimize", "val_pseudo_log_likelihood": "maximize",
                 "val_free_energy": "minimize", "val_loss": "minimize"}


@dataclass(frozen=True)
class TrainSpec:
    """The keys every model kind has. A kind's spec adds its own, and says what the tune stage may search
    for (`tune_metrics`: the per-epoch validation monitors `val_<k>` with the better direction; `loss_monitor`:
    the monitor `val_loss` stands for) and what its data must be like (`check_data`)."""
    tune_metrics: ClassVar[dict[str, str]] = {}
    loss_monitor: ClassVar[str] = ""

    ensemble: str = spec("", doc="ensemble file relative to the job file's folder (default <out>/ensemble.h5)")
    temperatures: tuple[float, ...] = spec((), doc="temperatures of the ensemble to train on (default: all)")
    samples: int = spec(0, min=0, doc="use at most this many configurations per temperature (0: all)")
    epochs: int = spec(10, min=1, doc="passes over the training set (per layer for stacks)")
    batch_size: int = spec(100, min=1, doc="global mini-batch size (split evenly over DDP ranks)")
    optimizer: Literal["sgd", "adam"] = spec("adam", doc="parameter update rule")
    lr: float = spec(1e-3, gt=0, doc="learning rate")
    momentum: float = spec(0.0, min=0, max=1, doc="SGD momentum")
    l1: float = spec(0.0, min=0, doc="L1 penalty on weights (sparsity)")
    l2: float = spec(0.0, min=0, doc="L2 penalty on weights (weight decay)")
    lr_schedule: Literal["constant", "exponential", "cosine"] = spec("constant", doc="learning-rate schedule "
                                                                     "over epochs")
    lr_gamma: float = spec(0.99, gt=0, max=1, doc="per-epoch factor of the exponential schedule")
    test_fraction: float = spec(0.1, min=0, max=0.9, doc="fraction held out for monitors / test metrics")
    repeats: int = spec(1, min=1, doc="independent trainings (different seeds) dealt to ranks as tasks; "
                        "1: one model, data-parallel over all ranks")
    device: Literal["auto", "cpu", "cuda"] = spec("auto", doc="auto: CUDA when present")

    def validate(self):
        if self.temperatures and any(t < 0 for t in self.temperatures):
            return "temperatures", list(self.temperatures), "temperatures >= 0"
        return None

    def check_data(self, shape: tuple[int, ...], temperatures: tuple[float, ...], source: str) -> Problem:
        """A problem of this table with a lattice of `shape` at the selected `temperatures` of `source`."""
        return None

    def training_samples(self, n: int) -> int:
        """Training samples out of `n` configurations (as `hpc_rg.learn.data.split` cuts them)."""
        return n - int(round(self.test_fraction * n))


def _check_layers(layers, shape, source) -> Problem:
    sites = math.prod(shape)
    if layers[0] != sites:
        return "layers", list(layers), f"first size {sites} (the lattice of {source} has {list(shape)} sites)"
    return None


@dataclass(frozen=True)
class RBMSpec(TrainSpec):
    tune_metrics: ClassVar[dict[str, str]] = _RBM_MONITORS
    loss_monitor: ClassVar[str] = "reconstruction"
    units: Literal["spin", "binary"] = spec("spin", doc="spin: ±1 units (tanh means); binary: {0,1} (sigmoid)")
    n_hidden: int = spec(81, min=1, doc="hidden units")
    init_scale: float = spec(0.01, gt=0, doc="standard deviation of the initial weights (normal; biases 0); "
                             "not given by seed 002")
    cd_k: int = spec(1, min=1, doc="Gibbs steps of contrastive divergence")
    persistent: bool = spec(False, doc="persistent CD: negative chains carried across mini-batches")
    epochs: int = spec(1000, min=1, doc="passes over the training set (seed 002: 30000 steps of 1000)")
    batch_size: int = spec(1000, min=1, doc="global mini-batch size")
    ais_runs: int = spec(100, min=0, doc="AIS runs for log Z at the end (0: off; exact when enumerable)")
    ais_betas: int = spec(1000, min=2, doc="intermediate distributions of AIS")


@dataclass(frozen=True)
class DBNSpec(TrainSpec):
    tune_metrics: ClassVar[dict[str, str]] = _RBM_MONITORS
    loss_monitor: ClassVar[str] = "reconstruction"
    layers: tuple[int, ...] = spec((1600, 400, 100, 25), min=1, doc="units per layer, visible first")
    units: Literal["spin", "binary"] = spec("binary", doc="unit values of every layer")
    cd_k: int = spec(1, min=1, doc="Gibbs steps of contrastive divergence")
    persistent: bool = spec(False, doc="persistent CD")
    propagate: Literal["mean", "sample"] = spec("mean", doc="what a trained layer passes up as data: "
                                                "conditional means or sampled units")
    epochs: int = spec(200, min=1, doc="epochs per layer")
    optimizer: Literal["sgd", "adam"] = spec("sgd", doc="parameter update rule")
    lr: float = spec(0.1, gt=0, doc="learning rate")
    momentum: float = spec(0.5, min=0, max=1, doc="SGD momentum")
    l1: float = spec(2e-4, min=0, doc="L1 penalty on weights")
    ais_runs: int = spec(0, min=0, doc="AIS runs for each layer's log Z at the end (0: off)")
    ais_betas: int = spec(1000, min=2, doc="intermediate distributions of AIS")
    init_scale: float = spec(0.01, gt=0, doc="standard deviation of the initial weights (matrbm: 0.1)")
    average_last: int = spec(0, min=0, doc="epochs at the end of each layer over which the weights are "
                             "averaged after every update, the average becoming the layer's weights (matrbm's "
                             "avglast = 5; 0: off)")

    def validate(self):
        if len(self.layers) < 2:
            return "layers", list(self.layers), "at least two layer sizes (visible, hidden)"
        if self.average_last >= self.epochs:
            return "average_last", self.average_last, f"at most epochs - 1 = {self.epochs - 1} (the window opens " \
                "at the end of an epoch)"
        return super().validate()

    def check_data(self, shape, temperatures, source) -> Problem:
        return _check_layers(self.layers, shape, source)


@dataclass(frozen=True)
class AutoencoderSpec(TrainSpec):
    tune_metrics: ClassVar[dict[str, str]] = {"val_mse": "minimize", "val_loss": "minimize"}
    loss_monitor: ClassVar[str] = "mse"
    layers: tuple[int, ...] = spec((1600, 400, 100, 25), min=1, doc="encoder sizes, input first; the decoder "
                                   "mirrors them")
    epochs: int = spec(400, min=1, doc="passes over the training set")
    l1: float = spec(5e-4, min=0, doc="L1 penalty on weights")
    l1_placement: Literal["all", "encoder", "none"] = spec("all", doc="which layers the L1 term covers "
                                                           "(yadlt, the library seed 003 likely used: encoder)")
    l1_target: Literal["weights", "weights+biases"] = spec("weights", doc="L1 over the weights only, or weights "
                                                           "and biases (yadlt)")
    loss: Literal["mse", "rmse"] = spec("mse", doc="reconstruction loss: mean squared error, or its square root "
                                        "(yadlt's 'mean_squared')")
    init: Literal["default", "truncated_normal"] = spec("default", doc="weight initialisation: torch's Linear "
                                                        "default, or a normal of sd init_scale cut at 2 sd "
                                                        "(biases 0; yadlt)")
    init_scale: float = spec(0.1, gt=0, doc="sd of the truncated-normal initialisation")
    tied: bool = spec(False, doc="decoder weights = encoder weights transposed (yadlt's default)")
    pretraining: Literal["none", "rbm"] = spec("none", doc="greedy RBM pretraining (Gaussian visibles first, "
                                               "{0,1} RBMs above) before the fine-tuning")
    pretrain_epochs: int = spec(10, min=1, doc="epochs per pretrained layer")
    pretrain_lr: float = spec(1e-2, gt=0, doc="SGD learning rate of the pretraining (with `momentum`)")
    pretrain_cd_k: int = spec(1, min=1, doc="Gibbs steps of the pretraining's contrastive divergence")
    learn_sigma: bool = spec(False, doc="learn the Gaussian visible units' sd (else fixed at 1)")

    def validate(self):
        if len(self.layers) < 2:
            return "layers", list(self.layers), "at least two layer sizes"
        return super().validate()

    def check_data(self, shape, temperatures, source) -> Problem:
        return _check_layers(self.layers, shape, source)


@dataclass(frozen=True)
class CoarseCNNSpec(TrainSpec):
    tune_metrics: ClassVar[dict[str, str]] = {"val_accuracy": "maximize", "val_bce": "minimize",
                                              "val_loss": "minimize"}
    loss_monitor: ClassVar[str] = "bce"
    block: int = spec(3, min=2, doc="b: the convolution is b x b with stride b; patches are b^2 x b^2")
    channels: int = spec(1, min=1, max=3, doc="convolution channels (coarse-grained variables per block)")
    hidden: int = spec(10, min=1, doc="hidden units of the MLP")
    frozen: bool = spec(False, doc="fix the kernel to the boundary average (1/8 on the edge, 0 at the "
                        "centre for b = 3) and train only the MLP")
    head: Literal["dense_input", "relu_on_coarse"] = spec("dense_input", doc="the MLP: dense_input = Dense(b^2, "
                                                          "ReLU) input layer, Dense(hidden, ReLU), sigmoid (the "
                                                          "paper's Keras-style MLP); relu_on_coarse = ReLU on the "
                                                          "tanh coarse image, Dense(hidden, ReLU), sigmoid (the "
                                                          "earlier reading: drops the sign of negative blocks)")
    control: bool = spec(False, doc="leak check: both classes scrambled (accuracy must be ~0.5)")
    n_train: int = spec(5000, min=2, doc="training patches (half correlated, half scrambled)")
    n_test: int = spec(2000, min=2, doc="test patches (balanced)")
    epochs: int = spec(30, min=1, doc="passes over the training patches")
    batch_size: int = spec(50, min=1, doc="global mini-batch size")
    lr: float = spec(1e-2, gt=0, doc="Adam learning rate")
    repeats: int = spec(500, min=1, doc="trainings from different initialisations (seed 000: 500)")
    group: int = spec(50, min=1, doc="repeats trained at once as one batched model (the unit dealt to "
                      "ranks and resumed; results do not depend on it beyond float summation order)")

    def validate(self):
        if self.frozen and self.channels != 1:
            return "channels", self.channels, "1 with frozen = true (the boundary average is one kernel)"
        if self.batch_size > self.n_train:
            return "batch_size", self.batch_size, f"at most n_train = {self.n_train} (the training patches)"
        return super().validate()

    def check_data(self, shape, temperatures, source) -> Problem:
        if len(shape) != 2 or min(shape) < self.block * self.block:
            return "block", self.block, f"a block b with b^2 <= the lattice side {list(shape)} of {source}"
        return None

    def training_samples(self, n: int) -> int:
        return self.n_train     # patches cut from the configurations (batch_size <= n_train: `validate`)


@dataclass(frozen=True)
class ThermometerSpec(TrainSpec):
    tune_metrics: ClassVar[dict[str, str]] = {"val_accuracy": "maximize", "val_cross_entropy": "minimize",
                                              "val_abs_error_T": "minimize", "val_loss": "minimize"}
    loss_monitor: ClassVar[str] = "cross_entropy"
    channels: int = spec(16, min=1, doc="convolution channels")
    hidden: int = spec(64, min=1, doc="hidden units of the head")
    inputs: Literal["conv", "conv_m"] = spec("conv", doc="conv: pooled convolution features only (local "
                                             "densities, read consistently on any lattice size); conv_m: also "
                                             "the hand-made global |m| and m² (size-dependent; the earlier "
                                             "thermometer)")
    epochs: int = spec(30, min=1, doc="passes over the training set")
    batch_size: int = spec(100, min=1, doc="global mini-batch size")

    def check_data(self, shape, temperatures, source) -> Problem:
        if len(temperatures) < 2 or len(shape) != 2:
            return "temperatures", list(temperatures), \
                f"at least two temperatures of a 2D ensemble ({source} is {list(shape)})"
        return None


@dataclass(frozen=True)
class RSMISpec(TrainSpec):
    # the InfoNCE bound on I(H; E), the quantity RSMI maximises
    tune_metrics: ClassVar[dict[str, str]] = {"val_mi_bits": "maximize"}
    block: int = spec(2, min=1, doc="side b of the block V that one coarse variable set H = Λ(V) replaces")
    channels: int = spec(1, min=1, max=8, doc="coarse variables per block (channels of Λ)")
    buffer: int = spec(1, min=0, doc="sites between the block and its environment, ignored (short-range "
                       "correlations the coarse variable should not chase)")
    shell: int = spec(2, min=1, doc="width of the environment ring E beyond the buffer")
    mlp: int = spec(0, min=0, doc="Λ: 0 = linear b x b kernel per channel (no bias); > 0 = MLP with this many "
                    "tanh hidden units")
    relax: Literal["tanh", "gumbel"] = spec("tanh", doc="relaxed discrete output: tanh(Λ/τ), or binary "
                                            "Gumbel-softmax tanh((Λ + logistic noise)/2τ)")
    tau_start: float = spec(1.0, gt=0, doc="relaxation temperature τ at the start (annealed geometrically)")
    tau_end: float = spec(0.1, gt=0, doc="τ after the last epoch")
    hidden: int = spec(64, min=1, doc="hidden units per layer of the critic MLPs")
    layers: int = spec(2, min=1, doc="hidden layers of the critic MLPs")
    embed: int = spec(16, min=1, doc="embedding dimension of the separable critic")
    epochs: int = spec(20, min=1, doc="passes over the training configurations (one window per "
                       "configuration per epoch, at a random place)")
    batch_size: int = spec(256, min=2, doc="configurations per batch (K: the bound is at most log2 K bits)")
    lr: float = spec(3e-3, gt=0, doc="learning rate (map and critic)")

    def validate(self):
        if self.tau_end > self.tau_start:
            return "tau_end", self.tau_end, f"at most tau_start = {self.tau_start} (τ is annealed downwards)"
        return super().validate()

    def check_data(self, shape, temperatures, source) -> Problem:
        """The window (block + buffer + shell on each side) must fit a 2D lattice without wrapping onto itself."""
        w = self.block + 2 * (self.buffer + self.shell)
        if len(shape) != 2 or min(shape) < w:
            return "shell", self.shell, f"a window block + 2 (buffer + shell) = {w} that fits the 2D lattice " \
                f"{list(shape)} of {source}"
        return None


def __getattr__(name: str):
    """`SPECS` ({kind: spec class}) and `KINDS`, derived from the learner plugins on every access (a plugin
    module named in HPC_RG_PLUGINS counts; declarations are read, not imported: no torch)."""
    if name in ("SPECS", "KINDS"):
        table = plugins.table("learner")
        return {kind: p.load_spec() for kind, p in table.items()} if name == "SPECS" else tuple(table)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def kind_of(spec) -> str:
    """The kind whose learner plugin declares `type(spec)` as its spec."""
    for kind, plugin in plugins.table("learner").items():
        if plugin.load_spec() is type(spec):
            return kind
    raise TypeError(f"not a train spec: {spec!r}")
