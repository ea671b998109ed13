"""The trainer's CPU noise: a rank generates only the rows of the global batch it owns, and a row's numbers
do not depend on who draws it (so any rank count sees the same uniforms)."""
import numpy as np
import pytest
import torch

from hpc_rg.learn.trainer import Noise, noise_generator
from hpc_rg.learn.uniforms import UniformStream
from hpc_rg.parallel import deal


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_only_owned_rows_are_generated(dtype):
    # a draw of 2**31 global rows of which this rank owns 3: generating (or stepping through) the others
    # would take minutes; the work done is counted in 64-bit draws
    g = UniformStream(np.random.SeedSequence(4), dtype)
    lo, hi, n = 2**31 - 7, 2**31 - 4, 1001
    u = g.rows(2**31, n, lo, hi)
    per_row = (n + 1) // 2 if dtype == np.float32 else n
    assert u.shape == (3, n) and u.dtype == dtype
    assert g.draws == 3 * per_row
    g.rows(2**31, 10, 5, 5)          # an empty share draws nothing but still counts as a call
    assert g.draws == 3 * per_row and g.calls == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ranks", [1, 2, 3, 7])
def test_shares_of_any_rank_count_make_the_one_rank_draw(ranks, dtype):
    rows, sizes = 11, (16, 64, 5)                  # successive calls of different widths, as a CD-k step
    one = UniformStream(np.random.SeedSequence(8), dtype)
    full = [one.rows(rows, n, 0, rows) for n in sizes]
    for r in range(ranks):
        share = deal(rows, ranks, r)
        g = UniformStream(np.random.SeedSequence(8), dtype)
        for n, ref in zip(sizes, full):
            assert np.array_equal(g.rows(rows, n, share.start, share.stop), ref[share.start:share.stop])


def test_rows_and_calls_are_distinct_streams():
    g = UniformStream(np.random.SeedSequence(1))
    a, b = g.rows(3, 64, 0, 3), g.rows(3, 64, 0, 3)
    assert not np.array_equal(a, b)
    assert len({tuple(r) for r in np.concatenate([a, b])}) == 6
    # another seed, another stream
    assert not np.array_equal(UniformStream(np.random.SeedSequence(2)).rows(3, 64, 0, 3), a)


def test_float64_uniforms_have_53_bits():
    u = UniformStream(np.random.SeedSequence(3), np.float64).rows(200, 500, 0, 200).ravel()
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / u.size)
    assert np.any((u * 2**24) % 1 != 0)          # finer than float32's 24-bit grid
    bits = (u * 2**53).astype(np.uint64)
    assert np.all(bits.astype(np.float64) == u * 2**53)


def test_noise_on_cpu_draws_only_the_share():
    seq = np.random.SeedSequence(6)
    cpu = torch.device("cpu")
    gen = noise_generator(seq, cpu, torch.float64)
    u = Noise(gen, 1000, 10, 12, cpu, torch.float64)(7)
    assert u.shape == (2, 7) and u.dtype == torch.float64 and gen.draws == 14
