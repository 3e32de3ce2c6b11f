"""Risk classifiers: logistic regression (the baseline), random forest and XGBoost, each
calibrated on validation data and given a decision threshold chosen on validation data.

Isotonic calibration is *centered* isotonic regression (straight lines through the centres of
the isotonic blocks): plain isotonic steps tie hundreds of SKUs at one value, which throws
away the model's ranking among them (on a synthetic world it cost 0.05 ROC-AUC against the
known truth).

:class:`RiskClassifier` follows the scikit-learn estimator API (``__init__`` stores its
arguments, ``fit`` returns ``self``, learned state ends in ``_``). ``fit`` takes the
validation set explicitly (``X_val``, ``y_val``); without one it holds out a stratified
``val_share`` of the training rows. The validation set is used for three things and nothing
else: choosing isotonic vs sigmoid calibration (2-fold cross-fitted Brier score), fitting the
chosen calibrator, and choosing the threshold (best F1, or the least expected cost at a
user-set cost ratio) on cross-fitted calibrated scores. The test set is never seen.

Tiers: ``high`` at or above the decision threshold; ``medium`` at or above the lower
threshold that reaches ``medium_recall`` of the validation positives; ``low`` below.

Hyperparameters: :class:`LogisticParams`, :class:`ForestParams` and :class:`XGBoostParams`
(bundled in :class:`Hyperparams`) hold each model's settings, defaulting to the values the
project has always used; the risk configs carry them as ``[lr]``, ``[rf]`` and ``[xgb]``
(``[risk.xgb]`` in a plan file) and ``deadstock sweep`` searches them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted
from xgboost import XGBClassifier

from ingest.errors import ConfigError, DataError

MODEL_KINDS: tuple[str, ...] = ("lr", "rf", "xgb", "ens")
BASE_KINDS: tuple[str, ...] = ("lr", "rf", "xgb")
MIN_CLASS_ROWS = 2
"""Rows of each class a fit needs in its training and its validation set: calibration is
cross-fitted on two stratified folds of the validation set."""
ModelKind = Literal["lr", "rf", "xgb", "ens"]
Calibration = Literal["auto", "isotonic", "sigmoid", "none"]


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """``sign(x) * log(1 + |x|)``: tames heavy tails before scaling for the linear model."""
    return np.sign(x) * np.log1p(np.abs(x))


class RowwiseLogisticRegression(LogisticRegression):
    """:class:`~sklearn.linear_model.LogisticRegression` whose score of a row depends on that
    row alone.

    scikit-learn's linear predictor is one BLAS matrix-vector product, whose rounding depends
    on how many rows are scored together and on the number of BLAS threads (OpenBLAS sums
    rows four at a time, and the odd ones out differently): the same SKU scored alone, in a
    block of the engine or among all SKUs could differ in the last bit. Here the predictor is
    summed feature by feature in a fixed order, an elementwise loop, so every row gets the
    same bits however the rows are blocked, on any engine or thread count. Fitting is
    scikit-learn's own.
    """

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """``X @ coef_.T + intercept_``, row by row in a fixed order (see the class)."""
        check_is_fitted(self)
        values = np.asarray(X, dtype=float)
        coef = np.asarray(self.coef_, dtype=float)
        if values.ndim != 2 or values.shape[1] != coef.shape[1]:
            raise DataError(
                f"logistic regression input has shape {values.shape}; expected "
                f"(n_rows, {coef.shape[1]})"
            )
        scores = np.zeros((values.shape[0], coef.shape[0]))
        for j in range(coef.shape[1]):
            scores += values[:, j, None] * coef[None, :, j]
        scores += self.intercept_
        return scores[:, 0] if scores.shape[1] == 1 else scores


@dataclass(frozen=True)
class LogisticParams:
    """Logistic regression (on signed-log, standardized features).

    Parameters
    ----------
    C : float
        Inverse strength of the L2 penalty (scikit-learn's ``C``; smaller = stronger).
    max_iter : int
        Iterations of the solver.
    """

    C: float = 0.5
    max_iter: int = 2000

    def __post_init__(self) -> None:
        _check("lr", "C", self.C, self.C > 0, "> 0")
        _check("lr", "max_iter", self.max_iter, self.max_iter >= 1, ">= 1")


@dataclass(frozen=True)
class ForestParams:
    """Random forest.

    Parameters
    ----------
    n_estimators : int
        Trees.
    max_depth : int or None
        Deepest split of a tree; ``None`` = grown until ``min_samples_leaf`` stops it.
    min_samples_leaf : int
        Fewest training rows in a leaf.
    max_features : {"sqrt", "log2"} or float
        Features tried at a split: a rule of the feature count, or a share in (0, 1].
    max_samples : float or None
        Share of the rows each tree is grown on (bootstrap); ``None`` = as many as there are.
    """

    n_estimators: int = 200
    max_depth: int | None = None
    min_samples_leaf: int = 3
    max_features: Literal["sqrt", "log2"] | float = "sqrt"
    max_samples: float | None = 0.5

    def __post_init__(self) -> None:
        _check("rf", "n_estimators", self.n_estimators, self.n_estimators >= 1, ">= 1")
        depth = self.max_depth
        _check("rf", "max_depth", depth, depth is None or depth >= 1, ">= 1 (or leave it out)")
        leaf = self.min_samples_leaf
        _check("rf", "min_samples_leaf", leaf, leaf >= 1, ">= 1")
        mf = self.max_features
        ok = mf in ("sqrt", "log2") or (not isinstance(mf, str) and 0 < mf <= 1)
        _check("rf", "max_features", mf, ok, "'sqrt', 'log2' or a share in (0, 1]")
        ms = self.max_samples
        _check("rf", "max_samples", ms, ms is None or 0 < ms <= 1, "in (0, 1] (or leave it out)")


@dataclass(frozen=True)
class XGBoostParams:
    """Gradient-boosted trees (XGBoost, ``hist`` trees, log loss).

    Parameters
    ----------
    n_estimators : int
        Boosting rounds.
    learning_rate : float
        Shrinkage of each round (``eta``).
    max_depth : int
        Deepest split of a tree.
    min_child_weight : float
        Least hessian weight in a child (larger = more conservative splits).
    subsample : float
        Share of the rows each round sees, in (0, 1].
    colsample_bytree : float
        Share of the features each tree sees, in (0, 1].
    reg_lambda : float
        L2 penalty on the leaf weights.
    reg_alpha : float
        L1 penalty on the leaf weights.
    gamma : float
        Least loss reduction a split must bring.
    """

    n_estimators: int = 400
    learning_rate: float = 0.03
    max_depth: int = 4
    min_child_weight: float = 2.0
    subsample: float = 0.8
    colsample_bytree: float = 0.7
    reg_lambda: float = 2.0
    reg_alpha: float = 0.0
    gamma: float = 0.0

    def __post_init__(self) -> None:
        _check("xgb", "n_estimators", self.n_estimators, self.n_estimators >= 1, ">= 1")
        lr = self.learning_rate
        _check("xgb", "learning_rate", lr, 0 < lr <= 1, "in (0, 1]")
        _check("xgb", "max_depth", self.max_depth, self.max_depth >= 1, ">= 1")
        for name in ("subsample", "colsample_bytree"):
            value = getattr(self, name)
            _check("xgb", name, value, 0 < value <= 1, "in (0, 1]")
        for name in ("min_child_weight", "reg_lambda", "reg_alpha", "gamma"):
            value = getattr(self, name)
            _check("xgb", name, value, value >= 0, ">= 0")


@dataclass(frozen=True)
class Hyperparams:
    """The hyperparameters of the three base models (the ensemble averages them as set)."""

    lr: LogisticParams = field(default_factory=LogisticParams)
    rf: ForestParams = field(default_factory=ForestParams)
    xgb: XGBoostParams = field(default_factory=XGBoostParams)


def _check(kind: str, name: str, value: object, ok: bool, expected: str) -> None:
    if not ok:
        raise ConfigError(f"[{kind}] {name} = {value!r}; expected {expected}")


class SoftVote(ClassifierMixin, BaseEstimator):
    """Mean of the members' probabilities (logistic regression, random forest, XGBoost).

    Parameters
    ----------
    random_state : int
    n_jobs : int
    hyperparams : Hyperparams, optional
        The members' settings (the defaults when omitted).
    """

    hyperparams: Hyperparams | None = None  # see RiskClassifier.hyperparams

    def __init__(
        self, random_state: int = 0, n_jobs: int = 1, hyperparams: Hyperparams | None = None
    ) -> None:
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.hyperparams = hyperparams

    def fit(self, X: np.ndarray, y: np.ndarray, members: dict | None = None) -> SoftVote:
        """Fit every member, or adopt already fitted ``members`` (kind -> estimator) that
        were fit on the same rows."""
        self.members_ = {}
        for kind in BASE_KINDS:
            if members is not None and kind in members:
                self.members_[kind] = members[kind]
            else:
                est = make_base_estimator(kind, self.random_state, self.n_jobs, self.hyperparams)
                self.members_[kind] = est.fit(X, y)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = np.mean([m.predict_proba(X)[:, 1] for m in self.members_.values()], axis=0)
        return np.column_stack([1 - p, p])

    @property
    def feature_importances_(self) -> np.ndarray:
        parts = []
        for kind, m in self.members_.items():
            imp = np.abs(m[-1].coef_[0]) if kind == "lr" else np.asarray(m.feature_importances_)
            parts.append(imp / max(imp.sum(), 1e-12))
        return np.mean(parts, axis=0)


def make_base_estimator(
    kind: str, random_state: int = 0, n_jobs: int = 1, hyperparams: Hyperparams | None = None
) -> BaseEstimator:
    """The uncalibrated estimator of one kind (``"lr"``, ``"rf"``, ``"xgb"`` or ``"ens"``)
    with its settings from ``hyperparams`` (the defaults when omitted)."""
    hp = hyperparams or Hyperparams()
    if kind == "ens":
        return SoftVote(random_state=random_state, n_jobs=n_jobs, hyperparams=hyperparams)
    if kind == "lr":
        return make_pipeline(
            FunctionTransformer(signed_log1p),
            StandardScaler(),
            RowwiseLogisticRegression(C=hp.lr.C, max_iter=hp.lr.max_iter),
        )
    if kind == "rf":
        return RandomForestClassifier(
            n_estimators=hp.rf.n_estimators,
            max_depth=hp.rf.max_depth,
            min_samples_leaf=hp.rf.min_samples_leaf,
            max_features=hp.rf.max_features,
            max_samples=hp.rf.max_samples,
            n_jobs=n_jobs,
            random_state=random_state,
        )
    if kind == "xgb":
        x = hp.xgb
        return XGBClassifier(
            n_estimators=x.n_estimators,
            learning_rate=x.learning_rate,
            max_depth=x.max_depth,
            min_child_weight=x.min_child_weight,
            subsample=x.subsample,
            colsample_bytree=x.colsample_bytree,
            reg_lambda=x.reg_lambda,
            reg_alpha=x.reg_alpha,
            gamma=x.gamma,
            tree_method="hist",
            eval_metric="logloss",
            n_jobs=n_jobs,
            random_state=random_state,
        )
    raise ConfigError(f"model kind {kind!r} is unknown; expected one of {MODEL_KINDS}")


def check_model_choice(owner: str, models: tuple[str, ...], threshold: str) -> None:
    """Validate a config's ``models`` and ``threshold`` fields; ``owner`` names the config
    class in the message."""
    bad = [m for m in models if m not in MODEL_KINDS]
    if bad or not models:
        raise ConfigError(
            f"{owner}.models = {models!r}; expected a non-empty subset of {MODEL_KINDS}"
        )
    if threshold not in ("f1", "cost"):
        raise ConfigError(f"{owner}.threshold = {threshold!r}; expected f1 or cost")


class _Sigmoid:
    """Platt scaling on the logit of the raw score."""

    def fit(self, s: np.ndarray, y: np.ndarray) -> _Sigmoid:
        self.lr_ = LogisticRegression(C=1e4).fit(_logit(s)[:, None], y)
        return self

    def predict(self, s: np.ndarray) -> np.ndarray:
        return self.lr_.predict_proba(_logit(s)[:, None])[:, 1]


def _logit(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 1e-6, 1 - 1e-6)
    return np.log(s / (1 - s))


class _CenteredIsotonic:
    """Centered isotonic regression (Oron and Flournoy, 2017): isotonic regression whose
    flat blocks are replaced by straight lines through the blocks' centres, so that the
    calibrated score keeps the raw score's ranking between blocks instead of tying whole
    blocks of SKUs."""

    def fit(self, s: np.ndarray, y: np.ndarray) -> _CenteredIsotonic:
        order = np.argsort(s, kind="stable")
        s_sorted = s[order]
        fitted = IsotonicRegression(y_min=0.0, y_max=1.0).fit_transform(s_sorted, y[order])
        block = np.r_[0, np.cumsum(np.diff(fitted) != 0)]
        sums = np.bincount(block, weights=s_sorted)
        counts = np.bincount(block)
        self.x_ = sums / counts
        self.y_ = np.asarray(pd.Series(fitted).groupby(block).first(), dtype=float)
        return self

    def predict(self, s: np.ndarray) -> np.ndarray:
        return np.interp(s, self.x_, self.y_)


def _make_calibrator(method: str) -> _Sigmoid | _CenteredIsotonic:
    if method == "isotonic":
        return _CenteredIsotonic()
    return _Sigmoid()


def _cross_fit(method: str, s: np.ndarray, y: np.ndarray, random_state: int) -> np.ndarray:
    """Calibrated validation scores, each predicted by a calibrator fit on the other fold."""
    out = np.empty_like(s)
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=random_state)
    for a, b in folds.split(s, y):
        out[b] = _make_calibrator(method).fit(s[a], y[a]).predict(s[b])
    return out


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """Threshold on ``p`` that maximises F1 on (``y``, ``p``)."""
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    k = np.arange(1, len(ys) + 1)
    f1 = 2 * tp / (k + ys.sum())
    # Only cut between distinct scores.
    last_of_run = np.r_[ps[1:] != ps[:-1], True]
    i = int(np.argmax(np.where(last_of_run, f1, -1)))
    return float(ps[i])


def cost_threshold(y: np.ndarray, p: np.ndarray, cost_ratio: float) -> float:
    """Threshold minimising ``cost_ratio * FN + FP`` on validation (a missed dead SKU costs
    ``cost_ratio`` times a needless markdown)."""
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    fp = np.arange(1, len(ys) + 1) - tp
    cost = cost_ratio * (ys.sum() - tp) + fp
    last_of_run = np.r_[ps[1:] != ps[:-1], True]
    i = int(np.argmin(np.where(last_of_run, cost, np.inf)))
    if cost_ratio * ys.sum() <= cost[i]:  # flagging nothing is cheaper
        return float(np.nextafter(ps[0], np.inf))
    return float(ps[i])


def recall_threshold(y: np.ndarray, p: np.ndarray, recall: float) -> float:
    """Highest threshold whose recall on (``y``, ``p``) reaches ``recall``."""
    pos = np.sort(p[y == 1])[::-1]
    if pos.size == 0:
        return 0.0
    k = int(np.ceil(recall * pos.size)) - 1
    return float(pos[min(max(k, 0), pos.size - 1)])


class RiskClassifier(ClassifierMixin, BaseEstimator):
    """A calibrated dead-stock classifier with a validation-chosen threshold.

    Parameters
    ----------
    kind : {"lr", "rf", "xgb", "ens"}
        Logistic regression (signed-log, scaled), random forest, XGBoost, or ``"ens"``: the
        mean of the three's probabilities, calibrated as one score.
    calibration : {"auto", "isotonic", "sigmoid", "none"}
        ``"auto"`` picks the method with the lower cross-fitted Brier score on validation.
    threshold : {"f1", "cost"}
        Decision threshold chosen on validation: best F1, or least ``cost_ratio * FN + FP``.
    cost_ratio : float
        Cost of missing a dead SKU relative to a needless markdown (``threshold="cost"``).
    medium_recall : float
        Validation recall the ``medium`` tier's lower threshold reaches.
    val_share : float
        Share of training rows held out for validation when ``fit`` gets no ``X_val``.
    random_state : int
        Seed of the estimator, the hold-out split and the calibration folds.
    n_jobs : int
        Threads for the random forest and XGBoost.
    hyperparams : Hyperparams, optional
        The estimators' settings (the defaults when omitted).
    """

    #: A model pickled before the setting existed (a registered champion) unpickles without
    #: it; it was fit with the defaults.
    hyperparams: Hyperparams | None = None

    def __init__(
        self,
        kind: ModelKind = "xgb",
        calibration: Calibration = "auto",
        threshold: Literal["f1", "cost"] = "f1",
        cost_ratio: float = 5.0,
        medium_recall: float = 0.8,
        val_share: float = 0.25,
        random_state: int = 0,
        n_jobs: int = 1,
        hyperparams: Hyperparams | None = None,
    ) -> None:
        self.kind = kind
        self.calibration = calibration
        self.threshold = threshold
        self.cost_ratio = cost_ratio
        self.medium_recall = medium_recall
        self.val_share = val_share
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.hyperparams = hyperparams

    def _check_params(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ConfigError(f"RiskClassifier.kind = {self.kind!r}; expected one of {MODEL_KINDS}")
        if self.calibration not in ("auto", "isotonic", "sigmoid", "none"):
            raise ConfigError(
                f"RiskClassifier.calibration = {self.calibration!r}; expected auto, isotonic, "
                "sigmoid or none"
            )
        if self.threshold not in ("f1", "cost"):
            raise ConfigError(f"RiskClassifier.threshold = {self.threshold!r}; expected f1 or cost")
        if not self.cost_ratio > 0:
            raise ConfigError(f"RiskClassifier.cost_ratio = {self.cost_ratio!r}; expected > 0")
        if not 0 < self.medium_recall <= 1:
            raise ConfigError(
                f"RiskClassifier.medium_recall = {self.medium_recall!r}; expected in (0, 1]"
            )

    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        *,
        X_val: pd.DataFrame | None = None,
        y_val: np.ndarray | None = None,
        members: dict | None = None,
    ) -> RiskClassifier:
        """Fit the estimator on (X, y); calibrate and pick thresholds on (X_val, y_val).

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), 0/1
        X_val, y_val : validation rows; a stratified hold-out of (X, y) when omitted.
        members : dict, optional
            ``"ens"`` only: base estimators (kind -> fitted estimator) already fit on the
            same (X, y), reused instead of refitting.
        """
        self._check_params()
        y = np.asarray(y, dtype=int)
        if X_val is None or y_val is None:
            X, X_val, y, y_val = train_test_split(
                X,
                y,
                test_size=self.val_share,
                stratify=y,
                random_state=self.random_state,
            )
        y_val = np.asarray(y_val, dtype=int)
        for name, labels in (("training", y), ("validation", y_val)):
            n_pos = int(labels.sum())
            if n_pos < MIN_CLASS_ROWS or len(labels) - n_pos < MIN_CLASS_ROWS:
                raise DataError(
                    f"the {name} set has {n_pos} positive(s) out of {len(labels)} rows; a risk "
                    "model needs at least 2 of each class. Use an earlier cutoff, more SKUs "
                    "or another label."
                )
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.classes_ = np.array([0, 1])
        est = clone(
            make_base_estimator(self.kind, self.random_state, self.n_jobs, self.hyperparams)
        )
        if self.kind == "ens":
            self.estimator_ = est.fit(X.to_numpy(dtype=float), y, members=members)
        else:
            self.estimator_ = est.fit(X.to_numpy(dtype=float), y)
        s_val = self._raw(X_val)

        methods = ["isotonic", "sigmoid"] if self.calibration == "auto" else [self.calibration]
        if self.calibration == "none":
            self.calibration_ = "none"
            self.calibrator_ = None
            p_cv = s_val
            self.calibration_brier_ = {"none": float(np.mean((s_val - y_val) ** 2))}
        else:
            crossed = {m: _cross_fit(m, s_val, y_val, self.random_state) for m in methods}
            self.calibration_brier_ = {
                m: float(np.mean((p - y_val) ** 2)) for m, p in crossed.items()
            }
            self.calibration_ = min(
                self.calibration_brier_, key=self.calibration_brier_.__getitem__
            )
            self.calibrator_ = _make_calibrator(self.calibration_).fit(s_val, y_val)
            p_cv = crossed[self.calibration_]
        # Thresholds are read on cross-fitted scores and applied to the full calibrator's.
        if self.threshold == "f1":
            self.threshold_ = best_f1_threshold(y_val, p_cv)
        else:
            self.threshold_ = cost_threshold(y_val, p_cv, self.cost_ratio)
        self.medium_threshold_ = min(
            recall_threshold(y_val, p_cv, self.medium_recall), self.threshold_
        )
        self.val_base_rate_ = float(y_val.mean())
        self.prob_floor_ = 0.5 / len(y_val) if self.calibrator_ is not None else 0.0
        return self

    def _raw(self, X: pd.DataFrame) -> np.ndarray:
        cols = list(self.feature_names_in_)
        missing = [c for c in cols if c not in X.columns]
        if missing:
            raise DataError(
                f"feature frame lacks {len(missing)} column(s) the model was trained on, "
                f"e.g. {missing[:5]}"
            )
        return self.estimator_.predict_proba(X[cols].to_numpy(dtype=float))[:, 1]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, array of shape (n_samples, 2)."""
        s = self._raw(X)
        p = s if self.calibrator_ is None else self.calibrator_.predict(s)
        # A calibration step with no validation positive (or no negative) does not make the
        # event impossible (or certain): keep half a validation row's worth of chance.
        p = np.clip(np.asarray(p, dtype=float), self.prob_floor_, 1.0 - self.prob_floor_)
        # Ties left by the calibrator (flat ends, the floor) are broken by the raw score;
        # this moves no probability by more than 1e-9.
        p = np.clip(p + 1e-9 * (s - 0.5), 0.0, 1.0)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """1 where the calibrated risk reaches the validation threshold."""
        return (self.predict_proba(X)[:, 1] >= self.threshold_).astype(int)

    def tier(self, risk: np.ndarray) -> np.ndarray:
        """``"high"``/``"medium"``/``"low"`` from the validation thresholds."""
        risk = np.asarray(risk, dtype=float)
        return np.where(
            risk >= self.threshold_,
            "high",
            np.where(risk >= self.medium_threshold_, "medium", "low"),
        ).astype(object)

    @property
    def feature_importances_(self) -> np.ndarray:
        """Importance per feature: impurity/gain for the trees, |coef| for the LR (scaled
        features), normalised to sum to 1."""
        est = self.estimator_
        if self.kind == "lr":
            imp = np.abs(est[-1].coef_[0])
        elif self.kind == "ens":
            imp = est.feature_importances_
        else:
            imp = np.asarray(est.feature_importances_, dtype=float)
        total = imp.sum()
        return imp / total if total > 0 else imp


def reusable_members(models: dict[str, RiskClassifier]) -> dict[str, BaseEstimator]:
    """Fitted base estimators an ensemble fit on the same rows can reuse."""
    return {k: m.estimator_ for k, m in models.items() if k in BASE_KINDS}


def ensemble_last(kinds: tuple[str, ...]) -> tuple[str, ...]:
    """Fit order: base models first, so the ensemble reuses them."""
    return tuple(k for k in kinds if k != "ens") + tuple(k for k in kinds if k == "ens")
