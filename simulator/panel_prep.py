"""The weekly panel made ready for the demand fit: checked, coded, and corrected for what a
sales panel cannot see.

A sales panel records units and the price paid in weeks that sold. Three things it does not
show are decided here, before any estimation:

- the price of a week without sales (:func:`fit_depths`): the SKU's usual price
  (:func:`usual_depth`) or the panel's carried-forward one;
- whether the units of a week were cut short by stock (:func:`stockout_weeks`): those weeks
  are censored observations, demand was at least the units sold;
- whether a SKU had stopped selling (:func:`stopped_selling`): a long run of empty weeks at
  the end of its history is dead stock, not a response to price, and stays out of the fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ingest.errors import DataError
from ingest.panel import MAX_DISCOUNT_DEPTH

_REQUIRED = ("sku", "week", "category", "units", "discount_depth", "list_price")


def check_panel(panel: pd.DataFrame) -> pd.DataFrame:
    """The panel sorted by sku and week, after checking its columns and value ranges.

    Raises
    ------
    DataError
        A required column is missing, there are no rows, or a value is out of range (the
        message names the column, the value, its SKU and week).
    """
    if not isinstance(panel, pd.DataFrame):
        raise DataError(f"panel: expected a pandas DataFrame, got {type(panel).__name__}")
    missing = [c for c in _REQUIRED if c not in panel.columns]
    if missing:
        raise DataError(
            f"panel: column(s) {missing} missing; the demand fit needs {list(_REQUIRED)} "
            "(see ingest.panel.build_panel)"
        )
    if panel.empty:
        raise DataError("panel: no rows; nothing to fit")
    frame = panel.sort_values(["sku", "week"], kind="stable").reset_index(drop=True)
    for col, lo, hi in (
        ("units", 0.0, np.inf),
        ("discount_depth", 0.0, MAX_DISCOUNT_DEPTH),
        ("list_price", 0.0, np.inf),
        ("coupon_depth", 0.0, np.inf),
        ("display", 0.0, 1.0),
        ("mailer", 0.0, 1.0),
    ):
        if col not in frame.columns:
            continue
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values) | (values < lo) | (values > hi)
        if col == "list_price":
            bad |= values <= 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"panel column {col!r}: value {frame[col].iloc[i]!r} at sku "
                f"{frame['sku'].iloc[i]!r} week {frame['week'].iloc[i]!r} "
                f"({int(bad.sum())} row(s)); expected a finite number in [{lo}, {hi}]"
            )
    return frame


@dataclass
class FitPanel:
    """A checked panel of the SKUs that sold something, with its SKUs and groups coded.

    Attributes
    ----------
    frame : DataFrame
        The panel's rows, sorted by sku and week (a SKU's rows are one block).
    sku_ids : Index
        The SKUs, sorted; ``sku_code`` indexes it.
    sku_code : ndarray of int of shape (n_rows,)
        Each row's SKU.
    first_row : ndarray of int of shape (n_skus,)
        Each SKU's first row.
    category_of_sku, department_of_sku : ndarray of str of shape (n_skus,)
        Each SKU's category and department (``"all"`` when the panel has no department).
    cat_ids, dep_ids : Index
        The categories and departments, sorted.
    cat_code, dep_code : ndarray of int of shape (n_skus,)
        Each SKU's category and department.
    n_skipped : int
        SKUs of the panel left out because they sold nothing.
    """

    frame: pd.DataFrame
    sku_ids: pd.Index
    sku_code: np.ndarray
    first_row: np.ndarray
    category_of_sku: np.ndarray
    department_of_sku: np.ndarray
    cat_ids: pd.Index
    cat_code: np.ndarray
    dep_ids: pd.Index
    dep_code: np.ndarray
    n_skipped: int

    @property
    def n_skus(self) -> int:
        return len(self.sku_ids)


def prepare_panel(panel: pd.DataFrame) -> tuple[FitPanel, list[str]]:
    """Check the panel (:func:`check_panel`), drop the SKUs that sold nothing (there is no
    demand to fit) and code SKUs, categories and departments.

    Returns
    -------
    FitPanel
    notes : list of str
        The SKUs left out, if any.

    Raises
    ------
    DataError
        The panel is malformed, or no SKU sold anything.
    """
    frame = check_panel(panel)
    notes: list[str] = []
    total_by_sku = frame.groupby("sku", sort=True)["units"].sum()
    sold_skus = total_by_sku.index[total_by_sku.to_numpy() > 0]
    n_skipped = int(len(total_by_sku) - len(sold_skus))
    if n_skipped:
        notes.append(f"{n_skipped} SKU(s) sold nothing in the panel: no demand to fit, left out")
        frame = frame[frame["sku"].isin(sold_skus)].reset_index(drop=True)
    if frame.empty:
        raise DataError("panel: no SKU sold anything; there is no demand to fit")

    sku_code, sku_ids = pd.factorize(frame["sku"], sort=True)
    n_skus = len(sku_ids)
    first_row = np.r_[0, np.flatnonzero(np.diff(sku_code)) + 1]
    category_of_sku = frame["category"].astype(str).to_numpy()[first_row]
    if "department" in frame.columns:
        department_of_sku = frame["department"].astype(str).to_numpy()[first_row]
    else:
        department_of_sku = np.full(n_skus, "all", dtype=object)
    cat_code, cat_ids = pd.factorize(pd.Series(category_of_sku), sort=True)
    dep_code, dep_ids = pd.factorize(pd.Series(department_of_sku), sort=True)
    data = FitPanel(
        frame=frame,
        sku_ids=sku_ids,
        sku_code=sku_code,
        first_row=first_row,
        category_of_sku=category_of_sku,
        department_of_sku=department_of_sku,
        cat_ids=cat_ids,
        cat_code=cat_code,
        dep_ids=dep_ids,
        dep_code=dep_code,
        n_skipped=n_skipped,
    )
    return data, notes


# ---------------------------------------------------------------------------- prices
def _price_observed(panel: pd.DataFrame) -> np.ndarray:
    """Rows whose price was seen: the panel's ``price_observed``, else the weeks with sales."""
    if "price_observed" in panel.columns:
        return panel["price_observed"].to_numpy(dtype=bool)
    return panel["units"].to_numpy(dtype=float) > 0


def _usual_depth_by_code(
    depth: np.ndarray, observed: np.ndarray, sku_code: np.ndarray, n_skus: int
) -> np.ndarray:
    """Each SKU's most frequent observed discount depth (rounded to 0.01; the smallest
    depth wins a tie; 0 for a SKU whose price was never observed)."""
    cents = np.round(depth[observed] * 100).astype(np.int64)
    counts = pd.DataFrame({"s": sku_code[observed], "c": cents}).value_counts()
    best = (
        counts.reset_index()
        .sort_values(["s", "count", "c"], ascending=[True, False, True])
        .drop_duplicates("s")
    )
    out = np.zeros(n_skus)
    out[best["s"].to_numpy()] = best["c"].to_numpy() / 100.0
    return out


def usual_depth(panel: pd.DataFrame) -> pd.Series:
    """Each SKU's usual discount depth: its most frequent depth (to 0.01) over the weeks
    its price was observed; index ``sku``. Used for weeks without sales and for forecasts
    that must not peek at the prices of the weeks they forecast."""
    sku_code, sku_ids = pd.factorize(panel["sku"], sort=True)
    depth = panel["discount_depth"].to_numpy(dtype=float)
    values = _usual_depth_by_code(depth, _price_observed(panel), sku_code, len(sku_ids))
    return pd.Series(values, index=pd.Index(np.asarray(sku_ids), name="sku"))


def fit_depths(data: FitPanel, zero_week_price: str) -> np.ndarray:
    """Each row's discount depth as the fit reads it, shape ``(n_rows,)``.

    Where the price was observed, the panel's depth. In a week without sales the price is
    unseen: ``"regular"`` takes the SKU's usual depth (discounts are temporary, and a
    discounted week is the one least likely to sell nothing); ``"carry"`` keeps the panel's
    carried-forward depth.
    """
    depth = data.frame["discount_depth"].to_numpy(dtype=float)
    if zero_week_price != "regular":
        return depth
    observed = _price_observed(data.frame)
    usual = _usual_depth_by_code(depth, observed, data.sku_code, data.n_skus)
    return np.where(observed, depth, usual[data.sku_code])


# ---------------------------------------------------------------------------- weeks to censor or drop
def stockout_weeks(panel: pd.DataFrame) -> np.ndarray:
    """Rows whose units are censored by stock: the SKU sold what it had, so demand was at
    least the units sold.

    A week counts as a stock-out when stock levels are known and either the week ended with
    nothing on hand, or the units sold reached the stock on hand at the end of the week
    before (when replenishment is booked at the end of a week). Without a stock table no row
    is censored. ``panel`` must be sorted by sku and week; returns a bool array.
    """
    n = len(panel)
    if "on_hand" not in panel.columns:
        return np.zeros(n, dtype=bool)
    on_hand = pd.to_numeric(panel["on_hand"], errors="coerce").to_numpy(dtype=float)
    units = panel["units"].to_numpy(dtype=float)
    sku = panel["sku"].to_numpy()
    prev = np.r_[np.nan, on_hand[:-1]]
    if n:
        prev[np.r_[True, sku[1:] != sku[:-1]]] = np.nan
    with np.errstate(invalid="ignore"):
        out = (units > 0) & ((on_hand <= 0) | (units >= prev))
    return np.asarray(out, dtype=bool)


def stopped_selling(data: FitPanel, after_weeks: int | None) -> np.ndarray:
    """Rows after a SKU's last sale when that run reaches the panel's end and lasts at least
    ``after_weeks`` weeks (``None``: no row), shape ``(n_rows,)``.

    Such a SKU has stopped selling, which says nothing about its response to price (and
    clearance markdowns there would read as a positive elasticity); the risk model handles
    those.
    """
    week = data.frame["week"].to_numpy(dtype=np.int64)
    units = data.frame["units"].to_numpy(dtype=float)
    sku_code, n_skus = data.sku_code, data.n_skus
    last_sale = np.zeros(n_skus, dtype=np.int64)
    np.maximum.at(last_sale, sku_code, np.where(units > 0, week, 0))
    last_week_sku = np.zeros(n_skus, dtype=np.int64)
    np.maximum.at(last_week_sku, sku_code, week)
    gone = (last_week_sku - last_sale) >= (after_weeks or np.iinfo(np.int64).max)
    return gone[sku_code] & (week > last_sale[sku_code])
