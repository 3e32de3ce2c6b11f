"""The weekly (sku, week) panel that risk scoring and demand fitting read.

One row per (sku, week) from the SKU's launch week (or first sale) to the last week of the
data, zero-sales weeks filled in, sorted by sku and week. The columns are the contract in
``docs/data.md`` ("The weekly panel"); :data:`PANEL_COLUMNS` lists them in order.

Built with array arithmetic: each SKU's rows are a contiguous block, so a (sku, week) row of
any table lands at ``block_start[sku] + week - first_week[sku]`` without a join.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ingest.cache import panel_path
from ingest.clean import CleaningConfig, clean, is_clean
from ingest.dataset import Dataset
from ingest.io import write_frame_atomic
from ingest.keys import positions

log = logging.getLogger(__name__)

#: Bump when the panel's columns or arithmetic change, so cached panels are rebuilt.
PANEL_VERSION = "p1"
MAX_DISCOUNT_DEPTH = 0.95
"""Deepest discount (discount + coupon together) as a share of list price, everywhere: the
panel clips observed depths to it, the market refuses deeper actions, the rules' ladders and
the schedules stay below it. Demand scales as ``(1 - depth) ** elasticity``, which explodes
as the depth reaches 1."""

PANEL_COLUMNS: tuple[str, ...] = (
    "sku", "week", "category", "department",
    "units", "revenue", "discount_amount", "coupon_amount", "returns",
    "list_price", "shelf_price", "effective_price", "discount_depth", "coupon_depth",
    "price_observed", "display", "mailer", "on_hand",
    "views", "clicks", "add_to_cart", "purchases", "n_buyers",
    "brand", "unit_cost", "launch_week",
)  # fmt: skip


def _take(column: pd.Series, index: np.ndarray) -> pd.Series:
    """``column[index]`` as a string Series (an Arrow take, no Python objects)."""
    return pd.Series(column.astype("string").array.take(index))


def _carry(values: np.ndarray, block: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs within each block, back-fill the leading ones, then ``fallback``."""
    s = pd.Series(values)
    g = s.groupby(block, sort=False)
    filled = g.ffill()
    filled = filled.groupby(block, sort=False).bfill()
    return filled.fillna(pd.Series(fallback)).to_numpy(dtype=float)


def build_panel(
    dataset: Dataset, config: CleaningConfig | None = None, *, last_week: int | None = None
) -> pd.DataFrame:
    """Build the weekly panel of ``dataset`` (cleaned first if it is not clean yet).

    Parameters
    ----------
    dataset : Dataset
        Canonical tables; cleaned with ``config`` when a list price, cost or launch week is
        missing.
    config : CleaningConfig, optional
        Used only when the dataset needs cleaning.
    last_week : int, optional
        Last week of the panel; by default the last week of any table of ``dataset``. A shard
        of a streamed source passes the whole source's last week, so that its SKUs' rows end
        where they would in the whole panel.

    Returns
    -------
    DataFrame
        Columns :data:`PANEL_COLUMNS`, one row per (sku, week), sorted by sku and week.
    """
    if not is_clean(dataset):
        dataset, _ = clean(dataset, config)
    products = dataset.products.sort_values("sku", kind="stable").reset_index(drop=True)
    sales = dataset.sales
    weeks = [int(t["week"].max()) for n, t in dataset.tables.items() if "week" in t and len(t)]
    if not weeks:  # no sales at all: one row at each SKU's launch week
        weeks = [int(products["launch_week"].max())] if len(products) else [0]
    last_week = max(weeks) if last_week is None else int(last_week)
    skus = products["sku"].astype("string")
    start = products["launch_week"].to_numpy(dtype=np.int64)
    sold = sales[sales["units"] > 0].groupby("sku")["week"].min()
    first_sale = skus.map(sold).to_numpy(dtype=float, na_value=np.nan)
    start = np.where(np.isfinite(first_sale), np.minimum(start, first_sale), start).astype(np.int64)
    length = np.clip(last_week - start + 1, 0, None)
    offsets = np.concatenate([[0], np.cumsum(length)])
    n = int(offsets[-1])
    block = np.repeat(np.arange(len(skus)), length)
    week = start[block] + (np.arange(n) - offsets[block])

    def place(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Panel positions of ``frame``'s rows (and a mask of rows inside the panel)."""
        code = positions(frame["sku"], skus)
        ok = code >= 0
        c = np.where(ok, code, 0)
        w = frame["week"].to_numpy(dtype=np.int64)
        ok &= (w >= start[c]) & (w <= last_week)
        return (offsets[c] + w - start[c])[ok], ok

    def spread(frame: pd.DataFrame | None, column: str, empty: float) -> np.ndarray:
        out = np.full(n, empty if frame is None else 0.0)
        if frame is not None and len(frame):
            pos, ok = place(frame)
            np.add.at(out, pos, frame[column].to_numpy(dtype=float)[ok])
        return out

    cols: dict[str, object] = {"sku": _take(skus, block), "week": week}
    for c in ("category", "department"):
        cols[c] = _take(products[c], block)
    for c in ("units", "revenue", "discount_amount", "coupon_amount", "returns"):
        cols[c] = spread(sales, c, 0.0)
    list_price = products["list_price"].to_numpy(dtype=float)[block]
    units = cols["units"]
    revenue, disc, coup = cols["revenue"], cols["discount_amount"], cols["coupon_amount"]
    assert isinstance(units, np.ndarray)
    observed = units > 0
    safe = np.where(observed, units, 1.0)
    shelf = np.where(observed, (revenue + disc + coup) / safe, np.nan)  # type: ignore[operator]
    eff = np.where(observed, (revenue + coup) / safe, np.nan)  # type: ignore[operator]
    shelf = _carry(shelf, block, list_price)
    eff = _carry(eff, block, list_price)
    cols["list_price"] = list_price
    cols["shelf_price"] = shelf
    cols["effective_price"] = eff
    priced = list_price > 0  # a zero list price (free items) has no depth
    lp = np.where(priced, list_price, 1.0)
    depth = np.clip(1.0 - eff / lp, 0.0, MAX_DISCOUNT_DEPTH)
    cols["discount_depth"] = np.where(priced, np.nan_to_num(depth, nan=0.0), 0.0)
    cols["coupon_depth"] = np.where(observed & priced, coup / (safe * lp), 0.0)  # type: ignore[operator]
    cols["price_observed"] = observed
    promo = dataset.get("promotions")
    cols["display"] = spread(promo, "display", 0.0)
    cols["mailer"] = spread(promo, "mailer", 0.0)
    stock = dataset.get("stock")
    on_hand = np.full(n, np.nan)
    if stock is not None and len(stock):
        pos, ok = place(stock)
        on_hand[pos] = stock["on_hand"].to_numpy(dtype=float)[ok]
    cols["on_hand"] = on_hand
    inter = dataset.get("interactions")
    for c in ("views", "clicks", "add_to_cart", "purchases"):
        cols[c] = spread(inter, c, np.nan)
    baskets = dataset.get("baskets")
    if baskets is not None:
        buyers = baskets.drop_duplicates(["sku", "week", "household_id"])
        cols["n_buyers"] = spread(buyers.assign(one=1.0), "one", np.nan)
    else:
        cols["n_buyers"] = np.full(n, np.nan)
    cols["brand"] = _take(products["brand"], block)
    cols["unit_cost"] = products["unit_cost"].to_numpy(dtype=float)[block]
    cols["launch_week"] = products["launch_week"].to_numpy(dtype=np.int64)[block]
    panel = pd.DataFrame(cols)
    panel["week"] = panel["week"].astype(np.int64)
    return panel[list(PANEL_COLUMNS)]


def load_panel(
    dataset: Dataset, config: CleaningConfig | None = None, *, use_cache: bool = True
) -> pd.DataFrame:
    """:func:`build_panel`, cached as Parquet under the dataset fingerprint.

    The key is ``<fingerprint>-<PANEL_VERSION>-<cleaning settings>``; the cache folder is
    ``$DEADSTOCK_CACHE_DIR`` (default ``.cache/deadstock``).
    """
    config = config or CleaningConfig()
    path = panel_path(f"{dataset.fingerprint}-{PANEL_VERSION}-{config.key()}")
    if use_cache and path.is_file():
        try:
            panel = pd.read_parquet(path)
            log.info("weekly panel from cache (%s)", path.name)
            return panel
        except (OSError, ValueError):
            pass  # unreadable cache entry: rebuild it
    log.info("building the weekly panel")
    panel = build_panel(dataset, config)
    if use_cache:
        write_frame_atomic(panel, path)
    return panel
