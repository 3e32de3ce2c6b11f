"""Checks of a plan that a pricing team asks before trusting it.

- :func:`no_demand_at_any_price`: SKUs that would sell (almost) nothing even at the deepest
  discount the rules allow. No markdown changes their outcome, so none is recommended; such a
  SKU needs another channel (a liquidator, a return to the supplier, a donation).
- :func:`net_price_check`: weeks where the net price ``list * (1 - d - c)`` falls below the
  unit cost (the rules' ``margin_floor`` forbids them when it is set).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.config import RulesConfig
from planning.schedule import Schedule
from simulator.demand import Catalog
from simulator.market import expected_demand_grid

NO_DEMAND_UNITS = 0.01
"""Expected units over the whole plan, at the deepest allowed discount and coupon, below which
a SKU counts as having no demand at any price (less than one unit in a hundred plans)."""

NO_DEMAND_NOTE = "no demand at any price: consider another channel"
"""What the outputs say instead of a markdown for such a SKU."""


def deepest_depths(rules: RulesConfig) -> tuple[float, float]:
    """The deepest discount and coupon the rules' ladders and ``max_discount`` allow."""
    levels = np.asarray(rules.discount_levels, dtype=float)
    if rules.max_discount is not None:
        levels = levels[levels <= rules.max_discount + 1e-12]
    return float(levels.max()), float(max(rules.coupon_levels))


def expected_units_at_deepest(catalog: Catalog, rules: RulesConfig, horizon: int) -> np.ndarray:
    """Expected units demanded over ``horizon`` weeks from the catalog's start week at the
    deepest allowed discount and coupon (no memory, no fatigue), shape ``(n_skus,)``."""
    d, c = deepest_depths(rules)
    total = np.zeros(catalog.n_skus)
    for t in range(horizon):
        week = np.asarray(catalog.start_week) + t
        total += expected_demand_grid(catalog, week, np.array([d]), np.array([c]))[:, 0]
    return total


def no_demand_at_any_price(catalog: Catalog, rules: RulesConfig, horizon: int) -> np.ndarray:
    """SKUs whose expected units over the plan stay below :data:`NO_DEMAND_UNITS` even at the
    deepest allowed discount and coupon (a deeper cut never lowers demand), shape
    ``(n_skus,)`` of bool."""
    return expected_units_at_deepest(catalog, rules, horizon) < NO_DEMAND_UNITS


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
