"""The job-file reference, generated from the specs: `docs/job-file.md` and `hpc-rg check --explain`.

Every key of a job file is a field of a frozen dataclass (`hpc_rg.config`, `hpc_rg.learn.specs`,
`hpc_rg.reduce.specs`, `hpc_rg.reduce.model_specs`) declared with `spec(default, min=..., doc=...)`.
This module reads those declarations, so the reference cannot drift from what the validator accepts.

    python -m hpc_rg.docs_gen            # rewrite docs/job-file.md
    python -m hpc_rg.docs_gen --check    # exit 1 if the committed file is out of date (what the test runs)

Import-light like the specs themselves (no numba, torch or matplotlib).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from hpc_rg import config
from hpc_rg.config import Config
from hpc_rg.tune.spec import TuneSpec
from hpc_rg.schema import toml_value

SOURCE = Path(__file__).resolve().parent.parent      # the checkout, when the package runs from one
DOC_PATH = SOURCE / "docs" / "job-file.md"
REGENERATE = "python -m hpc_rg.docs_gen"

# `[report]` is validated inline by hpc_rg.config (three keys, no dataclass), so its keys are described here.
REPORT_KEYS = (
    ("title", "string", '""', "", "report title (default: \"hpc_rg report: <job name>\")"),
    ("paper", "string", '""', "", "a study shipped in the repository (studies/<name>/paper.toml) whose "
                                  "numbers the report puts beside ours (see allowed)"),
    ("study", "string", '""', "a path ending .toml", "instead of paper: a study file of your own, in the format of "
                                                      "studies/*/paper.toml (relative to the current folder)"),
)


# `[sweep]` is validated by hpc_rg.sweep (its keys are other tables' keys), so it is described here.
SWEEP_KEYS = (
    ("mode", '"product" | "zip"', '"product"', "",
     "product: every combination of the lists, the first key varying slowest; zip: the i-th values of all "
     "lists together (lists of equal length)", ""),
    ('"<table>.<key>"', "list", "", "any job key but job.name and job.out; at least one",
     'the values the key takes, e.g. "simulate.L" = [16, 32, 64] or "train.rbm.epochs" = [10, 20]; '
     "a point's folder name is built from the keys' last parts and the values", "one key or more"),
)


@dataclass(frozen=True)
class Key:
    """One job-file key as the validator sees it."""
    name: str
    type: str          # "integer", "list of numbers", '"fixed" | "tune"', ...
    default: str       # TOML text of the default, or "" when the key is required
    allowed: str       # bounds and choices beyond the type ("", ">= 1", "0 to 1", ...)
    doc: str
    default_note: str = ""   # a default that is not a TOML value ("the table's name")

    @property
    def required(self) -> bool:
        return self.default == "" and not self.default_note


_NAMES = {int: "integer", float: "number", bool: "true/false", str: "string"}


def _type_text(tp: Any) -> str:
    """Short type names for the reference ("list of numbers", "fixed | tune")."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return " | ".join(f'"{a}"' if isinstance(a, str) else str(a) for a in typing.get_args(tp))
    if origin is typing.Union:
        return " or ".join(_type_text(a) for a in typing.get_args(tp) if a is not type(None))
    if origin in (tuple, list):
        args = typing.get_args(tp)
        return f"list of {_type_text(args[0])}s" if args else "list"
    return _NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def _allowed(meta: typing.Mapping) -> str:
    parts = []
    if meta.get("choices"):
        parts.append("one of " + ", ".join(map(str, meta["choices"])))
    lo, hi, gt = meta.get("min"), meta.get("max"), meta.get("gt")
    if gt is not None:
        parts.append(f"> {gt:g}")
    if lo is not None and hi is not None:
        parts.append(f"{lo:g} to {hi:g}")
    elif lo is not None:
        parts.append(f">= {lo:g}")
    elif hi is not None:
        parts.append(f"<= {hi:g}")
    return "; ".join(parts)


def spec_keys(cls: type) -> list[Key]:
    """The keys of one spec dataclass, in declaration order (inherited keys first, overrides in place)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default = toml_value(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = toml_value(f.default_factory())
        else:
            default = ""
        note = ""
        if f.default is None:      # resolved from other keys when the job is read (simulate.spin_storage)
            default, note = "", "from other keys, see the meaning"
        out.append(Key(f.name, _type_text(hints[f.name]), default, _allowed(f.metadata),
                       " ".join(str(f.metadata.get("doc", "")).split()), default_note=note))
    return out


def _class_doc(cls: type) -> str:
    """A spec class's own docstring (dataclasses invent "Name(field, ...)" when there is none)."""
    doc = cls.__doc__ or ""
    return "" if doc.startswith(cls.__name__ + "(") else " ".join(doc.split())


@dataclass(frozen=True)
class Table:
    header: str        # "[simulate]", "[train.<name>] kind = \"rbm\"", ...
    keys: list[Key]
    intro: str = ""


def _report_allowed() -> str:
    from hpc_rg.report.compare import SHIPPED   # import-cheap: the validator imports it too
    return "one of " + ", ".join(SHIPPED)


def tables() -> Iterator[Table]:
    """Every table a job file may hold, with its keys."""
    # the spec tables are built from plugin declarations (hpc_rg.plugins): read when the page is made
    from hpc_rg.learn.specs import SPECS as TRAIN
    from hpc_rg.mc.specs import algorithms, models
    from hpc_rg.reduce.specs import SPECS as ANALYZE
    yield Table("[job]", spec_keys(config.JobConfig), "Required. Names the run and seeds every random stream.")
    algos = "; ".join(f"{m}: {', '.join(algorithms(m))}" for m in models())
    yield Table("[simulate]", spec_keys(config.SimulateConfig),
                "The Monte Carlo stage; writes `<out>/ensemble.h5`. Algorithms per model: " + algos + ". "
                "`temperatures` is a list or a range `{start = T0, stop = T1, num = n}` (evenly spaced, ends "
                "included).")
    for kind, cls in TRAIN.items():
        kind_key = Key("kind", "string", "", "one of " + ", ".join(TRAIN),
                       "model kind (may be left out when the table's name is the kind, e.g. [train.rbm])",
                       default_note="the table's name")
        yield Table(f'[train.<name>] with kind = "{kind}"', [kind_key] + spec_keys(cls), _class_doc(cls))
    for name, cls in sorted(ANALYZE.items()):     # reductions are plugins: listed by name
        yield Table(f"[analyze.{name}]", spec_keys(cls), _class_doc(cls))
    yield Table("[tune.<model>]", spec_keys(TuneSpec),
                "Optional; an Optuna search over the training settings of [train.<model>] (`hpc-rg tune JOB`, "
                "or the `tune` stage of `hpc-rg run`). Trials are scored on a validation split of the training "
                "data; the best setting is retrained with the model's `repeats` into "
                "`models/<model>.tuned.pt` and written as a train table to `models/<model>.tuned.toml`.")
    allowed = {"paper": _report_allowed()}
    yield Table("[report]", [Key(n, t, d, allowed.get(n, a), doc) for n, t, d, a, doc in REPORT_KEYS],
                "Optional; the report stage runs when the job has [analyze.*] tables.")
    yield Table("[sweep]", [Key(n, t, d, a, doc, note) for n, t, d, a, doc, note in SWEEP_KEYS],
                "Optional; a parameter sweep (`hpc_rg.sweep`). Each point is the job with the listed keys set, "
                "validated like any job file (all points before any work), run in `<out>/<point>/`, e.g. "
                "`<out>/L=16,alpha=2.5/`, with a `job.seed` derived from the job's seed and the point's values "
                "(`hpc_rg.sweep.point_seed`; a swept `job.seed` is used as written). `hpc-rg check JOB` lists "
                "the points; `hpc-rg run JOB` runs them in order, `--point K` one of them (a Slurm array task: "
                "`slurm/sweep.sbatch`); `<out>/sweep.json` indexes them for `hpc-rg status OUT` and "
                "`hpc-rg report OUT`.")


# --------------------------------------------------------------------------------------------------------
# docs/job-file.md
# --------------------------------------------------------------------------------------------------------

def _cell(text: str) -> str:
    """Markdown table cell: `|` escaped, and `<` outside code spans too (else "<name>" reads as an HTML tag)."""
    spans = text.replace("|", "\\|").split("`")
    return "`".join(s if i % 2 else s.replace("<", "&lt;") for i, s in enumerate(spans))


def render_markdown() -> str:
    all_tables = list(tables())
    n_keys = sum(len(t.keys) for t in all_tables)
    lines = [
        "# The job file",
        "",
        f"<!-- Generated by `{REGENERATE}` from the `doc=` text of the specs; do not edit by hand. -->",
        "",
        "One TOML file drives every stage. `hpc-rg check JOB` validates it and prints the resolved job (every "
        "default filled in); `hpc-rg check --explain JOB` prints the same with each key's meaning as TOML "
        "comments. An unknown key, a value of the wrong type or out of its bounds is one line naming the file "
        "and the key, exit code 2, nothing written.",
        "",
        "Paths in a job file are relative to the job file's folder. Temperatures are in units of J/k_B "
        "(k_B = 1). A key without a default is required.",
        "",
        f"This page lists {n_keys} keys in {len(all_tables)} tables. `[train.<name>]` tables name a model "
        "(`<out>/models/<name>.pt`); `[analyze.<name>]` tables are named after their reduction and write "
        "`/<name>` in `<out>/results.h5`.",
        "",
        "## Tables",
        "",
    ]
    lines += [f"- `{t.header}`" for t in all_tables]
    for t in all_tables:
        lines += ["", f"## `{t.header}`", ""]
        if t.intro:
            lines += [t.intro, ""]
        lines += ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
        for k in t.keys:
            default = f"`{k.default}`" if k.default else f"({k.default_note or 'required'})"
            lines.append(f"| `{k.name}` | {_cell(k.type)} | {_cell(default)} | {_cell(k.allowed)} | "
                         f"{_cell(k.doc)} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------------
# hpc-rg check --explain
# --------------------------------------------------------------------------------------------------------

def _comment(key: Key) -> str:
    what = key.type + (f"; {key.allowed}" if key.allowed else "")
    what += f"; default {key.default or key.default_note}" if not key.required else "; required"
    return f"# {key.doc}  [{what}]" if key.doc else f"# [{what}]"


def _explained_table(header: str, keys: list[Key], values: dict[str, Any]) -> list[str]:
    lines = ["", header]
    for k in keys:
        if k.name not in values:
            continue  # None-valued optional keys are left out, exactly as `hpc-rg check` does
        lines.append(_comment(k))
        lines.append(f"{k.name} = {toml_value(values[k.name])}")
    return lines


def explain(cfg: Config) -> str:
    """The resolved job as TOML (what `hpc-rg check` prints), each key preceded by a comment with its meaning,
    type, bounds and default. Parsing the output gives the same job back."""
    from hpc_rg.learn.specs import SPECS as TRAIN     # built from plugin declarations: read when used
    kinds = {cls: kind for kind, cls in TRAIN.items()}
    d = cfg.as_dict()
    lines = [f"# {cfg.file}: valid; run folder {cfg.out}; stages {', '.join(cfg.stages) or '(none)'}",
             "# every key with its resolved value; the comment above each says what it means "
             "(reference: docs/job-file.md)"]
    lines += _explained_table("[job]", spec_keys(config.JobConfig), d["job"])
    if cfg.simulate is not None:
        lines += _explained_table("[simulate]", spec_keys(config.SimulateConfig), d["simulate"])
    for name, obj in cfg.train.items():
        kind_key = Key("kind", "string", "", "one of " + ", ".join(TRAIN), "model kind",
                       default_note="the table's name")
        values = {"kind": kinds[type(obj)], **d["train"][name]}
        lines += _explained_table(f"[train.{name}]", [kind_key] + spec_keys(type(obj)), values)
    for name, obj in cfg.analyze.items():
        lines += _explained_table(f"[analyze.{name}]", spec_keys(type(obj)), d["analyze"][name])
    if cfg.tune:
        for name in cfg.tune:
            lines += _explained_table(f"[tune.{name}]", spec_keys(TuneSpec), d["tune"][name])
    if cfg.report:
        report_keys = [Key(n, t, dflt, a, doc) for n, t, dflt, a, doc in REPORT_KEYS]
        lines += _explained_table("[report]", report_keys, d["report"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hpc_rg.docs_gen", description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 if the file is out of date; write nothing")
    p.add_argument("--out", type=Path, default=None, help="where to write (default docs/job-file.md of the "
                   "source checkout)")
    args = p.parse_args(argv)
    if args.out is None:
        if not (SOURCE / "setup.cfg").exists():   # an installed package: never write next to site-packages
            p.error(f"{SOURCE} is not a source checkout; pass --out PATH")
        args.out = DOC_PATH
    text = render_markdown()
    current = args.out.read_text(encoding="utf-8") if args.out.exists() else None
    if args.check:
        if current != text:
            print(f"{args.out} is out of date: run `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
