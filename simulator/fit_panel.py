"""The panel side of the demand fit: checks, calendar, prices in weeks without sales,
stock-outs, the catalog's commercial fields, and forecasts from a fitted catalog.

Split from :mod:`simulator.fit` (which holds the estimation) so each module reads in a
sitting; :mod:`simulator.fit` re-exports the public names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ingest.errors import DataError
from ingest.panel import MAX_DISCOUNT_DEPTH
from simulator.demand import SEASON_PERIOD, Catalog
from simulator.market import expected_demand

if TYPE_CHECKING:
    from simulator.fit import FitConfig

PANEL_REQUIRED = ("sku", "week", "category", "units", "discount_depth", "list_price")


def check_panel(panel: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(panel, pd.DataFrame):
        raise DataError(f"panel: expected a pandas DataFrame, got {type(panel).__name__}")
    missing = [c for c in PANEL_REQUIRED if c not in panel.columns]
    if missing:
        raise DataError(
            f"panel: column(s) {missing} missing; the demand fit needs {list(PANEL_REQUIRED)} "
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


def season_index(week: np.ndarray | int) -> np.ndarray:
    """Calendar season index (0..51) of 1-based panel weeks: week 1 is index 0, so a plan
    that starts after panel week ``L`` starts at index ``L % 52``."""
    return (np.asarray(week, dtype=np.int64) - 1) % SEASON_PERIOD


def fourier_basis(index: np.ndarray, n_harmonics: int) -> np.ndarray:
    """Fourier columns of season indices 0..51, shape ``(n, 2 * n_harmonics)``."""
    phase = 2.0 * np.pi * np.asarray(index, dtype=float) / SEASON_PERIOD
    cols = []
    for k in range(1, n_harmonics + 1):
        cols += [np.sin(k * phase), np.cos(k * phase)]
    return np.stack(cols, axis=-1) if cols else np.zeros((len(phase), 0))


def season_profile(theta_season: np.ndarray, n_harmonics: int) -> np.ndarray:
    """Seasonal factors for calendar weeks 0..51 from Fourier coefficients of shape
    ``(n, 2 * n_harmonics)``, normalised to mean 1 per row; shape ``(n, 52)``."""
    basis = fourier_basis(np.arange(SEASON_PERIOD), n_harmonics)  # (52, 2H)
    log_s = np.asarray(theta_season, dtype=float) @ basis.T
    s = np.exp(log_s - log_s.max(axis=1, keepdims=True))
    return s / s.mean(axis=1, keepdims=True)


def usual_depth_by_code(
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
    if "price_observed" in panel.columns:
        observed = panel["price_observed"].to_numpy(dtype=bool)
    else:
        observed = panel["units"].to_numpy(dtype=float) > 0
    values = usual_depth_by_code(depth, observed, sku_code, len(sku_ids))
    return pd.Series(values, index=pd.Index(np.asarray(sku_ids), name="sku"))


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


def commercial_fields(
    frame: pd.DataFrame,
    sku_code: np.ndarray,
    n_skus: int,
    first_row: np.ndarray,
    products: pd.DataFrame | None,
    cfg: FitConfig,
) -> tuple[dict[str, np.ndarray], list[str]]:
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
    recent = week > last_week - cfg.velocity_weeks
    velocity = np.bincount(sku_code, weights=units * recent, minlength=n_skus) / cfg.velocity_weeks
    stock = np.ceil(cfg.weeks_of_cover * velocity)
    last_known = np.full(n_skus, np.nan)
    if "on_hand" in frame.columns:
        on_hand = pd.to_numeric(frame["on_hand"], errors="coerce").to_numpy(dtype=float)
        rows = np.flatnonzero(np.isfinite(on_hand))
        last_known[sku_code[rows]] = on_hand[rows]  # rows ascend by week: the last one wins
    known = np.isfinite(last_known)
    stock = np.where(known, np.maximum(last_known, 0.0), stock)
    if (~known).any():
        notes.append(
            f"initial_stock assumed = {cfg.weeks_of_cover:g} weeks of cover x mean units of "
            f"the last {cfg.velocity_weeks} weeks for {int((~known).sum())} SKU(s) without "
            "stock levels (fit.weeks_of_cover, fit.velocity_weeks)"
        )
    first_week = week[first_row]
    returns = frame["returns"].to_numpy(dtype=float) if "returns" in frame.columns else None
    return_rate = np.zeros(n_skus)
    if returns is not None and np.nansum(returns) > 0:
        sold = np.bincount(sku_code, weights=units, minlength=n_skus)
        ret = np.bincount(sku_code, weights=np.nan_to_num(returns), minlength=n_skus)
        return_rate = np.clip(np.where(sold > 0, ret / np.maximum(sold, 1e-12), 0.0), 0.0, 0.9)
    notes.append(
        f"holding cost assumed = {cfg.holding_cost_share_per_week:g} x unit_cost per week, "
        f"salvage = {cfg.salvage_share:g} x unit_cost (fit.holding_cost_share_per_week, "
        "fit.salvage_share)"
    )
    fields_ = {
        "list_price": list_price,
        "unit_cost": unit_cost,
        "initial_stock": stock,
        "start_week": np.full(n_skus, season_index(last_week + 1), dtype=np.int64),
        "age_weeks": (last_week + 1 - first_week).astype(np.int64),
        "return_rate": return_rate,
        "holding_cost_per_unit_week": cfg.holding_cost_share_per_week * unit_cost,
        "salvage_value_per_unit": cfg.salvage_share * unit_cost,
    }
    return fields_, notes


# ---------------------------------------------------------------------------- forecasts
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
