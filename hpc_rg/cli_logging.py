"""The logging options every `hpc-rg` subcommand takes (-v, -q, --log-file, --progress-every), on either
side of the subcommand, and what they set up on top of `hpc_rg.parallel.setup_logging`."""
from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from hpc_rg.progress import DEFAULT_SECONDS
from hpc_rg.schema import ConfigError


def add_log_options(parser: argparse.ArgumentParser, top: bool) -> None:
    # After the subcommand the defaults are SUPPRESS, so `hpc-rg -v check JOB` keeps the -v given before it.
    default = {} if top else {"default": argparse.SUPPRESS}
    g = parser.add_mutually_exclusive_group()
    g.add_argument("-v", "--verbose", action="store_true", help="debug logging", **default)
    g.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only", **default)
    parser.add_argument("--log-file", metavar="PATH", type=str, help="also log to PATH (appended, dated "
                        "timestamps); {rank} in PATH gives one file per MPI rank, else rank 0 writes it",
                        **({"default": None} if top else default))
    parser.add_argument("--progress-every", metavar="SECONDS", type=_seconds,
                        help="in a log (not a terminal), a progress line with rate and ETA every SECONDS "
                             f"(default: $HPC_RG_PROGRESS_SECONDS or {DEFAULT_SECONDS:g})",
                        **({"default": None} if top else default))


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of seconds > 0")
    return value


def apply_log_options(args, w):
    """-q and --log-file on top of `parallel.setup_logging` (stderr: rank 0 at INFO, the others at WARNING).
    -q quietens the terminal only: a log file gets INFO (DEBUG with -v) either way. Returns a function that
    undoes all this (main() may run several times in one process, e.g. in tests)."""
    log = logging.getLogger("hpc_rg")
    saved_level, saved_handlers = log.level, [(h, h.level) for h in log.handlers]
    terminal = max(log.level, logging.WARNING) if args.quiet else log.level
    for h, _ in saved_handlers:
        h.setLevel(max(h.level, terminal))
    file_handler = None
    name = args.log_file
    if name is not None and ("{rank}" in name or w.is_root):
        path = Path(name.replace("{rank}", str(w.rank)))   # not str.format: other braces stay as they are
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            file_handler = logging.FileHandler(path, mode="a", encoding="utf-8")
        except OSError as e:
            raise ConfigError(path, "--log-file", str(path),
                              f"a file that can be written ({e.strerror}: {e.filename})") from None
        file_handler.setFormatter(logging.Formatter(
            f"%(asctime)s [{w.rank}/{w.size}] %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        file_handler.setLevel(logging.DEBUG if args.verbose else logging.INFO)
        log.addHandler(file_handler)
    log.setLevel(min(terminal, file_handler.level) if file_handler else terminal)

    def restore():
        if file_handler is not None:
            log.removeHandler(file_handler)
            file_handler.close()
        for h, level in saved_handlers:
            h.setLevel(level)
        log.setLevel(saved_level)
    return restore
