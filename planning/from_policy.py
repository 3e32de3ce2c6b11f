"""From a closed-loop policy to a fixed weekly plan.

The policy (PPO or a heuristic) is closed-loop: it reacts to the stock it sees. A price system
executes a fixed weekly plan, so the exported schedule is the policy's *typical* plan: it is
played for :data:`PLAN_EPISODES` simulated episodes and each week takes the lower median of the
depths it chose (a median of non-decreasing paths is non-decreasing, and lies on the ladder).
That plan is replayed once through :func:`agents.rollout.rollout` as a fixed-plan policy that
snaps each week to the nearest allowed action, so the exported plan obeys every rule. Its
expected outcomes are then simulated open-loop (:func:`planning.outcomes.simulate_schedule`).
"""

from __future__ import annotations

import numpy as np

from agents.policy import Policy, nearest_allowed
from envs.config import RulesConfig
from envs.context import PolicyContext
from planning.schedule import Schedule
from simulator.demand import Catalog

PLAN_EPISODES = 64
"""Closed-loop episodes a policy is played for to find its typical plan."""


class FixedPlanPolicy(Policy):
    """Plays a fixed weekly plan, snapping each week to the nearest allowed action."""

    requires_context = True

    def __init__(self, discount: np.ndarray, coupon: np.ndarray, rules: RulesConfig, name: str):
        self.discount = np.asarray(discount, dtype=float)
        self.coupon = np.asarray(coupon, dtype=float)
        self.rules = rules
        self.name = name

    def act(
        self, observations: np.ndarray, masks: np.ndarray, context: PolicyContext | None = None
    ) -> np.ndarray:
        ctx = self._need_context(context)
        h = self.discount.shape[1]
        t = np.clip(ctx.horizon_weeks - ctx.decision.weeks_left, 0, h - 1)
        rows = np.arange(len(t)) % self.discount.shape[0]
        ladder = np.asarray(self.rules.discount_levels)
        coupons = np.asarray(self.rules.coupon_levels)
        di = np.abs(ladder[None, :] - self.discount[rows, t][:, None]).argmin(axis=1)
        ci = np.abs(coupons[None, :] - self.coupon[rows, t][:, None]).argmin(axis=1)
        return nearest_allowed(self.rules, masks, di, ci)


def plan_of(
    policy: Policy,
    catalog: Catalog,
    rules: RulesConfig,
    horizon: int,
    *,
    seed: int,
    n_episodes: int = PLAN_EPISODES,
) -> tuple[Schedule, float]:
    """The policy's typical fixed plan (see the module docstring) and its closed-loop mean
    objective over ``n_episodes`` (total over SKUs)."""
    from agents.rollout import rollout

    res = rollout(policy, catalog, rules, horizon, n_episodes=n_episodes, seed=seed)
    d = np.quantile(res.schedule["discount"], 0.5, axis=0, method="lower")
    c = np.quantile(res.schedule["coupon"], 0.5, axis=0, method="lower")
    closed_loop = float(res.objective.sum(axis=1).mean())
    if n_episodes > 1:
        # A median plan need not obey the path-dependent rules; replay it through the masks.
        # (One episode's path is already a plan the rules allowed.)
        fixed = FixedPlanPolicy(d, c, rules, policy.name)
        snapped = rollout(fixed, catalog, rules, horizon, n_episodes=1, seed=seed)
        d, c = snapped.schedule["discount"][0], snapped.schedule["coupon"][0]
    sched = Schedule(
        sku=np.asarray(catalog.sku, dtype=object), discount=d, coupon=c, name=policy.name
    )
    return sched, closed_loop
