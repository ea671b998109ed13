"""Couplings and energies of the long-range lattice (hpc_rg.lattice.longrange)."""
import numpy as np
import pytest

from hpc_rg.lattice.longrange import LongRange, ewald_table, minimum_image_table, zeta_beta_sum

S3 = 9.0336217                       # sum_{r != 0} |r|^-3 over Z^2 (DESIGN.md reference value)


def test_zeta_beta_sum_reference():
    assert zeta_beta_sum(3.0) == pytest.approx(S3, abs=1e-7)
    # alpha = 4: 4 zeta(2) beta(2) = 4 (pi^2/6) G, G Catalan's constant
    assert zeta_beta_sum(4.0) == pytest.approx(4 * np.pi ** 2 / 6 * 0.915965594177219, rel=1e-14)


@pytest.mark.parametrize("L", [2, 3, 4, 7, 10, 16, 64, 256])
def test_ewald_sum_rule(L):
    """sum over d != 0 of the image-summed couplings is the Z^2 sum minus the self images: S (1 - L^-alpha).
    As L grows this tends to 4 zeta(3/2) beta(3/2) = 9.0336..."""
    table = LongRange((L, L), alpha=3.0).couplings
    exact = zeta_beta_sum(3.0) * (1.0 - L ** -3.0)
    assert table[0, 0] == 0.0
    assert abs(table.sum() - exact) < 1e-12


@pytest.mark.parametrize("alpha", [2.5, 3.0, 4.0, 5.5])
@pytest.mark.parametrize("shape", [(4, 4), (5, 8), (16, 16)])
def test_ewald_independent_of_splitting(alpha, shape):
    """The Ewald split is exact: a different splitting parameter changes no coupling beyond 1e-12."""
    eta0 = np.sqrt(np.pi / (shape[0] * shape[1]))
    a = ewald_table(shape, alpha, keep_self=True)
    for f in (0.5, 2.0):
        b = ewald_table(shape, alpha, eta=f * eta0, keep_self=True)
        assert np.abs(a - b).max() < 1e-12
    # with the self images kept, all images of all displacements tile Z^2 \ {0}
    assert abs(a.sum() - zeta_beta_sum(alpha)) < 1e-12
    if shape[0] == shape[1]:
        assert abs(a[0, 0] - zeta_beta_sum(alpha) * shape[0] ** -alpha) < 1e-12


def _direct_image_sum(shape, alpha, radius):
    """sum over images within `radius` plus the continuum tail 2 pi R^(2-alpha) / ((alpha-2) area)."""
    ly, lx = shape
    out = np.zeros(shape)
    ny = int(radius / ly) + 2
    nx = int(radius / lx) + 2
    ry = (np.arange(-ny, ny + 1) * ly)[:, None]
    rx = (np.arange(-nx, nx + 1) * lx)[None, :]
    for dy in range(ly):
        for dx in range(lx):
            r2 = (ry + dy) ** 2.0 + (rx + dx) ** 2.0
            keep = (r2 > 0) & (r2 <= radius ** 2)
            out[dy, dx] = (r2[keep] ** (-alpha / 2)).sum()
    return out + 2 * np.pi * radius ** (2 - alpha) / ((alpha - 2) * ly * lx)


def test_ewald_matches_direct_image_sum():
    shape = (3, 5)
    for alpha, radius, tol in ((5.0, 400.0, 1e-9), (3.0, 1500.0, 3e-6)):
        direct = _direct_image_sum(shape, alpha, radius)
        direct[0, 0] = 0.0
        assert np.abs(ewald_table(shape, alpha) - direct).max() < tol


def test_minimum_image_table():
    t = minimum_image_table((6, 5), 3.0)
    assert t[0, 0] == 0.0
    assert t[0, 1] == t[0, 4] == 1.0
    assert t[3, 0] == pytest.approx(1 / 27)          # dy = 3 = L/2 on the even side
    assert t[2, 3] == pytest.approx((2 ** 2 + 2 ** 2) ** -1.5)
    lat = LongRange((6, 5), J=2.0, images="minimum")
    assert np.array_equal(lat.couplings, 2.0 * t)


@pytest.mark.parametrize("images", ["ewald", "minimum"])
@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (6, 6)])
def test_energy_matches_dense_matrix(images, shape):
    lat = LongRange(shape, J=1.3, alpha=3.0, h=0.7, images=images)
    jm = lat.coupling_matrix()
    assert np.array_equal(jm, jm.T) and not jm.diagonal().any()
    assert np.allclose(jm.sum(axis=1), lat.coupling_sum, atol=1e-12)
    rng = np.random.default_rng(5)
    spins = rng.choice(np.array([-1, 1], dtype=np.int8), size=(2, 3) + shape)
    flat = spins.reshape(2, 3, -1).astype(float)
    dense = (-0.5 * np.einsum("...i,ij,...j->...", flat, jm, flat) - lat.h * flat.sum(-1)) / lat.n_sites
    assert lat.energy_per_site(spins).shape == (2, 3)
    assert np.allclose(lat.energy_per_site(spins), dense, atol=1e-12, rtol=0)
    assert np.allclose(lat.magnetization(spins), flat.mean(-1))
    assert np.allclose(lat.local_field(spins).reshape(2, 3, -1), flat @ jm, atol=1e-12)


def test_ground_state_energy():
    lat = LongRange((8, 8))
    up = np.ones((8, 8), dtype=np.int8)
    assert lat.energy_per_site(up) == pytest.approx(-0.5 * zeta_beta_sum(3.0) * (1 - 8 ** -3), abs=1e-12)


def test_interface_and_validation():
    lat = LongRange((4, 6), J=1.0, alpha=3.5, h=0.1, images="minimum")
    assert (lat.shape, lat.dim, lat.n_sites, lat.J, lat.h, lat.alpha, lat.images) == \
        ((4, 6), 2, 24, 1.0, 0.1, 3.5, "minimum")
    assert lat.couplings.shape == (4, 6) and not lat.couplings.flags.writeable
    with pytest.raises(ValueError):
        LongRange((4, 4), alpha=2.0)
    with pytest.raises(ValueError):
        LongRange((4, 4), images="nearest")
    with pytest.raises(ValueError):
        LongRange((16,))


def test_from_config():
    from hpc_rg.config import loads
    from hpc_rg.lattice import from_config
    cfg = loads('[job]\nname = "x"\nseed = 1\n[simulate]\nmodel = "longrange2d"\nL = 6\ntemperatures = [7.7]\n'
                'algorithm = "fukui_todo"\nalpha = 3.0\nimages = "minimum"\n')
    lat = from_config(cfg.simulate)
    assert isinstance(lat, LongRange) and lat.images == "minimum" and lat.shape == (6, 6)
