"""Play a :class:`~agents.policy.Policy` over SKUs and record the full weekly schedule.

Every SKU is played ``n_episodes`` times in lockstep as one batch of slots, week by week,
through :func:`envs.core.play_week` (the same bookkeeping the envs use: the market's
:func:`~simulator.market.step`, the rules' :func:`~envs.rules.advance` and the exit
penalty), so a rollout's profit is exactly what the envs pay. Masks come from
:func:`envs.rules.action_mask`; an action a policy picks outside its mask raises
:class:`~agents.policy.PolicyError`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from agents.policy import Policy, check_actions
from envs.config import RulesConfig
from envs.context import PolicyContext
from envs.core import play_week
from envs.observation import build_observation, season_cumsum
from envs.rules import action_mask, initial_decision_state
from ingest.errors import ConfigError
from simulator.demand import Catalog
from simulator.market import initial_state

SCHEDULE_COLUMNS: tuple[str, ...] = (
    "discount",
    "coupon",
    "units_sold",
    "revenue",
    "coupon_cost",
    "profit",
    "exit_penalty",
    "objective",
    "margin_given_away",
    "stock_left",
)
"""Per-week terms recorded for every (episode, SKU)."""


@dataclass
class RolloutResult:
    """The weekly schedule and totals of a rollout.

    Attributes
    ----------
    policy : str
        Name of the policy played.
    sku : ndarray of str of shape (n_skus,)
    weeks : ndarray of int of shape (n_skus, horizon_weeks)
        Calendar week of each plan week.
    schedule : dict of str to ndarray of shape (n_episodes, n_skus, horizon_weeks)
        One array per :data:`SCHEDULE_COLUMNS` entry, plus ``action`` (flat index) and
        ``active`` (False after the SKU sold out: nothing was decided those weeks).
    initial_stock : ndarray of shape (n_skus,)
    """

    policy: str
    sku: np.ndarray
    weeks: np.ndarray
    schedule: dict[str, np.ndarray]
    initial_stock: np.ndarray

    @property
    def n_episodes(self) -> int:
        return int(self.schedule["objective"].shape[0])

    @property
    def objective(self) -> np.ndarray:
        """Total objective (profit minus exit penalty) per episode and SKU, ``(n_episodes,
        n_skus)``."""
        return self.schedule["objective"].sum(axis=2)

    def mean_ci(self, level: float = 0.99) -> tuple[np.ndarray, np.ndarray]:
        """Mean total objective per SKU and the half-width of its normal CI at ``level``."""
        from scipy import stats

        obj = self.objective
        n = obj.shape[0]
        half = stats.norm.ppf(0.5 + level / 2) * obj.std(axis=0, ddof=1) / np.sqrt(max(n, 1))
        return obj.mean(axis=0), half if n > 1 else np.full(obj.shape[1], np.inf)

    def totals_frame(self) -> pd.DataFrame:
        """One row per (episode, SKU): summed terms, dead stock and sell-through."""
        n_e, n_s, _ = self.schedule["objective"].shape
        data: dict[str, np.ndarray] = {
            "policy": np.full(n_e * n_s, self.policy, dtype=object),
            "episode": np.repeat(np.arange(n_e), n_s),
            "sku": np.tile(self.sku, n_e),
        }
        for col in ("units_sold", "revenue", "coupon_cost", "profit", "exit_penalty"):
            data[col] = self.schedule[col].sum(axis=2).ravel()
        data["objective"] = self.objective.ravel()
        data["margin_given_away"] = self.schedule["margin_given_away"].sum(axis=2).ravel()
        data["dead_stock"] = self.schedule["stock_left"][:, :, -1].ravel()
        init = np.tile(self.initial_stock, n_e)
        data["sell_through"] = np.where(
            init > 0, 1.0 - data["dead_stock"] / np.maximum(init, 1e-12), 1.0
        )
        return pd.DataFrame(data)

    def schedule_frame(self, *, active_only: bool = True) -> pd.DataFrame:
        """The weekly schedule as a long frame (one row per episode, SKU and week).

        Columns: ``policy, episode, sku, plan_week`` (1 = first week), ``calendar_week``,
        ``action``, the :data:`SCHEDULE_COLUMNS` and ``active``. With ``active_only`` the
        weeks after a SKU sold out are left out.
        """
        n_e, n_s, H = self.schedule["objective"].shape
        size = n_e * n_s * H
        data: dict[str, np.ndarray] = {
            "policy": np.full(size, self.policy, dtype=object),
            "episode": np.repeat(np.arange(n_e), n_s * H),
            "sku": np.tile(np.repeat(self.sku, H), n_e),
            "plan_week": np.tile(np.arange(1, H + 1), n_e * n_s),
            "calendar_week": np.tile(self.weeks.ravel(), n_e),
        }
        for col in ("action", *SCHEDULE_COLUMNS, "active"):
            data[col] = self.schedule[col].ravel()
        frame = pd.DataFrame(data)
        if active_only:
            frame = frame[frame["active"]].reset_index(drop=True)
        return frame


def rollout(
    policy: Policy,
    catalog: Catalog,
    rules: RulesConfig,
    horizon_weeks: int,
    *,
    n_episodes: int = 1,
    seed: int | None = 0,
) -> RolloutResult:
    """Play ``policy`` on every SKU of ``catalog`` for ``n_episodes`` episodes.

    Parameters
    ----------
    policy : Policy
    catalog : Catalog
        The SKUs to play (each from its ``initial_stock`` and ``start_week``).
    rules : RulesConfig
    horizon_weeks : int
        Weeks to exit, counting the first.
    n_episodes : int
        Independent demand paths per SKU.
    seed : int or None
        Seed of the one generator that draws all demand (same seed, same numbers).

    Returns
    -------
    RolloutResult
    """
    if int(horizon_weeks) != horizon_weeks or horizon_weeks < 1:
        raise ConfigError(f"horizon_weeks = {horizon_weeks!r}: expected an integer >= 1")
    if n_episodes < 1:
        raise ConfigError(f"n_episodes = {n_episodes}: expected >= 1")
    H, n_s = int(horizon_weeks), catalog.n_skus
    n = n_s * n_episodes
    slots = catalog.take(np.tile(np.arange(n_s), n_episodes))
    rng = np.random.default_rng(seed)
    market = initial_state(slots)
    decision = initial_decision_state(slots, H, rules)
    season_cum = season_cumsum(slots)
    last_sold = np.zeros(n)
    active = np.ones(n, dtype=bool)
    record = {c: np.zeros((n, H)) for c in SCHEDULE_COLUMNS}
    record["action"] = np.zeros((n, H), dtype=np.int64)
    record["active"] = np.zeros((n, H), dtype=bool)
    ones = np.ones(n)
    for t in range(H):
        masks = action_mask(rules, decision, slots)
        ctx = PolicyContext(slots, decision, market, rules, H, episode_start=np.full(n, t == 0))
        if t == 0:
            policy.reset(ctx)
        obs = build_observation(
            slots,
            decision,
            market,
            rules,
            horizon_weeks=H,
            last_units_sold=last_sold,
            season_cum=season_cum,
        )
        actions = np.asarray(policy.act(obs, masks, ctx), dtype=np.int64)
        check_actions(actions, masks, policy=policy.name)
        out = play_week(slots, rules, decision, market, actions, rng, scale=ones)
        record["action"][:, t] = actions
        record["active"][:, t] = active
        record["discount"][:, t] = out.discount
        record["coupon"][:, t] = out.coupon
        for col in ("units_sold", "revenue", "coupon_cost", "profit"):
            record[col][:, t] = getattr(out.result, col)
        record["exit_penalty"][:, t] = out.exit_penalty
        record["objective"][:, t] = out.objective
        record["margin_given_away"][:, t] = out.margin_given_away
        record["stock_left"][:, t] = out.result.stock_after
        active = active & (out.result.stock_after > 0)
        decision, market, last_sold = out.decision, out.market, out.result.units_sold
    schedule = {k: v.reshape(n_episodes, n_s, H) for k, v in record.items()}
    weeks = catalog.start_week[:, None] + np.arange(H)[None, :]
    return RolloutResult(
        policy=policy.name,
        sku=np.asarray(catalog.sku).astype(str),
        weeks=weeks,
        schedule=schedule,
        initial_stock=np.asarray(catalog.initial_stock, dtype=float),
    )
