"""Moved to `hpc_rg.tune.figures`; this old import path (used by tests outside hpc_rg/tune) is the same module."""
import sys

from hpc_rg.tune import figures

sys.modules[__name__] = figures
