"""Job files (TOML) -> typed, frozen config objects.

All validation lives here, before any work starts: every problem becomes one `ConfigError` line naming the
file, the key path, what was found and what is allowed. Sections owned by other stages (``[train.*]``,
``[analyze.*]``) are described by frozen dataclasses in ``hpc_rg.learn.specs`` and ``hpc_rg.reduce.specs``
and validated by the same generic `table_to_dataclass`, so every stage reports errors the same way.

Conventions: k_B = 1, coupling J in units of energy, temperatures T (not beta) in the job file.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

from hpc_rg.mc.registry import ALGORITHMS, MODELS

STAGES = ("simulate", "train", "tune", "analyze", "report")

# Names become file and folder names (runs/<job>, models/<model>.pt, figures/<reduction>*.png): letters,
# digits, '_', '.', '-' only, and never '.' or '..', so no name can point outside the run folder.
NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")


class ConfigError(ValueError):
    """One-line, user-facing description of a bad job file."""

    def __init__(self, file: str | Path, key: str, found: Any, allowed: str, hint: str = ""):
        self.file, self.key, self.found, self.allowed = str(file), key, found, allowed
        shown = _show(found)
        msg = f"{Path(self.file).name}: {key} = {shown}: expected {allowed}" if key else f"{Path(self.file).name}: {allowed}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def did_you_mean(word: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f'did you mean "{close[0]}"?' if close else ""


def check_name(file: str | Path, key: str, name: Any) -> None:
    """A job, model or reduction name that is safe as a single path component (see NAME_RE)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name in (".", ".."):
        raise ConfigError(file, key, name, "a name of letters, digits, '_', '.' and '-' (not '.' or '..'; "
                          "it becomes a file name in the run folder)")


# --------------------------------------------------------------------------------------------------------
# Generic table -> frozen dataclass validation.  Field metadata understood:
#   min / max: inclusive numeric bounds;  gt: strict lower bound;  choices: allowed values;
#   doc: what the key means (shown by `hpc-rg check`).
# --------------------------------------------------------------------------------------------------------

def spec(default: Any = dataclasses.MISSING, *, min: float | None = None, max: float | None = None,
         gt: float | None = None, choices: typing.Sequence | None = None, doc: str = "") -> Any:
    """A dataclass field with validation metadata."""
    meta = {"min": min, "max": max, "gt": gt, "choices": tuple(choices) if choices else None, "doc": doc}
    if isinstance(default, (list, dict)):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata=meta, kw_only=True)
    return field(default=default, metadata=meta, kw_only=True)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(tp))
    if origin is typing.Union:
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin in (tuple, list):
        args = typing.get_args(tp)
        return f"a list of {_type_name(args[0])}s" if args else "a list"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any, file: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        errors = []
        for a in args:
            try:
                return _coerce(value, a, file, key)
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(file, key, value, _type_name(tp))
    if origin is Literal:
        options = typing.get_args(tp)
        if value not in options:
            raise ConfigError(file, key, value, "one of " + ", ".join(str(o) for o in options),
                              did_you_mean(value, [str(o) for o in options]))
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(file, key, value, _type_name(tp))
        (inner, *_) = typing.get_args(tp) or (Any,)
        return tuple(_coerce(v, inner, file, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(file, key, value, "true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(file, key, value, "an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(file, key, value, "a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(file, key, value, "a string")
        return value
    if tp is Any:
        return value
    raise TypeError(f"unsupported spec type {tp!r} for {key}")


def _check_bounds(value: Any, meta: dict, file: str, key: str) -> None:
    if value is None:
        return
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(file, key, value, "one of " + ", ".join(map(str, choices)),
                          did_you_mean(value, map(str, choices)))
    items = value if isinstance(value, tuple) else (value,)
    for v in items:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        lo, hi, gt = meta.get("min"), meta.get("max"), meta.get("gt")
        if gt is not None and not v > gt:
            raise ConfigError(file, key, value, f"a value > {gt}")
        if lo is not None and v < lo:
            raise ConfigError(file, key, value, f"a value >= {lo}")
        if hi is not None and v > hi:
            raise ConfigError(file, key, value, f"a value <= {hi}")


def table_to_dataclass(cls: type, table: dict, file: str | Path, prefix: str, skip: typing.Iterable[str] = ()):
    """Validate `table` against the fields of dataclass `cls`; unknown keys are errors with a hint."""
    file = str(file)
    if not isinstance(table, dict):
        raise ConfigError(file, prefix, table, "a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    skip = set(skip)
    for key in table:
        if key not in fields and key not in skip:
            raise ConfigError(file, f"{prefix}.{key}", table[key],
                              f"a known key of [{prefix}]: " + ", ".join(sorted(fields)), did_you_mean(key, fields))
    values = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}"
        if name in table:
            v = _coerce(table[name], hints[name], file, key)
            _check_bounds(v, f.metadata, file, key)
            values[name] = v
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(file, key, "(missing)", f"{_type_name(hints[name])} (this key is required)")
    return cls(**values)


def dataclass_to_table(obj: Any) -> dict:
    """Inverse of `table_to_dataclass`, for printing the resolved job and storing it in outputs."""
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            v = dataclass_to_table(v)
        elif isinstance(v, dict):
            v = {k: dataclass_to_table(x) if dataclasses.is_dataclass(x) else x for k, x in v.items()}
        elif isinstance(v, tuple):
            v = list(v)
        if v is not None:
            out[f.name] = v
    return out


# --------------------------------------------------------------------------------------------------------
# The job file's own sections
# --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobConfig:
    name: str = spec(doc="a label for the run")
    seed: int = spec(min=0, doc="the job seed: every random stream derives from it and a chain's identity")
    out: str = spec("", doc="output folder, relative to the job file's folder (default runs/<name>)")
    stages: tuple[str, ...] = spec((), doc="stages `run` executes; default: those whose tables are present")


@dataclass(frozen=True)
class SimulateConfig:
    model: str = spec(choices=tuple(MODELS), doc="ising1d | ising2d | longrange2d")
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


@dataclass(frozen=True)
class Config:
    file: str
    job: JobConfig
    simulate: Optional[SimulateConfig]
    train: dict[str, Any]
    analyze: dict[str, Any]
    report: dict[str, Any]
    text: str
    tune: dict[str, Any] = field(default_factory=dict)   # [tune.<model>]: hpc_rg.learn.tune_spec.TuneSpec

    @property
    def folder(self) -> Path:
        return Path(self.file).resolve().parent

    @property
    def out(self) -> Path:
        out = Path(self.job.out or f"runs/{self.job.name}")
        return out if out.is_absolute() else (self.folder / out).resolve()

    @property
    def stages(self) -> tuple[str, ...]:
        if self.job.stages:
            return self.job.stages
        present = {"simulate": self.simulate is not None, "train": bool(self.train), "analyze": bool(self.analyze),
                   "report": bool(self.analyze), "tune": bool(self.tune)}
        return tuple(s for s in STAGES if present[s])

    def as_dict(self) -> dict:
        d = {"job": dataclass_to_table(self.job)}
        if self.simulate:
            d["simulate"] = dataclass_to_table(self.simulate)
        for sec in ("train", "analyze"):
            tables = getattr(self, sec)
            if tables:
                d[sec] = {k: dataclass_to_table(v) for k, v in tables.items()}
        if self.report:
            d["report"] = dict(self.report)
        if self.tune:
            from hpc_rg.learn.tune_spec import search_settings
            d["tune"] = {k: {"trials": v.trials, **search_settings(v)} for k, v in self.tune.items()}
        return d


def _ladder(value: Any, file: str) -> tuple[float, ...]:
    key = "simulate.temperatures"
    if isinstance(value, dict):
        allowed = {"start", "stop", "num"}
        for k in value:
            if k not in allowed:
                raise ConfigError(file, f"{key}.{k}", value[k], "start, stop and num", did_you_mean(k, allowed))
        for k in allowed:
            if k not in value:
                raise ConfigError(file, key, value, "{start = T0, stop = T1, num = n} (missing " + k + ")")
        num = _coerce(value["num"], int, file, f"{key}.num")
        if num < 1:
            raise ConfigError(file, f"{key}.num", num, "a value >= 1")
        start = _coerce(value["start"], float, file, f"{key}.start")
        stop = _coerce(value["stop"], float, file, f"{key}.stop")
        temps = tuple(float(t) for t in (
            [start] if num == 1 else [start + (stop - start) * i / (num - 1) for i in range(num)]))
    else:
        temps = _coerce(value, tuple[float, ...], file, key)
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


def _simulate(table: dict, file: str) -> SimulateConfig:
    if not isinstance(table, dict):
        raise ConfigError(file, "simulate", table, "a table")
    table = dict(table)
    if "temperatures" in table:
        table["temperatures"] = list(_ladder(table["temperatures"], file))
    sim = table_to_dataclass(SimulateConfig, table, file, "simulate")
    allowed = ALGORITHMS[sim.model]
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
    if sim.device == "cuda" and sim.model == "ising2d":
        from hpc_rg.mc.gpu_select import GPU_ALGORITHMS, gpu_fits
        if sim.algorithm in GPU_ALGORITHMS and not gpu_fits(sim):
            raise ConfigError(file, "simulate.L", sim.L, "L a multiple of 8 and Ly even for the GPU kernels "
                              "(device = \"cuda\")")
    if sim.thin % sim.measure_every:
        raise ConfigError(file, "simulate.measure_every", sim.measure_every, f"a divisor of thin = {sim.thin}")
    return sim


def _named_tables(sec: str, tables: Any, file: str, specs: dict[str, type], kind_key: Optional[str]) -> dict:
    if not isinstance(tables, dict):
        raise ConfigError(file, sec, tables, "a table of named tables")
    out = {}
    for name, table in tables.items():
        prefix = f"{sec}.{name}"
        check_name(file, prefix, name)
        if not isinstance(table, dict):
            raise ConfigError(file, prefix, table, "a table")
        if kind_key:
            kind = table.get(kind_key, name if name in specs else None)
            if kind is None:
                raise ConfigError(file, f"{prefix}.{kind_key}", "(missing)", "one of " + ", ".join(specs))
            if kind not in specs:
                raise ConfigError(file, f"{prefix}.{kind_key}", kind, "one of " + ", ".join(specs),
                                  did_you_mean(kind, specs))
            obj = table_to_dataclass(specs[kind], {k: v for k, v in table.items() if k != kind_key}, file, prefix)
        else:
            if name not in specs:
                raise ConfigError(file, prefix, table, "a known reduction: " + ", ".join(specs),
                                  did_you_mean(name, specs))
            obj = table_to_dataclass(specs[name], table, file, prefix)
        validate = getattr(obj, "validate", None)
        if validate is not None:
            problem = validate()
            if problem:
                key, found, allowed = problem
                raise ConfigError(file, f"{prefix}.{key}", found, allowed)
        out[name] = obj
    return out


def load(path: str | Path) -> Config:
    """Read and validate a job file. Raises ConfigError (one line) on any problem."""
    path = Path(path)
    return loads(read_job_text(path), path)


def read_job_text(path: Path) -> str:
    """A job file's text; a missing, unreadable or non-UTF-8 file is a one-line ConfigError."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(path, "", None, f"a UTF-8 text file (byte 0x{e.object[e.start]:02x} at offset "
                          f"{e.start} is not UTF-8)") from None
    except FileNotFoundError:
        raise ConfigError(path, "", None, "the job file exists (not found)") from None
    except OSError as e:
        raise ConfigError(path, "", None, f"a readable job file ({e.strerror})") from None
    return text


def loads(text: str, path: str | Path = "job.toml") -> Config:
    file = str(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(file, "", None, f"valid TOML ({e})") from None
    known = ("job", "simulate", "train", "analyze", "report", "tune")
    for k in raw:
        if k not in known:
            raise ConfigError(file, k, raw[k], "a known section: " + ", ".join(known), did_you_mean(k, known))
    if "job" not in raw:
        raise ConfigError(file, "job", "(missing)", "a [job] table with name and seed")
    job = table_to_dataclass(JobConfig, raw["job"], file, "job")
    check_name(file, "job.name", job.name)
    for s in job.stages:
        if s not in STAGES:
            raise ConfigError(file, "job.stages", list(job.stages), "stages among " + ", ".join(STAGES),
                              did_you_mean(s, STAGES))
    order = [STAGES.index(s) for s in job.stages]
    if any(b <= a for a, b in zip(order, order[1:])):
        raise ConfigError(file, "job.stages", list(job.stages), "each stage at most once, in the order "
                          + ", ".join(STAGES))
    simulate = _simulate(raw["simulate"], file) if "simulate" in raw else None
    train: dict = {}
    if "train" in raw:
        from hpc_rg.learn.specs import SPECS as TRAIN_SPECS
        train = _named_tables("train", raw["train"], file, TRAIN_SPECS, "kind")
    analyze: dict = {}
    if "analyze" in raw:
        from hpc_rg.reduce.specs import SPECS as ANALYZE_SPECS
        analyze = _named_tables("analyze", raw["analyze"], file, ANALYZE_SPECS, None)
    tune: dict = {}
    if "tune" in raw:
        from hpc_rg.learn.tune_spec import parse_tune
        tune = parse_tune(raw["tune"], file, train)
    report = raw.get("report", {})
    if not isinstance(report, dict):
        raise ConfigError(file, "report", report, "a table")
    for k, v in report.items():
        if k not in ("paper", "title"):
            raise ConfigError(file, f"report.{k}", v, "paper or title", did_you_mean(k, ("paper", "title")))
    if "paper" in report:
        from hpc_rg.report.papers import COMPARISONS
        if report["paper"] not in COMPARISONS:
            raise ConfigError(file, "report.paper", report["paper"], "one of " + ", ".join(COMPARISONS),
                              did_you_mean(str(report["paper"]), COMPARISONS))
    cfg = Config(file=file, job=job, simulate=simulate, train=train, analyze=analyze, report=report, text=text,
                 tune=tune)
    for s in cfg.stages:
        if s == "simulate" and simulate is None:
            raise ConfigError(file, "job.stages", list(job.stages), "a [simulate] table for stage simulate")
        if s == "train" and not train:
            raise ConfigError(file, "job.stages", list(job.stages), "[train.<name>] tables for stage train")
        if s == "tune" and not tune:
            raise ConfigError(file, "job.stages", list(job.stages), "[tune.<model>] tables for stage tune")
    _cross_checks(cfg)
    return cfg


def _cross_checks(cfg: Config) -> None:
    """Checks that join sections: the lattice against memory, each model against the data it trains on,
    each reduction against the lattice it reduces. Each lives beside the code whose inputs it protects."""
    if cfg.simulate is not None:
        from hpc_rg.mc.memory_check import check_memory
        check_memory(cfg.simulate, cfg.file)
    if cfg.train:
        from hpc_rg.learn.validate import check_job as check_train
        check_train(cfg)
    if cfg.analyze:
        from hpc_rg.reduce.validate import check_job as check_analyze
        check_analyze(cfg)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return _toml_value(str(v))


def dumps(cfg: Config) -> str:
    """The resolved job (every default filled in) as TOML, with the run folder and stages it implies."""
    lines = [f"# {cfg.file}: valid; run folder {cfg.out}; stages {', '.join(cfg.stages) or '(none)'}"]
    for sec, body in cfg.as_dict().items():
        nested = sec in ("train", "analyze", "tune")
        for name, table in (body.items() if nested else [(None, body)]):
            lines.append("")
            lines.append(f"[{sec}.{name}]" if nested else f"[{sec}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
    return "\n".join(lines)
