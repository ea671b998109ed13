"""The Kaufman reference used by the GPU tests against exact enumeration of small tori."""
import pytest


@pytest.mark.parametrize("shape", [(4, 4), (2, 8), (3, 5), (4, 3)])
@pytest.mark.parametrize("beta", [0.3, 0.4406868, 0.7])
def test_kaufman_matches_enumeration(exact, shape, beta):
    e_enum, _ = exact.enumerate_exact(beta, shape)
    assert abs(exact.energy_per_site(beta, *shape) - e_enum) < 1e-8


def test_kaufman_approaches_onsager_at_tc(exact):
    import math
    beta_c = math.log(1 + math.sqrt(2)) / 2
    e = [exact.energy_per_site(beta_c, L, L) for L in (64, 256, 1024)]
    # the finite-size correction at T_c shrinks like 1/L towards -sqrt(2)
    d = [abs(x + math.sqrt(2)) for x in e]
    assert d[0] > d[1] > d[2] and d[2] < 1e-3


def test_agrees_with_project_kaufman(exact):
    kaufman = pytest.importorskip("hpc_rg.exact.kaufman")
    pytest.importorskip("mpmath")
    for beta, shape in [(0.3, (8, 8)), (0.4406868, (16, 8)), (0.6, (8, 16))]:
        assert abs(kaufman.energy(shape, 1.0 / beta) - exact.energy_per_site(beta, *shape)) < 1e-8
