"""Progress of the long loops (simulate, train), the way users of such tools expect it.

On a terminal (stderr is a TTY, rank 0, not -q): a tqdm bar. In a log (a Slurm job's output, a pipe, a
--log-file): one INFO line every `interval()` seconds with the position, the rate and the time left, e.g.

    simulate: 1200/4000 sweeps (30%), 812 sweeps/s, 1.5s elapsed, ETA 3s

Every duration the package prints for people goes through `duration()`: `1h02m`, `3m05s`, `42s`.
The interval is `--progress-every SECONDS` on the command line (`configure`), else the environment variable
HPC_RG_PROGRESS_SECONDS, else DEFAULT_SECONDS. Progress goes to stderr (the log), never to stdout.
"""
from __future__ import annotations

import logging
import math
import os
import sys
import time

__all__ = ["DEFAULT_SECONDS", "Progress", "configure", "duration", "interval", "rate"]

DEFAULT_SECONDS = 15.0        # a Slurm log stays readable (240 lines an hour) and a stalled job shows soon
_configured: float | None = None


def configure(seconds: float | None) -> None:
    """Set the log-line interval for this process (None: back to the environment / default)."""
    global _configured
    _configured = None if seconds is None else float(seconds)


def interval() -> float:
    if _configured is not None:
        return _configured
    text = os.environ.get("HPC_RG_PROGRESS_SECONDS", "")
    try:
        value = float(text)
    except ValueError:
        return DEFAULT_SECONDS
    return value if value >= 0 and math.isfinite(value) else DEFAULT_SECONDS


def duration(seconds: float) -> str:
    """`1h02m` (from an hour), `3m05s` (from a minute), `42s`, `3.2s` (under ten seconds); `?` when unknown
    (no progress yet)."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    if seconds < 9.95:
        return f"{seconds:.1f}s"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def rate(per_second: float, unit: str) -> str:
    """`812 sweeps/s`, `0.25 epochs/s`: three significant digits and the plural unit."""
    return f"{per_second:.3g} {unit}/s"


def _terminal_shows_info(log: logging.Logger) -> bool:
    """True when stderr is a terminal and INFO reaches it (not -q): then a bar replaces the log lines."""
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
    if not tty or not log.isEnabledFor(logging.INFO):
        return False
    terminal = [h for h in log.handlers if type(h) is logging.StreamHandler and h.stream is sys.stderr]
    return any(h.level <= logging.INFO for h in terminal)


class Progress:
    """Progress of one loop of `total` steps of `unit` (plural, e.g. "sweeps", "samples", "epochs").

    `update(done)` with the absolute position (cheap: a clock read unless a line is due); `close()` (or a
    `with` block) ends it. Only rank 0 shows anything (`is_root=False` makes it silent), and nothing at all
    with `enabled=False` (the many small trainings of repeats and searches). `start`: the position this
    run began at (a resumed run), so that rate and ETA count only this run's work."""

    def __init__(self, label: str, total: int, unit: str, *, start: int = 0, is_root: bool = True,
                 enabled: bool = True, every: float | None = None, log: logging.Logger | None = None,
                 bar: bool | None = None):
        self.label, self.total, self.unit = label, int(total), unit
        self.start = self.done = int(start)
        self.log = log or logging.getLogger("hpc_rg")
        self.every = interval() if every is None else float(every)
        self.active = bool(enabled and is_root)
        self.t0 = self.last = time.monotonic()
        self.bar = None
        if self.active and (_terminal_shows_info(self.log) if bar is None else bar):
            try:
                from tqdm import tqdm
            except ImportError:       # tqdm is a core dependency; without it, log lines as in a batch job
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=self.total, initial=self.start, desc=label, unit=unit.rstrip("s") or unit,
                                file=sys.stderr, dynamic_ncols=True, leave=False, mininterval=0)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def rate(self) -> float:
        """Steps per second of this run so far."""
        return (self.done - self.start) / max(self.elapsed(), 1e-9)

    def eta(self) -> float:
        r = self.rate()
        return (self.total - self.done) / r if r > 0 else float("nan")

    def line(self, extra: str = "") -> str:
        pct = 100.0 * self.done / max(self.total, 1)
        return (f"{self.label}: {self.done}/{self.total} {self.unit} ({pct:.0f}%), {rate(self.rate(), self.unit)}, "
                f"{duration(self.elapsed())} elapsed, ETA {duration(self.eta())}" + (f", {extra}" if extra else ""))

    def update(self, done: int, extra=None) -> None:
        """Now at `done` of `total`. `extra`: text added to the line (e.g. "samples 40/200"), or a function
        giving it, called only when a line is due (the hot loops call this at every step)."""
        self.done = int(done)
        if not self.active:
            return
        now = time.monotonic()
        if self.bar is not None:
            if now - self.last >= 0.2 or self.done >= self.total:    # tqdm redraws at most ~5 times a second
                self.last = now
                text = extra() if callable(extra) else extra
                if text:
                    self.bar.set_postfix_str(text, refresh=False)
                self.bar.update(self.done - self.bar.n)
            return
        if now - self.last >= self.every and self.done < self.total:
            self.last = now
            self.log.info(self.line((extra() if callable(extra) else extra) or ""))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.active = False
