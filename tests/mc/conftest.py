"""Fixtures and helpers of the Monte Carlo tests.

- `mc_helpers` (samplers built from their plugin declarations, time series) is made importable as a top-level
  module (tests run with --import-mode=importlib);
- `reference`: an uninterrupted single-rank run of the standard driver job (`driver_helpers.write_job`);
- `exact`, `helpers`: the long-range exact enumeration (tests/lattice/exact_longrange.py), Bonferroni-aware
  thresholds and sampler time series.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from hpc_rg.reduce.stats import mean_error
from tests.mc.driver_helpers import hpc_rg, write_job

sys.path.insert(0, str(Path(__file__).parent))

_EXACT = Path(__file__).resolve().parent.parent / "lattice" / "exact_longrange.py"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted single-rank run of the standard driver job."""
    folder = tmp_path_factory.mktemp("reference")
    job = write_job(folder)
    hpc_rg("simulate", job)
    return folder / "driver" / "ensemble.h5"


def _load_exact():
    spec = importlib.util.spec_from_file_location("exact_longrange", _EXACT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def exact():
    return _load_exact()


def z_threshold(n_comparisons: int, family_alpha: float = 1e-3) -> float:
    """At least 4 sigma, more when Bonferroni over n comparisons needs it for a family-wise rate."""
    return max(4.0, float(norm.isf(family_alpha / (2 * n_comparisons))))


def sample(cls, lattice, temperature, seed, thermalize, n):
    """(energy per site, |m|, m^2) series of length n from a fresh sampler after `thermalize` updates."""
    s = cls(lattice, 1.0 / temperature, [np.random.SeedSequence(seed)])
    e = np.empty((1, max(thermalize, 1)))
    m = np.empty((1, max(thermalize, 1)))
    if thermalize:
        s.run(thermalize, e, m)
    e = np.empty((1, n))
    m = np.empty((1, n))
    s.run(n, e, m)
    return {"energy": e[0], "abs_m": np.abs(m[0]), "m2": m[0] ** 2}


def compare(series, expected, threshold):
    """[(name, z)] for observables whose mean differs from `expected` by more than threshold error bars."""
    bad = []
    for name, x in series.items():
        mean, err, _ = mean_error(x)
        z = abs(mean - expected[name]) / err
        if not z < threshold:
            bad.append((name, mean, err, expected[name], z))
    return bad


@pytest.fixture(scope="session")
def helpers():
    return {"z_threshold": z_threshold, "sample": sample, "compare": compare}
