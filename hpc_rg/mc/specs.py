"""`[simulate]`: the Monte Carlo stage's table, and the checks of it that need no ensemble.

Conventions: k_B = 1, coupling J in units of energy, temperatures T (not beta) in the job file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Optional

from hpc_rg import plugins
from hpc_rg.mc.gpu_select import gpu_fits, gpu_variant
from hpc_rg.schema import ConfigError, coerce, dataclass_to_table, did_you_mean, spec, table_to_dataclass

# the lattice models and their samplers are plugins declared next to their code (hpc_rg/lattice, hpc_rg/mc),
# read when a job is checked (not at import: a bad $HPC_RG_PLUGINS is then a job error, one line and exit 2)
def models() -> tuple[str, ...]:
    return tuple(sorted(plugins.names("model")))


def algorithms(model: str) -> tuple[str, ...]:
    """The update algorithms declared for `model` (sampler plugins on the CPU; a GPU kernel is a variant)."""
    return tuple(sorted(plugins.names("sampler", model=model)))


@dataclass(frozen=True)
class SimulateConfig:
    model: str = spec(doc="the lattice model: ising1d | ising2d | longrange2d, or a plugin's")
    L: int = spec(min=2, doc="linear size (sites per side)")
    Ly: int = spec(0, min=0, doc="second side of a rectangular 2D lattice (0: square)")
    temperatures: tuple[float, ...] = spec(doc="the ladder, ascending (or {start, stop, num})")
    algorithm: str = spec("metropolis", doc="update algorithm, per model")
    chains: int = spec(1, min=1, doc="independent ladders (multiples of 64 for multispin)")
    thermalize: int = spec(1000, min=0, doc="updates discarded first")
    samples: int = spec(100, min=1, doc="configurations stored per chain and temperature")
    thin: int = spec(10, min=1, doc="updates between stored configurations")
    replica_exchange: bool = spec(False, doc="swap temperatures between neighbouring replicas")
    exchange_every: int = spec(10, min=1, doc="updates between swap attempts")
    ladder: Literal["fixed", "tune"] = spec("fixed", doc="tune: pre-run that equalises swap acceptance")
    J: float = spec(1.0, doc="coupling (ferromagnetic > 0)")
    h: float = spec(0.0, doc="magnetic field")
    alpha: float = spec(3.0, doc="long-range exponent: J_ij = J / r^alpha (alpha > d)")
    images: Literal["ewald", "minimum"] = spec("ewald", doc="long-range periodic images convention")
    device: Literal["auto", "cpu", "cuda"] = spec("auto", doc="where the sampler runs")
    checkpoint_every: int = spec(0, min=0, doc="updates between checkpoints (0: only by time and at the end)")
    checkpoint_seconds: float = spec(600.0, min=0, doc="seconds between checkpoints (0: off)")
    compression: Literal["none", "gzip", "lzf"] = spec("none", doc="HDF5 filter for /spins")
    spin_storage: Optional[Literal["int8", "bits"]] = spec(
        None, doc="how /spins is stored: int8 (one byte per spin) or bits (8 spins per byte, numpy.packbits "
                  "along x; 1/8 of the disk, read back as int8 by every reader); default bits for L >= 256, "
                  "int8 below")
    block: int = spec(0, min=0, doc="block size the analyses will use; L must be divisible by it")
    measure_every: int = spec(1, min=1, doc="updates between time-series measurements")

    def __post_init__(self):
        if self.spin_storage is None:     # the default follows the lattice size (hpc_rg.io.spin_storage)
            from hpc_rg.io.spin_storage import default_storage
            object.__setattr__(self, "spin_storage", default_storage(self.L))

    @property
    def shape(self) -> tuple[int, ...]:
        if self.model == "ising1d":
            return (self.L,)
        return (self.Ly or self.L, self.L)

    @property
    def updates(self) -> int:
        return self.thermalize + self.samples * self.thin

    def physics(self) -> dict:
        """The keys that define the ensemble (a resume must not change them)."""
        d = dataclass_to_table(self)
        for k in ("samples", "checkpoint_every", "checkpoint_seconds", "device", "compression", "spin_storage"):
            d.pop(k, None)
        return d



def parse_ladder(value: Any, file: str) -> tuple[float, ...]:
    key = "simulate.temperatures"
    if isinstance(value, dict):
        allowed = {"start", "stop", "num"}
        for k in value:
            if k not in allowed:
                raise ConfigError(file, f"{key}.{k}", value[k], "start, stop and num", did_you_mean(k, allowed))
        for k in allowed:
            if k not in value:
                raise ConfigError(file, key, value, "{start = T0, stop = T1, num = n} (missing " + k + ")")
        num = coerce(value["num"], int, file, f"{key}.num")
        if num < 1:
            raise ConfigError(file, f"{key}.num", num, "a value >= 1")
        start = coerce(value["start"], float, file, f"{key}.start")
        stop = coerce(value["stop"], float, file, f"{key}.stop")
        temps = tuple(float(t) for t in (
            [start] if num == 1 else [start + (stop - start) * i / (num - 1) for i in range(num)]))
    else:
        temps = coerce(value, tuple[float, ...], file, key)
    if not temps:
        raise ConfigError(file, key, value, "a non-empty list of temperatures")
    for t in temps:
        if not t > 0:
            raise ConfigError(file, key, value, "temperatures > 0")
        if not math.isfinite(1.0 / t):   # a subnormal T: beta = 1/T is inf, every Boltzmann weight NaN
            raise ConfigError(file, key, value, f"temperatures with a finite 1/T (1/{t!r} overflows)")
    if any(b <= a for a, b in zip(temps, temps[1:])):
        raise ConfigError(file, key, value, "strictly ascending temperatures")
    return temps


def parse_simulate(table: dict, file: str) -> SimulateConfig:
    if not isinstance(table, dict):
        raise ConfigError(file, "simulate", table, "a table")
    table = dict(table)
    known = models()
    if isinstance(table.get("model"), str) and table["model"] not in known:
        raise ConfigError(file, "simulate.model", table["model"], "one of " + ", ".join(known),
                          did_you_mean(table["model"], known))
    if "temperatures" in table:
        table["temperatures"] = list(parse_ladder(table["temperatures"], file))
    sim = table_to_dataclass(SimulateConfig, table, file, "simulate")
    allowed = algorithms(sim.model)
    if sim.algorithm not in allowed:
        raise ConfigError(file, "simulate.algorithm", sim.algorithm,
                          "one of " + ", ".join(allowed) + f" for model {sim.model}", did_you_mean(sim.algorithm, allowed))
    if sim.model == "ising1d" and sim.Ly:
        raise ConfigError(file, "simulate.Ly", sim.Ly, "no Ly for the 1D chain (remove it)")
    if sim.Ly == 1:
        raise ConfigError(file, "simulate.Ly", sim.Ly, "a value >= 2 (or use model = \"ising1d\")")
    if sim.block:
        for side, name in zip(sim.shape, ("Ly" if sim.Ly else "L", "L")):
            if side % sim.block:
                raise ConfigError(file, f"simulate.{name}", side, f"a multiple of simulate.block = {sim.block}")
    coldest_beta = 1.0 / sim.temperatures[0]
    for k in ("J", "h"):
        if not math.isfinite(getattr(sim, k) * coldest_beta):
            raise ConfigError(file, f"simulate.{k}", getattr(sim, k), f"a value whose {k}/T is finite at "
                              f"T = {sim.temperatures[0]!r}")
    if sim.model == "longrange2d" and not sim.alpha > 2:
        raise ConfigError(file, "simulate.alpha", sim.alpha, "alpha > d = 2 (the coupling sum must converge)")
    if sim.algorithm == "multispin":
        if sim.chains % 64:
            raise ConfigError(file, "simulate.chains", sim.chains, "a multiple of 64 for algorithm = \"multispin\" "
                              "(64 replicas share a machine word)")
        if sim.replica_exchange:
            raise ConfigError(file, "simulate.replica_exchange", True, "false for algorithm = \"multispin\"")
        if sim.h != 0:
            raise ConfigError(file, "simulate.h", sim.h, "0 for algorithm = \"multispin\"")
    if sim.replica_exchange and len(sim.temperatures) < 2:
        raise ConfigError(file, "simulate.temperatures", list(sim.temperatures),
                          "at least two temperatures with replica_exchange = true")
    if sim.ladder == "tune" and not sim.replica_exchange:
        raise ConfigError(file, "simulate.ladder", "tune", "\"fixed\" unless replica_exchange = true")
    if sim.device == "cuda" and gpu_variant(sim) is not None and not gpu_fits(sim):
        raise ConfigError(file, "simulate.L", sim.L, "L a multiple of 8 and Ly even for the GPU kernels "
                          "(device = \"cuda\")")
    if sim.thin % sim.measure_every:
        raise ConfigError(file, "simulate.measure_every", sim.measure_every, f"a divisor of thin = {sim.thin}")
    return sim

