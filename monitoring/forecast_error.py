"""The demand model's forecast error on new weeks against its holdout error.

Error measure: WMAPE of weekly units, ``sum |y - yhat| / sum y`` over every SKU-week (the
measure of ``docs/simulator.md``, "Holdout"). Forecast weeks are priced at each SKU's *usual*
depth from the fit weeks, with the recorded displays and mailers: a panel shows a price only
in weeks that sold, so the recorded prices of the forecast weeks would leak the outcome.

The holdout error is the same model fitted without its last ``holdout_weeks`` weeks and
scored on them: the error the model is known to make on weeks it has not seen. A model whose
error on the new weeks is much larger than that has met data unlike its training data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ingest.errors import DataError
from monitoring.thresholds import MonitorThresholds
from simulator.demand import Catalog
from simulator.fit import FitConfig, fit_catalog
from simulator.forecast import predict_units
from simulator.panel_prep import usual_depth

log = logging.getLogger(__name__)


def wmape(y: np.ndarray, yhat: np.ndarray) -> float:
    """``sum |y - yhat| / sum y`` (NaN when nothing sold)."""
    y, yhat = np.asarray(y, dtype=float), np.asarray(yhat, dtype=float)
    total = float(np.sum(y))
    return float(np.sum(np.abs(y - yhat)) / total) if total > 0 else float("nan")


def top_skus(panel: pd.DataFrame, n: int | None) -> pd.DataFrame:
    """The rows of the ``n`` best-selling SKUs (all rows when ``n`` is None)."""
    if n is None:
        return panel
    keep = panel.groupby("sku")["units"].sum().sort_values(ascending=False, kind="stable")
    return panel[panel["sku"].isin(keep.index[:n])]


def forecast_frame(
    catalog: Catalog, fit_panel: pd.DataFrame, target: pd.DataFrame, config: FitConfig
) -> pd.DataFrame:
    """Per SKU-week of ``target`` (SKUs of the catalog only): ``sku, category, week, units,
    forecast, abs_error``, the forecast at the usual depth of ``fit_panel``."""
    rows = target[target["sku"].astype(str).isin(set(catalog.sku))].sort_values(["sku", "week"])
    depth = usual_depth(fit_panel).reindex(rows["sku"]).fillna(0.0).to_numpy()
    planned = rows.assign(discount_depth=np.minimum(depth, config.max_fit_depth))
    yhat = predict_units(catalog, planned)
    out = rows[["sku", "category", "week", "units"]].copy()
    out["forecast"] = yhat
    out["abs_error"] = np.abs(out["units"].to_numpy(dtype=float) - yhat)
    return out.reset_index(drop=True)


def fit_and_score(
    panel: pd.DataFrame,
    fit_last_week: int,
    score_weeks: tuple[int, int],
    config: FitConfig | None = None,
    products: pd.DataFrame | None = None,
) -> tuple[Catalog, pd.DataFrame]:
    """Fit on weeks ``<= fit_last_week``, forecast weeks ``score_weeks`` (inclusive)."""
    cfg = config or FitConfig()
    fit_panel = panel[panel["week"] <= fit_last_week]
    lo, hi = score_weeks
    target = panel[(panel["week"] >= lo) & (panel["week"] <= hi)]
    if fit_panel.empty or target.empty:
        raise DataError(
            f"forecast error: fitting on weeks <= {fit_last_week} and scoring weeks {lo}-{hi} "
            f"needs data in both; the panel holds weeks {int(panel['week'].min())}-"
            f"{int(panel['week'].max())}"
        )
    catalog = fit_catalog(fit_panel, cfg, products=products).catalog
    return catalog, forecast_frame(catalog, fit_panel, target, cfg)


@dataclass
class ForecastCheck:
    """Forecast error on the new weeks against the holdout error.

    Attributes
    ----------
    holdout_wmape, new_wmape : float
    ratio : float
        ``new_wmape / holdout_wmape``.
    by_category : DataFrame
        ``category, units, new_wmape``, and the per-week ``by_week`` (``week, units,
        forecast``) for the plot.
    n_skus : int
    crossed : bool
        ``ratio`` above ``MonitorThresholds.max_forecast_ratio``.
    """

    holdout_wmape: float
    new_wmape: float
    ratio: float
    by_category: pd.DataFrame
    by_week: pd.DataFrame
    n_skus: int
    crossed: bool


def forecast_check(
    new: pd.DataFrame, holdout_wmape: float, thresholds: MonitorThresholds | None = None
) -> ForecastCheck:
    """Compare the error of forecast frame ``new`` (:func:`forecast_frame`) with
    ``holdout_wmape``."""
    th = thresholds or MonitorThresholds()
    new_w = wmape(new["units"].to_numpy(), new["forecast"].to_numpy())
    ratio = new_w / holdout_wmape if holdout_wmape > 0 else float("nan")
    by_cat = (
        new.groupby("category")
        .agg(units=("units", "sum"), abs_error=("abs_error", "sum"))
        .reset_index()
    )
    by_cat["new_wmape"] = by_cat["abs_error"] / by_cat["units"].where(by_cat["units"] > 0)
    by_week = new.groupby("week").agg(units=("units", "sum"), forecast=("forecast", "sum"))
    return ForecastCheck(
        holdout_wmape=float(holdout_wmape),
        new_wmape=new_w,
        ratio=float(ratio),
        by_category=by_cat.drop(columns="abs_error"),
        by_week=by_week.reset_index(),
        n_skus=int(new["sku"].nunique()),
        crossed=bool(np.isfinite(ratio) and ratio > th.max_forecast_ratio),
    )
