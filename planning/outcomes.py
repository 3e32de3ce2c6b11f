"""Simulating fixed weekly plans: expected outcomes with confidence intervals.

An exported schedule is a fixed plan of weekly discount and coupon depths that the price
system executes. Its expected outcomes are therefore those of the *open-loop* plan, and they
come from simulation: every week of every episode goes through :func:`simulator.market.step`
(no market arithmetic here). Several schedules simulated with the same seed share their random
numbers, so differences between them (policy minus doing nothing) have tight, paired CIs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ingest.errors import ConfigError, DataError
from planning.schedule import Schedule
from simulator.demand import Catalog
from simulator.market import initial_state, step

# Rows (SKU x episode) simulated at once; bounds memory (the season array is rows x 52).
_CHUNK_ROWS = 100_000

# Per-episode totals kept for every SKU (arrays of shape (n_skus, n_episodes)).
TOTALS = (
    "units_sold",
    "revenue",
    "coupon_cost",
    "refunds",
    "cogs",
    "holding_cost",
    "salvage",
    "writeoff",
    "profit",
    "margin_given_away",
    "leftover_units",
    "sell_through",
    "dead_stock_value",
)


@dataclass
class Outcome:
    """Simulated outcomes of one schedule.

    Attributes
    ----------
    schedule : Schedule
    totals : dict of str to ndarray of shape (n_skus, n_episodes)
        Per-episode totals over the horizon (see :data:`TOTALS`).
    weekly_mean : dict of str to ndarray of shape (n_skus, horizon)
        Mean per week of ``units``, ``revenue``, ``margin`` (revenue - coupon cost - refunds -
        cost of goods sold) and ``stock_left``.
    weekly_sd : dict of str to ndarray of shape (n_skus, horizon)
        Standard deviation across episodes per week of ``units`` and ``stock_left``.
    paths : dict of str to ndarray of shape (n_episodes, horizon) or None
        Every episode's ``units`` and ``stock_left`` (only when simulated with
        ``keep_paths=True``, for one SKU).
    ci_level : float
    """

    schedule: Schedule
    totals: dict[str, np.ndarray]
    weekly_mean: dict[str, np.ndarray]
    weekly_sd: dict[str, np.ndarray]
    paths: dict[str, np.ndarray] | None
    ci_level: float

    @property
    def n_episodes(self) -> int:
        return int(self.totals["profit"].shape[1])

    def sku_mean(self, name: str) -> np.ndarray:
        return self.totals[name].mean(axis=1)

    def sku_ci(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-SKU CI of the mean of ``name``."""
        return mean_ci(self.totals[name], self.ci_level, axis=1)

    def portfolio(self, name: str) -> tuple[float, float, float]:
        """Mean and CI of the total of ``name`` over all SKUs (one sample per episode)."""
        per_episode = self.totals[name].sum(axis=0)
        lo, hi = mean_ci(per_episode, self.ci_level)
        return float(per_episode.mean()), float(lo), float(hi)


def mean_ci(x: np.ndarray, level: float, axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Normal-approximation CI of the mean along ``axis`` (sample sd / sqrt(n))."""
    x = np.asarray(x, dtype=float)
    n = x.shape[axis] if axis is not None else x.size
    m = x.mean(axis=axis)
    sd = x.std(axis=axis, ddof=1) if n > 1 else np.zeros_like(m)
    half = stats.norm.ppf(0.5 + level / 2) * sd / np.sqrt(n)
    return m - half, m + half


def paired_ci(
    a: Outcome, b: Outcome, name: str, *, portfolio: bool = True
) -> tuple[float, float, float]:
    """Mean and CI of ``a - b`` for total ``name``, paired by episode (common random numbers)."""
    diff = a.totals[name] - b.totals[name]
    x = diff.sum(axis=0) if portfolio else diff
    lo, hi = mean_ci(x, a.ci_level)
    return float(x.mean()), float(lo), float(hi)


def simulate_schedule(
    catalog: Catalog,
    schedule: Schedule,
    *,
    n_episodes: int,
    seed: int,
    ci_level: float = 0.95,
    draw_parameters: bool = False,
    keep_paths: bool = False,
) -> Outcome:
    """Simulate ``schedule`` on ``catalog`` for ``n_episodes`` episodes through the market step.

    The exit week is the schedule's last week: leftover stock is then salvaged and written off.

    Parameters
    ----------
    catalog : Catalog
        The SKUs, in the schedule's order (``catalog.sku`` must equal ``schedule.sku``).
    schedule : Schedule
    n_episodes : int
        Episodes per SKU.
    seed : int
        Seed of the demand draws. The same seed gives the same numbers, and two schedules
        simulated with one seed share their random numbers chunk by chunk.
    ci_level : float
        Level of the CIs the outcome reports.
    draw_parameters : bool
        Draw every episode's parameters from the catalog's fitted uncertainty.
    keep_paths : bool
        Keep every episode's weekly path (for one SKU's what-if plot).

    Returns
    -------
    Outcome
    """
    n = catalog.n_skus
    if n != len(schedule.sku) or not np.array_equal(
        np.asarray(catalog.sku, dtype=str), np.asarray(schedule.sku, dtype=str)
    ):
        raise DataError(
            f"schedule {schedule.name!r} covers {len(schedule.sku)} SKUs that do not match the "
            f"catalog's {n} SKUs in order"
        )
    if n_episodes < 1:
        raise ConfigError(f"n_episodes = {n_episodes}: expected >= 1")
    h = schedule.horizon
    disc = np.asarray(schedule.discount, dtype=float)
    coup = np.asarray(schedule.coupon, dtype=float)
    totals = {k: np.zeros((n, n_episodes)) for k in TOTALS}
    weekly = {k: np.zeros((n, h)) for k in ("units", "revenue", "margin", "stock_left")}
    weekly_sq = {k: np.zeros((n, h)) for k in ("units", "stock_left")}
    paths = {k: np.zeros((n_episodes, h)) for k in ("units", "stock_left")} if keep_paths else None
    if keep_paths and n != 1:
        raise ConfigError("keep_paths is for one SKU; simulate one SKU at a time")

    sku_chunk = min(n, _CHUNK_ROWS) or 1
    for s0 in range(0, n, sku_chunk):
        s1 = min(n, s0 + sku_chunk)
        m = s1 - s0
        ep_chunk = max(1, min(n_episodes, _CHUNK_ROWS // m))
        base: Catalog | None = None
        for e0 in range(0, n_episodes, ep_chunk):
            e1 = min(n_episodes, e0 + ep_chunk)
            k = e1 - e0
            if base is None or base.n_skus != m * k:
                base = catalog.take(np.tile(np.arange(s0, s1), k))
            # One generator per (chunk, week): two schedules simulated with one seed share
            # their parameter draws and each week's draws, even where Poisson sampling
            # consumes a different amount of randomness for different means.
            chunk_key = [seed, s0, e0]
            cat = base.sample(np.random.default_rng(chunk_key + [0])) if draw_parameters else base
            state = initial_state(cat)
            stock0 = state.stock.copy()
            d_rows = np.tile(disc[s0:s1], (k, 1))
            c_rows = np.tile(coup[s0:s1], (k, 1))
            acc = {name: np.zeros(m * k) for name in TOTALS}
            for t in range(h):
                rng = np.random.default_rng(chunk_key + [1, t])
                state, r = step(cat, state, d_rows[:, t], c_rows[:, t], rng, exit_now=t == h - 1)
                acc["units_sold"] += r.units_sold
                acc["revenue"] += r.revenue
                acc["coupon_cost"] += r.coupon_cost
                acc["refunds"] += r.refunds
                acc["cogs"] += r.cogs
                acc["holding_cost"] += r.holding_cost
                acc["salvage"] += r.salvage
                acc["writeoff"] += r.writeoff
                acc["profit"] += r.profit
                acc["margin_given_away"] += (
                    r.units_sold * cat.list_price * (d_rows[:, t] + c_rows[:, t])
                )
                margin = r.revenue - r.coupon_cost - r.refunds - r.cogs
                for key, val in (
                    ("units", r.units_sold),
                    ("revenue", r.revenue),
                    ("margin", margin),
                    ("stock_left", r.stock_after),
                ):
                    weekly[key][s0:s1, t] += val.reshape(k, m).sum(axis=0)
                    if key in weekly_sq:
                        weekly_sq[key][s0:s1, t] += (val**2).reshape(k, m).sum(axis=0)
                if paths is not None:
                    paths["units"][e0:e1, t] = r.units_sold
                    paths["stock_left"][e0:e1, t] = r.stock_after
            acc["leftover_units"] = state.stock
            acc["sell_through"] = np.divide(
                acc["units_sold"], stock0, out=np.zeros_like(stock0), where=stock0 > 0
            )
            acc["dead_stock_value"] = state.stock * cat.unit_cost
            for name in TOTALS:
                totals[name][s0:s1, e0:e1] = acc[name].reshape(k, m).T
    for key in weekly:
        weekly[key] /= n_episodes
    weekly_sd = {
        key: np.sqrt(np.maximum(weekly_sq[key] / n_episodes - weekly[key] ** 2, 0.0))
        for key in weekly_sq
    }
    return Outcome(schedule, totals, weekly, weekly_sd, paths, ci_level)
