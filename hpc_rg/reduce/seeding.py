"""The one seeding rule of the reductions: every random draw of a reduction comes from

    seeding.sequence(job_seed, reduction_name, *key)

= `parallel.seed_sequence(job_seed, crc32(reduction_name), *key, purpose="analysis")`, where `key` names the
unit of work (e.g. ("boot", temperature index) or (temperature, chain, first sample) of a batch), never the
rank that does it: the draws, and so the results, are the same on any number of ranks. String parts of the
key are mapped to integers by CRC-32 (stable across Python versions and runs, unlike `hash`).

`rng_for` (numpy Generator), `seed_for` (a non-negative 63-bit int, for functions that take an int seed) and
`torch_generator` (a CPU torch.Generator) are views of the same stream.
"""
from __future__ import annotations

import zlib

import numpy as np

from hpc_rg.parallel import seed_sequence


def _int(part) -> int:
    return zlib.crc32(part.encode()) if isinstance(part, str) else int(part)


def sequence(job_seed: int, reduction: str, *key) -> np.random.SeedSequence:
    """The SeedSequence of one unit of work of `reduction` (key parts: ints or strings)."""
    return seed_sequence(job_seed, _int(reduction), *(_int(k) for k in key), purpose="analysis")


def seed_for(job_seed: int, reduction: str, *key) -> int:
    """A 63-bit seed of the same stream, for functions that take an int (e.g. `rg.block_levels`)."""
    return int(sequence(job_seed, reduction, *key).generate_state(1, np.uint64)[0] >> 1)


def rng_for(job_seed: int, reduction: str, *key) -> np.random.Generator:
    return np.random.default_rng(sequence(job_seed, reduction, *key))


def torch_generator(job_seed: int, reduction: str, *key):
    """A torch CPU generator of the same stream (torch is imported here only: most reductions need none)."""
    import torch
    g = torch.Generator()
    g.manual_seed(seed_for(job_seed, reduction, *key))
    return g
