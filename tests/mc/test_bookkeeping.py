"""Energy/magnetisation bookkeeping, state round trips and beta changes for every sampler."""
from __future__ import annotations

import numpy as np
import pytest

from mc_helpers import ALGOS_1D, ALGOS_2D, make, series

CASES = [("ising2d", a, (5, 6), 0.25 if a != "multispin" else 0.0) for a in ALGOS_2D] + \
        [("ising2d", a, (2, 3), 0.0) for a in ALGOS_2D] + \
        [("ising1d", a, (7,), -0.4) for a in ALGOS_1D]


@pytest.mark.parametrize("model,algo,shape,h", CASES)
def test_series_match_configuration(model, algo, shape, h):
    s = make(model, algo, shape, 2.1, seed=3, h=h)
    e, m = series(s, 40, every=4)
    conf = s.configurations()
    assert conf.dtype == np.int8 and conf.shape == (s.width,) + tuple(shape)
    assert set(np.unique(conf)) <= {-1, 1}
    np.testing.assert_allclose(e[:, -1], s.lattice.energy_per_site(conf), atol=1e-12)
    np.testing.assert_allclose(m[:, -1], s.lattice.magnetization(conf), atol=1e-12)
    np.testing.assert_allclose(s.energy(), s.lattice.energy_per_site(conf), atol=1e-12)
    assert e.shape == (s.width, 10)


@pytest.mark.parametrize("model,algo,shape,h", CASES[:5] + CASES[-5:])
def test_state_round_trip_bit_exact(model, algo, shape, h):
    s = make(model, algo, shape, 2.3, seed=5, h=h)
    series(s, 7)
    st = {k: v.copy() for k, v in s.state().items()}
    e1, m1 = series(s, 9)
    c1 = s.configurations()
    s.beta = 0.1                       # perturb, then restore: load_state must not depend on history
    series(s, 3)
    s.beta = 1 / 2.3
    s.load_state(st)
    e2, m2 = series(s, 9)
    np.testing.assert_array_equal(e1, e2)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(c1, s.configurations())
    # a fresh sampler loading the state continues identically too
    t = make(model, algo, shape, 2.3, seed=99, h=h)
    t.load_state(st)
    e3, _ = series(t, 9)
    np.testing.assert_array_equal(e1, e3)


@pytest.mark.parametrize("algo", ALGOS_2D)
def test_beta_change_takes_effect(algo):
    """Built hot, switched to T = 1.5: the ordered phase must appear (energy near the ground state)."""
    s = make("ising2d", algo, (8, 8), 1.5, seed=1, start_beta=0.05)
    e, _ = series(s, 400)
    assert e[:, -100:].mean() < -1.85        # exact <e> at T = 1.5, L = 8 is -1.94
    s.beta = 0.05
    e, _ = series(s, 400)
    assert e[:, -100:].mean() > -0.3          # exact <e> at T = 20 is about -0.1


def test_multispin_pack_unpack():
    from hpc_rg.mc.multispin import pack, unpack
    rng = np.random.default_rng(0)
    spins = np.where(rng.random((64, 3, 5)) < 0.5, -1, 1).astype(np.int8)
    np.testing.assert_array_equal(unpack(pack(spins)), spins)
