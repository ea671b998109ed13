"""Exact results for Ising models, the references of the Monte Carlo tests.

kaufman      finite L_y x L_x torus, nearest neighbour, h = 0 (Kaufman 1949): log Z, energy, specific heat
enumeration  any small system given a dense coupling matrix J_ij and field h: all moments by enumeration
chain1d      periodic chain with field: correlations, energy, magnetisation (transfer matrix)
onsager      infinite square lattice: T_c, free energy, energy, specific heat, spontaneous magnetisation
Units: J = 1 unless given, k_B = 1, energies and specific heats per site.
"""
from hpc_rg.exact.onsager import T_C

__all__ = ["T_C"]
