"""A per-SKU policy made to allocate a category's promotion slots one SKU at a time.

:class:`SequentialBudgetPolicy` plays a policy trained in
:class:`envs.budget_seq.SequentialCategoryEnv` (masked PPO that sees the slots left) on the
budget market's category env: each week the SKUs of every path decide most overstocked
first, each with the slots left in its observation and a mask that forbids a promotion
once none is left (:func:`envs.budget_seq.allocate`), so its plans never exceed the limit.

A policy trained on the Lagrangian prior (``PPOConfig.budget_prior = "lagrangian"``) reads,
besides, its SKU's slot-priced regrets (:class:`agents.lagrangian.SlotPrices`) and decides in
order of the Lagrangian advantage; :func:`solve_pool` solves the training categories it
needs, and the policy is played with its category's solution (:func:`reads_slot_prices`).
With ``budget_prior = "lagrangian_weekly"`` the prices are one multiplier per week
(:func:`agents.lagrangian.solve_weekly`): the prior is the weekly plan, in training and in
play (:func:`weekly_prior`).
"""

from __future__ import annotations

import logging

import numpy as np

from agents.fluid import hint_dim
from agents.guard import GUARD_PATHS, GUARD_SEED
from agents.lagrangian import (
    CategoryDPPolicy,
    CategorySolution,
    SlotPrices,
    solve_category,
    solve_weekly,
)
from agents.policy import Policy
from envs.budget import N_BUDGET, N_RIVAL, CategoryEnv, promo_actions
from envs.budget_seq import CategoryPool, allocate
from envs.config import RulesConfig
from envs.context import PolicyContext
from envs.observation import OBS_DIM
from ingest.errors import ConfigError
from simulator.demand import Catalog

log = logging.getLogger(__name__)

POOL_TOL = 1e-3
"""Bisection tolerance of the training pool's multipliers (relative; the suite's bound uses
:data:`agents.lagrangian.RELATIVE_TOL`): the prices are features, not a bound."""
POOL_WEEKLY_ITERATIONS = 10
"""Subgradient steps of the weekly multipliers of a ``lagrangian_weekly`` training pool (the
suite's plan uses :data:`agents.lagrangian.WEEKLY_ITERATIONS`): about 1 CPU-s per category of
4 SKUs over 12 weeks."""
BUDGET_PRIORS = ("fluid", "lagrangian", "lagrangian_weekly")
"""What a budget policy starts from (``PPOConfig.budget_prior``)."""


def weekly_prior(policy: Policy) -> bool:
    """True for a policy trained on the weekly Lagrangian prior (``budget_prior =
    "lagrangian_weekly"``, recorded in the saved model: :attr:`agents.ppo.PPOPolicy.budget_prior`)."""
    return getattr(policy, "budget_prior", None) == "lagrangian_weekly"


def reads_slot_prices(policy: Policy, rules: RulesConfig) -> bool:
    """True for a PPO policy whose observation holds the Lagrangian regrets and the rival
    fields after the budget fields (trained with ``PPOConfig.budget_prior = "lagrangian"``)."""
    n = getattr(policy, "n_features", None)
    return n == OBS_DIM + N_BUDGET + rules.n_actions + N_RIVAL + hint_dim(rules)


class SequentialBudgetPolicy(Policy):
    """``base`` deciding the SKUs of each path in turn under a weekly limit.

    Parameters
    ----------
    base : Policy
        Reads the standard observation plus :data:`envs.budget.BUDGET_FIELDS` (a PPO policy
        trained with ``PPOConfig.shared_budget``).
    n_skus : int
        SKUs per path (slot ``p * n_skus + i`` is SKU ``i`` of path ``p``).
    max_promoted : int
        The limit ``K``.
    prices : SlotPrices, optional
        The category's slot prices (:meth:`SlotPrices.from_category`), for a ``base`` that
        reads them (:func:`reads_slot_prices`).
    """

    requires_context = True

    def __init__(
        self,
        base: Policy,
        n_skus: int,
        max_promoted: int,
        prices: SlotPrices | None = None,
    ) -> None:
        if not 1 <= max_promoted < n_skus:
            raise ConfigError(
                f"max_promoted = {max_promoted}; expected 1..{n_skus - 1} for {n_skus} SKUs"
            )
        if prices is not None and prices.n_skus != n_skus:
            raise ConfigError(f"slot prices for {prices.n_skus} SKUs; the category has {n_skus}")
        self.base, self.n_skus, self.max_promoted = base, int(n_skus), int(max_promoted)
        self.prices = prices
        self.name = base.name

    def reset(self, context: PolicyContext | None = None) -> None:
        self.base.reset(context)

    def act(
        self,
        observations: np.ndarray,
        masks: np.ndarray,
        context: PolicyContext | None = None,
    ) -> np.ndarray:
        ctx = self._need_context(context)
        return allocate(
            self.base.act,
            observations,
            np.asarray(masks, dtype=bool),
            ctx,
            n_skus=self.n_skus,
            max_promoted=self.max_promoted,
            prior=self.prices,
        )


class GuardedCategoryPolicy(Policy):
    """The sequential policy where it beats the Lagrangian plan on the category's own
    simulated paths, else the plan (the category-level version of
    :class:`agents.guard.GuardedPolicy`).

    A policy trained on the Lagrangian prior starts as the Lagrangian plan (played greedily,
    its prior *is* the plan), and what training changes can help or hurt a category. The
    choice is made once, when the policy is built, from the category's first state: both are
    played on ``n_paths`` common-random-number paths of :class:`envs.budget.CategoryEnv`
    drawn from the guard's own seed (never an evaluation's), and the network plays only where
    its mean objective is higher.

    Parameters
    ----------
    candidate : SequentialBudgetPolicy
    solution : CategorySolution
        The category's relaxation (its plan is the fallback).
    catalog : Catalog
        The category's SKUs.
    n_paths, seed : int
    mode : {"lagrangian", "weekly"}
        The fallback plan (:class:`agents.lagrangian.CategoryDPPolicy`): the one the
        candidate's prior is (``weekly`` needs ``solution.weekly``).
    """

    requires_context = True

    def __init__(
        self,
        candidate: SequentialBudgetPolicy,
        solution: CategorySolution,
        catalog: Catalog,
        *,
        n_paths: int = GUARD_PATHS,
        seed: int = GUARD_SEED,
        mode: str = "lagrangian",
    ) -> None:
        fallback = CategoryDPPolicy(solution, mode)
        means = []
        for policy in (candidate, fallback):
            env = CategoryEnv(
                catalog,
                solution.rules,
                solution.horizon_weeks,
                max_promoted=solution.max_promoted,
                n_paths=n_paths,
                seed=seed,
            )
            means.append(float(env.play(policy).totals["objective"].mean()))
        self.candidate_wins = means[0] > means[1]
        self.guard_means = (means[0], means[1])
        self.chosen: Policy = candidate if self.candidate_wins else fallback
        self.name = candidate.name
        log.info(
            "guard: the network %s the %s plan on %d paths (%.4f vs %.4f)",
            "beats" if self.candidate_wins else "does not beat",
            fallback.name,
            n_paths,
            means[0],
            means[1],
        )

    def reset(self, context: PolicyContext | None = None) -> None:
        self.chosen.reset(context)

    def act(
        self,
        observations: np.ndarray,
        masks: np.ndarray,
        context: PolicyContext | None = None,
    ) -> np.ndarray:
        return self.chosen.act(observations, masks, context)


def budget_policy(
    base: Policy, catalog: Catalog, solution: CategorySolution, *, guard: bool = True
) -> Policy:
    """``base`` playing a category: :class:`SequentialBudgetPolicy` with the slot prices of its
    solved relaxation when ``base`` reads them (:func:`reads_slot_prices`; the weekly prices,
    solved here once per category, for a policy trained on them, :func:`weekly_prior`), and
    then, with ``guard``, :class:`GuardedCategoryPolicy` against the plan it started from
    (``guard=False`` scores the raw network)."""
    n_skus, k = catalog.n_skus, solution.max_promoted
    if not reads_slot_prices(base, solution.rules):
        return SequentialBudgetPolicy(base, n_skus, k)
    weekly = weekly_prior(base)
    if weekly:
        solve_weekly(catalog, solution)  # cached on the solution
    prices = SlotPrices.from_category(solution, weekly=weekly)
    played = SequentialBudgetPolicy(base, n_skus, k, prices)
    if not guard:
        return played
    mode = "weekly" if weekly else "lagrangian"
    return GuardedCategoryPolicy(played, solution, catalog, mode=mode)


def solve_pool(
    catalog: Catalog,
    rules: RulesConfig,
    *,
    n_categories: int,
    n_skus: int,
    max_promoted: tuple[int, int],
    horizon_weeks: int,
    rng: np.random.Generator,
    weekly: bool = False,
) -> CategoryPool:
    """Group the first ``n_categories * n_skus`` SKUs of ``catalog`` into training categories
    (category ``g`` holds rows ``g * n_skus ..``), draw each one's ``K`` uniformly from
    ``max_promoted`` and solve its relaxation (:func:`agents.lagrangian.solve_category` at
    :data:`POOL_TOL`; about a second per category of 4 SKUs, progress is logged). With
    ``weekly``, the prices are each category's weekly multipliers
    (:func:`agents.lagrangian.solve_weekly`, :data:`POOL_WEEKLY_ITERATIONS` steps; about a
    second more per category).
    """
    lo, hi = max_promoted
    if n_categories < 1 or n_skus < 2 or not 1 <= lo <= hi < n_skus:
        raise ConfigError(
            f"pool of {n_categories} categories of {n_skus} SKUs, K in {max_promoted}: expected "
            f">= 1 categories, >= 2 SKUs and 1 <= lowest K <= highest K < SKUs"
        )
    if catalog.n_skus < n_categories * n_skus:
        raise ConfigError(
            f"pool of {n_categories} categories of {n_skus} SKUs needs {n_categories * n_skus} "
            f"SKUs; the training catalog has {catalog.n_skus}"
        )
    catalog = catalog.take(np.arange(n_categories * n_skus))
    k = rng.integers(lo, hi + 1, n_categories)
    solutions = []
    lam = np.empty((n_categories * n_skus, horizon_weeks) if weekly else n_categories * n_skus)
    for g in range(n_categories):
        rows = list(range(g * n_skus, (g + 1) * n_skus))
        members = catalog.take(rows)
        sol = solve_category(members, rules, horizon_weeks, int(k[g]), tol=POOL_TOL)
        if weekly:
            w = solve_weekly(members, sol, iterations=POOL_WEEKLY_ITERATIONS)
            solutions.extend(w.solutions)
            lam[rows] = w.multipliers
        else:
            solutions.extend(sol.solutions)
            lam[rows] = sol.multiplier
        if (g + 1) % max(n_categories // 10, 1) == 0 or g + 1 == n_categories:
            log.info("budget pool: %d/%d categories solved", g + 1, n_categories)
    first = lam[::n_skus].reshape(n_categories, -1)  # one row per category
    log.info(
        "budget pool: the limit binds in %d of %d categories (median multiplier %.3g%s)",
        int((first.max(axis=1) > 0).sum()),
        n_categories,
        float(np.median(first.mean(axis=1))),
        ", mean over the weeks" if weekly else "",
    )
    prices = SlotPrices(solutions, lam, promo_actions(rules))
    return CategoryPool(catalog=catalog, max_promoted=k, prior=prices)
