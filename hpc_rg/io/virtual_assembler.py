"""The serial assembler: `<out>/ensemble.h5` whose /spins is a virtual dataset over the part files (no copy
of the configurations); the small per-sample and per-measurement arrays are copied into it. Written on one
rank (rank 0), under a temporary name, fsynced and renamed; readers cannot tell it from a file written in
one piece. A full disk raises `hpc_rg.io.diskfull.DiskFullError` and leaves no ensemble.h5.tmp.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from hpc_rg.io import diskfull, spin_storage
from hpc_rg.io.assembler import EnsembleAssembler
from hpc_rg.io.atomic import atomic_path
from hpc_rg.io.labels import label_ensemble
from hpc_rg.io.layout import SAMPLE_ARRAYS, TIMESERIES_ARRAYS, root_attributes, write_root_attributes
from hpc_rg.io.part_files import SOURCE, read_rows


class VirtualAssembler(EnsembleAssembler):
    """/spins virtual over the parts (relative source names: the run folder may move with its parts/)."""

    def write(self) -> Path:
        lay = self.layout
        inv = self.plan()
        spins = h5py.VirtualLayout(shape=lay.stored_spins_shape, dtype=lay.spin_dtype)
        arrays = {name: np.full((lay.n_t, lay.n_chains, lay.length(name)), np.nan)
                  for name in (*SAMPLE_ARRAYS, *TIMESERIES_ARRAYS)}
        for p in inv.parts:
            rel = os.path.relpath(p.path, self.out)
            with h5py.File(p.path, "r") as f:
                rows = {name: read_rows(f, SOURCE[name], p.rows(SOURCE[name])) for name in arrays}
            for i, (g, t) in enumerate(p.units):
                chains = slice(g * p.width, (g + 1) * p.width)
                for dset, a, n in p.segments["spins"]:
                    source = h5py.VirtualSource(rel, dset, shape=p.shapes[dset])
                    spins[t, chains, p.j0 + a:p.j0 + a + n] = source[i, :, 0:n]
                for name, block in rows.items():
                    a, n = p.first(SOURCE[name]), p.rows(SOURCE[name])
                    if n:
                        arrays[name][t, chains, a:a + n] = block[i]
        with diskfull.guard(self.final, self.tmp), \
                atomic_path(self.final, durable=True, temporary=self.tmp) as tmp:
            f = h5py.File(tmp, "w")
            with diskfull.closing_on_error(f):
                write_root_attributes(f, root_attributes(lay.lattice_shape, lay.attrs))
                f["temperatures"] = lay.temperature_array
                d = f.create_virtual_dataset("spins", spins, fillvalue=lay.spin_fill)
                spin_storage.mark(d, lay.storage, lay.spins_shape)
                for name, data in arrays.items():
                    f[name] = data
                items = self.exchange_arrays(lay.exchange, inv)
                if items:
                    g = f.create_group("exchange")
                    for k, v in items:
                        g[k] = v
                label_ensemble(f, lay.temperature_array, lay.storage)
                f.flush()       # a full disk shows here, before close (which could not recover from it)
            f.close()
        return self.final
