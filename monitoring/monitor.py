"""One monitoring pass: the newest weeks of a panel against the weeks a reference model was
trained on.

The reference is the last week of the reference run's training data, ``W``; the data now end
at ``L > W``. The checks:

- **drift**: the risk model's features of the established SKUs (the ones the label speaks
  about) at ``L`` against those at ``W``, PSI and KS per feature, over all SKUs and per
  category (:mod:`monitoring.drift`);
- **calibration**: the risk model's scores at ``L - horizon``, whose labels have matured by
  ``L``, against those labels (:mod:`monitoring.calibration`); only when the scores are out
  of sample, i.e. ``L - horizon`` is not before the end of the model's training labels;
- **forecast**: the demand model's WMAPE on weeks ``W+1 .. L`` (those after its own fit)
  against its holdout WMAPE (:mod:`monitoring.forecast_error`);
- **adherence**: executed against approved net prices, when schedules are given
  (:mod:`monitoring.adherence`).

A check that cannot be read (no model, labels not mature yet, no schedules) is *skipped*,
says why, and never counts as crossed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ingest.errors import ConfigError, DataError
from monitoring.adherence import AdherenceCheck, adherence_check
from monitoring.calibration import CalibrationCheck, calibration_check
from monitoring.drift import ALL_SKUS, feature_drift, monitored_features
from monitoring.forecast_error import (
    ForecastCheck,
    fit_and_score,
    forecast_check,
    forecast_frame,
    top_skus,
    wmape,
)
from monitoring.thresholds import MonitorThresholds
from risk_model.features import FeatureConfig, build_features
from risk_model.labels import LabelConfig, established, make_labels
from simulator.demand import Catalog
from simulator.fit import FitConfig

log = logging.getLogger(__name__)

Status = Literal["ok", "crossed", "skipped"]


@dataclass(frozen=True)
class MonitorConfig:
    """Settings of a monitoring pass.

    Parameters
    ----------
    reference_week : int
        Last week of the reference run's training data (``W``).
    thresholds : MonitorThresholds
    label : LabelConfig
        The risk label (its horizon decides when scores mature).
    features : FeatureConfig
        The risk features (as the model was trained with).
    holdout_weeks : int
        When the demand model is refitted here: weeks held out of the reference window for
        its holdout error.
    forecast_max_skus : int or None
        The demand check covers the best-selling SKUs of the reference window only (the fit
        is the costly part); ``None`` = every SKU.
    fit : FitConfig
    """

    reference_week: int
    thresholds: MonitorThresholds = field(default_factory=MonitorThresholds)
    label: LabelConfig = field(default_factory=LabelConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    holdout_weeks: int = 8
    forecast_max_skus: int | None = 2000
    fit: FitConfig = field(default_factory=FitConfig)

    def __post_init__(self) -> None:
        if self.holdout_weeks < 1:
            raise ConfigError(f"MonitorConfig.holdout_weeks = {self.holdout_weeks}; expected >= 1")
        if self.forecast_max_skus is not None and self.forecast_max_skus < 1:
            raise ConfigError(
                f"MonitorConfig.forecast_max_skus = {self.forecast_max_skus}; expected >= 1"
            )


@dataclass
class Check:
    """One line of the verdict: what was checked, the value, the threshold, the status."""

    name: str
    status: Status
    value: float
    threshold: float
    detail: str


@dataclass
class RiskModelRef:
    """The risk model to monitor: a fitted :class:`~risk_model.models.RiskClassifier` (or
    anything with ``predict_proba``, ``threshold_`` and ``feature_names_in_``) and the last
    week its training labels read."""

    model: Any
    label_end_week: int


@dataclass
class DemandModelRef:
    """The demand model to monitor: a fitted catalog, the last week it was fitted on and its
    holdout WMAPE. Only weeks after both that week and the reference week are forecast."""

    catalog: Catalog
    holdout_wmape: float
    fit_last_week: int


@dataclass
class MonitorResult:
    """What a monitoring pass found (see the module docstring)."""

    reference_week: int
    last_week: int
    checks: list[Check]
    drift: pd.DataFrame
    calibration: CalibrationCheck | None
    forecast: ForecastCheck | None
    adherence: AdherenceCheck | None
    thresholds: MonitorThresholds = field(default_factory=MonitorThresholds)

    @property
    def crossed(self) -> list[Check]:
        """The checks that crossed their threshold."""
        return [c for c in self.checks if c.status == "crossed"]

    def metrics(self, prefix: str = "monitor/") -> dict[str, float]:
        """Scalar metrics for MLflow (one dict, logged at once)."""
        out = {
            f"{prefix}reference_week": float(self.reference_week),
            f"{prefix}last_week": float(self.last_week),
            f"{prefix}n_crossed": float(len(self.crossed)),
        }
        for c in self.checks:
            if np.isfinite(c.value):
                out[f"{prefix}{c.name}"] = float(c.value)
        overall = self.drift[self.drift["scope"] == ALL_SKUS]
        out[f"{prefix}drift_max_psi"] = float(overall["psi"].max()) if len(overall) else 0.0
        out[f"{prefix}n_drifted_rows"] = float(self.drift["drifted"].sum())
        if self.calibration is not None:
            out[f"{prefix}precision"] = self.calibration.precision
            out[f"{prefix}observed_rate"] = self.calibration.observed_rate
            out[f"{prefix}predicted_rate"] = self.calibration.predicted_rate
        if self.forecast is not None:
            out[f"{prefix}forecast_wmape"] = self.forecast.new_wmape
            out[f"{prefix}holdout_wmape"] = self.forecast.holdout_wmape
        return {k: v for k, v in out.items() if np.isfinite(v)}


def _features(
    panel: pd.DataFrame, cutoff: int, cfg: MonitorConfig, products: Any, baskets: Any
) -> pd.DataFrame:
    feats = build_features(panel, cutoff, cfg.features, products=products, baskets=baskets)
    est = established(panel, cutoff, cfg.label)
    return feats[est.reindex(feats.index, fill_value=False).to_numpy()]


def _drift(
    panel: pd.DataFrame, cfg: MonitorConfig, columns: list[str] | None, products: Any, baskets: Any
) -> tuple[pd.DataFrame, Check]:
    last = int(panel["week"].max())
    ref = _features(panel, cfg.reference_week, cfg, products, baskets)
    cur = _features(panel, last, cfg, products, baskets)
    keep = monitored_features(list(ref.columns) if columns is None else columns)
    ref = ref[[c for c in keep if c in ref.columns]]
    cats = panel.drop_duplicates("sku").set_index("sku")["category"]
    drift = feature_drift(
        ref, cur, reference_groups=cats, current_groups=cats, thresholds=cfg.thresholds
    )
    bad = drift[drift["drifted"]]
    detail = (
        "; ".join(f"{r.scope}: {r.feature} (PSI {r.psi:.2f})" for r in bad.head(12).itertuples())
        if len(bad)
        else f"no feature's PSI > {cfg.thresholds.psi_max} with KS p < {cfg.thresholds.ks_alpha}"
    )
    if len(bad) > 12:
        detail += f"; and {len(bad) - 12} more"
    check = Check(
        "drift_n_features",
        "crossed" if len(bad) else "ok",
        float(len(bad)),
        0.0,
        f"{len(ref):,} reference and {len(cur):,} current established SKUs: {detail}",
    )
    return drift, check


def _calibration(
    panel: pd.DataFrame, cfg: MonitorConfig, risk: RiskModelRef | None, products: Any, baskets: Any
) -> tuple[CalibrationCheck | None, Check]:
    th = cfg.thresholds
    h = cfg.label.horizon_weeks
    cutoff = int(panel["week"].max()) - h
    if risk is None:
        return None, Check("calibration_ece", "skipped", np.nan, th.max_calibration_gap, "no model")
    if cutoff < risk.label_end_week:
        return None, Check(
            "calibration_ece",
            "skipped",
            np.nan,
            th.max_calibration_gap,
            f"labels not mature: out-of-sample scores need data to week "
            f"{risk.label_end_week + h} (the model's labels end at week {risk.label_end_week})",
        )
    labels = make_labels(panel, cutoff, cfg.label)
    feats = build_features(panel, cutoff, cfg.features, products=products, baskets=baskets)
    feats = feats.reindex(labels.index)[list(risk.model.feature_names_in_)]
    p = risk.model.predict_proba(feats)[:, 1]
    cal = calibration_check(p, labels["label"].to_numpy(), float(risk.model.threshold_), th)
    status: Status = "crossed" if cal.crossed else "ok"
    if cal.n < th.min_calibration_skus:
        status = "skipped"
    detail = (
        f"scores at week {cutoff} of {cal.n:,} SKUs, matured by week {cutoff + h}: observed "
        f"dead rate {cal.observed_rate:.3f} vs predicted {cal.predicted_rate:.3f}; precision "
        f"of the high tier {cal.precision:.3f} ({cal.n_flagged} flagged)"
    )
    return cal, Check("calibration_ece", status, cal.ece, th.max_calibration_gap, detail)


def _forecast(
    panel: pd.DataFrame, cfg: MonitorConfig, demand: DemandModelRef | None, products: Any
) -> tuple[ForecastCheck | None, Check]:
    W, last = cfg.reference_week, int(panel["week"].max())
    ref_rows = panel[panel["week"] <= W]
    keep = set(top_skus(ref_rows, cfg.forecast_max_skus)["sku"])
    sub = panel[panel["sku"].isin(keep)]
    if demand is None:
        log.info("monitor: refitting the demand model on weeks <= %d for its holdout error", W)
        _, hold = fit_and_score(
            sub, W - cfg.holdout_weeks, (W - cfg.holdout_weeks + 1, W), cfg.fit, products
        )
        holdout = wmape(hold["units"].to_numpy(), hold["forecast"].to_numpy())
        catalog = fit_and_score(sub, W, (W + 1, last), cfg.fit, products)[0]
        fit_end = W
        source = f"refitted on weeks <= {W} (holdout: weeks {W - cfg.holdout_weeks + 1}-{W})"
    else:
        catalog, holdout, fit_end = demand.catalog, demand.holdout_wmape, demand.fit_last_week
        source = f"fitted on weeks <= {fit_end}"
    # only weeks neither the demand fit nor the reference has seen
    start = max(W, fit_end)
    th = cfg.thresholds
    if start >= last:
        return None, Check(
            "forecast_ratio", "skipped", np.nan, th.max_forecast_ratio,
            f"no week after the demand model's fit (week {fit_end})",
        )  # fmt: skip
    new = forecast_frame(catalog, sub[sub["week"] <= fit_end], sub[sub["week"] > start], cfg.fit)
    fc = forecast_check(new, holdout, th)
    detail = (
        f"demand model ({source}), {fc.n_skus:,} SKUs: WMAPE {fc.new_wmape:.3f} on weeks "
        f"{start + 1}-{last} vs {fc.holdout_wmape:.3f} on its holdout (ratio {fc.ratio:.2f})"
    )
    status: Status = "crossed" if fc.crossed else "ok"
    return fc, Check("forecast_ratio", status, fc.ratio, th.max_forecast_ratio, detail)


def run_monitor(
    panel: pd.DataFrame,
    config: MonitorConfig,
    *,
    products: pd.DataFrame | None = None,
    baskets: pd.DataFrame | None = None,
    risk: RiskModelRef | None = None,
    demand: DemandModelRef | None = None,
    schedules: pd.DataFrame | None = None,
) -> MonitorResult:
    """Run every check (see the module docstring).

    Parameters
    ----------
    panel : DataFrame
        The weekly panel, reaching past ``config.reference_week``.
    config : MonitorConfig
    products, baskets : DataFrame, optional
        Canonical tables the risk features read.
    risk : RiskModelRef, optional
        The risk model; without it the drift covers every feature and calibration is skipped.
    demand : DemandModelRef, optional
        The demand model; without it the model is refitted on the reference weeks.
    schedules : DataFrame, optional
        Approved schedules (``sku, week, net_price``, data weeks) for the adherence check.

    Raises
    ------
    DataError
        The panel has no week after the reference week.
    """
    W, last = config.reference_week, int(panel["week"].max())
    if last <= W:
        raise DataError(
            f"monitor: the data end at week {last}, not after the reference week {W}; there "
            "are no new weeks to compare"
        )
    log.info("monitor: weeks %d-%d against the reference up to week %d", W + 1, last, W)
    columns = list(risk.model.feature_names_in_) if risk is not None else None
    drift, drift_check = _drift(panel, config, columns, products, baskets)
    cal, cal_check = _calibration(panel, config, risk, products, baskets)
    fc, fc_check = _forecast(panel, config, demand, products)
    checks = [drift_check, cal_check, fc_check]
    adh = None
    th = config.thresholds
    if schedules is None:
        checks.append(Check("adherence", "skipped", np.nan, th.min_adherence, "no schedules"))
    else:
        adh = adherence_check(schedules, panel[panel["week"] > W], th)
        status: Status = "skipped" if adh.n_observed == 0 else ("crossed" if adh.crossed else "ok")
        checks.append(
            Check(
                "adherence",
                status,
                adh.share,
                th.min_adherence,
                f"{adh.n_observed:,} SKU-weeks with an approved price and a sale "
                f"({adh.n_unobserved:,} without a sale left out)",
            )
        )
    return MonitorResult(W, last, checks, drift, cal, fc, adh, th)
