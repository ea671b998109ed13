"""What the four studies' figure scripts (studies/seed00N/figures.py) share: the command line, the output
folder, per-run figure folders, the paper's numbers from the study's paper.toml, and the comparison table at
the end (hpc_rg.report.compare, the table the report shows).

    runs, out = start(__doc__, argv, "run folders ...")      # argparse, matplotlib Agg, out created
    dirs = FigureDirs(out)                                    # where a run's figures of one kind go
    return finish("seed001", runs, out, made)                 # <paper>_table.md, printed with the figures

Figure folders: the first run holding a given reduction draws into `out`; a later run holding the same
reduction draws into `out/<run name>/`, so passing two runs of one kind (say the full job and a shorter
variant) never overwrites the first run's figures.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def start(doc: str, argv, runs_help: str, single: bool = False) -> tuple[list[Path], Path]:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    if single:
        ap.add_argument("runs", nargs=1, type=Path, metavar="run", help=runs_help)
    else:
        ap.add_argument("runs", nargs="+", type=Path, help=runs_help)
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: <first run>/analysis)")
    args = ap.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    out = args.out or args.runs[0] / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    return list(args.runs), out


def results(run: Path) -> dict:
    """The run's results.h5 as {reduction: Result} (the objects the package's figure functions draw, readable
    as the file's groups too: r["q"], r["q_err"], r["axes"], r["attrs"]); {} when analyze has not run."""
    from hpc_rg.report.arrays import read_results
    path = run / "results.h5"
    return read_results(path) if path.exists() else {}


class FigureDirs:
    def __init__(self, out: Path):
        self.out, self.seen = out, set()

    def __call__(self, kind: str, run: Path) -> Path:
        if kind not in self.seen:
            self.seen.add(kind)
            return self.out
        sub = self.out / run.name
        sub.mkdir(parents=True, exist_ok=True)
        return sub


def study(name: str):
    """The study studies/<name>/paper.toml (validated)."""
    from hpc_rg.report.compare import load_study
    return load_study(Path(__file__).resolve().parent / name / "paper.toml")


def paper_value(name: str, quantity: str) -> float:
    """The paper's number of the claim labelled `quantity` in studies/<name>/paper.toml (for reference lines
    in figures: the numbers are written once, in the study file)."""
    for claim in study(name).claims:
        if claim.quantity == quantity and claim.value is not None:
            return claim.value
    raise KeyError(f"studies/{name}/paper.toml has no claim {quantity!r} with a value")


def finish(paper: str, runs: list[Path], out: Path, made: list, with_run: bool = True) -> int:
    from hpc_rg.report.compare import comparison_table
    text = comparison_table(study(paper), runs, with_run=with_run)
    (out / f"{paper}_table.md").write_text(text)
    print(text)
    for p in made:
        print("figure", p)
    return 0
