"""What a replica's data travels as, from the rank that ran it to the rank that files its unit.

A unit is (ladder, temperature slot); its owner appends the data to its part file (`hpc_rg.io.parts`).
With replica exchange a replica may sit at a slot another rank owns, so the messages are sent there
(an alltoall at each exchange); without it every message stays on its own rank.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TimeSeries:
    """Measurements numbered first, first + 1, ... of the unit's `width` chains, shape (width, n)."""
    unit: tuple[int, int]
    first: int
    energy: np.ndarray
    magnetization: np.ndarray

    def write_to(self, writer) -> None:
        writer.add_timeseries(self.unit, self.first, self.energy, self.magnetization)


@dataclass(frozen=True)
class Sample:
    """Stored configuration number `index` of the unit's chains, with its energy and magnetization."""
    unit: tuple[int, int]
    index: int
    spins: np.ndarray
    energy: np.ndarray
    magnetization: np.ndarray

    def write_to(self, writer) -> None:
        writer.add_sample(self.unit, self.index, self.spins, self.energy, self.magnetization)


def route(world, exchange: bool, outbox: dict[int, list]) -> list:
    """Deliver every message in `outbox` (rank -> messages) to its rank; returns the messages received here.
    Only replica exchange moves replicas away from their own units, so without it nothing travels."""
    if world.size == 1 or not exchange:
        return [x for items in outbox.values() for x in items]
    received = world.alltoall([outbox.get(r, []) for r in range(world.size)])
    return [x for items in received for x in items]
