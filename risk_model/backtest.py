"""Honest time-split backtests of the risk models, with baselines and bootstrap CIs.

One fold: features at the training cutoff(s) with labels from the weeks after them; a share
of the SKUs held out (all their rows) as the validation set for calibration and the
threshold; features at the later test cutoff with labels from the weeks after *it*. The
training labels end at or before the test cutoff, so no training label overlaps the test
outcome window. Several training cutoffs (``train_offsets``) can be stacked for more rows.

Every fold reports, for each model and two baselines -- ``rule_wsls`` (weeks since the last
sale, calibrated by isotonic regression on validation) and ``noise_floor`` (the chance of the
label at the SKU's recent Poisson rate) -- ROC-AUC, PR-AUC, F1, precision, recall, accuracy,
Brier score, base rate, n and n_pos, with bootstrap 95 % CIs over test SKUs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import average_precision_score, roc_auc_score

from ingest.dataset import Dataset
from ingest.errors import ConfigError, DataError
from ingest.progress import progress
from risk_model.features import FeatureConfig, build_features
from risk_model.labels import LabelConfig, make_labels, noise_floor
from risk_model.models import (
    MODEL_KINDS,
    ForestParams,
    Hyperparams,
    LogisticParams,
    RiskClassifier,
    XGBoostParams,
    best_f1_threshold,
    check_model_choice,
    ensemble_last,
    reusable_members,
)

log = logging.getLogger(__name__)

BASELINES: tuple[str, ...] = ("rule_wsls", "noise_floor")
METRICS: tuple[str, ...] = (
    "roc_auc",
    "pr_auc",
    "f1",
    "precision",
    "recall",
    "accuracy",
    "brier",
)


@dataclass(frozen=True)
class RiskModelSetup:
    """What a risk model is trained on and how: the settings a backtest and the risk stage
    share (:class:`BacktestConfig` and :class:`~risk_model.scoring.RiskConfig` extend it).

    Parameters
    ----------
    label : LabelConfig
        The label definition.
    features : FeatureConfig
        The feature switches (for example ``price_change_features=False``).
    models : tuple of str
        Candidate model kinds among ``"lr"``, ``"rf"``, ``"xgb"``.
    train_offsets : tuple of int
        Training rows are stacked from cutoffs ``train_cutoff - offset`` (0 = only the
        training cutoff). Cutoffs with too little history are skipped.
    val_share : float
        Share of training SKUs held out for calibration, the threshold and the champion.
    threshold : {"f1", "cost"}
        How the decision threshold (the ``high`` tier) is chosen on validation.
    cost_ratio : float
        Cost of a missed dead SKU relative to a needless markdown (``threshold="cost"``).
    seed : int
        Seed of the split, the models and the bootstrap.
    n_jobs : int
        Threads for the random forest and XGBoost.
    lr, rf, xgb : LogisticParams, ForestParams, XGBoostParams
        Each model's hyperparameters (``[lr]``, ``[rf]``, ``[xgb]`` in a file; the defaults
        are the values the project has always used). The ensemble uses the three as set.
    """

    label: LabelConfig = field(default_factory=LabelConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    models: tuple[str, ...] = MODEL_KINDS
    train_offsets: tuple[int, ...] = (0, 4, 8)
    val_share: float = 0.25
    threshold: str = "f1"
    cost_ratio: float = 5.0
    seed: int = 0
    n_jobs: int = 1
    lr: LogisticParams = field(default_factory=LogisticParams)
    rf: ForestParams = field(default_factory=ForestParams)
    xgb: XGBoostParams = field(default_factory=XGBoostParams)

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_model_choice(owner, self.models, self.threshold)
        if not self.train_offsets or min(self.train_offsets) < 0:
            raise ConfigError(
                f"{owner}.train_offsets = {self.train_offsets!r}; expected offsets >= 0"
            )
        if not 0 < self.val_share < 1:
            raise ConfigError(f"{owner}.val_share = {self.val_share!r}; expected (0, 1)")

    def setup(self) -> dict[str, Any]:
        """The shared settings as keyword arguments (to build one config from another)."""
        return {f.name: getattr(self, f.name) for f in fields(RiskModelSetup)}

    @property
    def hyperparams(self) -> Hyperparams:
        """The three models' hyperparameters, as :class:`RiskClassifier` takes them."""
        return Hyperparams(lr=self.lr, rf=self.rf, xgb=self.xgb)

    def default_hyperparams(self) -> tuple[str, ...]:
        """The model kinds (``lr``, ``rf``, ``xgb``) whose hyperparameters are the defaults:
        keys and hashes leave them out, so that they stay those of the runs made before the
        hyperparameters were settings."""
        return tuple(k for k in ("lr", "rf", "xgb") if getattr(self, k) == type(getattr(self, k))())


@dataclass(frozen=True)
class BacktestConfig(RiskModelSetup):
    """A backtest fold and what to run on it: the shared :class:`RiskModelSetup` plus

    Parameters
    ----------
    train_cutoff : int
        Latest training cutoff week.
    test_cutoff : int
        Test cutoff week; needs ``train_cutoff + horizon_weeks <= test_cutoff``.
    n_bootstrap : int
        Bootstrap resamples of the test SKUs for the 95 % CIs.
    """

    train_cutoff: int = 26
    test_cutoff: int = 39
    n_bootstrap: int = 200

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.train_cutoff + self.label.horizon_weeks > self.test_cutoff:
            raise ConfigError(
                f"BacktestConfig: train_cutoff {self.train_cutoff} + horizon "
                f"{self.label.horizon_weeks} weeks > test_cutoff {self.test_cutoff}; the "
                "training labels would overlap the test period. Move train_cutoff to "
                f"<= {self.test_cutoff - self.label.horizon_weeks}."
            )
        if self.n_bootstrap < 0:
            raise ConfigError(f"BacktestConfig.n_bootstrap = {self.n_bootstrap!r}; expected >= 0")


@dataclass
class BacktestResult:
    """What a backtest produced.

    Attributes
    ----------
    rows : list of dict
        One row per model and baseline, keys as in the CLI's JSON (see :func:`json_rows`)
        plus ``*_ci`` for every metric.
    predictions : dict of str to DataFrame
        Per model/baseline: test SKUs with ``y`` and ``risk``.
    models : dict of str to RiskClassifier
        The fitted models.
    test_features : DataFrame
        The test feature frame (for importance and explanation plots).
    noise_floor : float
        Share of test SKUs that would show the label by chance at their recent rate.
    info : dict
        Sizes and timings.
    """

    config: BacktestConfig
    rows: list[dict[str, Any]]
    predictions: dict[str, pd.DataFrame]
    models: dict[str, RiskClassifier]
    test_features: pd.DataFrame
    noise_floor: float
    info: dict[str, Any]


def labelled_features(
    dataset: Dataset, panel: pd.DataFrame, cutoff: int, config: BacktestConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features and labels of the eligible SKUs at ``cutoff`` (aligned, indexed by sku)."""
    labels = make_labels(panel, cutoff, config.label)
    feats = build_features(
        panel,
        cutoff,
        config.features,
        products=dataset.products,
        baskets=dataset.get("baskets"),
    )
    feats = feats.reindex(labels.index)
    return feats, labels


def _point_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    pred = p >= threshold
    tp = float(np.sum(pred & (y == 1)))
    fp = float(np.sum(pred & (y == 0)))
    fn = float(np.sum(~pred & (y == 1)))
    both = 0 < y.sum() < len(y)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "precision": precision,
        "recall": recall,
        "accuracy": float(np.mean(pred == (y == 1))),
        "brier": float(np.mean((p - y) ** 2)),
    }


def evaluate(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float,
    *,
    n_bootstrap: int = 200,
    rng: np.random.Generator | None = None,
) -> dict[str, Any]:
    """Metrics of scores ``p`` against labels ``y`` at ``threshold``, each with a bootstrap
    95 % CI (``<metric>_ci`` = [low, high]; NaN without resamples).

    Also returns ``base_rate``, ``n`` and ``n_pos``.
    """
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    out: dict[str, Any] = _point_metrics(y, p, threshold)
    rng = rng or np.random.default_rng(0)
    draws: dict[str, list[float]] = {m: [] for m in METRICS}
    for _ in range(n_bootstrap):
        idx = rng.integers(0, len(y), len(y))
        for k, v in _point_metrics(y[idx], p[idx], threshold).items():
            draws[k].append(v)
    for m in METRICS:
        vals = np.asarray(draws[m])
        vals = vals[np.isfinite(vals)]
        out[f"{m}_ci"] = (
            [float(np.quantile(vals, 0.025)), float(np.quantile(vals, 0.975))]
            if vals.size
            else [float("nan"), float("nan")]
        )
    out.update(base_rate=float(y.mean()), n=int(len(y)), n_pos=int(y.sum()), threshold=threshold)
    return out


def _split_skus(skus: pd.Index, share: float, seed: int) -> np.ndarray:
    """Boolean mask of held-out (validation) SKUs; the same SKU is held out at every cutoff."""
    uniq = np.unique(np.asarray(skus, dtype=str))
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    held = set(uniq[rng.random(uniq.size) < share])
    return np.array([s in held for s in np.asarray(skus, dtype=str)])


def training_cutoffs(panel: pd.DataFrame, config: BacktestConfig) -> list[int]:
    """The training cutoffs of a fold, ascending: ``train_cutoff - offset`` for each of
    ``train_offsets`` whose label look-back lies inside the panel.

    Raises
    ------
    DataError
        When no cutoff has the look-back.
    """
    first_week = int(panel["week"].min())
    cutoffs = sorted(
        {
            config.train_cutoff - o
            for o in config.train_offsets
            if config.train_cutoff - o - config.label.lookback_weeks + 1 >= first_week
        }
    )
    if not cutoffs:
        raise DataError(
            f"no training cutoff has {config.label.lookback_weeks} weeks of history: the panel "
            f"starts at week {first_week}, train_cutoff is {config.train_cutoff}"
        )
    return cutoffs


def fold_label_counts(panel: pd.DataFrame, config: BacktestConfig) -> dict[str, tuple[int, int]]:
    """The positive and negative labels of the sets :func:`run_backtest` fits and scores on:
    ``"training"`` and ``"validation"`` (the stacked training cutoffs, split by SKU as
    :func:`training_frames` splits them) and ``"test"``, from the labels alone (no
    features), so that a fold a model cannot fit or score is found cheaply beforehand.

    Returns
    -------
    dict of str to (int, int)
        Set name to ``(n_positive, n_negative)``.
    """
    stacked = pd.concat(
        [make_labels(panel, c, config.label) for c in training_cutoffs(panel, config)]
    )
    held = _split_skus(stacked.index, config.val_share, config.seed)
    y = stacked["label"].to_numpy()
    test = make_labels(panel, config.test_cutoff, config.label)["label"].to_numpy()

    def counts(labels: np.ndarray) -> tuple[int, int]:
        return int(labels.sum()), int(len(labels) - labels.sum())

    return {"training": counts(y[~held]), "validation": counts(y[held]), "test": counts(test)}


def training_frames(
    dataset: Dataset, panel: pd.DataFrame, config: BacktestConfig
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Stacked training rows, split by SKU into train and validation.

    Returns ``X_train, y_train, X_val, y_val, val_labels, val_features`` (the last two keep
    the label frame for the baselines).
    """
    xs, ls = [], []
    cutoffs = training_cutoffs(panel, config)
    for c in progress(cutoffs, desc="risk: features at training cutoffs", unit="cutoff"):
        x, lab = labelled_features(dataset, panel, c, config)
        xs.append(x)
        ls.append(lab)
    X = pd.concat(xs)
    labels = pd.concat(ls)
    held = _split_skus(X.index, config.val_share, config.seed)
    y = labels["label"].to_numpy()
    return X[~held], y[~held], X[held], y[held], labels[held], X[held]


def run_backtest(
    dataset: Dataset, panel: pd.DataFrame, config: BacktestConfig | None = None
) -> BacktestResult:
    """Run one backtest fold: fit every model, score the test cutoff, evaluate with CIs.

    Parameters
    ----------
    dataset : Dataset
        Canonical tables (products and, where present, baskets are used).
    panel : DataFrame
        The weekly panel of ``dataset``.
    config : BacktestConfig, optional

    Returns
    -------
    BacktestResult
    """
    import time

    cfg = config or BacktestConfig()
    t0 = time.perf_counter()
    log.info(
        "features and labels (%s) at training cutoffs up to %s", cfg.label.kind, cfg.train_cutoff
    )
    X_tr, y_tr, X_val, y_val, val_labels, _ = training_frames(dataset, panel, cfg)
    log.info("features and labels at test cutoff %s", cfg.test_cutoff)
    X_te, test_labels = labelled_features(dataset, panel, cfg.test_cutoff, cfg)
    y_te = test_labels["label"].to_numpy()
    if y_te.sum() == 0:
        raise DataError(
            f"label {cfg.label.kind!r} has no positive SKU at test cutoff {cfg.test_cutoff} "
            f"({len(y_te)} eligible); choose another cutoff or label"
        )
    t_feat = time.perf_counter() - t0
    seeds = np.random.SeedSequence(cfg.seed).spawn(len(cfg.models) + len(BASELINES))
    rows: list[dict[str, Any]] = []
    preds: dict[str, pd.DataFrame] = {}
    models: dict[str, RiskClassifier] = {}

    def add(name: str, p: np.ndarray, threshold: float, seed: np.random.SeedSequence) -> None:
        m = evaluate(
            y_te, p, threshold, n_bootstrap=cfg.n_bootstrap, rng=np.random.default_rng(seed)
        )
        rows.append(
            {
                "model": name,
                "label": cfg.label.name,
                "train_cutoff": cfg.train_cutoff,
                "test_cutoff": cfg.test_cutoff,
                **m,
            }
        )
        preds[name] = pd.DataFrame({"y": y_te, "risk": p}, index=X_te.index)

    kinds = ensemble_last(cfg.models)
    for i, kind in enumerate(progress(kinds, desc="risk backtest: models", unit="model")):
        log.info("fitting %s on %d rows (%d positive)", kind, len(y_tr), int(y_tr.sum()))
        model = RiskClassifier(
            kind=kind,  # type: ignore[arg-type]
            threshold=cfg.threshold,  # type: ignore[arg-type]
            cost_ratio=cfg.cost_ratio,
            random_state=cfg.seed,
            n_jobs=cfg.n_jobs,
            hyperparams=cfg.hyperparams,
        ).fit(X_tr, y_tr, X_val=X_val, y_val=y_val, members=reusable_members(models))
        models[kind] = model
        add(kind, model.predict_proba(X_te)[:, 1], model.threshold_, seeds[i])

    # Baselines: the weeks-since-last-sale rule (calibrated on validation) and the noise floor.
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)
    iso.fit(X_val["weeks_since_last_sale"].to_numpy(), y_val)
    rule_val = iso.predict(X_val["weeks_since_last_sale"].to_numpy())
    rule_te = iso.predict(X_te["weeks_since_last_sale"].to_numpy())
    add("rule_wsls", rule_te, best_f1_threshold(y_val, rule_val), seeds[-2])
    nf_val = val_labels["p_chance"].to_numpy()
    add(
        "noise_floor",
        test_labels["p_chance"].to_numpy(),
        best_f1_threshold(y_val, nf_val),
        seeds[-1],
    )
    info = {
        "n_train": int(len(y_tr)),
        "n_train_pos": int(y_tr.sum()),
        "n_val": int(len(y_val)),
        "n_val_pos": int(y_val.sum()),
        "seconds_features": t_feat,
        "seconds_total": time.perf_counter() - t0,
        "calibration": {k: m.calibration_ for k, m in models.items()},
    }
    log.info("backtest done in %.1f s", info["seconds_total"])
    return BacktestResult(
        config=cfg,
        rows=rows,
        predictions=preds,
        models=models,
        test_features=X_te,
        noise_floor=noise_floor(test_labels),
        info=info,
    )


JSON_KEYS: tuple[str, ...] = (
    "model",
    "label",
    "train_cutoff",
    "test_cutoff",
    "roc_auc",
    "roc_auc_ci",
    "pr_auc",
    "pr_auc_ci",
    "f1",
    "precision",
    "recall",
    "accuracy",
    "brier",
    "base_rate",
    "n",
    "n_pos",
)


def json_rows(result: BacktestResult) -> list[dict[str, Any]]:
    """The rows with exactly the keys of the CLI's JSON contract (:data:`JSON_KEYS`)."""
    return [{k: row[k] for k in JSON_KEYS} for row in result.rows]


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of backtest rows with the AUC CIs."""
    head = (
        f"{'model':<12}{'label':<13}{'train':>6}{'test':>6}  {'ROC-AUC [95% CI]':<22}"
        f"{'PR-AUC [95% CI]':<22}{'F1':>6}{'prec':>6}{'rec':>6}{'acc':>6}{'brier':>7}"
        f"{'base':>7}{'n':>7}{'pos':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        roc = f"{r['roc_auc']:.3f} [{r['roc_auc_ci'][0]:.3f}, {r['roc_auc_ci'][1]:.3f}]"
        pr = f"{r['pr_auc']:.3f} [{r['pr_auc_ci'][0]:.3f}, {r['pr_auc_ci'][1]:.3f}]"
        lines.append(
            f"{r['model']:<12}{r['label']:<13}{r['train_cutoff']:>6}{r['test_cutoff']:>6}  "
            f"{roc:<22}{pr:<22}{r['f1']:>6.3f}{r['precision']:>6.3f}{r['recall']:>6.3f}"
            f"{r['accuracy']:>6.3f}{r['brier']:>7.4f}{r['base_rate']:>7.3f}{r['n']:>7}"
            f"{r['n_pos']:>6}"
        )
    return "\n".join(lines)


def plot_backtest(result: BacktestResult, out_dir: str | Path) -> list[Path]:
    """ROC, PR, calibration and feature-importance plots (PNG) into ``out_dir``."""
    from matplotlib.figure import Figure
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve, roc_curve

    from ingest.io import write_figure_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    label = f"{result.config.label.name}, test cutoff {result.config.test_cutoff}"

    def save(fig: Figure, name: str) -> None:
        paths.append(write_figure_atomic(fig, out / name, bbox_inches="tight"))

    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    for name, df in result.predictions.items():
        fpr, tpr, _ = roc_curve(df["y"], df["risk"])
        row = next(r for r in result.rows if r["model"] == name)
        ax.plot(fpr, tpr, label=f"{name} ({row['roc_auc']:.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC ({label})")
    ax.legend(fontsize=8)
    save(fig, "roc.png")

    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    for name, df in result.predictions.items():
        prec, rec, _ = precision_recall_curve(df["y"], df["risk"])
        row = next(r for r in result.rows if r["model"] == name)
        ax.plot(rec, prec, label=f"{name} ({row['pr_auc']:.3f})")
    base = float(next(iter(result.predictions.values()))["y"].mean())
    ax.axhline(base, color="k", ls=":", lw=0.8, label=f"base rate {base:.3f}")
    ax.set(xlabel="recall", ylabel="precision", title=f"Precision-recall ({label})")
    ax.legend(fontsize=8)
    save(fig, "pr.png")

    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    for name in result.models:
        df = result.predictions[name]
        frac, mean = calibration_curve(df["y"], df["risk"], n_bins=10, strategy="quantile")
        ax.plot(mean, frac, "o-", ms=3, label=name)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="predicted risk", ylabel="observed rate", title=f"Calibration ({label})")
    ax.legend(fontsize=8)
    save(fig, "calibration.png")

    best = max(
        result.models, key=lambda k: result.rows[list(result.predictions).index(k)]["pr_auc"]
    )
    model = result.models[best]
    imp = pd.Series(model.feature_importances_, index=model.feature_names_in_).sort_values()
    imp = imp.tail(20)
    fig = Figure(figsize=(6, 6))
    ax = fig.subplots()
    ax.barh(imp.index, imp.to_numpy())
    ax.set(xlabel="importance (normalised)", title=f"Feature importance: {best}")
    save(fig, "importance.png")
    return paths
