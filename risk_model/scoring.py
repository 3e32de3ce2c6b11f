"""The risk stage: train the models on the latest labelled cutoff, pick the champion on
validation, and score every SKU at the last week of the data.

``train_and_score`` is the typed stage function the CLI, the pipeline and the API call.
Training uses the latest cutoff whose outcome is fully observed (``last week - horizon``,
stacked with earlier cutoffs), a share of SKUs held out for calibration, the thresholds and
the champion choice (best validation PR-AUC of the raw, never-fitted-on-validation score).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from ingest.dataset import Dataset
from ingest.errors import ConfigError, DataError
from ingest.progress import progress
from risk_model.backtest import BacktestConfig, RiskModelSetup, training_frames
from risk_model.explain import top_drivers
from risk_model.features import build_features
from risk_model.labels import LabelConfig, established
from risk_model.models import (
    RiskClassifier,
    ensemble_last,
    reusable_members,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RiskConfig(RiskModelSetup):
    """Settings of the risk stage: the shared :class:`~risk_model.backtest.RiskModelSetup`
    (label, features, models, offsets, validation share, threshold rule, seed) plus

    Parameters
    ----------
    score_cutoff : int or None
        Week whose data the scores use; ``None`` = the last week of the data. Training
        cutoffs are ``score_cutoff - horizon - offset``.
    n_drivers : int
        Top drivers reported per SKU.
    """

    score_cutoff: int | None = None
    n_drivers: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.n_drivers <= 10:
            raise ConfigError(f"RiskConfig.n_drivers = {self.n_drivers!r}; expected 1..10")


@dataclass
class RiskResult:
    """What the risk stage produced.

    Attributes
    ----------
    scores : DataFrame
        One row per SKU: ``sku``, ``risk`` (0..1), ``tier`` (high/medium/low) and
        ``established`` (the label's eligibility at the score cutoff) and ``driver_1 ..
        driver_k`` with ``_contribution`` and ``_value``; highest risk first.
    model : RiskClassifier
        The champion.
    champion : str
        Its kind.
    validation : dict
        Per candidate: validation ``roc_auc``, ``pr_auc``, ``brier``, the calibration method.
    features : DataFrame
        The scoring feature frame (indexed by sku).
    train_cutoff, score_cutoff : int
    """

    scores: pd.DataFrame
    model: RiskClassifier
    champion: str
    validation: dict[str, dict[str, Any]]
    features: pd.DataFrame
    train_cutoff: int
    score_cutoff: int
    info: dict[str, Any] = field(default_factory=dict)


def score_frame(model: RiskClassifier, features: pd.DataFrame, n_drivers: int = 3) -> pd.DataFrame:
    """Score a feature frame: ``sku``, ``risk``, ``tier`` and the top drivers, highest risk
    first."""
    risk = model.predict_proba(features)[:, 1]
    out = pd.DataFrame(
        {"sku": np.asarray(features.index, dtype=str), "risk": risk, "tier": model.tier(risk)}
    )
    drivers = top_drivers(model, features, k=n_drivers).reset_index(drop=True)
    out = pd.concat([out, drivers], axis=1)
    out["tier"] = out["tier"].astype(str)
    return out.sort_values(["risk", "sku"], ascending=[False, True], kind="stable").reset_index(
        drop=True
    )


def add_established(
    scores: pd.DataFrame, panel: pd.DataFrame, cutoff: int, label: LabelConfig | None = None
) -> pd.DataFrame:
    """Add the ``established`` column (see :func:`risk_model.labels.established`) after
    ``tier``: the SKUs the label speaks about; for the others the risk is an extrapolation."""
    est = established(panel, cutoff, label)
    out = scores.copy()
    flag = out["sku"].astype(str).map(est.rename(index=str)).fillna(False).astype(bool)
    out.insert(list(out.columns).index("tier") + 1, "established", flag.to_numpy())
    return out


def train_and_score(
    dataset: Dataset, panel: pd.DataFrame, config: RiskConfig | None = None
) -> RiskResult:
    """Train the candidate models, pick the champion on validation and score every SKU.

    Parameters
    ----------
    dataset : Dataset
    panel : DataFrame
        The weekly panel of ``dataset``.
    config : RiskConfig, optional

    Returns
    -------
    RiskResult
    """
    cfg = config or RiskConfig()
    last = int(panel["week"].max())
    score_cutoff = last if cfg.score_cutoff is None else int(cfg.score_cutoff)
    if score_cutoff > last:
        raise DataError(f"score cutoff week {score_cutoff} is after the data's last week {last}")
    train_cutoff = score_cutoff - cfg.label.horizon_weeks
    bt = BacktestConfig(**cfg.setup(), train_cutoff=train_cutoff, test_cutoff=score_cutoff)
    log.info("training at cutoff %s, scoring at %s", train_cutoff, score_cutoff)
    X_tr, y_tr, X_val, y_val, _, _ = training_frames(dataset, panel, bt)
    validation: dict[str, dict[str, Any]] = {}
    models: dict[str, RiskClassifier] = {}
    for kind in progress(ensemble_last(cfg.models), desc="risk: fitting models", unit="model"):
        log.info("fitting %s on %d rows", kind, len(y_tr))
        model = RiskClassifier(
            kind=kind,  # type: ignore[arg-type]
            threshold=cfg.threshold,  # type: ignore[arg-type]
            cost_ratio=cfg.cost_ratio,
            random_state=cfg.seed,
            n_jobs=cfg.n_jobs,
            hyperparams=cfg.hyperparams,
        ).fit(X_tr, y_tr, X_val=X_val, y_val=y_val, members=reusable_members(models))
        raw = model._raw(X_val)
        validation[kind] = {
            "roc_auc": float(roc_auc_score(y_val, raw)),
            "pr_auc": float(average_precision_score(y_val, raw)),
            "brier": float(np.mean((model.predict_proba(X_val)[:, 1] - y_val) ** 2)),
            "calibration": model.calibration_,
            "threshold": model.threshold_,
            "medium_threshold": model.medium_threshold_,
        }
        models[kind] = model
    champion = max(validation, key=lambda k: validation[k]["pr_auc"])
    model = models[champion]
    log.info(
        "scoring at cutoff %s with the champion %s (and its top drivers)", score_cutoff, champion
    )
    feats = build_features(
        panel,
        score_cutoff,
        cfg.features,
        products=dataset.products,
        baskets=dataset.get("baskets"),
    )
    scores = add_established(
        score_frame(model, feats, cfg.n_drivers), panel, score_cutoff, cfg.label
    )
    info = {
        "n_train": int(len(y_tr)),
        "n_train_pos": int(y_tr.sum()),
        "n_val": int(len(y_val)),
        "n_val_pos": int(y_val.sum()),
        "n_scored": int(len(scores)),
    }
    return RiskResult(
        scores=scores,
        model=model,
        champion=champion,
        validation=validation,
        features=feats,
        train_cutoff=train_cutoff,
        score_cutoff=score_cutoff,
        info=info,
    )
