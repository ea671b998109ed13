"""Moved to `hpc_rg.tune.search`; this old import path (used by tests outside hpc_rg/tune) is the same module."""
import sys

from hpc_rg.tune import search

sys.modules[__name__] = search
