"""Fukui-Todo Swendsen-Wang and local-field Metropolis agree on 8x8 and 16x16 around T_c (Ewald images)."""
import numpy as np
import pytest

from hpc_rg.lattice.longrange import LongRange
from hpc_rg.mc.longrange_cluster import FukuiTodo
from hpc_rg.mc.longrange_metropolis import LongRangeMetropolis
from hpc_rg.reduce.stats import mean_error

TEMPERATURES = (6.5, 7.5, 8.5)      # T_c(L -> inf) ~ 7.6 for alpha = 3 with Ewald images
SIZES = (8, 16)
N_COMPARISONS = len(TEMPERATURES) * len(SIZES) * 3


@pytest.mark.slow
@pytest.mark.parametrize("L", SIZES)
@pytest.mark.parametrize("T", TEMPERATURES)
def test_cluster_agrees_with_metropolis(helpers, L, T):
    lattice = LongRange((L, L), alpha=3.0)
    seed = 500 + 10 * L + int(T)
    metro = helpers["sample"](LongRangeMetropolis, lattice, T, seed, 1000, 30_000)
    cluster = helpers["sample"](FukuiTodo, lattice, T, seed + 1, 300, 20_000)
    threshold = helpers["z_threshold"](N_COMPARISONS)
    for name in metro:
        m1, e1, _ = mean_error(metro[name])
        m2, e2, _ = mean_error(cluster[name])
        z = abs(m1 - m2) / np.hypot(e1, e2)
        assert z < threshold, (name, m1, e1, m2, e2, z)
