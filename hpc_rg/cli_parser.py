"""The `hpc-rg` command line: its subcommands, their arguments and help texts (argparse only).

What each subcommand does is in `hpc_rg.cli`; the logging options that every subcommand takes are in
`hpc_rg.cli_logging`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from hpc_rg.cli_logging import add_log_options
from hpc_rg.provenance import version_string

DESCRIPTION = "`hpc-rg`: one command per stage, the same under `mpiexec -n N`, `srun` or plainly."

INFO_JSON = """--json prints one object. Every file: path, kind ("ensemble", "results" or "hdf5"), format, warnings
(a list of sentences, e.g. chains shorter than 50 autocorrelation times; empty when nothing is wrong).
An ensemble adds: model, lattice_shape, J, h, alpha, images, algorithm, update_unit, seed, thermalize, thin,
n_temperatures, n_chains, n_samples, spins_mib, series ("timeseries" or "samples": what the estimates use),
replica_exchange (null, or attempts, acceptance, round_trips, replicas) and temperatures: a list of {T, energy,
energy_error, abs_m, abs_m_error, tau_int_energy, tau_int_abs_m, series_length, too_short}.
Other files add items: a list of {name, dtype, shape, value (datasets of at most 8 numbers)}; groups are
{name} ending in "/". Exit codes as without --json; NaN is written as null."""

STATUS_JSON = """--json prints one object. A run folder: path, kind "run", job (null or {name, seed, stages}),
simulate (null before the first checkpoint, else {state, update, updates_total, percent, samples_done, ranks,
checkpoint, checkpoint_age_seconds, updates_per_second, seconds_left, exchange_acceptance, round_trips}),
files ({name: {mib, damaged}} of ensemble.h5, results.h5, report.md), models (names), tune (lines), last_simulate
(null, "unreadable" or {wall_seconds, ranks, ns_per_site_update}), problem (null or the damaged ensemble's
one-line error: the exit code is then 2, as without --json). A sweep folder: path, kind "sweep", name, mode,
keys, points (a list of {index, folder, values, started, simulate, models, ensemble.h5, results.h5,
report.md})."""

# the stage commands that take a job file: help text
STAGE_HELP = {"simulate": "run the Monte Carlo chains and write <out>/ensemble.h5",
              "train": "train the models of [train.*] on the ensemble",
              "analyze": "run the reductions of [analyze.*] and write <out>/results.h5",
              "run": "run every stage the job names, in order"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hpc-rg", description=DESCRIPTION)
    p.add_argument("--version", action=_Version)
    add_log_options(p, top=True)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    c = sub.add_parser("check", help="validate a job file and print the resolved job")
    c.add_argument("job", type=Path)
    c.add_argument("--explain", action="store_true", help="print every key with its meaning as TOML comments")
    c.add_argument("--point", type=int, metavar="K", help="a sweep's point K: print its resolved job")
    for name, text in STAGE_HELP.items():
        s = sub.add_parser(name, help=text)
        s.add_argument("job", type=Path)
        s.add_argument("--resume", action="store_true", help="continue from the last checkpoint (or extend "
                                                             "a finished run whose samples were raised)")
        s.add_argument("--force", action="store_true", help="overwrite this stage's outputs in the run folder")
        s.add_argument("--point", type=int, metavar="K", help="a sweep job ([sweep] table): run only point K "
                                                             "(a Slurm array task: --point $SLURM_ARRAY_TASK_ID)")
    t = sub.add_parser("tune", help="search the training settings of [tune.*] (Optuna studies in <out>/tune/)")
    t.add_argument("job", type=Path)
    t.add_argument("--resume", action="store_true", help="continue the studies (finished trials are kept)")
    t.add_argument("--force", action="store_true", help="start the searches over (their outputs are removed)")
    t.add_argument("--worker", action="store_true", help="join the studies as an extra asynchronous worker "
                                                         "(e.g. Slurm array tasks); the main run retrains")
    r = sub.add_parser("report", help="write report.md and report.html for a run folder")
    r.add_argument("run_dir", type=Path)
    st = sub.add_parser("status", help="progress of a run (while it runs or after it stopped)",
                        epilog=STATUS_JSON, formatter_class=argparse.RawDescriptionHelpFormatter)
    st.add_argument("run_dir", type=Path)
    st.add_argument("--json", action="store_true", help="one JSON object on stdout (keys below)")
    i = sub.add_parser("info", help="summarise an ensemble.h5 or results.h5 file",
                       epilog=INFO_JSON, formatter_class=argparse.RawDescriptionHelpFormatter)
    i.add_argument("file", type=Path)
    i.add_argument("--json", action="store_true", help="one JSON object on stdout (keys below)")
    d = sub.add_parser("demo", help="run the packaged quickstart job (simulate, train, analyze, report) into "
                                    "./runs/quickstart or --out")
    d.add_argument("--out", type=Path, default=Path("runs") / "quickstart", help="the run folder to write "
                   "(default: runs/quickstart under the current folder)")
    d.add_argument("--resume", action="store_true", help="continue an interrupted demo")
    d.add_argument("--force", action="store_true", help="overwrite an earlier demo in that folder")
    a = sub.add_parser("assemble", help="rewrite a run's ensemble.h5 as a self-contained file (no parts/ needed)")
    a.add_argument("run_dir", type=Path, metavar="RUN", help="the run folder (or its ensemble.h5)")
    a.add_argument("--copy", action="store_true", required=True,
                   help="copy the configurations out of parts/ into ensemble.h5 (bit-identical)")
    a.add_argument("--compression", choices=("none", "lzf", "gzip"), default="none", help="of the copied /spins")
    for command in sub.choices.values():     # -v/-q/--log-file also after the subcommand: hpc-rg run JOB -q
        add_log_options(command, top=False)
    return p


class _Version(argparse.Action):
    """--version: the package version and, in a git checkout, the commit (computed only when asked)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version (and git commit) and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"hpc-rg {version_string()}")
        parser.exit()
