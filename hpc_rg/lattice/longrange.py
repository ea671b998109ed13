"""Long-range Ising model on a periodic Ly x Lx lattice: J_ij = J / r_ij^alpha.

H = -sum_{i<j} J_ij s_i s_j - h sum_i s_i  (each pair once, k_B = 1), energies reported per site.

Periodic images (`images`):
  "ewald"   J_ij = J sum_{n in Z^2} |r_ij + (n_y Ly, n_x Lx)|^-alpha, the coupling of an infinite periodic
            system (every image of j interacts with i).  The lattice sum converges only like R^(2-alpha) when
            truncated at radius R, so it is evaluated by Ewald splitting of the Mellin representation
            r^-alpha = (1/Gamma(alpha/2)) int_0^inf t^(alpha/2-1) exp(-r^2 t) dt at t = eta^2: a real-space
            sum of Gamma(alpha/2, eta^2 r^2) / (Gamma(alpha/2) r^alpha) plus a reciprocal-space sum of
            Gamma(1-alpha/2, pi^2 q^2 / eta^2) terms, both truncated where the terms are below 1e-17.
  "minimum" J_ij = J / |r_ij|_min^alpha with the minimum-image distance, what a naive periodic code does
            (for reproducing seed 002).

Translation invariance makes one table J(d), d = (dy, dx) in [0, Ly) x [0, Lx), hold every coupling:
J_ij = J(j - i mod L), J(0) = 0 (no self-interaction; the constant self-image energy of the Ewald sum is
dropped).  Energies use the Fourier transform of that table (O(N log N) per configuration).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import special

from hpc_rg.plugins import Plugin

PLUGINS = (
    Plugin("model", "longrange2d", "LongRange.from_simulate", doc="Ising model with J / r^alpha couplings"),
)

IMAGES = ("ewald", "minimum")
_CUT = 40.0   # exp(-40) = 4e-18: where both Ewald sums are truncated


def zeta_beta_sum(alpha: float) -> float:
    """sum_{r in Z^2, r != 0} |r|^-alpha = 4 zeta(alpha/2) beta(alpha/2) (beta: Dirichlet beta function).

    9.0336217... for alpha = 3: the mean-field T_c of the infinite lattice (J = 1)."""
    s = alpha / 2.0
    dirichlet_beta = 4.0 ** -s * (special.zeta(s, 0.25) - special.zeta(s, 0.75))
    return float(4.0 * special.zeta(s) * dirichlet_beta)


def _upper_gamma(a: float, x: np.ndarray) -> np.ndarray:
    """Non-regularised upper incomplete gamma Gamma(a, x), x > 0, any real a (a <= 0 by recurrence)."""
    if a > 0:
        return special.gamma(a) * special.gammaincc(a, x)
    if a == 0:
        return special.exp1(x)
    # Gamma(a, x) = (Gamma(a + 1, x) - x^a e^-x) / a
    return (_upper_gamma(a + 1.0, x) - x ** a * np.exp(-x)) / a


def _minimal(n: int) -> np.ndarray:
    """Displacements 0..n-1 mapped to their minimal representatives in (-n/2, n/2]."""
    d = np.arange(n)
    return np.where(d > n // 2, d - n, d)


def ewald_table(shape: tuple[int, int], alpha: float, eta: float | None = None,
                keep_self: bool = False) -> np.ndarray:
    """T(d) = sum_n |d + n L|^-alpha over all periodic images (J = 1), to ~1e-15 absolute.

    `eta` is the splitting parameter (the result must not depend on it; default sqrt(pi / (Ly Lx))).
    With `keep_self`, T(0) is the self-image sum sum_{n != 0} |n L|^-alpha instead of 0."""
    ly, lx = shape
    area = float(ly * lx)
    if eta is None:
        eta = np.sqrt(np.pi / area)
    a = alpha / 2.0
    dy = _minimal(ly).astype(np.float64)[:, None]
    dx = _minimal(lx).astype(np.float64)[None, :]
    # real space: images with eta^2 r^2 < _CUT (plus margin for the displacement inside the cell)
    r_cut = np.sqrt(_CUT) / eta
    ny_max = int(np.ceil(r_cut / ly + 0.5)) + 1
    nx_max = int(np.ceil(r_cut / lx + 0.5)) + 1
    real = np.zeros((ly, lx))
    for ny in range(-ny_max, ny_max + 1):
        ry2 = (dy + ny * ly) ** 2
        for nx in range(-nx_max, nx_max + 1):
            r2 = ry2 + (dx + nx * lx) ** 2
            with np.errstate(divide="ignore", invalid="ignore"):
                term = special.gammaincc(a, eta * eta * r2) / r2 ** a
            term[r2 == 0] = 0.0     # the site itself (n = 0 at d = 0)
            real += term
    # reciprocal space: q = (ky / Ly, kx / Lx), terms ~ exp(-pi^2 q^2 / eta^2)
    ky_max = int(np.ceil(np.sqrt(_CUT) * eta * ly / np.pi)) + 1
    kx_max = int(np.ceil(np.sqrt(_CUT) * eta * lx / np.pi)) + 1
    ky = np.arange(-ky_max, ky_max + 1, dtype=np.float64)
    kx = np.arange(-kx_max, kx_max + 1, dtype=np.float64)
    b = np.pi ** 2 * ((ky[:, None] / ly) ** 2 + (kx[None, :] / lx) ** 2)
    weight = np.empty_like(b)
    zero = b == 0
    weight[zero] = eta ** (alpha - 2.0) / (a - 1.0)
    bz = b[~zero]
    weight[~zero] = bz ** (a - 1.0) * _upper_gamma(1.0 - a, bz / eta ** 2)
    weight *= np.pi / (special.gamma(a) * area)
    # the weights are even in ky and kx separately, so the sum is a product of cosine transforms
    cy = np.cos(2.0 * np.pi * np.outer(_minimal(ly), ky) / ly)     # (ly, nky)
    cx = np.cos(2.0 * np.pi * np.outer(kx, _minimal(lx)) / lx)     # (nkx, lx)
    recip = cy @ weight @ cx
    table = real + recip
    # remove the n = 0 image of the site itself from the smooth part: eta^alpha / Gamma(alpha/2 + 1)
    table[0, 0] -= eta ** alpha / special.gamma(a + 1.0)
    if not keep_self:
        table[0, 0] = 0.0
    return table


def minimum_image_table(shape: tuple[int, int], alpha: float) -> np.ndarray:
    """T(d) = |d|_min^-alpha with the minimum-image displacement (J = 1), T(0) = 0."""
    ly, lx = shape
    dy = np.abs(_minimal(ly)).astype(np.float64)[:, None]
    dx = np.abs(_minimal(lx)).astype(np.float64)[None, :]
    r2 = dy ** 2 + dx ** 2
    with np.errstate(divide="ignore"):
        table = r2 ** (-alpha / 2.0)
    table[0, 0] = 0.0
    return table


@dataclass(frozen=True)
class LongRange:
    shape: tuple[int, int]     # (Ly, Lx)
    J: float = 1.0             # overall coupling scale: J_ij = J / r^alpha (ferromagnetic > 0)
    alpha: float = 3.0         # decay exponent, alpha > d = 2
    h: float = 0.0             # magnetic field
    images: str = "ewald"      # "ewald" | "minimum" (see the module docstring)

    @classmethod
    def from_simulate(cls, sim) -> "LongRange":
        """The model a `[simulate]` table (`hpc_rg.mc.specs.SimulateConfig`) describes."""
        return cls(shape=sim.shape, J=sim.J, alpha=sim.alpha, h=sim.h, images=sim.images)

    def attributes(self) -> dict:
        """Parameters of the model beyond shape, J and h, as the ensemble file records them."""
        return {"alpha": self.alpha, "images": self.images}

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(x) for x in self.shape))
        if len(self.shape) != 2:
            raise ValueError(f"LongRange is two-dimensional; got shape {self.shape}")
        if not self.alpha > 2:
            raise ValueError(f"alpha must exceed d = 2 for the coupling sum to converge; got {self.alpha}")
        if self.images not in IMAGES:
            raise ValueError(f"images must be one of {IMAGES}; got {self.images!r}")

    @property
    def dim(self) -> int:
        return 2

    @property
    def n_sites(self) -> int:
        return self.shape[0] * self.shape[1]

    @cached_property
    def couplings(self) -> np.ndarray:
        """J(d), float64 of shape `shape`: the coupling between sites i and i + d (J(0) = 0), read-only."""
        if self.images == "ewald":
            table = ewald_table(self.shape, self.alpha)
        else:
            table = minimum_image_table(self.shape, self.alpha)
        # J(d) = J(-d) exactly (the sums above agree only to rounding), so J_ij = J_ji bit for bit
        ly, lx = self.shape
        mirror = table[(-np.arange(ly)) % ly][:, (-np.arange(lx)) % lx]
        table = self.J * (0.5 * (table + mirror))
        table.setflags(write=False)
        return table

    @cached_property
    def coupling_sum(self) -> float:
        """sum_{d != 0} J(d): the local field of a fully aligned lattice (mean-field T_c on this lattice)."""
        return float(self.couplings.sum())

    @cached_property
    def _spectrum(self) -> np.ndarray:
        """Real Fourier transform of J(d) (rfft2 layout; J(d) = J(-d) makes it real)."""
        return np.fft.rfft2(self.couplings).real

    @cached_property
    def _parseval_weights(self) -> np.ndarray:
        """w(k) with sum_i s_i (J * s)_i = sum_k w(k) |rfft2(s)(k)|^2 (half-spectrum multiplicities folded in)."""
        lx = self.shape[1]
        mult = np.full(lx // 2 + 1, 2.0)
        mult[0] = 1.0
        if lx % 2 == 0:
            mult[-1] = 1.0
        return self._spectrum * mult[None, :] / self.n_sites

    def local_field(self, spins: np.ndarray) -> np.ndarray:
        """phi_i = sum_j J_ij s_j over the last two axes (leading axes are batch), float64."""
        s = np.asarray(spins, dtype=np.float64)
        return np.fft.irfft2(np.fft.rfft2(s) * self._spectrum, s=self.shape)

    def pair_sum(self, spins: np.ndarray) -> np.ndarray:
        """sum_{i<j} J_ij s_i s_j (one FFT per configuration; leading axes are batch)."""
        f = np.fft.rfft2(np.asarray(spins, dtype=np.float64))
        return 0.5 * np.einsum("...ij,ij->...", f.real ** 2 + f.imag ** 2, self._parseval_weights)

    def energy_per_site(self, spins: np.ndarray) -> np.ndarray:
        """H / N for each configuration (last two axes are the lattice, leading axes batch)."""
        total = -self.pair_sum(spins) - self.h * np.asarray(spins, dtype=np.int64).sum(axis=(-2, -1))
        return total / self.n_sites

    def magnetization(self, spins: np.ndarray) -> np.ndarray:
        """Signed magnetization per site (leading axes are batch)."""
        return np.asarray(spins, dtype=np.int64).sum(axis=(-2, -1)) / self.n_sites

    def coupling_matrix(self) -> np.ndarray:
        """Dense N x N matrix J_ij (row-major site order, zero diagonal), for tiny lattices."""
        ly, lx = self.shape
        if self.n_sites > 4096:
            raise ValueError(f"coupling_matrix is for tiny lattices; N = {self.n_sites} is too large")
        y, x = np.divmod(np.arange(self.n_sites), lx)
        return self.couplings[(y[None, :] - y[:, None]) % ly, (x[None, :] - x[:, None]) % lx]
