"""The compiled loops of `hpc_rg.io.spin_storage` (numba, cached on disk like the samplers').

Kept apart so that importing `spin_storage` (the job validator does, for the default storage) does not
import numba; `spin_storage` imports this module on the first pack or unpack. Measured on one core
(ratios within one run): unpacking by this gather runs ~4x faster than numpy's fancy-indexed gather of the
same table (which first casts the bytes to 8-byte indices) and ~8x faster than np.unpackbits then 2b - 1.
"""
from __future__ import annotations

import numpy as np
from numba import njit

# byte value -> its 8 spins (int8 ±1, the first spin from the highest bit) as one 8-byte word
SPINS_OF_BYTE = np.ascontiguousarray(
    np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.int8) * 2 - 1).view(np.uint64)[:, 0]


@njit(cache=True, nogil=True)
def unpack_words(packed, table, out):
    """out[i] = table[packed[i]] over flat arrays: whole bytes of 8 spins (rows a multiple of 8 long)."""
    for i in range(packed.size):
        out[i] = table[packed[i]]


@njit(cache=True, nogil=True)
def unpack_rows(packed, out):
    """packed (rows, ceil(nx/8)) uint8 -> out (rows, nx) int8 ±1, for any nx."""
    rows, nx = out.shape
    for r in range(rows):
        for j in range(nx):
            out[r, j] = 1 if (packed[r, j >> 3] >> (7 - (j & 7))) & 1 else -1


LOW_BITS = np.uint64(0x0101010101010101)     # bit 0 of every byte of a word
GATHER = np.uint64(0x8040201008040201)       # bit 0 of byte k -> bit 63 - k of the product (no carries)


@njit(cache=True, nogil=True)
def pack_words(words, out):
    """8 int8 ±1 spins read as one little-endian word -> one byte (first spin in the high bit). A +1 byte
    (0x01) has bit 1 clear, a -1 byte (0xFF) has it set, so bit 1 of the complement, moved to bit 0, is the
    spin's bit; the multiplication gathers the 8 bits into the top byte."""
    for i in range(words.size):
        m = (~words[i] >> np.uint64(1)) & LOW_BITS
        out[i] = np.uint8((m * GATHER) >> np.uint64(56))


@njit(cache=True, nogil=True)
def pack_rows(spins, out):
    """spins (rows, nx) int8 ±1 -> out (rows, ceil(nx/8)) uint8: bit 1 for +1, first spin in the high bit,
    the last byte padded with 0 bits."""
    rows, nx = spins.shape
    nb = out.shape[1]
    for r in range(rows):
        for b in range(nb):
            byte = 0
            for k in range(8):
                j = b * 8 + k
                if j < nx and spins[r, j] > 0:
                    byte |= 0x80 >> k
            out[r, b] = byte
