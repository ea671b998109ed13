"""Parameter sweeps in one job file: a `[sweep]` table of lists expands into one complete job per point.

    [sweep]
    mode = "product"                 # or "zip" (default "product")
    "simulate.L" = [16, 32, 64]      # dotted keys name any job key (simulate.L = [...] works too)
    "simulate.alpha" = [2.5, 3.0]

- Points. `product`: every combination, the first key varying slowest (nested loops in the order the keys
  are written); `zip`: the i-th values of all lists together (the lists must have the same length).
- Folders. Point K runs in `<out>/<name>/`, name = `L=16,alpha=2.5`: the last part of each key (the whole
  dotted key where two keys share a last part) and its value, formatted compactly and unambiguously: integers
  as written, floats by their shortest round-trip repr (`2.5`, `3.0`, `1e-05`, `1e20`), true/false, strings
  when they consist of [A-Za-z0-9_.-] (else a cleaned form plus a hash), lists of numbers joined by `_`,
  anything else `h` + a hash. Names hold only [A-Za-z0-9_.=,-].
- Validation. Every point is a whole job file (the job with the swept keys replaced, `[sweep]` removed,
  `job.out` = the point's folder) and goes through `hpc_rg.config.loads` like any job, all points before any
  work starts. A bad point is one `ConfigError` line naming the sweep key, its value and the point.
- Seeds. The project's contract (`hpc_rg.parallel.seed_sequence`) derives every stream from the job seed and
  a stream's identity, never from the rank. A point is a job of its own, so its `job.seed` is derived from the
  sweep's `job.seed` and the point's identity (its swept keys and values, not its index nor when it runs):
  `point_seed`. Adding a value to a list, reordering the lists or running one point with `--point` leaves every
  other point's seed as it was. A sweep over `job.seed` itself uses the listed seeds as they are.
- Index. `<out>/sweep.json` lists the points, their folders, values and seeds; rank 0 writes it (atomically)
  before any point runs. `hpc-rg status OUT` and `hpc-rg report OUT` read it to tabulate all points. It
  describes the sweep last run into OUT: changing the lists and running again rewrites it (point folders
  already there stay, and are listed again when their point is).
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hpc_rg import config
from hpc_rg.config import Config
from hpc_rg.io.atomic import atomic_path
from hpc_rg.schema import ConfigError, did_you_mean, toml_key, toml_value, tomllib

INDEX = "sweep.json"
INDEX_FORMAT = "hpc_rg.sweep/1"
MODES = ("product", "zip")
SECTIONS = ("job", "simulate", "train", "analyze", "report")
NOT_SWEPT = {"job.name": "each point is named after its sweep", "job.out": "each point gets its own folder"}
MAX_NAME = 200                                   # folder names stay well under the file systems' 255 bytes
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.=,-]+")
_SAFE_VALUE = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Point:
    index: int
    name: str                   # the folder under the sweep's out, e.g. "L=16,alpha=2.5"
    values: dict[str, Any]      # sweep key -> value
    seed: int                   # the point's job.seed
    cfg: Config                 # the point's validated job


@dataclass(frozen=True)
class Sweep:
    file: str
    text: str
    name: str
    seed: Any                   # the sweep's job.seed as written
    mode: str
    keys: tuple[str, ...]
    out: Path
    points: tuple[Point, ...]

    def point(self, k: int) -> Point:
        if not 0 <= k < len(self.points):
            raise ConfigError(self.file, "--point", k, f"0 to {len(self.points) - 1} (the sweep has "
                                                       f"{len(self.points)} points)")
        return self.points[k]

    def index(self) -> dict:
        return {"format": INDEX_FORMAT, "job": Path(self.file).name, "name": self.name, "seed": self.seed,
                "mode": self.mode, "keys": list(self.keys), "job_toml": self.text,
                "points": [{"index": p.index, "folder": p.name, "values": p.values, "seed": p.seed}
                           for p in self.points]}

    def write_index(self) -> Path:
        """`<out>/sweep.json`, atomically (several array tasks may write the same index at once)."""
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / INDEX
        # atomic_path's temporary name is created exclusively: tasks on other nodes may share a pid
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.index(), indent=1) + "\n")
        return path

    def describe(self) -> str:
        """What `hpc-rg check` prints for a sweep: the points, their folders and seeds."""
        n = len(self.points)
        sizes = {k: len({_format_value(p.values[k]) for p in self.points}) for k in self.keys}
        how = " x ".join(f"{k} ({sizes[k]})" for k in self.keys) if self.mode == "product" else ", ".join(self.keys)
        lines = [f"# {self.file}: valid sweep of {n} point{'s' * (n != 1)} ({self.mode}: {how}); "
                 f"sweep folder {self.out}",
                 f"# every point validated; stages {', '.join(self.points[0].cfg.stages) or '(none)'}",
                 f"# run one: hpc-rg run JOB --point K;  all as a Slurm array: "
                 f"sbatch --array=0-{n - 1} slurm/sweep.sbatch {self.file}",
                 "point  seed                 folder"]
        lines += [f"{p.index:<6} {p.seed:<20} {p.name}" for p in self.points]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------

def load(path: str | Path) -> Config | Sweep:
    """A job file: a `Config` as `hpc_rg.config.load` gives, or a `Sweep` when it holds a [sweep] table."""
    path = Path(path)
    return loads(config.read_job_text(path), path)


def loads(text: str, path: str | Path = "job.toml") -> Config | Sweep:
    file = str(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(file, "", None, f"valid TOML ({e})") from None
    if "sweep" not in raw:
        return config.loads(text, path)
    return _expand(raw, text, file)


def _expand(raw: dict, text: str, file: str) -> Sweep:
    table = raw.pop("sweep")
    if not isinstance(table, dict):
        raise ConfigError(file, "sweep", table, "a table of lists (e.g. \"simulate.L\" = [16, 32])")
    table = dict(table)
    mode = table.pop("mode", "product")
    if mode not in MODES:
        raise ConfigError(file, "sweep.mode", mode, "one of " + ", ".join(MODES), did_you_mean(mode, MODES))
    axes = _axes(table, file, raw)
    job = raw.get("job")
    if job is None:
        raise ConfigError(file, "job", "(missing)", "a [job] table with name and seed")
    if not isinstance(job, dict):
        raise ConfigError(file, "job", job, "a table")
    if not isinstance(job.get("out", ""), str):
        raise ConfigError(file, "job.out", job["out"], "a string")
    base_out = str(job.get("out") or f"runs/{job.get('name', 'sweep')}")
    labels = _labels([k for k, _ in axes])
    names = [{_format_value(v): v for v in values} for _, values in axes]
    for (key, values), by_name in zip(axes, names):
        if len(by_name) != len(values):
            raise ConfigError(file, f"sweep.{key}", values, "distinct values (two of them name the same folder)")
    if mode == "zip":
        n = len(axes[0][1])
        for key, values in axes[1:]:
            if len(values) != n:
                raise ConfigError(file, f"sweep.{key}", values, f"{n} values, as many as sweep.{axes[0][0]} "
                                                                "(mode = \"zip\" pairs the lists)")
        combos = list(zip(*(values for _, values in axes)))
    else:
        combos = list(itertools.product(*(values for _, values in axes)))
    keys = tuple(k for k, _ in axes)
    points = []
    for index, combo in enumerate(combos):
        values = dict(zip(keys, combo))
        name = ",".join(f"{labels[k]}={_format_value(v)}" for k, v in values.items())
        if len(name) > MAX_NAME:
            raise ConfigError(file, "sweep", name[:40] + "...", f"point folder names under {MAX_NAME} characters "
                                                                "(fewer or shorter keys and values)")
        points.append(_point(raw, text, file, index, name, values, base_out))
    return Sweep(file=file, text=text, name=str(job.get("name", "")), seed=job.get("seed"), mode=mode, keys=keys,
                 out=points[0].cfg.out.parent, points=tuple(points))


def _axes(table: dict, file: str, raw: dict) -> list[tuple[str, list]]:
    """The swept keys, dotted, in the order written; `simulate.L = [...]` (a nested table) and
    `"simulate.L" = [...]` are the same key."""
    axes: list[tuple[str, list]] = []

    def walk(t: dict, prefix: str) -> None:
        for k, v in t.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(v, key + ".")
            else:
                axes.append((key, v))
    walk(table, "")
    if not axes:
        raise ConfigError(file, "sweep", table, "at least one job key with a list of values "
                                                "(e.g. \"simulate.L\" = [16, 32])")
    seen = set()
    for key, values in axes:
        path = key.split(".")
        if key in seen:
            raise ConfigError(file, f"sweep.{key}", values, "each key once")
        seen.add(key)
        if not isinstance(values, list) or not values:
            raise ConfigError(file, f"sweep.{key}", values, "a non-empty list of values")
        if path[0] not in SECTIONS or len(path) < (3 if path[0] in ("train", "analyze") else 2):
            raise ConfigError(file, f"sweep.{key}", values, "a dotted job key such as simulate.L or "
                              "train.<name>.epochs", did_you_mean(path[0], SECTIONS))
        if key in NOT_SWEPT:
            raise ConfigError(file, f"sweep.{key}", values, f"a key other than {key} ({NOT_SWEPT[key]})")
        parent = raw
        for i, part in enumerate(path[:-1]):
            parent = parent.get(part) if isinstance(parent, dict) else None
            if not isinstance(parent, dict):
                raise ConfigError(file, f"sweep.{key}", values, f"a key of a table the job has (no "
                                                                f"[{'.'.join(path[:i + 1])}] table)")
    return axes


def _labels(keys: list[str]) -> dict[str, str]:
    """Folder-name label per key: its last part, or the whole dotted key where last parts collide."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    labels = {k: (tail if last.count(tail) == 1 else k) for k, tail in zip(keys, last)}
    return {k: re.sub(r"[^A-Za-z0-9_.-]", "_", v) for k, v in labels.items()}


def _short_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:8]


def _format_value(v: Any) -> str:
    """A value as it appears in a folder name: compact, only [A-Za-z0-9_.-], distinct values distinct."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v).replace("e+", "e")        # shortest round-trip form: 2.5, 3.0, 1e-05, 1e20, inf
    if isinstance(v, str):
        if _SAFE_VALUE.fullmatch(v):
            return v
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", v).strip("_")[:24] + "-" + _short_hash(v)
    if isinstance(v, list) and v and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        joined = "_".join(_format_value(x) for x in v)
        if len(joined) <= 40:
            return joined
    return "h" + _short_hash(v)


def point_seed(job_seed: int, values: dict[str, Any]) -> int:
    """A point's job seed: from the sweep's seed and the point's swept keys and values (canonical JSON,
    hashed), never from its index, rank or turn. 63 bits, so it fits every integer attribute it is stored in."""
    identity = json.dumps(values, sort_keys=True, separators=(",", ":"))
    digest = int.from_bytes(hashlib.sha256(identity.encode()).digest(), "big")
    seq = np.random.SeedSequence(int(job_seed), spawn_key=(digest,))
    return int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _point(raw: dict, text: str, file: str, index: int, name: str, values: dict, base_out: str) -> Point:
    point = copy.deepcopy(raw)
    for key, value in values.items():
        *parents, leaf = key.split(".")
        table = point
        for part in parents:
            table = table[part]
        table[leaf] = value
    job = point["job"]
    job["out"] = str(Path(base_out) / name)
    if isinstance(job.get("name"), str):          # a missing or wrong name is left to the validator
        # the point's name, within the job-name rule (config.NAME_RE): "sw.L-16_J-1.0" for folder L=16,J=1.0
        job["name"] = f"{job['name']}." + name.replace("=", "-").replace(",", "_")
    seed_note = "the swept value"
    if "job.seed" not in values:
        seed = job.get("seed")
        if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0:
            job["seed"] = point_seed(seed, values)
            seed_note = f"derived from the sweep's seed {seed} and the point (hpc_rg.sweep.point_seed)"
    point_text = (f"# point {index} of the sweep in {Path(file).name} ({name}); job.seed: {seed_note}\n"
                  + dump_toml(point))
    try:
        cfg = config.loads(point_text, file)
    except ConfigError as e:
        raise _point_error(e, file, index, name, values) from None
    return Point(index=index, name=name, values=values, seed=cfg.job.seed, cfg=cfg)


def _point_error(e: ConfigError, file: str, index: int, name: str, values: dict) -> ConfigError:
    """The point's error as one line naming the sweep key and value when one of them is at fault."""
    where = f"in sweep point {index}, {name}"
    hint = str(e)[len(str(ConfigError(e.file, e.key, e.found, e.allowed))):].strip()[1:-1]   # "did you mean"
    for key, value in values.items():
        if e.key == key or e.key.startswith(key + ".") or e.key.startswith(key + "["):
            return ConfigError(file, f"sweep.{key}", value, e.allowed, f"{hint}; {where}" if hint else where)
    return ConfigError(file, e.key, e.found, e.allowed, f"{hint}; {where}" if hint else where)


def check_folders(points: typing.Iterable[Point], command: str, resume: bool, force: bool) -> None:
    """Refuse (RunFolderError, exit 2) before any point runs if a point's run folder would be refused when
    its turn came: e.g. `hpc-rg run SWEEP` again without --resume, after some points ran."""
    from hpc_rg.io import run_folder
    for p in points:
        if "simulate" in (p.cfg.stages if command == "run" else (command,)):
            run_folder.check(p.cfg, "simulate", resume, force)


# --------------------------------------------------------------------------------------------------------
# TOML text of a point (a job file of its own: <point>/job.toml, the ensembles' job_toml attribute)
# --------------------------------------------------------------------------------------------------------

def dump_toml(table: dict) -> str:
    """A parsed TOML document back to text (tables as [a.b] headers, deeper tables inline). tomllib reads no
    writer and none is a dependency; `tomllib.loads(dump_toml(t)) == t` is checked here."""
    lines: list[str] = []
    top = [(k, v) for k, v in table.items() if not isinstance(v, dict)]
    lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in top]
    for sec, body in table.items():
        if not isinstance(body, dict):
            continue
        named = sec in ("train", "analyze") and all(isinstance(v, dict) for v in body.values()) and body
        for name, sub in (body.items() if named else [(None, body)]):
            header = toml_key(sec) + (f".{toml_key(name)}" if name is not None else "")
            lines += ["", f"[{header}]"]
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in sub.items()]
    text = "\n".join(lines).lstrip("\n") + "\n"
    if json.dumps(tomllib.loads(text), default=str) != json.dumps(table, default=str):
        raise AssertionError("sweep point: the TOML writer did not reproduce the table")
    return text


# --------------------------------------------------------------------------------------------------------
# The sweep folder: index, status, report
# --------------------------------------------------------------------------------------------------------

def is_sweep_folder(folder: Path) -> bool:
    return (Path(folder) / INDEX).is_file()


def read_index(folder: Path) -> dict:
    """`<folder>/sweep.json`, checked (it is read from disk: untrusted)."""
    path = Path(folder) / INDEX
    try:
        index = json.loads(path.read_text())
        ok = (isinstance(index, dict) and index.get("format") == INDEX_FORMAT
              and isinstance(index.get("points"), list)
              and all(isinstance(p, dict) and isinstance(p.get("folder"), str) and _SAFE_NAME.fullmatch(p["folder"])
                      and isinstance(p.get("values"), dict) for p in index["points"]))
    except (OSError, ValueError) as e:
        raise ConfigError(path, "", None, f"a sweep index written by hpc-rg ({e})") from None
    if not ok:
        raise ConfigError(path, "", None, f"a sweep index written by hpc-rg (format {INDEX_FORMAT})")
    return index


def point_state(run: Path) -> dict:
    """What a point's folder holds, read from files only (works while it runs)."""
    from hpc_rg.io.checkpoint import read_commit
    state: dict[str, Any] = {"started": (run / "job.toml").exists()}
    rec = read_commit(run / "checkpoint") if (run / "checkpoint").is_dir() else None
    if rec is not None:
        t, total = int(rec["t"]), int(rec["updates_total"])
        state["simulate"] = "complete" if t >= total else f"{100 * t / max(total, 1):.0f}%"
    elif (run / "ensemble.h5").exists():
        state["simulate"] = "complete"
    else:
        state["simulate"] = "-"
    models = run / "models"
    state["models"] = len(list(models.glob("*.pt"))) if models.is_dir() else 0
    for name in ("ensemble.h5", "results.h5", "report.md"):
        state[name] = (run / name).exists()
    return state


