"""Seed 000 diagnostics on hand-made repeats: kernel statistics with sign alignment, the corner pattern, the MI
of neighbouring coarse blocks (a kernel of equal weights is exactly the majority rule, so its MI and MCRG
exponents must equal majority's on the same configurations), and the accuracy summary."""
import numpy as np
import pytest

from model_helpers import T_C, context, save, spec_of, wolff_samples, write
from hpc_rg.learn.coarse_cnn import CoarseCNN, boundary_average_kernel
from hpc_rg.reduce import learned_coarse_graining as lcg
from hpc_rg.reduce import mutual_info as mi

CORNER = np.array([[0.3, 0.1, 0.3], [0.1, 0.05, 0.1], [0.3, 0.1, 0.3]])


def test_sign_alignment_and_corner_ratio():
    rng = np.random.default_rng(1)
    k = CORNER[None, None] * (1 + 0.05 * rng.standard_normal((40, 1, 3, 3)))
    k[::2] *= -1                                   # half of the repeats learned the negated kernel
    st = lcg.kernel_statistics(k)
    assert st["mean"][0][0] == pytest.approx(CORNER, rel=0.05)
    ratio, se = st["corner_edge_ratio"]
    assert se[0] > 0 and abs(ratio[0] - 3.0) < 4 * se[0] + 0.05
    assert st["corner"][0][0] > st["edge"][0][0] > st["centre"][0][0]


def test_image_tables():
    ones = np.ones((1, 3, 3))
    maj = mi.kernel_levels("majority", 3)
    sign = lcg.image_table(ones, "sign")
    assert set(np.unique(sign)) == {0, 2}
    assert np.array_equal(sign == 2, maj == 1)     # sign(Σ s) over 9 spins is the majority rule
    frozen = lcg.image_table(boundary_average_kernel(3).numpy()[None], "exact")
    assert len(np.unique(frozen)) == 9             # Σ of 8 boundary spins / 8: 9 values


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("lcg")
    spins = np.stack([np.stack([wolff_samples(27, T_C, 120, seed=s) for s in (1, 2)])])
    write(out / "ensemble.h5", [T_C], spins, "ising2d")
    rng = np.random.default_rng(2)
    reps = lambda kernels, acc: [{"repeat": r, "metrics": {"test_accuracy": float(a)}, "kernel": k}
                                 for r, (k, a) in enumerate(zip(kernels, acc))]
    ones = [s * np.ones((1, 3, 3)) for s in (1.0, -1.0, 1.2)]
    save(out, "ones", "coarse_cnn", CoarseCNN(3, 1), (27, 27), repeats=reps(ones, [0.90, 0.91, 0.92]))
    corner = [CORNER[None] * (1 + 0.05 * rng.standard_normal((1, 3, 3))) for _ in range(5)]
    save(out, "corner", "coarse_cnn", CoarseCNN(3, 1), (27, 27), repeats=reps(corner, rng.uniform(0.9, 0.93, 5)))
    return out


def test_reduction(run_dir, reductions):
    spec = spec_of("learned_coarse_graining", models=("ones", "corner"), n_boot=20, n_blocks=4, batch=60)
    res = reductions["learned_coarse_graining"](spec, context(run_dir))
    v, e = res.values["accuracy_mean"]
    assert v[0] == pytest.approx(0.91) and e[0] == pytest.approx(0.01 / np.sqrt(3))
    assert res.values["kernel_mean_ones"][0] == pytest.approx(np.full((1, 3, 3), 3.2 / 3))
    # MI of the equal-weight kernel's sign image is the majority rule's, computed independently here
    h = mi.JointHistogram()
    with __import__("hpc_rg.io.ensemble", fromlist=["open_ensemble"]).open_ensemble(run_dir / "ensemble.h5") as ens:
        x = np.asarray(ens.spins[0]).reshape(-1, 27, 27)
    tab = mi.kernel_levels("majority", 3)
    a, c = mi.neighbour_pairs(mi.block_codes(x, 3))
    h.add(tab[a], tab[c], 0)
    ref, _ = mi.mi_with_error(h, "miller_madow", 10)
    assert res.values["I_ones_sign"][0][0] == pytest.approx(ref, abs=1e-12)
    fine, fine_e = res.values["I_fine"]
    assert fine[0] - res.values["I_ones_sign"][0][0] > 4 * fine_e[0]   # coarse-graining loses information
    # the equal-weight kernel iterated / fed to MCRG is the majority rule: identical numbers
    for q in ("y_t", "y_h", "nn", "binder"):
        assert np.array_equal(res.values[f"{q}_learned_ones"][0], res.values[f"{q}_majority_ones"][0])
    assert np.all(np.isfinite(res.values["y_t_learned_corner"][0]))
