"""A learned policy that falls back to its prior on the SKUs where it does worse.

PPO's residual over the fluid prior (:class:`agents.ppo.FluidPriorPolicy`) is one network for
every SKU; it can improve most SKUs and lose on a few (``docs/agents.md`` shows where).
:class:`GuardedPolicy` checks, once per SKU and plan, which of the two does better on the
SKU's own model: it simulates both from the plan's first state on ``n_paths`` common-random-
number paths of the market the SKU is in (the standard market with the catalog's parameters,
the learning market around the estimate with its prior, or the memory market when the
observation carries the memory fields) and plays the learned policy only
where its mean is higher. The paths come from the guard's own seed, never from those an
evaluation scores on, so the check cannot see the luck it is judged on.

This is the per-SKU choice of a planning team that simulates its candidate plans before it
ships one, applied to two policies; the raw network is still scored on its own (``ppo_raw``
in the benchmarks) so what the guard changes is visible.

With ``alternatives`` the guard chooses among more learned policies than one: the snapshots
a training run passed through (``train_ppo(keep_snapshots=True)``). One training's
checkpoints differ most on the scenarios where the final network is weakest (the
standard suite's learning curves swing by 2-4 points of the DP on their worst scenario from
one million steps to the next), so choosing per SKU among them, on the guard's own paths,
keeps the training budget and spends simulation instead. The learned policy with the
highest mean on paths of its own (seed + 1; ties go to the first listed, the final network)
is then compared with the fallback on the guard's paths and plays where it is ahead: chosen
on one set of paths and checked on another, so that the check is not the maximum of several
noisy comparisons (which, on a 10-unit SKU, put a snapshot 0.55 points below the prior).
Without alternatives the guard is what it was: one comparison on the guard's paths.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from agents.baselines import slot_problems
from agents.policy import Policy
from envs.batched import BatchedMarkdownEnv
from envs.config import RulesConfig
from envs.context import PolicyContext
from envs.learning import LearningMarkdownEnv
from envs.markdown import EnvConfig
from envs.memory import N_MEMORY, MemoryMarkdownEnv
from envs.observation import OBS_DIM
from simulator.demand import Catalog

log = logging.getLogger(__name__)

GUARD_PATHS = 256
"""Simulated paths per SKU on which the guard compares the two policies."""

GUARD_SEED = 4_242
"""Seed of the guard's paths (independent of every evaluation seed)."""

SMALL_STOCK = 20
"""SKUs with at most this many units at the plan's start are checked on
:data:`SMALL_STOCK_FACTOR` times the paths: with 10 units a plan's profit is a few coin flips,
and 256 paths cannot tell two policies 0.5 points of the DP apart (the standard benchmark
plays such scenarios on ten times the paths for the same reason). Their weeks are cheap."""

SMALL_STOCK_FACTOR = 10


class GuardedPolicy(Policy):
    """Per SKU, ``candidate`` where it beats ``fallback`` on simulated paths, else ``fallback``.

    Parameters
    ----------
    candidate : Policy
        The learned policy.
    fallback : Policy
        Its prior (what the candidate must not do worse than).
    alternatives : sequence of Policy
        More learned policies to choose among (e.g. the run's snapshots); default none.
    n_paths : int
        Common-random-number paths per SKU for the check (:data:`SMALL_STOCK_FACTOR` times
        as many for a SKU of at most :data:`SMALL_STOCK` units).
    seed : int
        Seed of those paths.
    name : str or None
        Label (default: the candidate's).
    """

    requires_context = True

    def __init__(
        self,
        candidate: Policy,
        fallback: Policy,
        *,
        alternatives: Sequence[Policy] = (),
        n_paths: int = GUARD_PATHS,
        seed: int = GUARD_SEED,
        name: str | None = None,
    ) -> None:
        self.candidate = candidate
        self.fallback = fallback
        self.alternatives = tuple(alternatives)
        self.learned: tuple[Policy, ...] = (candidate, *self.alternatives)
        self.n_paths = n_paths
        self.seed = seed
        self.name = name or candidate.name
        self._choice: np.ndarray | None = None
        self._memory_obs = False
        self.decisions: dict[tuple, float] = {}
        """Mean simulated gain of the chosen learned policy (the candidate, without
        alternatives) over the fallback per SKU problem checked."""
        self.chosen: dict[tuple, int] = {}
        """Per SKU problem checked, the index into :attr:`learned` that plays (-1: the
        fallback)."""

    def reset(self, context: PolicyContext | None = None) -> None:
        self._choice = None
        for policy in (*self.learned, self.fallback):
            policy.reset(context)

    # ------------------------------------------------------------------ the check
    def paths_for(self, stock: float) -> int:
        """Paths on which a SKU with ``stock`` units is checked (more for a small stock)."""
        return self.n_paths * (SMALL_STOCK_FACTOR if stock <= SMALL_STOCK else 1)

    def _market(
        self, one: Catalog, horizon: int, rules: RulesConfig, ctx: PolicyContext, row: int
    ) -> BatchedMarkdownEnv:
        """The SKU's own market, :meth:`paths_for` CRN paths from the plan's first state."""
        n_paths = self.paths_for(float(one.initial_stock[0]))
        if ctx.belief is None:
            config = EnvConfig(
                horizon_weeks=horizon, rules=rules, catalog=one, invalid_action="hold"
            )
            # the memory market's observation carries the SKU's memory law: simulate in it
            env_class = MemoryMarkdownEnv if self._memory_obs else BatchedMarkdownEnv
            return env_class(config, n_slots=n_paths, fixed_skus=True)
        b = ctx.belief
        estimate = one.replace(
            elasticity=float(b.estimate_elasticity[row]),
            base_demand=float(b.estimate_base_demand[row]),
            elasticity_se=float(b.elasticity_se[row]),
            base_demand_se=float(b.level_se[row]),
        )
        config = EnvConfig(
            horizon_weeks=horizon, rules=rules, catalog=estimate, invalid_action="hold"
        )
        return LearningMarkdownEnv(config, n_slots=n_paths, fixed_skus=True, grid=b.grid)

    def _totals(self, env: BatchedMarkdownEnv, policies: Sequence[Policy], seed: int) -> list:
        """Each policy's objective per path on ``env``'s paths of ``seed`` (the same paths for
        every policy)."""
        totals = []
        for policy in policies:
            env.seed(seed)
            policy.reset(None)
            totals.append(env.evaluate(policy.act)["objective"].to_numpy(float))
        return totals

    def _pick(self, env: BatchedMarkdownEnv) -> tuple[int, float]:
        """(index into :attr:`learned` of the policy to play or -1 for the fallback, its mean
        paired gain over the fallback on the guard's paths)."""
        best = 0
        if self.alternatives:
            # the learned policy is chosen on paths of their own (seed + 1), so that the
            # comparison with the fallback below is not the maximum of several noisy ones
            means = [t.mean() for t in self._totals(env, self.learned, self.seed + 1)]
            best = int(np.argmax(means))  # the first of equals: the final network
        mine, fallback = self._totals(env, (self.learned[best], self.fallback), self.seed)
        gain = float((mine - fallback).mean())
        return (best if gain > 0 else -1), gain

    def _choices(self, ctx: PolicyContext) -> np.ndarray:
        n = ctx.n_slots
        dec = ctx.decision
        start = (
            np.asarray(ctx.episode_start, bool)
            if ctx.episode_start is not None
            else np.asarray(dec.weeks_left) == ctx.horizons()
        )
        if self._choice is None or self._choice.shape != (n,):
            self._choice = np.zeros(n, dtype=np.int64)
            start = np.ones(n, dtype=bool)
        rows = np.flatnonzero(start)
        if rows.size:
            sub = ctx.take(rows)
            for one, horizon, key, slots in slot_problems(sub):
                full_key = (key, None if sub.belief is None else sub.belief.grid)
                if full_key not in self.chosen:
                    env = self._market(one, horizon, ctx.rules, sub, int(slots[0]))
                    pick, gain = self._pick(env)
                    self.chosen[full_key] = pick
                    self.decisions[full_key] = gain
                    log.debug("guard: %s gains %.4f over %s", self.name, gain, self.fallback.name)
                self._choice[rows[slots]] = self.chosen[full_key]
        return self._choice

    # ------------------------------------------------------------------ acting
    def act(self, observations, masks, context=None):
        ctx = self._need_context(context)
        obs = np.asarray(observations)
        self._memory_obs = obs.ndim == 2 and obs.shape[1] == OBS_DIM + N_MEMORY
        choice = self._choices(ctx).copy()
        picks = np.unique(choice)
        if picks.size == 1:
            only = int(picks[0])
            return (self.fallback if only < 0 else self.learned[only]).act(obs, masks, ctx)
        out = np.empty(ctx.n_slots, dtype=np.int64)
        for pick in picks.tolist():
            policy = self.fallback if pick < 0 else self.learned[pick]
            rows = np.flatnonzero(choice == pick)
            out[rows] = policy.act(obs[rows], np.asarray(masks)[rows], ctx.take(rows))
        return out
