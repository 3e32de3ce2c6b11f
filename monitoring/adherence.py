"""Plan adherence: were the approved prices the prices executed?

An approved schedule gives a net price per SKU and week (``schedules.csv`` of a run: the
shelf price after the discount, before coupons). The data carry the executed price of a week
only where the SKU sold (``price_observed``): the panel's ``effective_price``, after the
shelf/loyalty discount and before coupons (``docs/data.md``). A SKU-week adheres when the two
differ by at most ``price_tolerance`` of the approved price. Weeks without a sale say nothing
about the price and are left out (counted in ``n_unobserved``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ingest.errors import DataError
from monitoring.thresholds import MonitorThresholds

SCHEDULE_COLUMNS = ("sku", "week", "net_price")


@dataclass
class AdherenceCheck:
    """Executed against approved net prices.

    Attributes
    ----------
    table : DataFrame
        Per observed SKU-week: ``sku, week, approved, executed, gap`` (relative) and
        ``adheres``.
    share : float
        Share of observed SKU-weeks that adhere (NaN when none was observed).
    n_observed, n_unobserved : int
    crossed : bool
        ``share`` below ``MonitorThresholds.min_adherence``.
    """

    table: pd.DataFrame
    share: float
    n_observed: int
    n_unobserved: int
    crossed: bool


def adherence_check(
    schedules: pd.DataFrame, panel: pd.DataFrame, thresholds: MonitorThresholds | None = None
) -> AdherenceCheck:
    """Compare approved ``schedules`` (``sku, week, net_price`` with ``week`` a data week)
    with the executed prices of ``panel``."""
    th = thresholds or MonitorThresholds()
    missing = [c for c in SCHEDULE_COLUMNS if c not in schedules.columns]
    if missing:
        raise DataError(
            f"plan adherence: the schedules lack column(s) {missing}; expected "
            f"{list(SCHEDULE_COLUMNS)} (a run's schedules.csv)"
        )
    plan = schedules[list(SCHEDULE_COLUMNS)].assign(sku=schedules["sku"].astype(str))
    data = panel[["sku", "week", "effective_price", "price_observed"]].assign(
        sku=panel["sku"].astype(str)
    )
    both = plan.merge(data, on=["sku", "week"], how="inner")
    seen = both[both["price_observed"].astype(bool)]
    approved = seen["net_price"].to_numpy(dtype=float)
    executed = seen["effective_price"].to_numpy(dtype=float)
    gap = np.abs(executed - approved) / np.where(approved > 0, approved, np.nan)
    table = pd.DataFrame(
        {
            "sku": seen["sku"].to_numpy(),
            "week": seen["week"].to_numpy(),
            "approved": approved,
            "executed": executed,
            "gap": gap,
            "adheres": gap <= th.price_tolerance,
        }
    )
    share = float(table["adheres"].mean()) if len(table) else float("nan")
    return AdherenceCheck(
        table=table,
        share=share,
        n_observed=int(len(table)),
        n_unobserved=int(len(both) - len(seen)),
        crossed=bool(len(table) > 0 and share < th.min_adherence),
    )
