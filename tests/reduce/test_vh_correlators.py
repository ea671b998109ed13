"""⟨v_i h_a⟩ on the complete set of 4×4 configurations (equal weights, T = ∞): ⟨v_i v_j⟩ = δ_ij exactly, so
for exact 2×2 block averaging ⟨v_i h_a⟩ = ¼ · [i in block a] exactly, and a stacked RBM whose first layer
couples only inside 2×2 blocks has maps exactly zero outside its block."""
import numpy as np
import pytest
import torch

from model_helpers import block_indicator, context, save, spec_of, write
from hpc_rg.exact.enumeration import configurations
from hpc_rg.learn.dbn import DBN


@pytest.fixture(scope="module")
def all_configs(tmp_path_factory):
    out = tmp_path_factory.mktemp("vh")
    spins = configurations(16).reshape(1, 4, 1 << 14, 4, 4)     # 4 "chains" of 2^14 each
    write(out / "ensemble.h5", [1e6], spins.reshape(1, 4, -1, 4, 4), "ising2d")
    dbn = DBN([16, 4, 1], units="spin").double()
    with torch.no_grad():
        dbn.rbms[0].W.copy_(0.7 * torch.as_tensor(block_indicator(4, 2)))
        dbn.rbms[1].W.fill_(0.3)
    save(out, "dbn", "dbn", dbn, (4, 4))
    return out


def test_block_average_is_block_indicator(all_configs, reductions):
    spec = spec_of("vh_correlators", model="dbn", rg_steps=2, kernel="average", show=4, n_blocks=4, batch=4096)
    res = reductions["vh_correlators"](spec, context(all_configs))
    m1 = res.values["map_rg1"][0][0]          # (units shown, 4, 4) at the one temperature
    assert m1.shape == (4, 4, 4)
    # units shown: spread over the 2×2 block grid (0, 1, 2, 3) -> blocks at (0,0), (0,2), (2,0), (2,2)
    for u, (I, J) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        ref = np.zeros((4, 4))
        ref[2 * I:2 * I + 2, 2 * J:2 * J + 2] = 0.25
        assert np.array_equal(m1[u], ref)
    assert np.array_equal(res.values["map_rg2"][0][0], np.full((1, 4, 4), 1 / 16))
    rad, rad_e = res.values["rg_radius"]
    assert rad[0] == pytest.approx([np.sqrt(0.5), np.sqrt(2 * 15 / 12)], abs=1e-12)
    assert res.values["rg_window_fraction"][0][0] == pytest.approx([1.0, 1.0], abs=1e-12)
    # the stacked RBM's first layer: nonzero only inside the unit's own 2×2 block
    l1 = res.values["map_layer1"][0][0]
    for u, (I, J) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        mask = np.zeros((4, 4), bool)
        mask[2 * I:2 * I + 2, 2 * J:2 * J + 2] = True
        assert np.all(np.abs(l1[u][~mask]) < 1e-12)
        # ⟨v_i tanh(0.7 Σ_block v)⟩ = E[tanh(0.7 S) S] / 4 over the block sum S of 4 free spins
        S = np.array([4, 2, 0, -2, -4])
        w = np.array([1, 4, 6, 4, 1]) / 16
        # (models are rebuilt in float32 by the loader: 0.7 is stored to ~1e-8)
        assert l1[u][mask] == pytest.approx(np.full(4, (w * S * np.tanh(0.7 * S)).sum() / 4), rel=1e-7)
    assert res.values["rbm_window_fraction"][0][0][0] == pytest.approx(1.0, abs=1e-10)


def test_majority_is_not_the_indicator(all_configs, reductions):
    # majority blocks (coin ties) give ⟨v_i h_a⟩ = 3/8 inside the block, not ¼: the check can fail
    spec = spec_of("vh_correlators", rg_steps=1, kernel="majority", show=1, n_blocks=2, batch=8192)
    res = reductions["vh_correlators"](spec, context(all_configs))
    m = res.values["map_rg1"][0][0][0]
    assert m[:2, :2] == pytest.approx(np.full((2, 2), 3 / 8), abs=0.02)
    assert np.all(np.abs(m[2:, :]) < 0.02)


def abs_thermometer():
    """A 2-temperature Thermometer (T = 1, 2) whose logit difference is 4 h − 2 with h = the lattice mean of
    |x| (1x1 features ReLU(x), ReLU(−x)): ±1 lattices give h = 1 exactly, block averages give h < 1."""
    from hpc_rg.learn.thermometer import Thermometer
    th = Thermometer([1.0, 2.0], channels=2, hidden=1).double()
    c1, c2, lin1, lin2 = th.features[0], th.features[2], th.head[0], th.head[2]
    with torch.no_grad():
        for p in th.parameters():
            p.zero_()
        c1.weight[0, 0, 1, 1], c1.weight[1, 0, 1, 1] = 1.0, -1.0
        c2.weight[0, 0, 1, 1] = c2.weight[1, 1, 1, 1] = 1.0
        lin1.weight[0, :] = 1.0
        lin2.weight[1, 0], lin2.bias[1] = 4.0, -2.0
    return th


@pytest.mark.parametrize("thermometer_rg", ["kernel", "majority"])
def test_thermometer_reads_the_rg_rule(all_configs, reductions, thermometer_rg):
    """Seed 002's RG step makes the block average the new spin; the thermometer reads those lattices
    (thermometer_rg = "kernel", default). The earlier majority rule (coin-flip ties) hands it ±1 lattices.
    Exact over all 2^16 configurations of the 4x4 lattice (equal weights)."""
    save(all_configs, "thermo_abs", "thermometer", abs_thermometer(), (4, 4))
    spec = spec_of("vh_correlators", thermometer="thermo_abs", rg_steps=1, kernel="average", show=1,
                   n_blocks=2, batch=8192, thermometer_rg=thermometer_rg)
    res = reductions["vh_correlators"](spec, context(all_configs))
    s = configurations(16).reshape(-1, 4, 4).astype(np.float64)
    avg = s.reshape(-1, 2, 2, 2, 2).mean(axis=(2, 4))
    h = np.abs(avg).mean(axis=(1, 2)) if thermometer_rg == "kernel" else np.ones(len(s))
    p2 = 1 / (1 + np.exp(-(4 * h - 2)))
    T, _ = res.values["rg_T_thermo"]
    assert T[0][0] == pytest.approx(1 + 1 / (1 + np.exp(-2)), abs=1e-12)      # the data: ±1
    assert T[0][1] == pytest.approx(1 + p2.mean(), abs=1e-6)
    peak, _ = res.values["rg_T_peak"]
    assert peak[0][1] == (2.0 if p2.mean() > 0.5 else 1.0)
    assert (peak[0][1] == 1.0) == (thermometer_rg == "kernel")   # E|avg| = 3/8: the averaged lattices read cold
