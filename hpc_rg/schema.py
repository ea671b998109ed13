"""The job file's grammar: frozen dataclasses with validated fields, and the one error a user sees.

`spec(...)` declares a field with its bounds and documentation; `table_to_dataclass` turns a TOML table into
such a dataclass, raising `ConfigError(file, key, found, allowed)` (one line) on any problem. Every stage
declares its own tables with these (mc/specs.py, learn/specs.py, reduce/specs.py, ...); config.py assembles
the job. This module imports nothing from hpc_rg, so any module may import it without a cycle.
"""
from __future__ import annotations

import dataclasses
import datetime
import difflib
import math
import re
import typing
from dataclasses import field
from pathlib import Path
from typing import Any, Literal

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

__all__ = ["ConfigError", "NAME_RE", "check_name", "check_bounds", "coerce", "dataclass_to_table",
           "did_you_mean", "spec", "table_to_dataclass", "toml_key", "toml_string", "toml_value", "tomllib"]


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


def coerce(value: Any, tp: Any, file: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        for a in args:
            try:
                return coerce(value, a, file, key)
            except ConfigError:
                pass
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
        return tuple(coerce(v, inner, file, f"{key}[{i}]") for i, v in enumerate(value))
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


def check_bounds(value: Any, meta: dict, file: str, key: str) -> None:
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
            v = coerce(table[name], hints[name], file, key)
            check_bounds(v, f.metadata, file, key)
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



_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_key(k: str) -> str:
    """A key as TOML writes it: bare when it can be, else a quoted string (e.g. "simulate.L")."""
    return k if _BARE_KEY.fullmatch(k) else toml_string(k)


def toml_string(s: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(v: Any) -> str:
    """A value as TOML text; `tomllib.loads(f"x = {toml_value(v)}")["x"] == v` for what tomllib reads."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)                            # nan, inf, -inf and 1e-05 are TOML as repr writes them
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_key(str(k))} = {toml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (datetime.date, datetime.time)):
        return v.isoformat()                      # TOML's own dates and times are ISO 8601
    return toml_value(str(v))
