"""Forecasts from a fitted catalog: expected weekly units at the prices of a panel's rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ingest.panel import MAX_DISCOUNT_DEPTH
from simulator.demand import Catalog
from simulator.market import expected_demand


def predict_units(
    catalog: Catalog,
    panel: pd.DataFrame,
    *,
    coupons: bool = False,
    promotions: bool = True,
) -> np.ndarray:
    """Expected weekly units for the rows of ``panel`` under the catalog's demand model,
    at each row's own price (and promotions), through :func:`simulator.market.expected_demand`.

    Coupons are left out by default: a panel's coupon depth is only seen in weeks with sales,
    so using it would leak the outcome into the forecast. Rows whose SKU is not in the
    catalog get NaN. Returns an array of shape ``(len(panel),)``.
    """
    index = pd.Series(np.arange(catalog.n_skus), index=pd.Index(catalog.sku))
    pos = index.reindex(panel["sku"].astype(str).to_numpy()).to_numpy(dtype=float)
    out = np.full(len(panel), np.nan)
    ok = np.isfinite(pos)
    if not ok.any():
        return out
    rows = catalog.take(pos[ok].astype(np.int64))
    d = np.clip(panel["discount_depth"].to_numpy(dtype=float)[ok], 0.0, MAX_DISCOUNT_DEPTH)
    c = np.zeros_like(d)
    if coupons and "coupon_depth" in panel.columns:
        c = np.clip(panel["coupon_depth"].to_numpy(dtype=float)[ok], 0.0, MAX_DISCOUNT_DEPTH - d)
    extra: dict[str, np.ndarray] = {}
    if promotions:
        for col in ("display", "mailer"):
            if col in panel.columns:
                extra[col] = panel[col].to_numpy(dtype=float)[ok]
    out[ok] = expected_demand(
        rows,
        panel["week"].to_numpy(dtype=np.int64)[ok],
        d,
        c,
        **extra,  # type: ignore[arg-type]
    )
    return out
