"""The stock assumption: what a plan starts from when the source has no stock table.

Complete Journey (and many sales extracts) record what sold, not what was on the shelf, so
the starting stock, its holding cost and the value of what is left at the exit week are
assumptions. They live here once: the demand fit (:func:`simulator.fit.fit_catalog`, nested in
:class:`~simulator.fit.FitConfig` as ``fit.stock``) fills the catalog's commercial fields with
them, so ``deadstock run`` and ``deadstock demand fit`` start from the same stock and costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.errors import ConfigError


@dataclass(frozen=True)
class StockAssumptions:
    """Stock on hand and its costs when the source does not record them.

    Parameters
    ----------
    weeks_of_cover : float
        On-hand stock = ``weeks_of_cover`` x the SKU's recent velocity (mean weekly units over
        the last ``velocity_weeks`` weeks of the data), rounded up.
    velocity_weeks : int
        Window of the recent velocity, in weeks, ending at the last week of the data. A
        quarter (13 weeks) smooths a promotion week without reaching back past a decline.
    min_stock_units : float
        Floor of the assumed stock, so a slow SKU still has something to plan for.
    holding_cost_share_per_week : float
        Holding cost per unit and week as a share of unit cost (0.005 is about 26 % a year),
        used where the source has no holding cost.
    salvage_share : float
        Value of a unit left at the exit week, as a share of unit cost. 0 by default: dead
        stock is written off, the case the plans are meant to avoid.
    """

    weeks_of_cover: float = 8.0
    velocity_weeks: int = 13
    min_stock_units: float = 2.0
    holding_cost_share_per_week: float = 0.005
    salvage_share: float = 0.0

    def __post_init__(self) -> None:
        if not self.weeks_of_cover > 0:
            raise ConfigError(f"stock.weeks_of_cover = {self.weeks_of_cover!r}; expected > 0")
        if self.velocity_weeks < 1:
            raise ConfigError(f"stock.velocity_weeks = {self.velocity_weeks!r}; expected >= 1")
        if self.min_stock_units < 0:
            raise ConfigError(f"stock.min_stock_units = {self.min_stock_units!r}; expected >= 0")
        if not 0.0 <= self.holding_cost_share_per_week < 1.0:
            raise ConfigError(
                f"stock.holding_cost_share_per_week = {self.holding_cost_share_per_week!r}; "
                "expected a share of unit cost in [0, 1)"
            )
        if not 0.0 <= self.salvage_share <= 1.0:
            raise ConfigError(
                f"stock.salvage_share = {self.salvage_share!r}; expected a share in [0, 1]"
            )

    def assumed_stock(self, velocity: np.ndarray) -> np.ndarray:
        """On-hand units from recent weekly velocity: cover times velocity, rounded up, at
        least ``min_stock_units`` (rounded up)."""
        cover = np.ceil(self.weeks_of_cover * np.asarray(velocity, dtype=float))
        return np.maximum(cover, np.ceil(self.min_stock_units))

    def describe(self) -> str:
        """One sentence stating the assumption, for the console, the report and the alerts."""
        return (
            f"on-hand stock = {self.weeks_of_cover:g} weeks of cover x mean weekly units over "
            f"the last {self.velocity_weeks} weeks (at least {self.min_stock_units:g} units), "
            f"holding cost {self.holding_cost_share_per_week:.3%} of unit cost per week, "
            f"salvage {self.salvage_share:.0%} of unit cost"
        )
