"""Job files (TOML) -> one typed, frozen `Config`.

Each stage declares its own tables (`[simulate]` in mc/specs.py, `[train.*]` in learn/specs.py, `[analyze.*]`
in reduce/specs.py, `[tune.*]` in tune/spec.py) with the grammar of `hpc_rg.schema`; this module reads
the file, hands each section to its stage's parser, and runs the checks that join sections. Every problem is
one `ConfigError` line naming the file, the key path, what was found and what is allowed. Checks that need
the ensemble run in each stage's `validate` step, before any work.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hpc_rg.mc.specs import SimulateConfig, parse_simulate
from hpc_rg.schema import (ConfigError, check_name, dataclass_to_table, did_you_mean, spec, table_to_dataclass,
                           toml_value, tomllib)

__all__ = ["Config", "ConfigError", "JobConfig", "SimulateConfig", "STAGES", "dumps", "load", "loads",
           "read_job_text"]

STAGES = ("simulate", "train", "tune", "analyze", "report")


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
class Config:
    file: str
    job: JobConfig
    simulate: Optional[SimulateConfig]
    train: dict[str, Any]
    analyze: dict[str, Any]
    report: dict[str, Any]
    text: str
    tune: dict[str, Any] = field(default_factory=dict)   # [tune.<model>]: hpc_rg.tune.spec.TuneSpec

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
            from hpc_rg.tune.spec import search_settings
            d["tune"] = {k: {"trials": v.trials, **search_settings(v)} for k, v in self.tune.items()}
        return d


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
    simulate = parse_simulate(raw["simulate"], file) if "simulate" in raw else None
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
        from hpc_rg.tune.spec import parse_tune
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


def dumps(cfg: Config) -> str:
    """The resolved job (every default filled in) as TOML, with the run folder and stages it implies."""
    lines = [f"# {cfg.file}: valid; run folder {cfg.out}; stages {', '.join(cfg.stages) or '(none)'}"]
    for sec, body in cfg.as_dict().items():
        nested = sec in ("train", "analyze", "tune")
        for name, table in (body.items() if nested else [(None, body)]):
            lines.append("")
            lines.append(f"[{sec}.{name}]" if nested else f"[{sec}]")
            lines.extend(f"{k} = {toml_value(v)}" for k, v in table.items())
    return "\n".join(lines)
