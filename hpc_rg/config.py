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
from typing import Any, Callable, Optional

from hpc_rg.tune.spec import parse_tune, search_settings
from hpc_rg.learn.validate import check_job as check_train
from hpc_rg.mc.memory_check import check_memory
from hpc_rg.mc.specs import SimulateConfig, parse_simulate
from hpc_rg.reduce.validate import check_job as check_analyze
from hpc_rg.report.compare import SHIPPED, STUDIES     # import-cheap (stdlib and hpc_rg.schema)
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
        """The resolved job as TOML tables (what `hpc-rg check` prints and outputs record)."""
        d = {"job": dataclass_to_table(self.job)}
        for sec, section in SECTIONS.items():
            value = getattr(self, sec)
            if value:
                d[sec] = section.as_table(value)
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


def _parse_train(table: Any, file: str, parsed: dict) -> dict:
    from hpc_rg.learn.specs import SPECS    # built from the learners' plugin declarations: only when needed
    return _named_tables("train", table, file, SPECS, "kind")


def _parse_analyze(table: Any, file: str, parsed: dict) -> dict:
    from hpc_rg.reduce.specs import SPECS   # built from the reductions' plugin declarations: only when needed
    return _named_tables("analyze", table, file, SPECS, None)


def _parse_tune(table: Any, file: str, parsed: dict) -> dict:
    return parse_tune(table, file, parsed["train"])      # a search names the [train.<model>] it tunes


def _parse_report(table: Any, file: str, parsed: dict) -> dict:
    if not isinstance(table, dict):
        raise ConfigError(file, "report", table, "a table")
    for k, v in table.items():
        if k not in REPORT_KEYS:
            raise ConfigError(file, f"report.{k}", v, ", ".join(REPORT_KEYS[:-1]) + " or " + REPORT_KEYS[-1],
                              did_you_mean(k, REPORT_KEYS))
    if "paper" in table and table["paper"] not in SHIPPED:
        raise ConfigError(file, "report.paper", table["paper"], "one of " + ", ".join(SHIPPED)
                          + " (another study: report.study = \"path/to/paper.toml\")",
                          did_you_mean(str(table["paper"]), SHIPPED))
    if "paper" in table and not (STUDIES / table["paper"] / "paper.toml").is_file():   # an installed package
        raise ConfigError(file, "report.paper", table["paper"], "a study of the repository's studies/ folder, "
                          "which an installed package does not hold: copy studies/<name>/paper.toml from the "
                          "repository and set report.study = \"path/to/paper.toml\" instead")
    if "study" in table and (not isinstance(table["study"], str) or not table["study"].endswith(".toml")
                             or "paper" in table):
        raise ConfigError(file, "report.study", table["study"], "the path of a study TOML file (instead of paper)")
    return table


@dataclass(frozen=True)
class Section:
    """How the job file's section of one stage is read and printed back."""
    parse: Callable[[Any, str, dict], Any]     # (table, file, sections parsed so far) -> value
    absent: Callable[[], Any]                  # the value when the file has no such section
    as_table: Callable[[Any], dict]            # the value as a TOML table, every default filled in


def _named_as_tables(tables: dict) -> dict:
    return {name: dataclass_to_table(obj) for name, obj in tables.items()}


# Every section after [job], in the order they are parsed (tune reads the train models) and printed.
SECTIONS: dict[str, Section] = {
    "simulate": Section(lambda table, file, parsed: parse_simulate(table, file), lambda: None, dataclass_to_table),
    "train": Section(_parse_train, dict, _named_as_tables),
    "analyze": Section(_parse_analyze, dict, _named_as_tables),
    "report": Section(_parse_report, dict, dict),
    "tune": Section(_parse_tune, dict,
                    lambda tables: {k: {"trials": v.trials, **search_settings(v)} for k, v in tables.items()}),
}
REPORT_KEYS = ("paper", "study", "title")
# what naming a stage in job.stages needs in the file
STAGE_NEEDS = {"simulate": "a [simulate] table for stage simulate", "train": "[train.<name>] tables for stage train",
               "tune": "[tune.<model>] tables for stage tune"}


def loads(text: str, path: str | Path = "job.toml") -> Config:
    file = str(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(file, "", None, f"valid TOML ({e})") from None
    known = ("job", *SECTIONS)
    for k in raw:
        if k not in known:
            raise ConfigError(file, k, raw[k], "a known section: " + ", ".join(known), did_you_mean(k, known))
    if "job" not in raw:
        raise ConfigError(file, "job", "(missing)", "a [job] table with name and seed")
    job = _parse_job(raw["job"], file)
    parsed: dict[str, Any] = {}
    for sec, section in SECTIONS.items():
        parsed[sec] = section.parse(raw[sec], file, parsed) if sec in raw else section.absent()
    cfg = Config(file=file, job=job, text=text, **parsed)
    for s in cfg.stages:
        if s in STAGE_NEEDS and not parsed[s]:
            raise ConfigError(file, "job.stages", list(job.stages), STAGE_NEEDS[s])
    _cross_checks(cfg)
    return cfg


def _parse_job(table: Any, file: str) -> JobConfig:
    job = table_to_dataclass(JobConfig, table, file, "job")
    check_name(file, "job.name", job.name)
    for s in job.stages:
        if s not in STAGES:
            raise ConfigError(file, "job.stages", list(job.stages), "stages among " + ", ".join(STAGES),
                              did_you_mean(s, STAGES))
    order = [STAGES.index(s) for s in job.stages]
    if any(b <= a for a, b in zip(order, order[1:])):
        raise ConfigError(file, "job.stages", list(job.stages), "each stage at most once, in the order "
                          + ", ".join(STAGES))
    return job


def _cross_checks(cfg: Config) -> None:
    """Checks that join sections: the lattice against memory, each model against the data it trains on,
    each reduction against the lattice it reduces. Each lives beside the code whose inputs it protects."""
    if cfg.simulate is not None:
        check_memory(cfg.simulate, cfg.file)
    if cfg.train:
        check_train(cfg)
    if cfg.analyze:
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
