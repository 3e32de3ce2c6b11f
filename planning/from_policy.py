"""From a closed-loop policy to a fixed weekly plan.

The policy (PPO or a heuristic) is closed-loop: it reacts to the stock it sees. A price system
executes a fixed weekly plan, so the exported schedule is the policy's *typical* plan: it is
played for :data:`PLAN_EPISODES` simulated episodes and each week takes the lower median of the
depths it chose (a median of non-decreasing paths is non-decreasing, and lies on the ladder).
That plan is replayed once through :func:`agents.rollout.rollout` as a fixed-plan policy that
snaps each week to the nearest allowed action, so the exported plan obeys every rule. Its
expected outcomes are then simulated open-loop (:func:`planning.outcomes.simulate_schedule`).

:func:`dp_plan` does the same for the exact DP, on the SKUs whose market it solves exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from agents.dp import DPSolution
from agents.policy import Policy, nearest_allowed
from envs.config import RulesConfig
from envs.context import PolicyContext
from ingest.errors import ConfigError
from ingest.progress import progress
from planning.schedule import Schedule
from simulator.demand import Catalog

log = logging.getLogger(__name__)

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


class SolvedDP(Policy):
    """The exact DP's policy from solutions at hand, one per SKU id: a table lookup per slot.

    :class:`~agents.baselines.DPPolicy` finds each slot's problem anew every week (it may be
    any SKU); here the SKUs are known and solved, so a week of many thousand slots costs one
    grouping by SKU id and one lookup per SKU.

    Parameters
    ----------
    solutions : mapping of str to DPSolution
        The solved DP of every SKU id the policy will see, each for its plan's start.
    """

    name = "dp"
    requires_context = True

    def __init__(self, solutions: Mapping[str, DPSolution]) -> None:
        self.solutions = dict(solutions)

    def act(
        self, observations: np.ndarray, masks: np.ndarray, context: PolicyContext | None = None
    ) -> np.ndarray:
        ctx = self._need_context(context)
        sku = np.asarray(ctx.catalog.sku).astype(str)
        names, inverse, counts = np.unique(sku, return_inverse=True, return_counts=True)
        order = np.argsort(inverse.ravel(), kind="stable")
        actions = np.empty(ctx.n_slots, np.int64)
        for name, slots in zip(names, np.split(order, np.cumsum(counts)[:-1]), strict=True):
            if name not in self.solutions:
                raise ConfigError(f"sku {name!r}: no DP solution at hand (solved: "
                                  f"{len(self.solutions)} SKUs)")  # fmt: skip
            actions[slots] = self.solutions[name].policy(ctx.decision.take(slots))
        return actions


@dataclass
class DPPlan:
    """The exact DP's plan where the market is DP-exact (see :func:`dp_plan`).

    Attributes
    ----------
    schedule : Schedule
        The DP's typical plan for every DP-exact SKU; no markdown elsewhere (not a DP plan:
        ``exact`` says where it is one).
    exact : ndarray of bool of shape (n_skus,)
        SKUs the DP solved exactly.
    reasons : dict of str to str
        Why the DP did not solve a SKU (by SKU id).
    policy : SolvedDP
        The DP's policy for every exact SKU (to play its closed loop).
    closed_loop : float
        Closed-loop mean objective over the exact SKUs (as :func:`plan_of` gives).
    """

    schedule: Schedule
    exact: np.ndarray
    reasons: dict[str, str]
    policy: SolvedDP
    closed_loop: float


def dp_plan(catalog: Catalog, rules: RulesConfig, horizon: int, *, seed: int) -> DPPlan:
    """The exact DP's typical fixed plan (:func:`plan_of`) for every SKU it solves exactly.

    A SKU is left out, with the DP's own reason, where its market is not DP-exact (reference
    price memory, promotion fatigue, a fractional stock: :class:`~agents.dp.DPNotExactError`)
    or its state grid is too large (:class:`~ingest.errors.ConfigError`): the DP never
    approximates.
    """
    from agents.dp import DPNotExactError, solve

    n = catalog.n_skus
    solutions: dict[str, DPSolution] = {}
    exact = np.zeros(n, dtype=bool)
    reasons: dict[str, str] = {}
    for i in progress(range(n), desc="evaluate: DP solves", unit="SKU"):
        sku = str(catalog.sku[i])
        try:
            solutions[sku] = solve(catalog.take([i]), rules, horizon)
        except (DPNotExactError, ConfigError) as err:
            reasons[sku] = str(err)
        else:
            exact[i] = True
    policy = SolvedDP(solutions)
    disc = np.zeros((n, horizon))
    coup = np.zeros((n, horizon))
    closed = 0.0
    if exact.any():
        idx = np.flatnonzero(exact)
        sub, closed = plan_of(policy, catalog.take(idx), rules, horizon, seed=seed)
        disc[idx], coup[idx] = sub.discount, sub.coupon
    if reasons:
        log.info("DP: %d of %d SKU(s) are not DP-exact, e.g. %s", len(reasons), n,
                 next(iter(reasons.values())))  # fmt: skip
    sched = Schedule(sku=np.asarray(catalog.sku, dtype=object), discount=disc, coupon=coup,
                     name=policy.name)  # fmt: skip
    return DPPlan(sched, exact, reasons, policy, closed)
