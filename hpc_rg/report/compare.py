"""Our numbers beside a paper's: one generic comparator of a study's paper data with a run's results.h5.

A study is a TOML file (the shipped ones: studies/<name>/paper.toml in the repository, chosen by
`[report] paper = "<name>"`; any other by `[report] study = "path/to/paper.toml"`):

    [study]
    title = "Mehta & Schwab 2014, arXiv:1410.3831"
    jobs = ["seed001_mehta_schwab_quick", ...]      # the job files (jobs/) whose runs it compares

    [[compare]]
    quantity = "receptive fields: weight in the best b x b window"   # the row's label
    ours = "receptive_fields/window_fraction_mean"  # reduction/quantity of results.h5 (its _err is the error);
                                                    # reduction/attrs/<key> for a stored text (rule statement)
    source = "Fig. 3B-C"                            # where the paper states it (table, figure, page)
    rule = "above"                                  # pull | above | below | increasing | statement
    reference = "receptive_fields/shuffled_window_fraction_mean"   # or value (and error) from the paper
    paper = "local blocks"                          # the paper's words (default: value ± error)
    axis = "layer"                                  # one row per element, labelled by this axis

More keys: `value`, `error` (the paper's number and its error), `tolerance` (agreement within ±tolerance
where no error is known), `minus` (a second quantity subtracted from ours, errors in quadrature: a gain),
`index` (a list selecting elements of ours and the reference alike: integers, or "axis=value"; a single
quantity takes its own as "reduction/quantity[1, model=ch1]"),
`trials` (ours is a proportion of n trials, n an attribute of the reduction: the binomial error is added),
`resolution` (an axis whose half spacing is added to our error: a value read off a grid), `sigmas` (the threshold of above / below / increasing, default 4), `note` (the study's own context: what the
paper does differently, the measured cause of a known difference), `jobs`.

The comparator states only what the numbers say (σ pulls where both sides have errors, within-tolerance
otherwise, "no error given" where neither has one); what a run's numbers mean is in analysis/RESULTS.md.
A reduction the run did not compute gives no row (a study spans several jobs); a quantity missing from a
reduction that ran gives a row saying so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from hpc_rg.schema import ConfigError, spec, table_to_dataclass, tomllib

# numpy, the results reader and the markdown helpers are imported inside the functions that use them:
# hpc_rg.config imports SHIPPED from here to validate every job file, which must stay cheap

__all__ = ["SHIPPED", "Study", "Claim", "study_path", "load_study", "rows", "comparison_table"]

SHIPPED = ("seed000", "seed001", "seed002", "seed003")      # studies/<name>/paper.toml of the repository
STUDIES = Path(__file__).resolve().parents[2] / "studies"
RULES = ("pull", "above", "below", "increasing", "statement")


@dataclass(frozen=True)
class Claim:
    quantity: str = spec(doc="the row's label")
    ours: str = spec(doc="reduction/quantity[index] of results.h5, or reduction/attrs/<key>")
    source: str = spec(doc="where the paper states it: table, figure or page")
    rule: str = spec("pull", choices=RULES, doc="how ours is set beside the paper")
    value: Optional[float] = spec(None, doc="the paper's number")
    error: Optional[float] = spec(None, min=0, doc="its error (a read-off uncertainty for a figure)")
    reference: str = spec("", doc="reduction/quantity to compare with instead of value")
    tolerance: Optional[float] = spec(None, min=0, doc="agreement within ±tolerance where no error is known")
    minus: str = spec("", doc="reduction/quantity subtracted from ours (errors in quadrature)")
    index: tuple[Union[int, str], ...] = spec((), doc="element selection: integers or axis=value")
    axis: str = spec("", doc="the axes labelling one row per element (comma-separated, one per dimension)")
    resolution: str = spec("", doc="an axis of the reduction: half its median spacing is added to our error "
                                   "(a value read off that grid, e.g. a thermometer's temperature ladder)")
    trials: str = spec("", doc="ours is a proportion of n trials, n the reduction's attribute of this name: "
                               "its binomial error sqrt(p(1-p)/n) is added to our error (a shared test set)")
    sigmas: float = spec(4.0, gt=0, doc="threshold of above / below / increasing, in combined errors")
    paper: str = spec("", doc="the paper's words (default: value ± error)")
    note: str = spec("", doc="the study's context for this row")
    jobs: tuple[str, ...] = spec((), doc="jobs this row applies to (default: the study's)")


@dataclass(frozen=True)
class Study:
    title: str = spec(doc="the paper")
    jobs: tuple[str, ...] = spec((), doc="job files (jobs/*.toml) whose runs this study compares")
    figures: tuple[str, ...] = spec((), doc="figures of the paper the study reproduces (README)")
    claims: tuple = ()
    path: str = ""


def study_path(paper: str = "", study: str = "", base: Path | None = None) -> Path:
    """The study file of `[report] paper = <name>` (shipped) or `[report] study = <path>` (a relative path:
    to the current folder, as the paths on hpc-rg's command line, else to `base`, the run folder)."""
    if paper:
        return STUDIES / paper / "paper.toml"
    p = Path(study).expanduser()
    if not p.is_absolute() and not p.exists() and base is not None and (base / p).exists():
        return base / p
    return p


def load_study(path: Path) -> Study:
    """The study file, validated (ConfigError naming the file and the key)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, "", None, "a study file (studies/<name>/paper.toml ships with the repository, "
                                          "not with an installed package: name one with [report] study)") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(path, "", None, f"a readable TOML study file ({e})") from None
    for key in raw:
        if key not in ("study", "compare"):
            raise ConfigError(path, key, raw[key], "[study] or [[compare]]")
    study = table_to_dataclass(Study, raw.get("study", {}), path, "study", skip=("claims", "path"))
    entries = raw.get("compare", [])
    if not isinstance(entries, list):
        raise ConfigError(path, "compare", entries, "an array of tables [[compare]]")
    claims = tuple(table_to_dataclass(Claim, c, path, f"compare[{i}]") for i, c in enumerate(entries))
    for i, c in enumerate(claims):
        if c.rule in ("pull", "above", "below") and c.value is None and not c.reference:
            raise ConfigError(path, f"compare[{i}].value", None, f"a value or a reference (rule {c.rule})")
    return Study(title=study.title, jobs=study.jobs, figures=study.figures, claims=claims, path=str(path))


def format_number(v: float, e: float) -> str:
    from hpc_rg.summary import format_value
    return format_value(v, e) if math.isfinite(e) and e > 0 else f"{v:.6g}"


def _row(quantity, ours="", paper="", pull="", note="") -> dict:
    return {"quantity": quantity, "ours": ours, "paper": paper, "pull": pull, "note": note}


def _arrays(result, quantity: str):
    """(values, errors) of a quantity of a Result, errors NaN where none is stored; None if absent."""
    import numpy as np
    if quantity not in result.values:
        return None
    v, e = result.values[quantity]
    v = np.asarray(v, dtype=float)
    e = np.full(v.shape, np.nan) if e is None else np.asarray(e, dtype=float)
    return v, np.broadcast_to(e, v.shape)


def _position(group, item) -> int | None:
    """An index item: an integer, or "axis=value" (the element of that axis equal to value; numbers
    within a relative 1e-6), None when the run has no such element."""
    import numpy as np
    if isinstance(item, int) or "=" not in str(item):
        return int(item)
    axis, want = (s.strip() for s in str(item).split("=", 1))
    grid = np.asarray(group.axes.get(axis, [])).reshape(-1)
    if grid.dtype.kind in "fiu":
        hit = np.flatnonzero(np.abs(grid - float(want)) <= 1e-6 * max(1.0, abs(float(want))))
    else:
        hit = np.flatnonzero([_text(g) == want for g in grid])
    return int(hit[0]) if len(hit) else None


def _select(group, index, arrays: list):
    """Apply `index` to each array that has axes; None when the run has no such element."""
    key = [_position(group, item) for item in index]
    if any(k is None for k in key):
        return None
    try:
        return [a[tuple(key)] if a.ndim else a for a in arrays]
    except IndexError:
        return None


def _split(ref: str) -> tuple[str, str, tuple]:
    """"reduction/quantity[i, axis=value]" -> (reduction, quantity, index)."""
    red, _, q = ref.partition("/")
    index: tuple = ()
    if q.endswith("]") and "[" in q:
        q, _, inner = q[:-1].partition("[")
        index = tuple(int(s) if s.strip().lstrip("-").isdigit() else s.strip() for s in inner.split(","))
    return red, q, index


def _quantity(results: dict, ref: str):
    """(values, errors) named by `ref` ("reduction/quantity", an optional [index]), "absent" when the run did
    not compute the reduction, "missing" when the reduction lacks the quantity, "elsewhere" when the run has
    no such element (another start temperature: the claim is about another job of the study)."""
    red, q, index = _split(ref)
    group = results.get(red)
    if group is None:
        return "absent"
    found = _arrays(group, q)
    if found is None:
        return "missing"
    if index:
        found = _select(group, index, list(found))
    return "elsewhere" if found is None else found


def _pull_note(v, e, r, re_, tol) -> tuple[str, str]:
    combined = math.hypot(e if math.isfinite(e) else 0.0, re_ if math.isfinite(re_) else 0.0)
    if combined > 0:
        z = abs(v - r) / combined
        word = "agrees within 1σ" if z <= 1 else "within 4σ" if z < 4 else "differs by more than 4σ"
        return f"{z:.1f}σ", word
    if tol is not None:
        return "", f"{'within' if abs(v - r) <= tol else 'outside'} the tolerance ±{tol:g}"
    return "", f"no error given (difference {v - r:+.3g})"


def _side_note(rule: str, v, e, r, re_, sigmas: float) -> tuple[str, str]:
    sign = 1.0 if rule == "above" else -1.0
    combined = math.hypot(e if math.isfinite(e) else 0.0, re_ if math.isfinite(re_) else 0.0)
    word = "above" if rule == "above" else "below"
    if combined <= 0:
        return "", f"{word if sign * (v - r) > 0 else 'not ' + word} the reference (no error given)"
    z = sign * (v - r) / combined
    return f"{z:+.1f}σ", (f"{word} the reference by more than {sigmas:g}σ" if z > sigmas
                          else f"NOT {word} the reference by more than {sigmas:g}σ")


def claim_rows(claim: Claim, results: dict) -> list[dict]:
    """The table rows of one claim on one run's results ({reduction: StoredResult}, report.arrays.read_results)."""
    import numpy as np
    red, q, _ = _split(claim.ours)
    group = results.get(red)
    if group is None:
        return []                                  # this job does not run that reduction
    paper = claim.paper or ("" if claim.value is None else format_number(claim.value, claim.error or math.nan))
    paper = f"{paper} ({claim.source})" if paper else claim.source
    if q.startswith("attrs/"):
        text = group.attrs.get(q[6:])
        if text is None:
            return [_row(claim.quantity, "(missing)", paper, "", f"results.h5 has no {claim.ours}")]
        return [_row(claim.quantity, _text(text), paper, "", _join("qualitative: no number to compare", claim.note))]
    parts = {"ours": _quantity(results, claim.ours)}
    if claim.minus:
        parts["minus"] = _quantity(results, claim.minus)
    if claim.reference:
        parts["reference"] = _quantity(results, claim.reference)
    if any(isinstance(found, str) and found == "elsewhere" for found in parts.values()):
        return []
    for what, found in parts.items():
        if isinstance(found, str):
            name = getattr(claim, what)
            return [_row(claim.quantity, "(missing)", paper, "",
                         f"results.h5 has no {name}" + (" (a run from an older version?)" if found == "missing"
                                                         else " (the job does not run that reduction)"))]
    v, e = parts["ours"]
    if claim.resolution:
        grid = np.asarray(group.axes.get(claim.resolution, []), dtype=float).reshape(-1)
        half = 0.5 * float(np.median(np.diff(grid))) if len(grid) > 1 else 0.0
        e = np.hypot(np.nan_to_num(e), half)
    if claim.trials:
        n = float(np.asarray(group.attrs.get(claim.trials, 0)).reshape(-1)[0])
        if n > 0:
            e = np.hypot(np.nan_to_num(e), np.sqrt(np.clip(v * (1 - v), 0, None) / n))
    if claim.minus:
        v, e = v - parts["minus"][0], np.hypot(e, parts["minus"][1])
    if claim.reference:
        r, re_ = parts["reference"]
    else:
        r, re_ = np.asarray(np.nan if claim.value is None else claim.value), \
            np.asarray(np.nan if claim.error is None else claim.error)
    picked = _select(group, claim.index, [np.asarray(a, dtype=float) for a in (v, e, r, re_)])
    if picked is None:
        return []                                  # this run has no such element (another start temperature)
    v, e, r, re_ = (np.asarray(a, dtype=float) for a in picked)
    if claim.rule == "increasing":
        return [_increasing_row(claim, v.reshape(-1), e.reshape(-1), paper)]
    labels = _labels(group, claim.axis, v.shape)
    v, e = v.reshape(-1), e.reshape(-1)
    r, re_ = (np.broadcast_to(a.reshape(-1) if a.size == v.size else a.reshape(-1)[:1], v.shape) for a in (r, re_))
    out = []
    for i in range(v.size):
        shown_paper = paper if not claim.reference else f"{paper}; reference {format_number(r[i], re_[i])}"
        if claim.rule == "statement":
            pull, word = "", "qualitative: no number to compare"
        elif claim.rule == "pull":
            pull, word = _pull_note(v[i], e[i], r[i], re_[i], claim.tolerance)
        else:
            pull, word = _side_note(claim.rule, v[i], e[i], r[i], re_[i], claim.sigmas)
        out.append(_row(claim.quantity + labels[i], format_number(v[i], e[i]), shown_paper, pull,
                        _join(word, claim.note)))
    return out


def _increasing_row(claim: Claim, v, e, paper: str) -> dict:
    import numpy as np
    steps = np.diff(v) / np.hypot(np.nan_to_num(e[1:]), np.nan_to_num(e[:-1]))
    grows = bool(np.all(steps > claim.sigmas)) if len(v) > 1 else False
    word = (f"grows at every step by more than {claim.sigmas:g}σ" if grows else
            f"does NOT grow at every step by more than {claim.sigmas:g}σ")
    return _row(claim.quantity, "; ".join(format_number(a, b) for a, b in zip(v, e)), paper, "",
                _join(word, claim.note))


def _labels(group, axis: str, shape: tuple) -> list[str]:
    """One label per element: the values of the named axes (comma-separated, one per dimension), else the
    element's index ("" for a single number)."""
    import numpy as np
    names = [a.strip() for a in axis.split(",") if a.strip()]
    grids = [np.asarray(group.axes.get(a, [])).reshape(-1) for a in names]
    n = int(np.prod(shape))
    if names and len(names) == len(shape) and all(len(g) == s for g, s in zip(grids, shape)):
        return [", " + ", ".join(f"{a.split('_')[0]} {_text(g[i])}" for a, g, i in zip(names, grids, idx))
                for idx in np.ndindex(*shape)]
    return [""] if n == 1 else [f" {list(idx)}" for idx in np.ndindex(*shape)]


def _text(g) -> str:
    import numpy as np
    if isinstance(g, bytes):
        return g.decode()
    if isinstance(g, np.ndarray):
        return " ".join(_text(x) for x in g.reshape(-1))
    return f"{g:.6g}" if isinstance(g, (float, np.floating)) else str(g)


def _join(word: str, note: str) -> str:
    return f"{word}; {note}" if note else word


def rows(study: Study, run_dir) -> list[dict]:
    """Every claim of `study` on the run folder's results.h5 (read only)."""
    from hpc_rg.report.arrays import read_results
    path = Path(run_dir) / "results.h5"
    if not path.exists():
        return [_row("(no results.h5)", "", study.title, "", "run the analyze stage first")]
    results = read_results(path)
    out = [r for c in study.claims for r in claim_rows(c, results)]
    return out or [_row("(nothing to compare)", "", study.title, "",
                        "this run computed none of the reductions the study compares")]


def comparison_table(study: Study, runs, with_run: bool = True) -> str:
    """A markdown table of `rows(study, run)` for each run folder (with a run column when `with_run`)."""
    from hpc_rg.report.markdown import inline, table
    head = (["run"] if with_run else []) + ["quantity", "ours", "paper", "difference / combined error", "note"]
    body = [([inline(Path(run).name)] if with_run else [])
            + [inline(r[k]) for k in ("quantity", "ours", "paper", "pull", "note")]
            for run in runs for r in rows(study, run)]
    return "\n".join(table(head, body)) + "\n"
