"""Long-range lattice (alpha = 3, Ewald images) performance: one JSON line per case.

Cases
  cluster_cost  seconds per Fukui-Todo sweep at T for each L, update alone and with the FFT energy recorded
                every sweep; then `cluster_scaling`: the exponent a of cost ~ N^a fitted from the smallest to the
                largest L (target a <= 1.1).
  decorrelated  at L = 64 (default) and T ~ T_c: decorrelated samples per second = 1 / (2 tau_int(|m|) t_sweep)
                for the cluster algorithm, the local-field Metropolis, and the seed's naive Metropolis (O(N)
                sum per attempt).  The naive and local-field codes run the same Markov chain (same random
                numbers, same decisions; tests/mc_longrange/test_sampler_contract.py checks it), so the naive
                tau_int is the local-field one; only its time per sweep is measured separately.  Metropolis
                starts from the cluster chain's equilibrated configuration.  Then `speedup`: the ratios
                (target cluster / naive >= 100).

Usage: .venv/bin/python benchmarks/longrange.py [--sizes 32 64 128 256] [--T 8.0] [--L 64]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from hpc_rg.lattice.longrange import LongRange
from hpc_rg.mc.longrange_cluster import FukuiTodo
from hpc_rg.mc.longrange_metropolis import LongRangeMetropolis, naive_sweeps
from hpc_rg.reduce.stats import integrated_time


def emit(**kw):
    print(json.dumps(kw), flush=True)


def timed_run(sampler, n, every):
    e = np.empty((1, n // every))
    m = np.empty((1, n // every))
    t0 = time.perf_counter()
    sampler.run(n, e, m, every)
    return time.perf_counter() - t0, e[0], m[0]


def cluster_cost(sizes, T, seed):
    rows = []
    for L in sizes:
        lattice = LongRange((L, L), alpha=3.0, images="ewald")
        t0 = time.perf_counter()
        _ = lattice.couplings
        table_s = time.perf_counter() - t0
        s = FukuiTodo(lattice, 1.0 / T, [np.random.SeedSequence(seed)])
        timed_run(s, 20, 20)                                   # compile + settle
        n = max(20, int(2e7 // (L * L)) // 10)
        t_update, _, _ = timed_run(s, n, n)
        t_measured, _, _ = timed_run(s, n, 1)
        rows.append((L * L, t_update / n, t_measured / n))
        emit(case="cluster_cost", L=L, N=L * L, T=T, sweeps=n, seconds_per_sweep=t_update / n,
             seconds_per_sweep_with_energy=t_measured / n, ns_per_site=1e9 * t_update / n / (L * L),
             ewald_table_seconds=table_s)
    n_sites = np.array([r[0] for r in rows], dtype=float)
    for key, col in (("update", 1), ("update_and_energy", 2)):
        cost = np.array([r[col] for r in rows])
        slope = float(np.polyfit(np.log(n_sites), np.log(cost), 1)[0])
        end_to_end = float(np.log(cost[-1] / cost[0]) / np.log(n_sites[-1] / n_sites[0]))
        emit(case="cluster_scaling", what=key, L_min=int(np.sqrt(n_sites[0])), L_max=int(np.sqrt(n_sites[-1])),
             exponent_fit=slope, exponent_end_to_end=end_to_end, target_max=1.1, ok=bool(max(slope, end_to_end) <= 1.1))


def decorrelated(L, T, seed, cluster_sweeps, metropolis_sweeps):
    lattice = LongRange((L, L), alpha=3.0, images="ewald")
    cluster = FukuiTodo(lattice, 1.0 / T, [np.random.SeedSequence(seed)])
    timed_run(cluster, 500, 500)
    t, _, m = timed_run(cluster, cluster_sweeps, 1)
    tau_c, _ = integrated_time(np.abs(m))
    t_c = t / cluster_sweeps
    rate_c = 1.0 / (2.0 * tau_c * t_c)
    emit(case="decorrelated", algorithm="fukui_todo", L=L, T=T, sweeps=cluster_sweeps, seconds_per_sweep=t_c,
         tau_int_abs_m=tau_c, decorrelated_per_second=rate_c)

    metro = LongRangeMetropolis(lattice, 1.0 / T, [np.random.SeedSequence(seed + 1)])
    metro.load_state({"spins": cluster.state()["spins"], "rng": metro.state()["rng"]})
    timed_run(metro, 200, 200)                                 # compile + settle from the cluster state
    t, _, m = timed_run(metro, metropolis_sweeps, 1)
    tau_m, _ = integrated_time(np.abs(m))
    t_m = t / metropolis_sweeps
    rate_m = 1.0 / (2.0 * tau_m * t_m)
    emit(case="decorrelated", algorithm="metropolis_local_field", L=L, T=T, sweeps=metropolis_sweeps,
         seconds_per_sweep=t_m, tau_int_abs_m=tau_m, decorrelated_per_second=rate_m,
         tau_reliable=bool(metropolis_sweeps >= 50 * tau_m))

    spins = metro.configurations()[0].ravel().copy()
    rng = metro.state()["rng"][0].copy()
    table = np.ascontiguousarray(lattice.couplings)
    em = np.array([metro.energy()[0] * lattice.n_sites, float(spins.sum())])
    e = np.empty(3)
    mm = np.empty(3)
    naive_sweeps(spins, table, rng, 1, 1, 1.0 / T, 0.0, e, mm, em)   # compile
    n_naive = 3
    t0 = time.perf_counter()
    naive_sweeps(spins, table, rng, n_naive, 1, 1.0 / T, 0.0, e, mm, em)
    t_n = (time.perf_counter() - t0) / n_naive
    rate_n = 1.0 / (2.0 * tau_m * t_n)
    emit(case="decorrelated", algorithm="metropolis_naive_seed002", L=L, T=T, sweeps=n_naive, seconds_per_sweep=t_n,
         tau_int_abs_m=tau_m, decorrelated_per_second=rate_n, tau_from="metropolis_local_field (same chain)")
    emit(case="speedup", L=L, T=T, cluster_over_naive=rate_c / rate_n, cluster_over_local_field=rate_c / rate_m,
         local_field_over_naive=rate_m / rate_n, target_cluster_over_naive=100.0, ok=bool(rate_c / rate_n >= 100.0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--T", type=float, default=8.0, help="temperature (T_c ~ 8.0 for alpha = 3, Ewald)")
    ap.add_argument("--L", type=int, default=64, help="lattice side of the decorrelation comparison")
    ap.add_argument("--cluster-sweeps", type=int, default=5000)
    ap.add_argument("--metropolis-sweeps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--skip", choices=["cost", "decorrelated"], nargs="*", default=[])
    args = ap.parse_args()
    if "cost" not in args.skip:
        cluster_cost(args.sizes, args.T, args.seed)
    if "decorrelated" not in args.skip:
        decorrelated(args.L, args.T, args.seed, args.cluster_sweeps, args.metropolis_sweeps)


if __name__ == "__main__":
    main()
