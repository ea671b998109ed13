"""Both long-range samplers against exact enumeration (2^16 states) of the 4x4 torus."""
import pytest

from hpc_rg.lattice.longrange import LongRange
from hpc_rg.mc.longrange_cluster import FukuiTodo
from hpc_rg.mc.longrange_metropolis import LongRangeMetropolis

CASES = [("ewald", 0.0, 3.0), ("ewald", 0.0, 6.0), ("ewald", 0.0, 8.0), ("ewald", 0.0, 14.0),
         ("minimum", 0.0, 7.7), ("ewald", 0.5, 8.0)]
SAMPLERS = {"metropolis": (LongRangeMetropolis, 100_000), "fukui_todo": (FukuiTodo, 60_000)}
N_COMPARISONS = len(CASES) * len(SAMPLERS) * 3


@pytest.mark.parametrize("algorithm", list(SAMPLERS))
@pytest.mark.parametrize("images,h,T", CASES)
def test_matches_enumeration(exact, helpers, algorithm, images, h, T):
    lattice = LongRange((4, 4), J=1.0, alpha=3.0, h=h, images=images)
    want = exact.exact_moments(lattice.coupling_matrix(), h, 1.0 / T)
    cls, n = SAMPLERS[algorithm]
    seed = 1000 + int(10 * T) + (7 if images == "minimum" else 0) + int(100 * h)
    series = helpers["sample"](cls, lattice, T, seed, 2000, n)
    bad = helpers["compare"](series, want, helpers["z_threshold"](N_COMPARISONS))
    assert not bad, bad


def test_enumeration_helpers_agree(exact):
    """The test's vectorised enumeration and the package's Gray-code one (hpc_rg.exact.enumeration) agree."""
    enumeration = pytest.importorskip("hpc_rg.exact.enumeration")
    lattice = LongRange((4, 4), alpha=3.0, h=0.5, images="ewald")
    jm = lattice.coupling_matrix()
    for T in (3.0, 8.0):
        ours = exact.exact_moments(jm, lattice.h, 1.0 / T)
        theirs = enumeration.exact_observables(jm, lattice.h, T)
        for key in ("energy", "abs_m", "m2", "m"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-10, abs=1e-12)
