"""The catalog's commercial fields, from the panel where it knows them and from stated
assumptions where it does not.

List price, start week and age come from the panel; unit cost from the products table (or
the panel); stock on hand from the stock table. What the data lacks is assumed from the fit
config (unit cost as a share of list price, stock as weeks of cover times recent velocity,
holding cost and salvage as shares of unit cost), and each assumption is written into the
fit's notes with the setting that controls it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from simulator.panel_prep import FitPanel
from simulator.seasonality import season_index
from simulator.stock import StockAssumptions


class Assumptions(Protocol):
    """The settings :func:`commercial_fields` reads (fields of :class:`simulator.fit.FitConfig`)."""

    @property
    def cost_share(self) -> float: ...
    @property
    def stock(self) -> StockAssumptions: ...


def commercial_fields(
    data: FitPanel, products: pd.DataFrame | None, cfg: Assumptions
) -> tuple[dict[str, np.ndarray], list[str]]:
    """The commercial fields of the catalog, one array per field, and the notes on what was
    assumed.

    Parameters
    ----------
    data : FitPanel
        The prepared panel (:func:`simulator.panel_prep.prepare_panel`).
    products : DataFrame or None
        The canonical products table; its ``unit_cost`` wins over the panel's.
    cfg : FitConfig
        The assumptions for what the data lacks.

    Returns
    -------
    fields : dict of str to ndarray of shape (n_skus,)
        ``list_price``, ``unit_cost``, ``initial_stock``, ``start_week``, ``age_weeks``,
        ``return_rate``, ``holding_cost_per_unit_week``, ``salvage_value_per_unit``.
    notes : list of str
    """
    frame, sku_code, n_skus, first_row = data.frame, data.sku_code, data.n_skus, data.first_row
    notes: list[str] = []
    last_row = np.r_[first_row[1:] - 1, len(frame) - 1]
    sku_ids = frame["sku"].astype(str).to_numpy()[first_row]
    list_price = frame["list_price"].to_numpy(dtype=float)[last_row]
    unit_cost = np.full(n_skus, np.nan)
    if "unit_cost" in frame.columns:
        unit_cost = pd.to_numeric(frame["unit_cost"], errors="coerce").to_numpy(float)[last_row]
    if products is not None and "unit_cost" in products.columns:
        costs = products.assign(sku=products["sku"].astype(str)).drop_duplicates("sku")
        unit_cost = costs.set_index("sku")["unit_cost"].reindex(sku_ids).to_numpy(dtype=float)
    no_cost = ~np.isfinite(unit_cost) | (unit_cost < 0)
    if no_cost.any():
        unit_cost = np.where(no_cost, cfg.cost_share * list_price, unit_cost)
        notes.append(
            f"unit_cost assumed = {cfg.cost_share:g} x list_price for {int(no_cost.sum())} "
            "SKU(s) without a cost in the products table (fit.cost_share)"
        )
    week = frame["week"].to_numpy(dtype=np.int64)
    last_week = int(week.max())
    units = frame["units"].to_numpy(dtype=float)
    assumed = cfg.stock
    recent = week > last_week - assumed.velocity_weeks
    velocity = np.bincount(sku_code, weights=units * recent, minlength=n_skus)
    stock = assumed.assumed_stock(velocity / assumed.velocity_weeks)
    last_known = np.full(n_skus, np.nan)
    if "on_hand" in frame.columns:
        on_hand = pd.to_numeric(frame["on_hand"], errors="coerce").to_numpy(dtype=float)
        rows = np.flatnonzero(np.isfinite(on_hand))
        last_known[sku_code[rows]] = on_hand[rows]  # rows ascend by week: the last one wins
    known = np.isfinite(last_known)
    stock = np.where(known, np.maximum(last_known, 0.0), stock)
    if (~known).any():
        notes.append(
            f"initial_stock assumed = {assumed.weeks_of_cover:g} weeks of cover x mean units "
            f"of the last {assumed.velocity_weeks} weeks, at least "
            f"{assumed.min_stock_units:g}, for {int((~known).sum())} SKU(s) without stock "
            "levels (fit.stock.weeks_of_cover, velocity_weeks, min_stock_units)"
        )
    first_week = week[first_row]
    returns = frame["returns"].to_numpy(dtype=float) if "returns" in frame.columns else None
    return_rate = np.zeros(n_skus)
    if returns is not None and np.nansum(returns) > 0:
        sold = np.bincount(sku_code, weights=units, minlength=n_skus)
        ret = np.bincount(sku_code, weights=np.nan_to_num(returns), minlength=n_skus)
        return_rate = np.clip(np.where(sold > 0, ret / np.maximum(sold, 1e-12), 0.0), 0.0, 0.9)
    notes.append(
        f"holding cost assumed = {assumed.holding_cost_share_per_week:g} x unit_cost per week, "
        f"salvage = {assumed.salvage_share:g} x unit_cost (fit.stock.holding_cost_share_per_week, "
        "fit.stock.salvage_share)"
    )
    fields_ = {
        "list_price": list_price,
        "unit_cost": unit_cost,
        "initial_stock": stock,
        "start_week": np.full(n_skus, season_index(last_week + 1), dtype=np.int64),
        "age_weeks": (last_week + 1 - first_week).astype(np.int64),
        "return_rate": return_rate,
        "holding_cost_per_unit_week": assumed.holding_cost_share_per_week * unit_cost,
        "salvage_value_per_unit": assumed.salvage_share * unit_cost,
    }
    return fields_, notes
