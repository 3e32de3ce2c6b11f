"""Checks of a plan that a pricing team asks before trusting it.

- No demand at any price: a SKU that sells nothing in any simulated episode even at the
  deepest discount and coupon the rules allow it (:func:`deepest_allowed_schedule`,
  :func:`sells_nothing`). No markdown changes its outcome, so none is recommended; such a SKU
  needs another channel (a liquidator, a return to the supplier, a donation). The check is
  made on the simulation itself rather than on expected demand at the point estimates, because
  a fit can leave a SKU with a few hundredths of a unit a week and a standard error so wide
  that almost every simulated market sells nothing.
- :func:`net_price_check`: weeks where the net price ``list * (1 - d - c)`` falls below the
  unit cost (the rules' ``margin_floor`` forbids them when it is set).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.config import RulesConfig
from planning.outcomes import Outcome
from planning.schedule import Schedule
from simulator.demand import Catalog

NO_DEMAND_NOTE = "no demand at any price: consider another channel"
"""What the outputs say instead of a markdown for such a SKU."""

_EPS = 1e-9


def deepest_allowed_schedule(catalog: Catalog, rules: RulesConfig, horizon: int) -> Schedule:
    """Every SKU at the deepest discount the rules allow it (the ladder under
    ``max_discount``, and above the ``margin_floor`` where set), plus the deepest coupon still
    allowed on top, every week: the probe of :func:`sells_nothing`."""
    levels = np.asarray(rules.discount_levels, dtype=float)
    if rules.max_discount is not None:
        levels = levels[levels <= rules.max_discount + _EPS]
    coupons = np.asarray(rules.coupon_levels, dtype=float)
    n = catalog.n_skus
    if rules.margin_floor is None:
        d = np.full(n, levels.max())
        c = np.full(n, coupons.max())
    else:
        # least net share of the list price each SKU may sell at (envs.rules' margin floor)
        floor = catalog.unit_cost * (1.0 + rules.margin_floor) / catalog.list_price - _EPS
        ok_d = (1.0 - levels[None, :]) >= floor[:, None]
        d = np.where(ok_d, levels[None, :], 0.0).max(axis=1)
        ok_c = (1.0 - d[:, None] - coupons[None, :]) >= floor[:, None]
        c = np.where(ok_c, coupons[None, :], 0.0).max(axis=1)
    return Schedule(
        sku=catalog.sku,
        discount=np.repeat(d[:, None], horizon, axis=1),
        coupon=np.repeat(c[:, None], horizon, axis=1),
        name="deepest_allowed",
    )


def sells_nothing(outcome: Outcome) -> np.ndarray:
    """SKUs whose schedule sold no unit in any simulated episode, shape ``(n_skus,)``."""
    return np.asarray(~(outcome.totals["units_sold"] > 0).any(axis=1))


def without_markdown(schedule: Schedule, skus: np.ndarray) -> Schedule:
    """``schedule`` with no discount and no coupon for the SKUs where ``skus`` is true."""
    mask = np.asarray(skus, dtype=bool)
    if not mask.any():
        return schedule
    d = np.array(schedule.discount, dtype=float)
    c = np.array(schedule.coupon, dtype=float)
    d[mask], c[mask] = 0.0, 0.0
    return Schedule(sku=schedule.sku, discount=d, coupon=c, name=schedule.name)


@dataclass
class NetPriceCheck:
    """Net prices of a schedule against unit cost, per SKU (arrays of shape ``(n_skus,)``).

    Attributes
    ----------
    min_net_price : ndarray of float
        Lowest weekly net price ``list * (1 - discount - coupon)``.
    weeks_below_cost : ndarray of int
        Weeks whose net price is below the unit cost.
    first_week_below_cost : ndarray of int
        First such week (1-based), 0 when none.
    """

    min_net_price: np.ndarray
    weeks_below_cost: np.ndarray
    first_week_below_cost: np.ndarray

    @property
    def below_cost(self) -> np.ndarray:
        return self.weeks_below_cost > 0


def net_price_check(schedule: Schedule, catalog: Catalog) -> NetPriceCheck:
    """Where the schedule sells below unit cost (``catalog`` in the schedule's SKU order)."""
    depth = np.asarray(schedule.discount, dtype=float) + np.asarray(schedule.coupon, dtype=float)
    net = catalog.list_price[:, None] * (1.0 - depth)
    # a cent's tolerance: a net price equal to the cost up to rounding is not below it
    below = net < catalog.unit_cost[:, None] - 0.005
    first = np.where(below.any(axis=1), below.argmax(axis=1) + 1, 0)
    return NetPriceCheck(net.min(axis=1), below.sum(axis=1), first)
