"""Playing a closed-loop policy on the random numbers of the open-loop simulation.

An exported schedule is a fixed 12-week plan (:mod:`planning.outcomes`). A team that re-runs
the planner every week executes a *closed-loop* policy instead: each week's depth is decided
on the stock actually left. :func:`simulate_policy` plays a policy week by week on exactly the
random numbers :func:`planning.outcomes.simulate_schedules` uses with the same seed (the
episode's parameters, when drawn, and the demand quantile of every week are keyed by
``(seed, SKU, episode, week)``; see :mod:`planning.random_keys`), so a policy and a fixed plan
are compared on the same paths, and a policy that plays a fixed plan gives exactly that plan's
numbers.

The policy decides on the *fitted* parameters (the estimate it would be re-run on); the market
it acts in uses the episode's drawn parameters when ``draw_parameters`` is on. So this measures
what reacting to the stock is worth, not what learning the parameters is worth.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from agents.policy import Policy, check_actions
from envs.config import RulesConfig
from envs.context import PolicyContext
from envs.core import play_week
from envs.observation import build_observation, season_cumsum
from envs.rules import action_mask, initial_decision_state
from ingest.errors import ConfigError
from planning.outcomes import mean_ci
from planning.random_keys import KeyedNormals, KeyedSampler, row_keys, sku_keys
from simulator.demand import Catalog
from simulator.market import initial_state

log = logging.getLogger(__name__)

# Slots (SKUs x episodes) played at once; bounds memory. The numbers do not depend on it
# (every draw is keyed), only the policy's batch size does.
_CHUNK_SLOTS = 100_000


def simulate_policy(
    catalog: Catalog,
    policy: Policy,
    rules: RulesConfig,
    horizon_weeks: int,
    *,
    n_episodes: int,
    seed: int,
    draw_parameters: bool,
) -> np.ndarray:
    """Per-episode total profit of ``policy`` played closed-loop on every SKU of ``catalog``.

    Parameters
    ----------
    catalog : Catalog
        The SKUs with their fitted parameters (what the policy decides on).
    policy : Policy
    rules : RulesConfig
        The business rules (actions outside their masks raise
        :class:`~agents.policy.PolicyError`).
    horizon_weeks : int
        Weeks to exit, counting the first; the last one is the exit week.
    n_episodes : int
        Episodes per SKU.
    seed : int
        Simulation seed: the one given to :func:`planning.outcomes.simulate_schedules` for
        the fixed plans this is compared with.
    draw_parameters : bool
        Draw every episode's market parameters from the fit's uncertainty (as the fixed plans
        were simulated).

    Returns
    -------
    ndarray of shape (n_skus, n_episodes)
        Total profit of each SKU and episode over the horizon (the market's accounting, as
        ``Outcome.totals["profit"]``).
    """
    if int(horizon_weeks) != horizon_weeks or horizon_weeks < 1:
        raise ConfigError(f"horizon_weeks = {horizon_weeks!r}: expected an integer >= 1")
    if n_episodes < 1:
        raise ConfigError(f"n_episodes = {n_episodes}: expected >= 1")
    H, n = int(horizon_weeks), catalog.n_skus
    keys = sku_keys(catalog.sku)
    profit = np.zeros((n, n_episodes))
    sku_chunk = max(1, min(n, _CHUNK_SLOTS))
    for s0 in range(0, n, sku_chunk):
        s1 = min(n, s0 + sku_chunk)
        m = s1 - s0
        ep_chunk = max(1, min(n_episodes, _CHUNK_SLOTS // m))
        for e0 in range(0, n_episodes, ep_chunk):
            e1 = min(n_episodes, e0 + ep_chunk)
            k = e1 - e0
            # rows are episode-major, as in planning.outcomes: row e * m + i is episode
            # e0 + e of SKU s0 + i
            fitted = catalog.take(np.tile(np.arange(s0, s1), k))
            rkeys = row_keys(seed, keys[s0:s1], np.arange(e0, e1))
            market_cat = (
                fitted.sample(KeyedNormals(rkeys).as_generator()) if draw_parameters else fitted
            )
            total = _play(fitted, market_cat, policy, rules, H, KeyedSampler(rkeys))
            profit[s0:s1, e0:e1] = total.reshape(k, m).T
        log.debug("closed loop: %d/%d SKUs played", s1, n)
    return profit


def _play(
    fitted: Catalog,
    market_cat: Catalog,
    policy: Policy,
    rules: RulesConfig,
    H: int,
    sampler: KeyedSampler,
) -> np.ndarray:
    """Total profit per slot: the policy sees ``fitted``, the market runs on ``market_cat``."""
    n = fitted.n_skus
    market = initial_state(market_cat)
    decision = initial_decision_state(fitted, H, rules)
    season_cum = season_cumsum(fitted)
    last_sold = np.zeros(n)
    ones = np.ones(n)
    total = np.zeros(n)
    for t in range(H):
        sampler.start_week(t)
        masks = action_mask(rules, decision, fitted)
        ctx = PolicyContext(fitted, decision, market, rules, H, episode_start=np.full(n, t == 0))
        if t == 0:
            policy.reset(ctx)
        obs = build_observation(
            fitted,
            decision,
            market,
            rules,
            horizon_weeks=H,
            last_units_sold=last_sold,
            season_cum=season_cum,
        )
        actions = np.asarray(policy.act(obs, masks, ctx), dtype=np.int64)
        check_actions(actions, masks, policy=policy.name)
        week = play_week(
            market_cat, rules, decision, market, actions, sampler.as_generator(), scale=ones
        )
        total += week.result.profit
        decision, market, last_sold = week.decision, week.market, week.result.units_sold
    return total


@dataclass(frozen=True)
class ReplanningValue:
    """What re-planning every week is worth against executing a planner's exported plan.

    Attributes
    ----------
    planner : str
        The planner played both ways (its closed-loop policy and its exported plan).
    n_skus : int
        SKUs compared (those the planner covers).
    gain : tuple of float
        Mean and CI of the portfolio profit of the closed loop minus the exported plan's, on
        the same paths.
    plan_gain_vs_none : float
        The exported plan's portfolio profit minus doing nothing's on those paths: the scale
        the gain is read against.
    """

    planner: str
    n_skus: int
    gain: tuple[float, float, float]
    plan_gain_vs_none: float

    @property
    def share_of_plan_gain(self) -> float:
        """``gain`` as a share of what the exported plan gains over doing nothing (NaN when
        the plan gains nothing)."""
        g = self.plan_gain_vs_none
        return self.gain[0] / g if g > 0 else float("nan")

    def metrics(self) -> dict[str, float]:
        m, lo, hi = self.gain
        return {
            "replan/gain": m,
            "replan/gain_ci_low": lo,
            "replan/gain_ci_high": hi,
            "replan/share_of_plan_gain": self.share_of_plan_gain,
        }

    def describe(self, currency: str = "") -> str:
        m, lo, hi = self.gain
        unit = f" {currency}" if currency else ""
        share = self.share_of_plan_gain
        pct = f" ({share:+.1%} of the plan's gain over doing nothing)" if np.isfinite(share) else ""
        return (
            f"re-planning every week ({self.planner} closed loop) vs executing its exported "
            f"plan unchanged, {self.n_skus:,} SKUs: {m:+,.2f}{unit} [{lo:+,.2f}, {hi:+,.2f}]{pct}"
        )


def replanning_value(
    planner: str,
    closed_profit: np.ndarray,
    plan_profit: np.ndarray,
    none_profit: np.ndarray,
    ci_level: float,
) -> ReplanningValue:
    """Compare a closed loop with its exported plan on the same paths (arrays of shape
    ``(n_skus, n_episodes)``: :func:`simulate_policy` and ``Outcome.totals["profit"]`` with
    one seed)."""
    if not closed_profit.shape == plan_profit.shape == none_profit.shape:
        raise ConfigError(
            f"closed loop {closed_profit.shape}, plan {plan_profit.shape} and doing nothing "
            f"{none_profit.shape} must be simulated on the same SKUs and episodes"
        )
    per_episode = (closed_profit - plan_profit).sum(axis=0)
    lo, hi = mean_ci(per_episode, ci_level)
    base = float((plan_profit - none_profit).sum(axis=0).mean())
    return ReplanningValue(
        planner=planner,
        n_skus=int(closed_profit.shape[0]),
        gain=(float(per_episode.mean()), float(lo), float(hi)),
        plan_gain_vs_none=base,
    )
