"""`hpc-rg assemble RUN --copy`: turn a run's ensemble.h5 into a self-contained file.

The simulate stage's serial writer makes /spins a virtual dataset over `parts/` (no copy of the
configurations), so the file cannot leave its run folder alone. This writes a real file in its place: every
dataset and attribute copied bit for bit (H5Ocopy for everything but virtual datasets, which are read
through their sources and written as chunked, optionally compressed, real datasets with the same fill
value). The sources are checked first (`Ensemble`), so a broken ensemble is refused, never copied.
Atomic: written under a temporary name in the same folder, fsynced, then renamed over ensemble.h5; on any
failure (a full disk included) the temporary file is removed and ensemble.h5 is left as it was.
The parts are kept: extending the run (`simulate --resume` with more samples) re-assembles over them.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from hpc_rg.io import diskfull
from hpc_rg.io.atomic import atomic_path
from hpc_rg.io.ensemble import FileError, chunk_rows, open_ensemble
from hpc_rg.io.labels import is_scale, label_ensemble, strip

CHUNK_BYTES = 1 << 20       # as the collective writer: several samples of one chain per chunk, ~1 MiB
BLOCK_BYTES = 64 << 20      # bytes read and written per step (memory bound)
COMPRESSIONS = ("none", "lzf", "gzip")


def ensemble_file(target: Path) -> Path:
    """RUN (a run folder) or the ensemble file itself."""
    target = Path(target)
    if target.is_dir():
        return target / "ensemble.h5"
    return target


def _real_copy(src: h5py.Dataset, dst_parent: h5py.Group, name: str, compression: str | None) -> None:
    """A real chunked copy of a (virtual) dataset of shape (n_T, n_chains, n_samples, *site_shape)."""
    shape = src.shape
    site = int(np.prod(shape[3:])) if len(shape) > 3 else 1
    per = chunk_rows(shape[2], site * src.dtype.itemsize, CHUNK_BYTES) if len(shape) >= 3 else None
    chunks = (1, 1, per, *shape[3:]) if per and all(shape) else None
    dst = dst_parent.create_dataset(name, shape=shape, dtype=src.dtype, chunks=chunks,
                                    compression=compression if chunks else None, fillvalue=src.fillvalue)
    for k, v in strip(src.attrs).items():
        dst.attrs[k] = v
    if not all(shape):
        return
    if len(shape) < 3:
        dst[()] = src[()]
        return
    step = max(per, BLOCK_BYTES // max(site * src.dtype.itemsize, 1) // per * per)
    for t in range(shape[0]):
        for c in range(shape[1]):
            for a in range(0, shape[2], step):
                dst[t, c, a:a + step] = src[t, c, a:a + step]


def copy_ensemble(target: Path, compression: str | None = None) -> Path:
    """Replace the ensemble.h5 of `target` (a run folder or the file) by a self-contained copy."""
    path = ensemble_file(target)
    if compression not in (None, *COMPRESSIONS):
        raise FileError(path, f"compression {compression!r}: expected one of {', '.join(COMPRESSIONS)}")
    comp = None if compression in (None, "none") else compression
    with open_ensemble(path) as ens:     # refuses a damaged file or missing/damaged sources (exit 2)
        temperatures, storage = ens.temperatures, ens.spin_storage
    tmp = path.with_name(path.name + ".copy.tmp")
    with diskfull.guard(path, tmp), atomic_path(path, durable=True, temporary=tmp):
        fout = h5py.File(tmp, "w")
        with diskfull.closing_on_error(fout):
            with h5py.File(path, "r") as fin:
                for k, v in fin.attrs.items():
                    fout.attrs[k] = v
                _copy_members(fin, fout, comp)
            label_ensemble(fout, temperatures, storage)    # scales are per file: made again in the copy
            fout.flush()         # a full disk shows here, before close (which could not recover from it)
        fout.close()
    return path


def _copy_members(fin: h5py.Group, fout: h5py.Group, comp: str | None) -> None:
    """Everything but the dimension scales and the attributes that refer to them (object references into
    the source file), which `label_ensemble` makes again in the copy."""
    for name, obj in fin.items():
        if isinstance(obj, h5py.Dataset) and is_scale(obj):
            continue
        if isinstance(obj, h5py.Dataset) and obj.is_virtual:
            _real_copy(obj, fout, name, comp)
        elif isinstance(obj, h5py.Group):
            g = fout.create_group(name)
            for k, v in obj.attrs.items():
                g.attrs[k] = v
            _copy_members(obj, g, comp)
        else:
            # H5Ocopy: data and creation properties as they are; the attributes but the scale references
            fin.copy(obj, fout, name, without_attrs=True)
            for k, v in strip(obj.attrs).items():
                fout[name].attrs[k] = v
