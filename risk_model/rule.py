"""The rule baseline as a scorer: risk from the weeks since a SKU's last sale.

The backtests compare every model with this rule (``rule_wsls`` in :mod:`risk_model.backtest`):
the weeks since the last sale, mapped to a probability by isotonic regression on labelled
rows. It needs no minimum number of positives, so it is what the pipeline scores with when
the data has too few positives to train and validate a model (a small catalog, a short
history). Its one driver is ``weeks_since_last_sale``.

Calibration pools every labelled row of the training cutoffs (training and validation SKUs
alike: there is no model to choose, only one monotone map to fit). The ``high`` tier is the
best-F1 threshold on those rows and ``medium`` the threshold that reaches ``medium_recall``,
as for the models. With no positive at all the label has never been seen: every SKU scores 0
and is ``low``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from ingest.dataset import Dataset
from risk_model.backtest import BacktestConfig, training_frames
from risk_model.features import build_features
from risk_model.models import best_f1_threshold, recall_threshold
from risk_model.scoring import RiskConfig, add_established

RULE_NAME = "rule_wsls"
RULE_FEATURE = "weeks_since_last_sale"
# Recall the medium tier reaches on the labelled rows (RiskClassifier's default).
MEDIUM_RECALL = 0.8


@dataclass
class RuleResult:
    """The rule's scores (same columns as :attr:`RiskResult.scores` with one driver) and the
    rows it was calibrated on."""

    scores: pd.DataFrame
    n_labelled: int
    n_positive: int
    threshold: float
    medium_threshold: float


def rule_scores(dataset: Dataset, panel: pd.DataFrame, config: RiskConfig) -> RuleResult:
    """Score every SKU at the last week of ``panel`` with the weeks-since-last-sale rule.

    Parameters
    ----------
    dataset : Dataset
    panel : DataFrame
        The weekly panel of ``dataset``.
    config : RiskConfig
        The label, features, training offsets and score cutoff (models are ignored).

    Returns
    -------
    RuleResult

    Raises
    ------
    DataError
        When no training cutoff has enough history for the label.
    """
    last = int(panel["week"].max())
    score_cutoff = last if config.score_cutoff is None else int(config.score_cutoff)
    bt = BacktestConfig(
        label=config.label,
        features=config.features,
        train_cutoff=score_cutoff - config.label.horizon_weeks,
        test_cutoff=score_cutoff,
        train_offsets=config.train_offsets,
        models=("lr",),
        seed=config.seed,
    )
    X_tr, y_tr, X_val, y_val, _, _ = training_frames(dataset, panel, bt)
    x = np.concatenate([X_tr[RULE_FEATURE].to_numpy(float), X_val[RULE_FEATURE].to_numpy(float)])
    y = np.concatenate([np.asarray(y_tr, dtype=int), np.asarray(y_val, dtype=int)])
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1, increasing=True)
    iso.fit(x, y)
    fitted = iso.predict(x)
    if y.sum() > 0:
        threshold = best_f1_threshold(y, fitted)
        medium = min(recall_threshold(y, fitted, MEDIUM_RECALL), threshold)
    else:
        threshold = medium = 1.0
    feats = build_features(
        panel,
        score_cutoff,
        config.features,
        products=dataset.products,
        baskets=dataset.get("baskets"),
    )
    wsls = feats[RULE_FEATURE].to_numpy(float)
    risk = iso.predict(wsls)
    # Ties on the isotonic steps are broken by the weeks themselves (longer without a sale,
    # riskier); this moves no probability by more than 1e-6.
    risk = np.clip(risk + 1e-9 * np.minimum(wsls, 1000.0), 0.0, 1.0)
    tier = np.where(risk >= threshold, "high", np.where(risk >= medium, "medium", "low"))
    base = float(y.mean()) if y.size else 0.0
    scores = pd.DataFrame(
        {
            "sku": np.asarray(feats.index, dtype=str),
            "risk": risk,
            "tier": tier.astype(str),
            "driver_1": RULE_FEATURE,
            "driver_1_contribution": risk - base,
            "driver_1_value": wsls,
        }
    )
    scores = scores.sort_values(["risk", "sku"], ascending=[False, True], kind="stable")
    scores = add_established(scores.reset_index(drop=True), panel, score_cutoff, config.label)
    return RuleResult(scores, int(y.size), int(y.sum()), float(threshold), float(medium))
