"""The base of the two writers that assemble a run's part files into `<out>/ensemble.h5`: the virtual one
(`hpc_rg.io.virtual_assembler.VirtualAssembler`: /spins a virtual dataset over the parts, on one rank) and
the collective one (`hpc_rg.io.mpio.CollectiveAssembler`: one real file, written by every rank with
parallel HDF5). Both take an `EnsembleLayout` (what the file holds), read the same inventory of the parts,
refuse the same incomplete parts (`check_coverage`, the one coverage check) and write the same root
attributes; they differ only in how the arrays get into the file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hpc_rg.io.layout import EnsembleLayout
from hpc_rg.io.part_files import PartInventory, check_storage, inventory


def check_coverage(inv: PartInventory, layout: EnsembleLayout, parts_folder: Path) -> None:
    """Every part stores its spins as the layout does, and every sample and every time-series point of
    every chain at every temperature is held by some part; else a RuntimeError naming the first hole."""
    for p in inv.parts:
        check_storage(p.path, p.storage, layout.storage)
    for what, length, first, count in (("sample", layout.n_samples, "j0", "nj"),
                                       ("measurement", layout.n_measurements, "k0", "nk")):
        covered = np.zeros((layout.n_t, layout.n_chains, length), dtype=bool)
        for p in inv.parts:
            a, n = getattr(p, first), getattr(p, count)
            for g, t in p.units:
                covered[t, g * p.width:(g + 1) * p.width, a:a + n] = True
        if not covered.all():
            t, c, j = np.argwhere(~covered)[0]
            raise RuntimeError(f"{parts_folder}: no part holds {what} {j} of temperature {t}, chain {c} "
                               "(parts incomplete)")


class EnsembleAssembler:
    """Writes `<out>/ensemble.h5` with the layout `layout` from the committed parts 0..n_parts-1 of
    `parts_folder`, under the temporary name `ensemble.h5.tmp` (every rank of a collective write opens it;
    the disk-full message names the file it replaces), renamed once complete. Subclasses: `write()`."""

    def __init__(self, out: Path, parts_folder: Path, n_parts: int, layout: EnsembleLayout):
        self.out, self.parts_folder, self.n_parts = Path(out), Path(parts_folder), int(n_parts)
        self.layout = layout
        self.final = self.out / "ensemble.h5"
        self.tmp = self.out / "ensemble.h5.tmp"

    def plan(self) -> PartInventory:
        """The parts' inventory, checked to cover the layout."""
        inv = inventory(self.parts_folder, self.n_parts)
        check_coverage(inv, self.layout, self.parts_folder)
        return inv

    def exchange_arrays(self, exchange: dict | None, inv: PartInventory) -> list[tuple[str, object]]:
        """The datasets of /exchange: the statistics given, then the slot history the parts hold (none
        without replica exchange)."""
        if not exchange:
            return []
        items = list(exchange.items())
        if inv.slot_history is not None:
            items.append(("slot_history", inv.slot_history))
        return items

    def write(self) -> Path:
        raise NotImplementedError
