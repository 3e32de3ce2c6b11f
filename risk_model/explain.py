"""Per-SKU explanations: the top drivers of each score, with sign and size.

Contributions are additive terms of the *uncalibrated* model's score, so they explain the
ranking (calibration is monotone and does not change which SKU ranks above which):

- XGBoost: the path decomposition of Saabas from ``Booster.predict(pred_contribs=True,
  approx_contribs=True)`` (log-odds). Exact tree SHAP (``exact=True``) costs far more per
  SKU (``docs/risk_model.md``, "Explanations"), and the top drivers rarely differ.
- Logistic regression: ``coef * standardized value`` per feature (log-odds), measured
  against the average training SKU.
- Random forest: the path decomposition of Saabas (each split's change of the leaf
  probability, credited to the split's feature, averaged over trees; probability units).

- Ensemble (``"ens"``): each member's contributions are put on the probability scale
  (scaled so that they add up to the member's probability minus its base value) and averaged,
  so they add up to the ensemble's score minus its base value.

A positive contribution raises the risk.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost as xgb

from ingest.progress import progress
from risk_model.models import RiskClassifier


def _leaf_table(tree, d: int) -> np.ndarray:
    """Per leaf of one tree: the summed changes of the positive-class probability along its
    path, credited to each split's feature (Saabas), shape (node_count, d)."""
    t = tree.tree_
    value = t.value[:, 0, :]
    prob = value[:, 1] / np.maximum(value.sum(axis=1), 1e-12)
    table = np.zeros((t.node_count, d))
    # Nodes are numbered in depth-first order: a parent always precedes its children.
    for node in range(t.node_count):
        for child in (t.children_left[node], t.children_right[node]):
            if child >= 0:
                table[child] = table[node]
                table[child, t.feature[node]] += prob[child] - prob[node]
    return table


def _rf_contributions(forest, X: np.ndarray) -> np.ndarray:
    n, d = X.shape
    total = np.zeros((n, d))
    leaves = forest.apply(X.astype(np.float32))
    trees = progress(forest.estimators_, desc="risk drivers: forest", unit="tree")
    for j, tree in enumerate(trees):
        total += _leaf_table(tree, d)[leaves[:, j]]
    return total / len(forest.estimators_)


def _member_contributions(kind: str, est, values: np.ndarray, exact: bool = False) -> np.ndarray:
    """Contributions of one base estimator in its own units (log-odds, or probability)."""
    if kind == "xgb":
        booster = est.get_booster()
        dm = xgb.DMatrix(values)
        return booster.predict(dm, pred_contribs=True, approx_contribs=not exact)[:, :-1]
    if kind == "lr":
        transform, scaler, lr = est[0], est[1], est[2]
        z = scaler.transform(transform.transform(values))
        return z * lr.coef_[0][None, :]
    return _rf_contributions(est, values)


def _row_totals(kind: str, contrib: np.ndarray) -> np.ndarray:
    """Each row's sum of contributions, the same bits however many rows are explained together.

    ``contrib.sum(axis=1)`` is not: on a column-major array (the logistic regression's terms,
    from scikit-learn's scaler) numpy adds the columns one after the other, except for a
    single row, which it sums pairwise. The logistic regression's terms are added feature by
    feature here for every row count (what numpy did for more than one row); the others are
    row-major, which numpy sums pairwise along each row for any row count.
    """
    if kind == "lr":
        total = np.array(contrib[:, 0], dtype=contrib.dtype, copy=True)
        for j in range(1, contrib.shape[1]):
            total += contrib[:, j]
        return total
    return np.ascontiguousarray(contrib).sum(axis=1)


def _to_probability(kind: str, est, values: np.ndarray, contrib: np.ndarray) -> np.ndarray:
    """Rescale log-odds contributions so they add up to ``p - sigmoid(bias)``."""
    if kind == "rf":
        return contrib
    total = _row_totals(kind, contrib)
    p = est.predict_proba(values)[:, 1]
    logit = np.log(np.clip(p, 1e-12, 1) / np.clip(1 - p, 1e-12, 1))
    bias = logit - total
    p0 = 1 / (1 + np.exp(-bias))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(np.abs(total) > 1e-12, (p - p0) / total, p * (1 - p))
    return contrib * scale[:, None]


def contributions(model: RiskClassifier, X: pd.DataFrame, *, exact: bool = False) -> pd.DataFrame:
    """Additive contribution of every feature to every SKU's score.

    Parameters
    ----------
    model : RiskClassifier (fitted)
    X : DataFrame of shape (n_samples, n_features)
    exact : bool
        XGBoost only: exact tree SHAP instead of the Saabas decomposition (slow).

    Returns
    -------
    DataFrame of shape (n_samples, n_features), same index and feature columns as ``X``.
    """
    cols = list(model.feature_names_in_)
    values = X[cols].to_numpy(dtype=float)
    est = model.estimator_
    if model.kind == "ens":
        contrib = np.mean(
            [
                _to_probability(k, m, values, _member_contributions(k, m, values, exact))
                for k, m in est.members_.items()
            ],
            axis=0,
        )
    else:
        contrib = _member_contributions(model.kind, est, values, exact)
    return pd.DataFrame(contrib, index=X.index, columns=cols)


def top_drivers(model: RiskClassifier, X: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """The ``k`` features with the largest absolute contribution per SKU.

    Returns
    -------
    DataFrame indexed like ``X`` with columns ``driver_1 .. driver_k`` (feature names),
    ``driver_1_contribution ..`` (signed size) and ``driver_1_value ..`` (feature value).
    """
    contrib = contributions(model, X)
    c = contrib.to_numpy()
    k = min(k, c.shape[1])
    top = np.argsort(-np.abs(c), axis=1, kind="stable")[:, :k]
    rows = np.arange(len(c))[:, None]
    names = np.asarray(contrib.columns, dtype=object)[top]
    sizes = c[rows, top]
    vals = X[list(contrib.columns)].to_numpy(dtype=float)[rows, top]
    out = {}
    for j in range(k):
        out[f"driver_{j + 1}"] = names[:, j]
        out[f"driver_{j + 1}_contribution"] = sizes[:, j]
        out[f"driver_{j + 1}_value"] = vals[:, j]
    return pd.DataFrame(out, index=X.index)
