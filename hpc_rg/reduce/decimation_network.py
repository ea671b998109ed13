"""The exact 1D decimation network of seed 001 (Fig. 2), built as stacked RBMs and checked on sampled chains.

Layer n holds a periodic chain of L_n = L / 2^n spins at coupling K_n = J/T (n = 0: the data). Its RBM has
the odd sites as visible units and the even sites as hidden units, each visible spin coupled to its two
even neighbours with weight K_n and no biases: the RBM's joint law exp(K_n Σ_j v_j (h_j + h_{j+1})) is the
chain's Boltzmann weight itself, so summing out the visible (odd) spins decimates the chain, and the hidden
spins form a chain of L_n/2 sites at K_{n+1} with tanh K_{n+1} = tanh² K_n (exact on a finite periodic
chain too). The next layer's RBM is built the same way with K_{n+1}.

Check: up the network, h ~ p(h | v = odd spins of layer n) gives layer n+1 configurations; their
nearest-neighbour correlation c_n is inverted on the finite periodic chain (`rg.chain_coupling`) to a
measured K_n, compared with the recursion (error bars: block jackknife; z = (K − K_exact)/σ), and with plain
decimation (keeping the even spins) of the same samples. The flow figure draws K_n from several K_0
(the attraction to the stable fixed point K = 0).
"""
from __future__ import annotations

import numpy as np

from hpc_rg.io.ensemble import open_ensemble
from hpc_rg.plugins import Plugin
from hpc_rg.reduce import trained_models as tm
from hpc_rg.reduce import rg
from hpc_rg.reduce.correlators import exact_chain_correlation
from hpc_rg.reduce.blocks import block_means, t_indices
from hpc_rg.reduce.registry import Context, Result
from hpc_rg.reduce.seeding import torch_generator
from hpc_rg.reduce.stats import jackknife_blocks

PLUGINS = (Plugin("reduction", "decimation_network", "run_decimation_network",
                  spec="hpc_rg.reduce.model_specs:DecimationNetworkSpec", imports=("torch",), needs=("ensemble",),
                  doc="the exact 1D decimation network of stacked RBMs on sampled chains"),)


def decimation_rbm(n_sites: int, K: float):
    """The RBM (spin units) of one decimation layer for a periodic chain of n_sites (even) at coupling K:
    visible j = site 2j+1, hidden k = site 2k, W[j, j] = W[j, j+1 mod n/2] = K."""
    import torch
    from hpc_rg.learn.rbm import RBM
    m = n_sites // 2
    rbm = RBM(m, m, units="spin").double()
    W = torch.zeros(m, m, dtype=torch.float64)
    idx = torch.arange(m)
    W[idx, idx] += K
    W[idx, (idx + 1) % m] += K  # += keeps the m = 1 chain (both neighbours the same site) right
    with torch.no_grad():
        rbm.W.copy_(W)
        rbm.a.zero_()
        rbm.b.zero_()
    return rbm.eval()


def network_layers(L: int, K0: float, layers: int) -> list:
    """The stacked decimation RBMs for a chain of L sites (L divisible by 2^layers)."""
    Ks = rg.exact_decimation_flow(K0, layers)
    return [decimation_rbm(L >> n, float(Ks[n])) for n in range(layers)]


def sample_up(rbms, spins, noise) -> list:
    """Configurations of every layer (level 0 = the input chains (k, L)) sampled up the network."""
    import torch
    x = torch.as_tensor(spins, dtype=torch.float64)
    out = [x]
    with torch.no_grad():
        for rbm in rbms:
            x = rbm.sample_h(x[:, 1::2], noise(rbm.n_hidden))
            out.append(x)
    return out


def nn_correlation(x: np.ndarray) -> np.ndarray:
    """Per-chain nearest-neighbour correlation of periodic chains (k, L)."""
    x = np.asarray(x, dtype=np.float64)
    return (x * np.roll(x, -1, axis=1)).mean(axis=1)


def run_decimation_network(spec, ctx: Context) -> Result:
    res = Result(attrs={"b": 2, "method": "stacked decimation RBMs (seed 001 Fig. 2B) sampled upward; K_n from "
                                          "the finite periodic chain's nn correlation; block jackknife"})
    with open_ensemble(ctx.ensemble_path) as ens:
        if len(ens.lattice_shape) != 1:
            raise ValueError("decimation_network needs a chain ensemble (model ising1d)")
        L = int(ens.lattice_shape[0])
        layers = spec.layers
        while layers > 0 and (L % (1 << layers) or (L >> layers) < 2):
            layers -= 1
        if layers == 0:
            raise ValueError(f"decimation_network: a chain of {L} sites cannot be halved")
        J = float(ens.attrs.get("J", 1.0))
        ts = t_indices(ens, spec.temperatures)
        out = {q: ([], []) for q in ("K_network", "K_decimated", "nn_network")}
        exact, z = [], []
        for t in ts:
            K0 = J / float(ens.temperatures[t])
            rbms = network_layers(L, K0, layers)

            def fn(x, where, rbms=rbms):
                t_, c, s0 = where
                k = x.shape[0]
                lv = sample_up(rbms, x, tm.noise_fn(torch_generator(ctx.seed, "decimation_network", t_, c, s0), k))
                dec = [np.asarray(x)[:, ::1 << n] for n in range(layers + 1)]
                return np.stack([nn_correlation(v.numpy()) for v in lv] + [nn_correlation(d) for d in dec], axis=1)

            bm, _ = block_means(ens, t, fn, ctx.world, spec.n_blocks, spec.batch)
            Kx = rg.exact_decimation_flow(K0, layers)
            inv = lambda m, off: np.array([rg.chain_coupling(m[off + n], L >> n) for n in range(layers + 1)])
            for q, off in (("K_network", 0), ("K_decimated", layers + 1)):
                v, e = jackknife_blocks(lambda m, off=off: inv(m, off), bm)
                out[q][0].append(v)
                out[q][1].append(e)
            v, e = jackknife_blocks(lambda m: m[:layers + 1], bm)
            out["nn_network"][0].append(v)
            out["nn_network"][1].append(e)
            exact.append(Kx)
            kn, ke = out["K_network"][0][-1], out["K_network"][1][-1]
            z.append(np.where(ke > 0, (kn - Kx) / np.where(ke > 0, ke, 1), 0.0))
        for q, (v, e) in out.items():
            res.put(q, v, e)
        res.put("K_exact", exact)
        res.put("z_network", z)
        res.put("nn_exact", [[float(exact_chain_correlation(L >> n, k, 1)) for n, k in enumerate(Kx)] for Kx in exact])
        res.axes["temperatures"] = ens.temperatures[ts]
        res.axes["layer"] = np.arange(layers + 1)
        res.axes["chain_length"] = np.array([L >> n for n in range(layers + 1)])
        res.record_sources([ctx.ensemble_path], ens)
    res.axes["flow_start"] = np.array(spec.flow_couplings)
    res.put("flow_K", [rg.exact_decimation_flow(K, max(layers, 6)) for K in spec.flow_couplings])
    return res
