"""Champion against challenger on the same backtest, paired per SKU, with a bootstrap CI.

Both models are scored on the same test units (SKUs); the per-SKU losses are paired, so a
SKU that is hard for one is hard for the other and the difference is read with the noise of
the difference only. The statistic is the challenger's *relative* improvement,
``(sum champion_loss - sum challenger_loss) / sum champion_loss``; its CI resamples SKUs (the
same resample for both models). The challenger is promoted only when the lower end of the CI
exceeds the configured margin: better, by at least the margin, with the stated confidence.

The backtests (what is trained on what, and tested on what):

- **risk model**: the test is the latest matured cutoff ``c = L - horizon`` (features at
  ``c``, labels from weeks ``c+1 .. L``). The challenger is trained with every label that
  ends by ``c`` (``RiskConfig.score_cutoff = c``), so the test is out of sample for it; the
  loss is the per-SKU Brier score ``(p - y)^2``. A champion trained on later data has seen
  part of the test's outcomes: that only favours the champion.
- **demand model**: the test is the last ``holdout_weeks`` weeks; the challenger is fitted on
  the weeks before; the loss is the SKU's absolute error summed over the test weeks (so the
  relative improvement is the fall in WMAPE), forecasts at the usual depth.

What is tested is what is promoted: the challenger above, not a refit on the test weeks.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ingest.dataset import Dataset
from ingest.errors import ConfigError, DataError
from monitoring.forecast_error import fit_and_score, forecast_frame, top_skus
from risk_model.features import build_features
from risk_model.labels import make_labels
from risk_model.scoring import RiskConfig, RiskResult, train_and_score
from simulator.demand import Catalog
from simulator.fit import FitConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromotionRule:
    """When a challenger replaces the champion.

    Parameters
    ----------
    margin : float
        Relative improvement of the loss the challenger must show at the lower end of the CI
        (0.02: at least 2 % lower loss, with ``ci_level`` confidence).
    ci_level : float
        Two-sided level of the bootstrap CI.
    n_bootstrap : int
        Bootstrap resamples of the test SKUs.
    seed : int
        Seed of the resamples.
    """

    margin: float = 0.02
    ci_level: float = 0.95
    n_bootstrap: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if not -1 < self.margin < 1:
            raise ConfigError(f"PromotionRule.margin = {self.margin!r}; expected in (-1, 1)")
        if not 0 < self.ci_level < 1:
            raise ConfigError(f"PromotionRule.ci_level = {self.ci_level!r}; expected in (0, 1)")
        if self.n_bootstrap < 100:
            raise ConfigError(f"PromotionRule.n_bootstrap = {self.n_bootstrap}; expected >= 100")


@dataclass
class Comparison:
    """The evidence of one champion/challenger decision (JSON-ready via :meth:`to_dict`)."""

    model: str
    loss: str
    n_skus: int
    champion_loss: float
    challenger_loss: float
    improvement: float
    ci_low: float
    ci_high: float
    margin: float
    promote: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Plain values, NaN as None (JSON has no NaN)."""
        return {
            k: (None if isinstance(v, float) and not np.isfinite(v) else v)
            for k, v in asdict(self).items()
        }


def _interval(draws: np.ndarray, rule: PromotionRule) -> tuple[float, float]:
    """The bootstrap percentile interval of ``draws`` at the rule's level."""
    tail = (1 - rule.ci_level) / 2
    lo, hi = (float(q) for q in np.nanquantile(draws, [tail, 1 - tail]))
    return lo, hi


def _decided(
    model: str,
    measure: str,
    champ: np.ndarray,
    chall: np.ndarray,
    improvement: float,
    lo: float,
    hi: float,
    rule: PromotionRule,
    what: str,
) -> Comparison:
    """The decision: promote when the interval's lower end clears the margin, with its reason."""
    promote = bool(lo > rule.margin)
    reason = (
        f"challenger better: {what} {improvement:+.1%}, CI low {lo:+.1%} > margin {rule.margin:.1%}"
        if promote
        else f"champion kept: {what} {improvement:+.1%}, CI [{lo:+.1%}, {hi:+.1%}] does "
        f"not clear the margin {rule.margin:.1%}"
    )
    return Comparison(
        model, measure, int(champ.size), float(champ.mean()), float(chall.mean()),
        improvement, lo, hi, rule.margin, promote, reason,
    )  # fmt: skip


def paired_comparison(
    model: str,
    loss: str,
    champion_loss: np.ndarray | None,
    challenger_loss: np.ndarray,
    rule: PromotionRule | None = None,
) -> Comparison:
    """Compare per-SKU losses (aligned arrays); ``champion_loss=None``: no champion yet, the
    challenger is promoted."""
    rule = rule or PromotionRule()
    chall = np.asarray(challenger_loss, dtype=float)
    if champion_loss is None:
        return Comparison(
            model, loss, int(chall.size), np.nan, float(chall.mean()), np.nan, np.nan, np.nan,
            rule.margin, True, "no champion registered: the challenger becomes the champion",
        )  # fmt: skip
    champ = np.asarray(champion_loss, dtype=float)
    if champ.shape != chall.shape or champ.size == 0:
        raise DataError(
            f"{model}: {champ.size} champion and {chall.size} challenger losses; expected the "
            "same SKUs, at least one"
        )
    total = champ.sum()
    if total <= 0:
        improvement, lo, hi = 0.0, 0.0, 0.0
    else:
        improvement = float((total - chall.sum()) / total)
        rng = np.random.default_rng(np.random.SeedSequence(rule.seed).spawn(1)[0])
        idx = rng.integers(0, champ.size, size=(rule.n_bootstrap, champ.size))
        a, b = champ[idx].sum(axis=1), chall[idx].sum(axis=1)
        draws = (a - b) / np.where(a > 0, a, np.nan)
        lo, hi = _interval(draws, rule)
    return _decided(model, loss, champ, chall, improvement, lo, hi, rule, "improvement")


def paired_gain_comparison(
    model: str,
    metric: str,
    champion_value: np.ndarray | None,
    challenger_value: np.ndarray,
    rule: PromotionRule | None = None,
) -> Comparison:
    """Compare per-SKU values where *more* is better (a plan's profit), paired per SKU.

    The statistic is the relative gain ``sum (challenger - champion) / sum |champion|``: the
    scale is the champion's profit per SKU in absolute value, summed, because a plan's profit
    after writing off the leftover stock is often negative and a sum of mixed signs can be
    near zero in a bootstrap resample (a ratio to it would explode). Its CI resamples SKUs
    (the same resample for both); the challenger is promoted when the CI's lower end exceeds
    the margin, as in :func:`paired_comparison`. The champion's
    and the challenger's ``*_loss`` fields then hold their mean values per SKU.
    ``champion_value=None``: no champion yet, the challenger is promoted.
    """
    rule = rule or PromotionRule()
    chall = np.asarray(challenger_value, dtype=float)
    if champion_value is None:
        return Comparison(
            model, metric, int(chall.size), np.nan, float(chall.mean()), np.nan, np.nan, np.nan,
            rule.margin, True, "no champion registered: the challenger becomes the champion",
        )  # fmt: skip
    champ = np.asarray(champion_value, dtype=float)
    if champ.shape != chall.shape or champ.size == 0:
        raise DataError(
            f"{model}: {champ.size} champion and {chall.size} challenger values; expected the "
            "same SKUs, at least one"
        )
    scale = np.abs(champ).sum()
    if scale <= 0 or np.array_equal(champ, chall):
        # the same plans (or a champion that earns exactly nothing): no measurable gain
        improvement, lo, hi = 0.0, 0.0, 0.0
    else:
        improvement = float((chall - champ).sum() / scale)
        rng = np.random.default_rng(np.random.SeedSequence(rule.seed).spawn(1)[0])
        idx = rng.integers(0, champ.size, size=(rule.n_bootstrap, champ.size))
        a = np.abs(champ)[idx].sum(axis=1)
        draws = (chall - champ)[idx].sum(axis=1) / np.where(a > 0, a, np.nan)
        lo, hi = _interval(draws, rule)
    return _decided(model, metric, champ, chall, improvement, lo, hi, rule, f"{metric} gain")


# ------------------------------------------------------------------------------ risk
@dataclass
class RiskBacktest:
    """The risk challenger and the test it is compared on."""

    challenger: RiskResult
    test_features: pd.DataFrame
    test_labels: np.ndarray
    test_cutoff: int


def risk_challenger(dataset: Dataset, panel: pd.DataFrame, config: RiskConfig) -> RiskBacktest:
    """Train the risk challenger on every label that ends by ``L - horizon`` and build the
    test at that cutoff (see the module docstring)."""
    last = int(panel["week"].max())
    cutoff = last - config.label.horizon_weeks
    cfg = RiskConfig(**{**config.setup(), "score_cutoff": cutoff, "n_drivers": config.n_drivers})
    result = train_and_score(dataset, panel, cfg)
    labels = make_labels(panel, cutoff, cfg.label)
    feats = build_features(
        panel,
        cutoff,
        cfg.features,
        products=dataset.products,
        baskets=dataset.get("baskets"),
    ).reindex(labels.index)
    return RiskBacktest(result, feats, labels["label"].to_numpy(dtype=int), cutoff)


def brier_losses(model: Any, test: RiskBacktest) -> np.ndarray:
    """Per-SKU ``(p - y)^2`` of ``model`` (anything with ``predict_proba`` and
    ``feature_names_in_``) on the test."""
    names = list(model.feature_names_in_)
    missing = [c for c in names if c not in test.test_features.columns]
    if missing:
        raise DataError(
            f"the champion risk model needs feature(s) {missing[:5]} that the current feature "
            "settings do not build; retrain with the champion's feature settings"
        )
    p = model.predict_proba(test.test_features[names])[:, 1]
    return (p - test.test_labels) ** 2


# ---------------------------------------------------------------------------- demand
@dataclass
class DemandBacktest:
    """The demand challenger, the panel rows it was fitted on and tested on, its holdout
    WMAPE."""

    challenger: Catalog
    fit_panel: pd.DataFrame
    test_panel: pd.DataFrame
    fit_last_week: int
    holdout_wmape: float


def demand_challenger(
    panel: pd.DataFrame,
    config: FitConfig,
    *,
    holdout_weeks: int,
    max_skus: int | None,
    products: pd.DataFrame | None = None,
) -> DemandBacktest:
    """Fit the demand challenger on all but the last ``holdout_weeks`` weeks (the best
    ``max_skus`` sellers of those weeks) and forecast the rest."""
    last = int(panel["week"].max())
    fit_last = last - holdout_weeks
    keep = set(top_skus(panel[panel["week"] <= fit_last], max_skus)["sku"])
    sub = panel[panel["sku"].isin(keep)]
    catalog, frame = fit_and_score(sub, fit_last, (fit_last + 1, last), config, products)
    units = frame["units"].sum()
    holdout = float(frame["abs_error"].sum() / units) if units > 0 else float("nan")
    return DemandBacktest(
        catalog, sub[sub["week"] <= fit_last], sub[sub["week"] > fit_last], fit_last, holdout
    )


def demand_losses(
    champion: Catalog | None, test: DemandBacktest, config: FitConfig
) -> tuple[np.ndarray | None, np.ndarray]:
    """Per-SKU absolute error over the test weeks of the champion and the challenger, on the
    SKUs both models know (the champion's losses are None without a champion)."""
    chall = forecast_frame(test.challenger, test.fit_panel, test.test_panel, config)
    chall_loss = chall.groupby("sku")["abs_error"].sum()
    if champion is None:
        return None, chall_loss.to_numpy()
    champ = forecast_frame(champion, test.fit_panel, test.test_panel, config)
    champ_loss = champ.groupby("sku")["abs_error"].sum()
    both = chall_loss.index.intersection(champ_loss.index)
    if both.empty:
        raise DataError("demand: the champion and the challenger share no SKU to compare on")
    return champ_loss.reindex(both).to_numpy(), chall_loss.reindex(both).to_numpy()
