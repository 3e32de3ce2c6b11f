"""Shared contracts of the environments: the action grid, the business-rule switches and the
per-SKU decision state that rules, envs, the DP and the heuristics all read.

The mask logic lives in :mod:`envs.rules`; the environments in :mod:`envs.markdown` and
:mod:`envs.batched`. Actions are flat indices ``a = depth_index * n_coupons + coupon_index``
into ``discount_levels x coupon_levels``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import numpy as np

from ingest.errors import ConfigError
from ingest.panel import MAX_DISCOUNT_DEPTH

NO_BUDGET = 10**6  # coupon weeks left when no coupon budget is set


@dataclass(frozen=True)
class RulesConfig:
    """The pricing team's business rules; each is a switch, enforced as an action mask.

    Parameters
    ----------
    discount_levels : tuple of float
        The discount ladder: the allowed depths as shares of list price, ascending, starting
        at 0.0 (no discount).
    coupon_levels : tuple of float
        Allowed coupon depths as shares of list price, ascending, starting at 0.0.
        ``(0.0,)`` switches coupons off.
    max_discount : float or None
        Deepest discount allowed (levels above it are masked). ``None`` = the ladder's top.
    min_weeks_between_changes : int
        A price change is allowed only this many weeks after the last one (0 or 1 = off).
    markdown_only : bool
        No price increase after a markdown: the discount depth never decreases.
    margin_floor : float or None
        Net price ``list * (1 - d - c)`` must stay >= ``unit_cost * (1 + margin_floor)``.
        ``None`` = off. The no-discount action is always allowed.
    no_touch_after_launch_weeks : int
        No discount or coupon while the SKU is younger than this many weeks.
    no_touch_before_exit_weeks : int
        No *change* of price in the last this-many weeks before exit.
    sell_through_target : float or None
        Share of the initial stock that must be sold by the exit week. ``None`` = off.
    sell_through_mode : {"penalty", "hard"}
        ``"penalty"`` charges ``sell_through_penalty_per_unit`` per unit short of the target
        at exit; ``"hard"`` masks every depth but the deepest allowed in the last week while
        the target is not met.
    sell_through_penalty_per_unit : float
        Penalty (currency per unit short, as a share of list price) in penalty mode.
    coupon_budget_weeks : int or None
        Number of weeks a SKU may carry a coupon over the plan. ``None`` = unlimited. (A money
        budget would depend on sales not yet made, so it could not be enforced as a mask.)
    """

    discount_levels: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    coupon_levels: tuple[float, ...] = (0.0,)
    max_discount: float | None = None
    min_weeks_between_changes: int = 0
    markdown_only: bool = False
    margin_floor: float | None = None
    no_touch_after_launch_weeks: int = 0
    no_touch_before_exit_weeks: int = 0
    sell_through_target: float | None = None
    sell_through_mode: Literal["penalty", "hard"] = "penalty"
    sell_through_penalty_per_unit: float = 0.5
    coupon_budget_weeks: int | None = None

    def __post_init__(self) -> None:
        for name in ("discount_levels", "coupon_levels"):
            levels = getattr(self, name)
            if not levels or levels[0] != 0.0:
                raise ConfigError(f"rules.{name} = {levels!r}: must start at 0.0 (no discount)")
            if any(b <= a for a, b in zip(levels, levels[1:], strict=False)):
                raise ConfigError(f"rules.{name} = {levels!r}: must be strictly ascending")
            if levels[-1] >= MAX_DISCOUNT_DEPTH:
                raise ConfigError(
                    f"rules.{name} = {levels!r}: depths must be below {MAX_DISCOUNT_DEPTH}"
                )
        if self.discount_levels[-1] + self.coupon_levels[-1] >= MAX_DISCOUNT_DEPTH:
            raise ConfigError(
                f"rules: deepest discount + deepest coupon must be below {MAX_DISCOUNT_DEPTH}"
            )
        if self.max_discount is not None and not 0.0 <= self.max_discount < MAX_DISCOUNT_DEPTH:
            raise ConfigError(
                f"rules.max_discount = {self.max_discount}: expected [0, {MAX_DISCOUNT_DEPTH})"
            )
        if self.min_weeks_between_changes < 0:
            raise ConfigError("rules.min_weeks_between_changes must be >= 0")
        if self.sell_through_target is not None and not 0 < self.sell_through_target <= 1:
            raise ConfigError(
                f"rules.sell_through_target = {self.sell_through_target}: expected (0, 1]"
            )
        if self.sell_through_mode not in ("penalty", "hard"):
            raise ConfigError(
                f"rules.sell_through_mode = {self.sell_through_mode!r}: "
                f"expected 'penalty' or 'hard'"
            )
        if self.coupon_budget_weeks is not None and self.coupon_budget_weeks < 0:
            raise ConfigError("rules.coupon_budget_weeks must be >= 0 or None")

    @property
    def n_discounts(self) -> int:
        return len(self.discount_levels)

    @property
    def n_coupons(self) -> int:
        return len(self.coupon_levels)

    @property
    def n_actions(self) -> int:
        return self.n_discounts * self.n_coupons

    def decode(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat action indices -> (depth_index, coupon_index)."""
        a = np.asarray(actions, dtype=np.int64)
        return a // self.n_coupons, a % self.n_coupons

    def encode(self, depth_index: np.ndarray, coupon_index: np.ndarray) -> np.ndarray:
        """(depth_index, coupon_index) -> flat action indices."""
        return np.asarray(depth_index) * self.n_coupons + np.asarray(coupon_index)

    def depths(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat action indices -> (discount depth, coupon depth) as shares of list price."""
        di, ci = self.decode(actions)
        return (np.asarray(self.discount_levels)[di], np.asarray(self.coupon_levels)[ci])


@dataclass
class DecisionState:
    """What the rules need to know about each SKU at a decision (arrays of shape (n,)).

    Attributes
    ----------
    weeks_left : int array
        Weeks until exit, counting the week being decided (1 = the exit week).
    stock : float array
        Units on hand before the week.
    initial_stock : float array
        Units on hand when the plan started.
    depth_index : int array
        Index of the discount currently in force (0 = none).
    weeks_since_change : int array
        Weeks since the discount last changed (large at the start).
    coupon_weeks_left : int array
        Coupon weeks left in the budget (``NO_BUDGET`` when unlimited).
    age_weeks : int array
        Weeks since launch, at the week being decided.
    """

    weeks_left: np.ndarray
    stock: np.ndarray
    initial_stock: np.ndarray
    depth_index: np.ndarray
    weeks_since_change: np.ndarray
    coupon_weeks_left: np.ndarray
    age_weeks: np.ndarray

    def take(self, rows: np.ndarray) -> DecisionState:
        """The states of ``rows`` (an index array or mask), as new arrays."""
        return DecisionState(
            **{f.name: np.asarray(getattr(self, f.name))[rows] for f in fields(self)}
        )
