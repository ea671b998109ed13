"""Replica exchange (parallel tempering) over K independent ladders.

Each ladder has one replica per temperature. Replicas keep their spins where they live and swap
temperature *labels*: `replica_at[k, t]` is the replica (named by its starting slot) that currently sits at
temperature slot t of ladder k, `slot_of` the inverse. Swap decisions come from one numpy stream per ladder,
replicated on every rank and fed with the same (allgathered) energies, so the ladder evolves identically
for any number of ranks.

Attempt n (0-based) tries the pairs (t, t+1) with t ≡ n (mod 2): even and odd pairs alternate, the
standard deterministic even/odd scheme. Acceptance: min(1, exp((beta_t - beta_{t+1}) (E_t - E_{t+1}))),
E the total energy (energy per site x sites).
"""
from __future__ import annotations

import numpy as np

from hpc_rg.parallel import seed_sequence


class Tempering:
    def __init__(self, temperatures, n_ladders: int, job_seed: int):
        self.temperatures = np.asarray(temperatures, dtype=np.float64)
        self.betas = 1.0 / self.temperatures
        n_t = len(self.temperatures)
        self.n_ladders = n_ladders
        self.replica_at = np.tile(np.arange(n_t, dtype=np.int64), (n_ladders, 1))
        self.slot_of = self.replica_at.copy()
        self.rngs = [np.random.Generator(np.random.PCG64(seed_sequence(job_seed, k, purpose="exchange")))
                     for k in range(n_ladders)]
        self.attempts = 0                                     # exchange steps done
        self.pair_attempts = np.zeros((n_ladders, max(n_t - 1, 0)), dtype=np.int64)
        self.pair_accepts = np.zeros_like(self.pair_attempts)
        # Round trips: a replica's direction label is +1 after touching the bottom, -1 after the top;
        # a round trip is counted each time a replica labelled "coming from the top" reaches the bottom.
        self.direction = np.zeros((n_ladders, n_t), dtype=np.int8)
        self.direction[:, 0] = 1
        if n_t > 1:
            self.direction[:, -1] = -1
        self.round_trips = np.zeros((n_ladders, n_t), dtype=np.int64)
        self.history: list[np.ndarray] = []                    # slot_of after each step (K, n_T)

    @property
    def n_temperatures(self) -> int:
        return len(self.temperatures)

    def step(self, energies_per_site: np.ndarray, n_sites: int) -> None:
        """One exchange attempt on every ladder. `energies_per_site[k, r]`: energy per site of replica r
        (by starting slot) of ladder k, identical on all ranks."""
        n_t = self.n_temperatures
        first = self.attempts % 2
        for k in range(self.n_ladders):
            rng = self.rngs[k]
            for t in range(first, n_t - 1, 2):
                a, b = self.replica_at[k, t], self.replica_at[k, t + 1]
                delta = (self.betas[t] - self.betas[t + 1]) * (energies_per_site[k, a] - energies_per_site[k, b]) * n_sites
                u = rng.random()        # always drawn: the stream advances the same whatever is accepted
                self.pair_attempts[k, t] += 1
                if delta >= 0.0 or u < np.exp(delta):
                    self.pair_accepts[k, t] += 1
                    self.replica_at[k, t], self.replica_at[k, t + 1] = b, a
                    self.slot_of[k, a], self.slot_of[k, b] = t + 1, t
        self.attempts += 1
        self._count_round_trips()
        self.history.append(self.slot_of.copy())

    def _count_round_trips(self) -> None:
        n_t = self.n_temperatures
        bottom = self.replica_at[:, 0]
        top = self.replica_at[:, n_t - 1]
        rows = np.arange(self.n_ladders)
        arrived = self.direction[rows, bottom] == -1
        self.round_trips[rows[arrived], bottom[arrived]] += 1
        self.direction[rows, bottom] = 1
        self.direction[rows, top] = -1

    def acceptance(self) -> np.ndarray:
        """Per neighbouring pair, summed over ladders (n_T - 1,)."""
        att = self.pair_attempts.sum(axis=0)
        return np.where(att > 0, self.pair_accepts.sum(axis=0) / np.maximum(att, 1), np.nan)

    def take_history(self) -> np.ndarray:
        """The slot maps recorded since the last call, (n, K, n_T) int16; clears the buffer."""
        h = np.array(self.history, dtype=np.int16).reshape(-1, self.n_ladders, self.n_temperatures)
        self.history = []
        return h

    # -- checkpointing: everything that decides future swaps -----------------------------------------
    def state(self) -> dict:
        return {"replica_at": self.replica_at.copy(), "slot_of": self.slot_of.copy(), "attempts": self.attempts,
                "pair_attempts": self.pair_attempts.copy(), "pair_accepts": self.pair_accepts.copy(),
                "direction": self.direction.copy(), "round_trips": self.round_trips.copy(),
                "rngs": [r.bit_generator.state for r in self.rngs]}

    def load_state(self, s: dict) -> None:
        self.replica_at = np.asarray(s["replica_at"], dtype=np.int64)
        self.slot_of = np.asarray(s["slot_of"], dtype=np.int64)
        self.attempts = int(s["attempts"])
        self.pair_attempts = np.asarray(s["pair_attempts"], dtype=np.int64)
        self.pair_accepts = np.asarray(s["pair_accepts"], dtype=np.int64)
        self.direction = np.asarray(s["direction"], dtype=np.int8)
        self.round_trips = np.asarray(s["round_trips"], dtype=np.int64)
        for r, st in zip(self.rngs, s["rngs"]):
            r.bit_generator.state = st
        self.history = []


def tuned_ladder(temperatures: np.ndarray, acceptance: np.ndarray, floor: float = 0.02) -> np.ndarray:
    """One feedback step towards equal swap acceptance (Katzgraber et al. 2006, simplified to acceptance
    rates): the inverse temperature gaps are redistributed so that gaps shrink where acceptance was low,
    keeping both ends fixed. Returns an ascending ladder of the same length."""
    betas = 1.0 / np.asarray(temperatures, dtype=np.float64)[::-1]     # ascending beta
    gaps = np.diff(betas)
    acc = np.clip(np.asarray(acceptance, dtype=np.float64)[::-1], floor, 1.0)
    # -ln(acc) ~ gap^2 * (variance term): the gap that would give the mean acceptance scales as
    # gap * sqrt(ln(target)/ln(acc)).
    target = np.exp(np.mean(np.log(acc)))
    # damped (square root of the full correction): acceptance estimates from short pre-runs are noisy
    new = gaps * (np.log(target) / np.log(np.minimum(acc, 0.999999))) ** 0.25
    new *= (betas[-1] - betas[0]) / new.sum()
    betas_new = betas[0] + np.concatenate([[0.0], np.cumsum(new)])
    temps = np.sort(1.0 / betas_new)
    temps[0], temps[-1] = np.min(temperatures), np.max(temperatures)   # exact ends, no rounding drift
    return temps
