"""One seeding rule for every reduction (`hpc_rg.reduce.seeding`), built on `parallel.seed_sequence`."""
import re
import zlib
from pathlib import Path

import numpy as np

import hpc_rg.reduce
from hpc_rg.parallel import seed_sequence
from hpc_rg.reduce import seeding


def test_the_stream_is_seed_sequence_keyed_by_reduction_name_and_work():
    seq = seeding.sequence(7, "mcrg", 3, "boot", 1)
    ref = seed_sequence(7, zlib.crc32(b"mcrg"), 3, zlib.crc32(b"boot"), 1, purpose="analysis")
    assert seq.entropy == ref.entropy and seq.spawn_key == ref.spawn_key
    a = seeding.rng_for(7, "mcrg", 3).random(4)
    assert np.array_equal(a, seeding.rng_for(7, "mcrg", 3).random(4))            # the key names the work
    assert not np.array_equal(a, seeding.rng_for(7, "block_rg", 3).random(4))   # each reduction its own
    assert not np.array_equal(a, seeding.rng_for(8, "mcrg", 3).random(4))       # and each job seed
    s = seeding.seed_for(7, "mcrg", 3)
    assert 0 <= s < 2 ** 63 and s == seeding.seed_for(7, "mcrg", 3)


def test_torch_generator_is_the_same_stream():
    import torch
    g1, g2 = seeding.torch_generator(5, "rbm_flow", 1, 2), seeding.torch_generator(5, "rbm_flow", 1, 2)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))
    assert g1.initial_seed() == seeding.seed_for(5, "rbm_flow", 1, 2)


def test_no_reduction_seeds_by_another_rule():
    """crc32 of a repr, magic stream tags, seed + offset arithmetic: none left outside seeding.py."""
    folder = Path(hpc_rg.reduce.__file__).parent
    bad = re.compile(r"zlib\.crc32|seed_sequence\(|_KEY = \d|int\(ctx\.seed\) \+|manual_seed\(")
    found = [f"{p.name}: {line.strip()}" for p in folder.glob("*.py") if p.name not in ("seeding.py", "mi_neural.py")
             for line in p.read_text().splitlines() if bad.search(line)]
    assert found == []
