"""Thermometer calibration on held-out data at known T against an exact answer.

The thermometer here is the exact Bayes classifier of a 4×4 torus written into the Thermometer network:
the first convolution detects aligned / anti-aligned bonds (ReLU(±(s_i + s_j) − 1) ∈ {0, 1}), the second
passes them on, so the spatial means give the bond sum per site b = 2 Σ_c f_c − 2, and the head outputs
logit_k = β_k N b − ln Z_k(4×4) = ln p(s | T_k): softmax = the posterior over its temperatures (flat prior).
For held-out exact samples at T, the reduction's mean read-out must equal
E_T[Σ_k p(T_k | s) T_k] (exact, by enumeration of the 2^16 states) within its jackknife error."""
import numpy as np
import pytest
import torch

from model_helpers import context, save, spec_of, write
from hpc_rg.exact.enumeration import configurations
from hpc_rg.learn.thermometer import Thermometer

LADDER = [1.5, 2.269185, 3.5]
N = 16


def _energies():
    s = configurations(N).reshape(-1, 4, 4).astype(np.float64)
    b = (s * np.roll(s, -1, 1) + s * np.roll(s, -1, 2)).sum(axis=(1, 2))     # Σ bonds (−E)
    return s, b


def bayes_thermometer() -> Thermometer:
    _, b = _energies()
    beta = 1 / np.array(LADDER)
    log_z = np.array([np.logaddexp.reduce(bk * b) for bk in beta])
    th = Thermometer(LADDER, channels=4, hidden=2).double()
    c1, c2 = th.features[0], th.features[2]
    lin1, lin2 = th.head[0], th.head[2]
    with torch.no_grad():
        for p in th.parameters():
            p.zero_()
        for ch, (sign, (dy, dx)) in enumerate([(1, (1, 2)), (-1, (1, 2)), (1, (2, 1)), (-1, (2, 1))]):
            c1.weight[ch, 0, 1, 1] = sign
            c1.weight[ch, 0, dy, dx] = sign      # right (1, 2) or down (2, 1) neighbour (cross-correlation)
            c1.bias[ch] = -1.0
            c2.weight[ch, ch, 1, 1] = 1.0
        lin1.weight[0, :4] = 1.0                 # F = Σ_c f_c ≥ 0 passes the ReLU
        lin2.weight[:, 0] = torch.as_tensor(2 * N * beta)
        lin2.bias[:] = torch.as_tensor(-2 * N * beta - log_z)
    return th


def exact_posterior_mean(T: float) -> float:
    _, b = _energies()
    beta = 1 / np.array(LADDER)
    log_z = np.array([np.logaddexp.reduce(bk * b) for bk in beta])
    logit = np.outer(b, beta) - log_z
    post = np.exp(logit - logit.max(1, keepdims=True))
    post /= post.sum(1, keepdims=True)
    w = np.exp(b / T - (b / T).max())
    w /= w.sum()
    return float(w @ (post @ np.array(LADDER)))


def test_network_is_the_bayes_posterior():
    th = bayes_thermometer()
    s, b = _energies()
    rng = np.random.default_rng(0)
    idx = rng.choice(len(s), 200)
    p, _ = th.predict_temperature(torch.as_tensor(s[idx]))
    beta = 1 / np.array(LADDER)
    log_z = np.array([np.logaddexp.reduce(bk * b) for bk in beta])
    logit = np.outer(b[idx], beta) - log_z
    ref = np.exp(logit - logit.max(1, keepdims=True))
    assert p.numpy() == pytest.approx(ref / ref.sum(1, keepdims=True), abs=1e-10)


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("thermo")
    s, b = _energies()
    rng = np.random.default_rng(3)
    temps = [2.0, 3.0]
    spins = np.empty((2, 4, 500, 4, 4), np.int8)
    for t, T in enumerate(temps):
        w = np.exp(b / T - (b / T).max())
        spins[t] = s[rng.choice(len(s), size=(4, 500), p=w / w.sum())]
    write(out / "ensemble.h5", temps, spins, "ising2d")
    save(out, "thermo", "thermometer", bayes_thermometer(), (4, 4))
    return out


def test_calibration_mean_within_error(held_out, reductions):
    res = reductions["thermometer_calibration"](spec_of("thermometer_calibration", thermometer="thermo"),
                                                context(held_out))
    v, e = res.values["T_mean"]
    exact = np.array([exact_posterior_mean(T) for T in res.axes["temperatures"]])
    assert np.all(e > 0)
    assert np.all(np.abs(v - exact) < 4 * e), (v, exact, e)
    # the read-out orders the temperatures and the check is sharp enough to see a 5 % shift
    assert v[0] < v[1]
    assert np.all(np.abs(1.05 * exact - exact) > 4 * e)
    assert res.values["p_mean"][0].shape == (2, 3)


def exact_average_posterior(T: float) -> np.ndarray:
    """E_T[p(T_k | s)] over exact samples at T: the vector whose peak the paper reads."""
    _, b = _energies()
    beta = 1 / np.array(LADDER)
    log_z = np.array([np.logaddexp.reduce(bk * b) for bk in beta])
    logit = np.outer(b, beta) - log_z
    post = np.exp(logit - logit.max(1, keepdims=True))
    post /= post.sum(1, keepdims=True)
    w = np.exp(b / T - (b / T).max())
    return (w / w.sum()) @ post


def test_calibration_peak_is_the_argmax_of_the_average_probability(held_out, reductions):
    """The paper reads the peak of the average probability curve; it is reported beside the posterior mean."""
    res = reductions["thermometer_calibration"](spec_of("thermometer_calibration", thermometer="thermo"),
                                                context(held_out))
    v, e = res.values["T_peak"]
    for i, T in enumerate(res.axes["temperatures"]):
        exact = exact_average_posterior(T)
        top2 = np.sort(exact)[-2:]
        p_est, p_err = res.values["p_mean"][0][i], res.values["p_mean"][1][i]
        assert top2[1] - top2[0] > 4 * p_err.max()        # the peak is resolved by these samples
        assert v[i] == LADDER[int(np.argmax(exact))] == LADDER[int(np.argmax(p_est))]
        assert res.values["bias_peak"][0][i] == pytest.approx(v[i] - T)
    assert np.all(e == 0)     # every leave-one-block-out average peaks at the same ladder point
    # peak and mean are different read-outs: at T = 3 the mean is pulled below the top ladder point
    assert not np.allclose(v, res.values["T_mean"][0])


def test_thermometer_inputs_option():
    """inputs = "conv" (default) feeds the head only the pooled convolution features (local densities), so a
    lattice and the same lattice tiled 2x2 (four times the size, the same local patterns) read the same;
    "conv_m" adds the hand-made |m|, m² features; model files without `inputs` load as conv_m."""
    from hpc_rg.learn.modelfile import build
    th = Thermometer(LADDER, channels=3, hidden=5).double()
    assert th.inputs == "conv" and th.head[0].in_features == 3
    torch.manual_seed(0)
    x = torch.randint(0, 2, (4, 6, 6)).double() * 2 - 1
    torch.testing.assert_close(th(x), th(x.repeat(1, 2, 2)))
    old = build("thermometer", {"temperatures": LADDER, "channels": 3, "hidden": 5}).double()
    assert old.inputs == "conv_m" and old.head[0].in_features == 5
    with torch.no_grad():
        f = old.features(x[:, None]).mean((-2, -1))
    m = x.flatten(1).mean(1, keepdim=True)
    torch.testing.assert_close(old(x), old.head(torch.cat([f, m.abs(), m * m], 1)))
