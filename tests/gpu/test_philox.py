"""Philox4x32-10 against Random123's known-answer vectors, and the counter/fixed-point helpers."""
import numpy as np
import pytest

from hpc_rg.mc.gpu_common import counter_words, fixed_point_64, philox4x32, philox_numpy

# (counter, key, output) from Random123's kat_vectors for philox4x32 with 10 rounds
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter,key,expected", KAT)
def test_known_answers_numpy(counter, key, expected):
    assert tuple(int(v) for v in philox_numpy(counter, key)) == expected


@pytest.mark.parametrize("counter,key,expected", KAT)
def test_known_answers_compiled(counter, key, expected):
    args = [np.uint64(v) for v in (*counter, *key)]
    assert tuple(int(v) for v in philox4x32(*args)) == expected


def test_vectorised_equals_scalar():
    rng = np.random.default_rng(7)
    ctr = rng.integers(0, 2**32, size=(50, 4), dtype=np.uint64)
    key = rng.integers(0, 2**32, size=(50, 2), dtype=np.uint64)
    vec = philox_numpy(ctr, key)
    for i in range(50):
        assert tuple(int(v) for v in philox4x32(*ctr[i], *key[i])) == tuple(int(v) for v in vec[i])


def test_output_is_uniform():
    # 2**16 counters -> 2**18 words; the top byte's histogram must be flat (chi-square, 255 dof)
    ctr = np.zeros((1 << 16, 4), dtype=np.uint64)
    ctr[:, 0] = np.arange(1 << 16)
    words = philox_numpy(ctr, np.array([12345, 678], dtype=np.uint64)).ravel()
    counts = np.bincount(words >> 24, minlength=256)
    expected = words.size / 256
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert 150 < chi2 < 380     # mean 255, sd 22.6: about 5 sd either way


def test_counter_words_and_fixed_point():
    assert counter_words(5, 0) == (5, 0)
    assert counter_words((7 << 32) + 3, 1) == (3, 7 | (1 << 30))
    with pytest.raises(OverflowError):
        counter_words(1 << 62, 0)
    assert fixed_point_64(0.5) == 1 << 63
    assert fixed_point_64(0.0) == 0
    p = np.exp(-4 * 0.44)
    assert abs(fixed_point_64(p) / 2.0**64 - p) < 2.0**-52
