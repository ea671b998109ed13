"""The trainer's CPU noise stream: rank-share slices equal the full draw, and the numbers are uniform."""
import numpy as np
import torch
from scipy import stats

from hpc_rg.learn.trainer import Noise, noise_generator
from hpc_rg.learn.uniforms import UniformStream


def test_rank_shares_equal_the_full_draw():
    full = UniformStream(np.random.SeedSequence(5)).rows(10, 7, 0, 10)
    for lo, hi in ((0, 5), (5, 10), (3, 4), (0, 10)):
        g = UniformStream(np.random.SeedSequence(5))
        assert np.array_equal(g.rows(10, 7, lo, hi), full[lo:hi])
    # successive calls continue the stream the same way on every share
    a, b = UniformStream(np.random.SeedSequence(9)), UniformStream(np.random.SeedSequence(9))
    a.rows(4, 3, 0, 4)
    b.rows(4, 3, 2, 4)
    assert np.array_equal(a.rows(4, 5, 0, 4)[1:3], b.rows(4, 5, 1, 3))


def test_noise_uses_the_stream_on_cpu_and_slices_ranks():
    seq = np.random.SeedSequence(3)
    one = Noise(noise_generator(seq, torch.device("cpu")), 6, 0, 6, torch.device("cpu"), torch.float32)(11)
    two = Noise(noise_generator(seq, torch.device("cpu")), 6, 3, 6, torch.device("cpu"), torch.float32)(11)
    assert one.dtype == torch.float32 and torch.equal(one[3:], two)
    f64 = Noise(noise_generator(seq, torch.device("cpu"), torch.float64), 6, 0, 6, torch.device("cpu"),
                torch.float64)(11)
    assert f64.dtype == torch.float64


def test_uniform_distribution():
    n_rows, n = 1000, 1001                       # odd row length: the last number of a row uses a half draw
    u = UniformStream(np.random.SeedSequence(2026)).rows(n_rows, n, 0, n_rows).ravel().astype(np.float64)
    N = u.size
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / N)
    assert abs(u.var() - 1 / 12) < 4 * np.sqrt(1 / 180 / N)              # Var of (u - 1/2)^2 = 1/180
    counts = np.histogram(u, bins=256, range=(0, 1))[0]
    assert stats.chisquare(counts).pvalue > 1e-4
    # the two halves of each draw are independent: lag-1 correlation within rows ~ 0
    x = u.reshape(n_rows, n) - 0.5
    r = (x[:, :-1] * x[:, 1:]).mean() / (1 / 12)
    assert abs(r) < 4 / np.sqrt(x[:, :-1].size)
