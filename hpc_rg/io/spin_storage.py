"""How /spins is stored: one int8 per spin ("int8"), or 8 spins per byte ("bits"); the one pack/unpack path.

`simulate.spin_storage = "bits"` stores each configuration with `numpy.packbits` along x (the last axis):
spin +1 is bit 1, spin -1 is bit 0, big-endian bit order within a byte (numpy's default), the last byte of a
row padded with 0 bits when Lx is not a multiple of 8. A lattice Ly x Lx takes Ly * ceil(Lx/8) bytes instead
of Ly * Lx. The stored dataset is uint8 (..., ceil(Lx/8)) and says what it is in its attributes:
`spin_storage = "bits"` and `unpacked_shape` (the int8 shape it stands for). A dataset without the attribute
is int8, as every file written before "bits" existed.

Writers call `pack` on configurations as they arrive; readers get `spin_view(dset)`: the h5py dataset itself
for int8, or a `PackedSpins` that reads the packed rows a selection needs and unpacks only those, so
`Ensemble.spins[t, c, a:b]`, `iter_spins`, the training sources and the reductions read "bits" files
exactly as int8 ones, in the same bounded batches, without knowing how they are stored.
"""
from __future__ import annotations

import sys

import numpy as np

STORAGES = ("int8", "bits")
BITS_FROM_L = 256          # default storage for L >= this (see `default_storage`)
ATTR = "spin_storage"
SHAPE_ATTR = "unpacked_shape"


def default_storage(L: int) -> str:
    """The storage a job gets when it does not choose: "bits" from L = BITS_FROM_L on, "int8" below (small
    lattices, where disk is no concern and int8 is what other tools expect). Measured by
    benchmarks/io_throughput.py --only-storage (one core, bits over int8, page cache warm): disk 0.126 at
    L = 256 and 0.125 at L = 1024; write 2.9x and 4.5x as fast; reduction reads 1.0x and 4.6x; training
    reads 6.5x and 10x."""
    return "bits" if int(L) >= BITS_FROM_L else "int8"


def packed_width(nx: int) -> int:
    """Bytes of one packed row of nx spins."""
    return (int(nx) + 7) // 8


def stored_shape(shape: tuple[int, ...], storage: str) -> tuple[int, ...]:
    """The shape on disk of int8 spins of shape `shape` (last axis x)."""
    shape = tuple(int(s) for s in shape)
    if storage == "bits":
        return shape[:-1] + (packed_width(shape[-1]),)
    return shape


def stored_dtype(storage: str) -> np.dtype:
    return np.dtype(np.uint8) if storage == "bits" else np.dtype(np.int8)


def pack(spins: np.ndarray) -> np.ndarray:
    """int8 ±1 (..., nx) -> uint8 (..., ceil(nx/8)): +1 -> bit 1, -1 -> bit 0 (what np.packbits(spins > 0,
    axis=-1) gives, in one compiled pass)."""
    from hpc_rg.io import spin_kernels     # here: numba's import, paid only by "bits" files
    spins = np.ascontiguousarray(spins, dtype=np.int8)
    nx = spins.shape[-1]
    out = np.empty(spins.shape[:-1] + (packed_width(nx),), dtype=np.uint8)
    if not out.size:
        return out
    if nx % 8 == 0 and sys.byteorder == "little":      # 8 spins per machine word, packed word by word
        spin_kernels.pack_words(spins.reshape(-1).view(np.uint64), out.reshape(-1))
    else:
        spin_kernels.pack_rows(spins.reshape(-1, nx), out.reshape(-1, out.shape[-1]))
    return out


def unpack(packed: np.ndarray, nx: int) -> np.ndarray:
    """uint8 (..., ceil(nx/8)) -> int8 ±1 (..., nx), C-contiguous, the exact inverse of `pack`."""
    from hpc_rg.io import spin_kernels     # here: numba's import, paid only by "bits" files
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    nx = int(nx)
    if packed.shape[-1] != packed_width(nx):
        raise ValueError(f"packed rows of {packed.shape[-1]} bytes cannot hold {nx} spins")
    if nx % 8 == 0:             # whole bytes: one 8-byte word of spins per byte, in spin order in memory
        words = np.empty(packed.shape, dtype=np.uint64)
        if packed.size:
            spin_kernels.unpack_words(packed.reshape(-1), spin_kernels.SPINS_OF_BYTE, words.reshape(-1))
        return words.view(np.int8).reshape(packed.shape[:-1] + (nx,))
    out = np.empty(packed.shape[:-1] + (nx,), dtype=np.int8)
    if out.size:
        spin_kernels.unpack_rows(packed.reshape(-1, packed.shape[-1]), out.reshape(-1, nx))
    return out


def to_stored(spins: np.ndarray, storage: str) -> np.ndarray:
    """Configurations as they are written for `storage`."""
    return pack(spins) if storage == "bits" else np.asarray(spins, dtype=np.int8)


def mark(dset, storage: str, unpacked_shape: tuple[int, ...]) -> None:
    """Record on a stored spins dataset how to read it (only "bits" needs saying: int8 is the default)."""
    if storage == "bits":
        dset.attrs[ATTR] = "bits"
        dset.attrs[SHAPE_ATTR] = np.asarray(unpacked_shape, dtype=np.int64)


def storage_of(dset) -> str:
    """"int8" or "bits" as a dataset records it; anything else is returned as found (the caller refuses)."""
    v = dset.attrs.get(ATTR, "int8")
    return v.decode() if isinstance(v, bytes) else str(v)


class PackedSpins:
    """Read-only, array-like int8 view of a "bits" dataset: the shape, dtype and indexing of the int8
    dataset it stands for. Indexing reads the packed rows of the selection (any h5py selection on the leading
    axes) and unpacks them; a selection along x is applied after unpacking."""

    def __init__(self, dset, nx: int | None = None):
        self.dataset = dset
        shape = dset.attrs.get(SHAPE_ATTR)
        if shape is None:
            shape = tuple(dset.shape[:-1]) + (nx if nx is not None else dset.shape[-1] * 8,)
        self.shape = tuple(int(s) for s in shape)
        self.nx = self.shape[-1]
        self.dtype = np.dtype(np.int8)

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape)))
    nbytes = property(lambda self: self.size)               # as the int8 array it reads as
    stored_nbytes = property(lambda self: int(np.prod(self.dataset.shape)))
    attrs = property(lambda self: self.dataset.attrs)
    name = property(lambda self: self.dataset.name)
    is_virtual = property(lambda self: self.dataset.is_virtual)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            i = next(i for i, k in enumerate(key) if k is Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1:]
        if len(key) > self.ndim:
            raise IndexError(f"too many indices for a {self.ndim}-dimensional spins dataset")
        lead = key[:self.ndim - 1]
        x = key[self.ndim - 1] if len(key) == self.ndim else slice(None)
        packed = self.dataset[lead + (slice(None),) * (self.ndim - 1 - len(lead)) + (slice(None),)]
        out = unpack(packed, self.nx)
        return out if isinstance(x, slice) and x == slice(None) else out[..., x]

    def __array__(self, dtype=None, copy=None):
        a = self[()]
        return a if dtype is None else a.astype(dtype)


def spin_view(dset):
    """What readers index: the dataset itself (int8), or its unpacking view (bits)."""
    return PackedSpins(dset) if storage_of(dset) == "bits" else dset
