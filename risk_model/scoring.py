"""The risk stage: train the models on the latest labelled cutoff, pick the champion on
validation, and score every SKU at the last week of the data.

``train_and_score`` is the typed stage function the CLI, the pipeline and the API call.
Training uses the latest cutoff whose outcome is fully observed (``last week - horizon``,
stacked with earlier cutoffs), a share of SKUs held out for calibration, the thresholds and
the champion choice (best validation PR-AUC of the raw, never-fitted-on-validation score).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
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


#: ``map_blocks(fn, blocks, shared)``: yields ``fn(shared, block)`` for each block, in block
#: order (the app's engine, :meth:`app.engine.Engine.map_blocks`, is one).
MapBlocks = Callable[[Callable[[Any, Any], Any], Iterable[Any], Any], Iterable[Any]]


def _map_here(fn: Callable[[Any, Any], Any], blocks: Iterable[Any], shared: Any) -> Iterator[Any]:
    """:data:`MapBlocks` in this process, one block after the other."""
    for block in blocks:
        yield fn(shared, block)


def _score_block(model: RiskClassifier, block: tuple[pd.DataFrame, int]) -> pd.DataFrame:
    """One block's scores and top drivers, in the block's row order (unsorted)."""
    features, n_drivers = block
    risk = model.predict_proba(features)[:, 1]
    out = pd.DataFrame(
        {"sku": np.asarray(features.index, dtype=str), "risk": risk, "tier": model.tier(risk)}
    )
    drivers = top_drivers(model, features, k=n_drivers).reset_index(drop=True)
    out = pd.concat([out, drivers], axis=1)
    out["tier"] = out["tier"].astype(str)
    return out


def score_frame(
    model: RiskClassifier,
    features: pd.DataFrame,
    n_drivers: int = 3,
    *,
    block_skus: int | None = None,
    map_blocks: MapBlocks | None = None,
) -> pd.DataFrame:
    """Score a feature frame: ``sku``, ``risk``, ``tier`` and the top drivers, highest risk
    first.

    Parameters
    ----------
    model : RiskClassifier (fitted)
    features : DataFrame
        One row per SKU, indexed by sku (:func:`risk_model.features.build_features`).
    n_drivers : int
        Top drivers per SKU.
    block_skus : int or None
        Score blocks of this many consecutive rows (``None``: one block). Every row's score
        and drivers depend on that row alone, so the blocks change no number.
    map_blocks : callable, optional
        Runs the blocks (:data:`MapBlocks`, with ``model`` as the shared object); default:
        this process, one block after the other.

    Raises
    ------
    ConfigError
        For ``block_skus`` < 1.
    """
    if block_skus is not None and block_skus < 1:
        raise ConfigError(f"block_skus = {block_skus!r}: expected >= 1")
    n = len(features)
    step = n if block_skus is None else block_skus
    starts = range(0, n, step) if n else range(1)  # an empty frame is one (empty) block
    blocks = ((features.iloc[s : s + step], n_drivers) for s in starts)
    parts = list((map_blocks or _map_here)(_score_block, blocks, model))
    out = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
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
    dataset: Dataset,
    panel: pd.DataFrame,
    config: RiskConfig | None = None,
    *,
    block_skus: int | None = None,
    map_blocks: MapBlocks | None = None,
) -> RiskResult:
    """Train the candidate models, pick the champion on validation and score every SKU.

    Training runs here; the scoring runs in blocks of ``block_skus`` SKUs through
    ``map_blocks`` (see :func:`score_frame`: the same scores whatever the blocks).

    Parameters
    ----------
    dataset : Dataset
    panel : DataFrame
        The weekly panel of ``dataset``.
    config : RiskConfig, optional
    block_skus : int or None
        SKUs per scoring block (``None``: one block).
    map_blocks : callable, optional
        Runs the scoring blocks with the champion as the shared object (default: here).

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
        score_frame(model, feats, cfg.n_drivers, block_skus=block_skus, map_blocks=map_blocks),
        panel,
        score_cutoff,
        cfg.label,
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
