"""Onsager's solution of the infinite square-lattice Ising model (J > 0, h = 0, k_B = 1), per site.

    T_c = 2 J / ln(1 + sqrt 2)
    -beta f = ln 2 / 2 + (1 / 2 pi) int_0^pi ln[cosh^2 2K + (1/k) sqrt(1 + k^2 - 2k cos 2 theta)] d theta,
              k = 1 / sinh^2 2K
    u = -J coth 2K [1 + (2/pi) (2 tanh^2 2K - 1) K_1(q)],  q = 2 sinh 2K / cosh^2 2K  (K_1 complete elliptic,
        modulus q, i.e. mpmath.ellipk(q^2))
    m_0 = (1 - sinh^{-4} 2K)^{1/8} below T_c, 0 above (Yang 1952).
Specific heat: numerical derivative of u in mpmath (log-divergent at T_c).
"""
from __future__ import annotations

import math

import mpmath as mp

T_C = 2.0 / math.log(1.0 + math.sqrt(2.0))
ENERGY_AT_TC = -math.sqrt(2.0)
_DPS = 30


def _energy(T, J):
    K = J / T
    q = 2 * mp.sinh(2 * K) / mp.cosh(2 * K) ** 2
    a = 2 * mp.tanh(2 * K) ** 2 - 1
    if abs(a) < 1e-15:   # at T_c: a -> 0 times a log-divergent K_1; a ln(1/a) < 1e-13 here
        return -J * mp.coth(2 * K)
    return -J * mp.coth(2 * K) * (1 + 2 / mp.pi * a * mp.ellipk(q ** 2))


def energy(T: float, J: float = 1.0) -> float:
    """Energy per site u(T); equals -sqrt(2) J at T_c."""
    with mp.workdps(_DPS):
        return float(_energy(mp.mpf(T), mp.mpf(J)))


def specific_heat(T: float, J: float = 1.0) -> float:
    """du/dT per site (diverges logarithmically at T_c)."""
    with mp.workdps(_DPS):
        return float(mp.diff(lambda t: _energy(t, mp.mpf(J)), mp.mpf(T)))


def free_energy(T: float, J: float = 1.0) -> float:
    """Free energy per site f(T)."""
    with mp.workdps(_DPS):
        K = mp.mpf(J) / mp.mpf(T)
        k = 1 / mp.sinh(2 * K) ** 2
        integrand = lambda th: mp.log(mp.cosh(2 * K) ** 2 + mp.sqrt(1 + k ** 2 - 2 * k * mp.cos(2 * th)) / k)
        minus_beta_f = mp.log(2) / 2 + mp.quad(integrand, [0, mp.pi / 2, mp.pi]) / (2 * mp.pi)
        return float(-minus_beta_f * mp.mpf(T))


def spontaneous_magnetization(T: float, J: float = 1.0) -> float:
    """Yang's m_0(T); 0 at and above T_c."""
    if T >= T_C * J:
        return 0.0
    return float((1.0 - math.sinh(2.0 * J / T) ** -4) ** 0.125)
