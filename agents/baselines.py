"""Heuristic baselines and the DP policy, all behind :class:`~agents.policy.Policy`.

Every baseline reads the structured :class:`~envs.context.PolicyContext` (they need a
context; play them with :func:`agents.rollout.rollout` or ``env.policy_context()``) and
only ever picks actions its mask allows: a wished-for depth is snapped to the nearest
allowed action by :func:`~agents.policy.nearest_allowed`, or the choice is made among the
allowed actions directly. Expected demand always comes from
:func:`agents.fluid.demand_table` (:func:`simulator.market.expected_demand` for every action
and week ahead); nothing here repeats the market's arithmetic.

=====================  ===============================================================
name                   rule
=====================  ===============================================================
``no_markdown``        keep list price (the shallowest depth the rules allow)
``ladder_<p>pt_<k>w``  linear ladder: ``p`` points deeper every ``k`` weeks
``fixed_<d>``          one fixed depth for the whole plan
``best_fixed``         the fixed depth with the best expected profit, found per SKU
                       exactly (:func:`agents.dp.evaluate_exact`) or, where the DP is not
                       exact, by simulation
``certainty_equiv``    Gallego-van Ryzin certainty-equivalent: every week, the action that
                       maximises the deterministic (fluid) profit over the weeks left if
                       held to exit, sales capped by stock
``weeks_of_cover``     one step deeper when stock covers more than ``deepen_above`` x the
                       weeks left at the current depth (one step up below ``raise_below``)
``myopic``             the action with the best expected profit this week (salvage and
                       write-off of the units left counted in the exit week)
``fluid_prior``        the PPO prior alone: every week the best action of the closed-form
                       fluid re-solve (two prices, the coupon budget), what an untrained
                       :class:`agents.ppo.FluidPriorPolicy` plays greedily
``dp``                 the exact DP's optimal action (solved per SKU, cached)
=====================  ===============================================================
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import fields

import numpy as np

from agents.dp import DPNotExactError, DPSolution, evaluate_exact, expected_units_sold, solve
from agents.fluid import closed_form_values, demand_table, unit_margin, week_by_week_values
from agents.policy import Policy, PolicyError, nearest_allowed
from envs.config import RulesConfig
from envs.context import PolicyContext
from envs.observation import OBS_DIM
from ingest.errors import ConfigError
from simulator.demand import SEASON_PERIOD, Catalog

# ---------------------------------------------------------------------------- helpers


def _deepen(rules: RulesConfig, masks: np.ndarray, depth: np.ndarray, step: int) -> np.ndarray:
    """Flat actions ``step`` ladder levels away from ``depth`` (clipped), snapped to masks."""
    target = np.clip(depth + step, 0, rules.n_discounts - 1)
    return nearest_allowed(rules, masks, target, 0)


# ---------------------------------------------------------------------------- simple rules


class NoMarkdown(Policy):
    """Keep list price: depth 0 and no coupon, or the nearest the rules allow."""

    name = "no_markdown"
    requires_context = True

    def act(self, observations, masks, context=None):
        ctx = self._need_context(context)
        return nearest_allowed(ctx.rules, masks, np.zeros(ctx.n_slots, np.int64), 0)


class FixedDiscount(Policy):
    """Hold one ladder depth for the whole plan (snapped to the mask every week).

    Parameters
    ----------
    depth_index : int
        Index into ``rules.discount_levels``.
    """

    requires_context = True

    def __init__(self, depth_index: int) -> None:
        self.depth_index = depth_index
        self.name = f"fixed_{depth_index}"

    def act(self, observations, masks, context=None):
        ctx = self._need_context(context)
        if not 0 <= self.depth_index < ctx.rules.n_discounts:
            raise ConfigError(
                f"FixedDiscount.depth_index = {self.depth_index}; the ladder has "
                f"{ctx.rules.n_discounts} levels"
            )
        return nearest_allowed(ctx.rules, masks, np.full(ctx.n_slots, self.depth_index), 0)


class LinearLadder(Policy):
    """Fixed linear markdown ladder: ``step`` deeper every ``every_weeks`` weeks.

    The wished depth after ``e`` weeks of the plan is ``step * floor(e / every_weeks)``,
    rounded down to the ladder and snapped to the mask.

    Parameters
    ----------
    step : float
        Depth added per period (share of list price), e.g. 0.1 = 10 points.
    every_weeks : int
        Period length in weeks.
    """

    requires_context = True

    def __init__(self, step: float = 0.1, every_weeks: int = 2) -> None:
        if step <= 0 or every_weeks < 1:
            raise ConfigError(
                f"LinearLadder(step={step}, every_weeks={every_weeks}): expected step > 0 "
                f"and every_weeks >= 1"
            )
        self.step = step
        self.every_weeks = every_weeks
        self.name = f"ladder_{round(step * 100)}pt_{every_weeks}w"

    def act(self, observations, masks, context=None):
        ctx = self._need_context(context)
        elapsed = ctx.horizons() - np.asarray(ctx.decision.weeks_left)
        wish = self.step * (elapsed // self.every_weeks)
        levels = np.asarray(ctx.rules.discount_levels)
        idx = np.searchsorted(levels, wish + 1e-9, side="right") - 1
        return nearest_allowed(ctx.rules, masks, idx, 0)


class WeeksOfCover(Policy):
    """Threshold rule on weeks of cover at the current depth.

    ``cover = stock / expected weekly demand at the depth in force`` (weeks). When cover
    exceeds ``deepen_above x weeks left`` the depth goes one ladder step deeper; when it is
    below ``raise_below x weeks left`` (if set) one step shallower; otherwise it holds.

    Parameters
    ----------
    deepen_above : float
        Cover ratio above which to mark down.
    raise_below : float or None
        Cover ratio below which to raise the price; ``None`` never raises.
    """

    name = "weeks_of_cover"
    requires_context = True

    def __init__(self, deepen_above: float = 1.0, raise_below: float | None = None) -> None:
        if deepen_above <= 0 or (raise_below is not None and raise_below >= deepen_above):
            raise ConfigError(
                f"WeeksOfCover(deepen_above={deepen_above}, raise_below={raise_below}): "
                f"expected 0 < raise_below < deepen_above"
            )
        self.deepen_above = deepen_above
        self.raise_below = raise_below

    def act(self, observations, masks, context=None):
        ctx = self._need_context(context)
        rules, dec = ctx.rules, ctx.decision
        depth = np.asarray(dec.depth_index, np.int64)
        lam = demand_table(ctx, 1)[np.arange(ctx.n_slots), rules.encode(depth, 0), 0]
        stock = np.asarray(dec.stock, float)
        cover = np.where(lam > 0, stock / np.maximum(lam, 1e-12), np.inf)
        cover = np.where(stock > 0, cover, 0.0)
        ratio = cover / np.maximum(np.asarray(dec.weeks_left, float), 1.0)
        step = np.where(ratio > self.deepen_above, 1, 0)
        if self.raise_below is not None:
            step = np.where(ratio < self.raise_below, -1, step)
        return _deepen(rules, masks, depth, step)


# ---------------------------------------------------------------------------- model-based


class Myopic(Policy):
    """Greedy on this week's expected profit as the market books it, salvage-aware at exit.

    Chooses the allowed action maximising this week's expected profit: unit margin on the
    expected units sold, minus holding on the units left, and in the exit week the salvage
    value less the write-off on the units left. It ignores every later week (a unit kept is
    worth nothing more to it than its holding cost).
    """

    name = "myopic"
    requires_context = True

    def act(self, observations, masks, context=None):
        ctx = self._need_context(context)
        cat = ctx.catalog
        lam = demand_table(ctx, 1)[:, :, 0]
        stock = np.asarray(ctx.decision.stock, float)[:, None]
        sold = expected_units_sold(lam, cat.dispersion[:, None], stock)
        exit_week = (np.asarray(ctx.decision.weeks_left) <= 1)[:, None]
        # Value this week of a unit not sold: -holding, or salvage - unit cost at exit.
        keep = np.where(
            exit_week,
            (cat.salvage_value_per_unit - cat.unit_cost)[:, None],
            -cat.holding_cost_per_unit_week[:, None],
        )
        gain = sold * (unit_margin(ctx) - keep)
        return _argmax_allowed(gain, masks)


def _argmax_allowed(score: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """First best allowed action per row (ties go to the lower index: shallower, no coupon)."""
    return np.argmax(np.where(masks, score, -np.inf), axis=1).astype(np.int64)


class CertaintyEquivalent(Policy):
    """Gallego-van Ryzin certainty-equivalent price, re-solved every week.

    For each allowed action, demand is replaced by its expectation (the fluid model of
    :mod:`agents.fluid`) and the action is held until exit: sales accumulate week by week up
    to the stock, unsold units pay holding and, at exit, are salvaged and charged the
    sell-through penalty (:func:`agents.fluid.week_by_week_values`). The action with the
    highest fluid profit is taken; next week the problem is solved again from the realised
    stock. Under a stock constraint this picks the run-out price (expected demand about
    equal to stock) unless a shallower price earns more.
    """

    name = "certainty_equiv"
    requires_context = True

    def act(self, observations, masks, context=None):
        ctx = self._need_context(context)
        return _argmax_allowed(week_by_week_values(ctx), masks)


class FluidPrior(Policy):
    """The PPO prior alone: the best allowed action of the closed-form fluid re-solve.

    :class:`agents.ppo.FluidPriorPolicy` starts its logits at ``scale x`` the fluid regrets
    of :func:`agents.fluid.value_features`; with its residual network at zero, its greedy
    action is the action this policy takes: the maximum of
    :func:`agents.fluid.closed_form_values` (each action held to exit at the mean season of
    the weeks left, a coupon only while the budget lasts, and the two-price plan of a
    discrete ladder) among the allowed ones, re-solved every week. It is the point PPO
    starts from, so PPO's gain over it is what training adds.

    It reads the season columns of the env's observation, so it is scored by simulation
    (not by :func:`agents.dp.evaluate_exact`, which passes no observation).
    """

    name = "fluid_prior"
    requires_context = True

    def act(self, observations, masks, context=None):
        ctx = self._need_context(context)
        obs = np.asarray(observations)
        if obs.ndim != 2 or obs.shape[0] != ctx.n_slots or obs.shape[1] < OBS_DIM:
            raise PolicyError(
                f"policy {self.name!r} reads the env's observation rows; got shape {obs.shape} "
                f"for {ctx.n_slots} slots (expected ({ctx.n_slots}, >= {OBS_DIM}))"
            )
        return _argmax_allowed(closed_form_values(obs, ctx, masks), masks)


# ---------------------------------------------------------------------------- per-SKU caches


def _slot_groups(ctx: PolicyContext) -> tuple[list[tuple[Catalog, int, int, int]], np.ndarray]:
    """Group slots by the problem they pose: (one-SKU catalog, horizon, start week, stock).

    Returns the distinct problems and each slot's group index.
    """
    dec = ctx.decision
    horizon = ctx.horizons()
    start = (np.asarray(ctx.market.week) - (horizon - np.asarray(dec.weeks_left))) % SEASON_PERIOD
    init = np.asarray(dec.initial_stock, float)
    if ctx.is_one_sku() and np.all(horizon == horizon[0]):
        if not np.all(init == init[0]) or not np.all(start == start[0]):
            raise ConfigError("slots of one SKU disagree on the plan's start or stock")
        group = (ctx.catalog.take([0]), int(horizon[0]), int(start[0]), int(round(init[0])))
        return [group], np.zeros(ctx.n_slots, np.int64)
    cat = ctx.catalog
    numeric = [
        np.asarray(getattr(cat, f.name), float).reshape(cat.n_skus, -1)
        for f in fields(cat)
        if f.name not in ("sku", "category", "initial_stock", "start_week", "risk_score")
    ]
    names = np.unique(np.asarray(cat.sku).astype(str), return_inverse=True)[1]
    table = np.hstack([*numeric, names[:, None], horizon[:, None], start[:, None], init[:, None]])
    _, first, inverse = np.unique(table, axis=0, return_index=True, return_inverse=True)
    groups = [
        (cat.take([int(i)]), int(horizon[i]), int(start[i]), int(round(init[i]))) for i in first
    ]
    return groups, inverse.ravel()


def slot_problems(ctx: PolicyContext) -> Iterator[tuple[Catalog, int, tuple, np.ndarray]]:
    """Each distinct problem the slots pose, once: its one-SKU catalog (stock and start week
    set), its horizon, a cache key, and the slots that pose it."""
    groups, inverse = _slot_groups(ctx)
    for g, (cat, H, start, stock) in enumerate(groups):
        one = cat.replace(initial_stock=float(stock), start_week=start)
        key = (H, start, stock, one.to_frame().to_json())
        yield one, H, key, np.flatnonzero(inverse == g)


class DPPolicy(Policy):
    """The exact DP's optimal policy: each SKU is solved on first sight and cached.

    Raises :class:`~agents.dp.DPNotExactError` for a SKU the DP cannot solve exactly
    (reference-price memory, fatigue): it never falls back to an approximation.

    Parameters
    ----------
    max_cached : int
        Solved SKUs kept (least recently used are dropped).
    """

    name = "dp"
    requires_context = True

    def __init__(self, max_cached: int = 64) -> None:
        self.max_cached = max_cached
        self._cache: OrderedDict[tuple, DPSolution] = OrderedDict()

    @staticmethod
    def _key(catalog: Catalog, rules: RulesConfig, horizon_weeks: int) -> tuple:
        norm = catalog.replace(
            start_week=catalog.start_week % SEASON_PERIOD,
            initial_stock=np.rint(catalog.initial_stock),
        )
        return (rules, int(horizon_weeks), norm.to_frame().to_json())

    @classmethod
    def from_solution(cls, solution: DPSolution, max_cached: int = 64) -> DPPolicy:
        """A DP policy that starts with ``solution`` cached (no second solve for its SKU)."""
        policy = cls(max_cached)
        key = cls._key(solution.catalog, solution.rules, solution.horizon_weeks)
        policy._cache[key] = solution
        return policy

    def solution(self, catalog: Catalog, rules: RulesConfig, horizon_weeks: int) -> DPSolution:
        """The (cached) :class:`~agents.dp.DPSolution` of a one-SKU catalog."""
        key = self._key(catalog, rules, horizon_weeks)
        if key in self._cache:
            self._cache.move_to_end(key)
        else:
            self._cache[key] = solve(catalog, rules, horizon_weeks)
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)
        return self._cache[key]

    def act(self, observations, masks, context=None):
        ctx = self._need_context(context)
        actions = np.empty(ctx.n_slots, np.int64)
        for one, H, _, slots in slot_problems(ctx):
            actions[slots] = self.solution(one, ctx.rules, H).policy(ctx.decision.take(slots))
        return actions


class BestFixedDiscount(Policy):
    """The single fixed depth with the best expected profit, searched per SKU.

    Each ladder depth is held for the whole plan (snapped to the mask) and valued exactly
    with :func:`agents.dp.evaluate_exact`; where the DP is not exact (memory, fatigue) it is
    valued by ``n_sim_episodes`` simulated episodes with ``seed`` instead.

    Parameters
    ----------
    n_sim_episodes : int
        Episodes per depth when simulation is needed.
    seed : int
        Seed of that simulation.
    """

    name = "best_fixed"
    requires_context = True

    def __init__(self, n_sim_episodes: int = 200, seed: int = 0) -> None:
        self.n_sim_episodes = n_sim_episodes
        self.seed = seed
        self._best: dict[tuple, int] = {}

    def search(self, catalog: Catalog, rules: RulesConfig, horizon_weeks: int) -> np.ndarray:
        """Expected profit of every fixed depth for a one-SKU catalog, shape (n_discounts,)."""
        values = np.empty(rules.n_discounts)
        for i in range(rules.n_discounts):
            try:
                values[i] = evaluate_exact(catalog, rules, horizon_weeks, FixedDiscount(i))
            except DPNotExactError:
                from agents.rollout import rollout

                res = rollout(
                    FixedDiscount(i),
                    catalog,
                    rules,
                    horizon_weeks,
                    n_episodes=self.n_sim_episodes,
                    seed=self.seed,
                )
                values[i] = float(res.objective.mean())
        return values

    def act(self, observations, masks, context=None):
        ctx = self._need_context(context)
        wish = np.empty(ctx.n_slots, np.int64)
        for one, H, key, slots in slot_problems(ctx):
            key = (ctx.rules, *key)
            if key not in self._best:
                self._best[key] = int(np.argmax(self.search(one, ctx.rules, H)))
            wish[slots] = self._best[key]
        return nearest_allowed(ctx.rules, masks, wish, 0)


def default_baselines(include_dp: bool = True) -> list[Policy]:
    """The standard set of baselines compared in benchmarks and reports."""
    out: list[Policy] = [
        NoMarkdown(),
        LinearLadder(0.1, 2),
        LinearLadder(0.1, 4),
        BestFixedDiscount(),
        CertaintyEquivalent(),
        WeeksOfCover(1.0),
        Myopic(),
    ]
    if include_dp:
        out.append(DPPolicy())
    return out
