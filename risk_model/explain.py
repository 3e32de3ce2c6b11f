"""Per-SKU explanations: the top drivers of each score, with sign and size.

Contributions are additive terms of the *uncalibrated* model's score, so they explain the
ranking (calibration is monotone and does not change which SKU ranks above which):

- XGBoost: exact tree SHAP values from ``Booster.predict(pred_contribs=True)`` (log-odds).
- Logistic regression: ``coef * standardized value`` per feature (log-odds), measured
  against the average training SKU.
- Random forest: the path decomposition of Saabas (each split's change of the leaf
  probability, credited to the split's feature, averaged over trees; probability units).

A positive contribution raises the risk.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xgboost as xgb

from risk_model.models import RiskClassifier


def _rf_contributions(forest, X: np.ndarray) -> np.ndarray:
    n, d = X.shape
    total = np.zeros((n, d))
    for tree in forest.estimators_:
        t = tree.tree_
        value = t.value[:, 0, :]
        prob = value[:, 1] / np.maximum(value.sum(axis=1), 1e-12)
        parent = np.full(t.node_count, -1)
        for side in (t.children_left, t.children_right):
            has = side >= 0
            parent[side[has]] = np.flatnonzero(has)
        child = np.flatnonzero(parent >= 0)
        delta = prob[child] - prob[parent[child]]
        feat = t.feature[parent[child]]
        m = sp.csr_matrix((delta, (child, feat)), shape=(t.node_count, d))
        path = tree.decision_path(X)
        total += np.asarray((path @ m).todense())
    return total / len(forest.estimators_)


def contributions(model: RiskClassifier, X: pd.DataFrame) -> pd.DataFrame:
    """Additive contribution of every feature to every SKU's score.

    Parameters
    ----------
    model : RiskClassifier (fitted)
    X : DataFrame of shape (n_samples, n_features)

    Returns
    -------
    DataFrame of shape (n_samples, n_features), same index and feature columns as ``X``.
    """
    cols = list(model.feature_names_in_)
    values = X[cols].to_numpy(dtype=float)
    est = model.estimator_
    if model.kind == "xgb":
        booster = est.get_booster()
        contrib = booster.predict(xgb.DMatrix(values), pred_contribs=True)[:, :-1]
    elif model.kind == "lr":
        transform, scaler, lr = est[0], est[1], est[2]
        z = scaler.transform(transform.transform(values))
        contrib = z * lr.coef_[0][None, :]
    else:
        contrib = _rf_contributions(est, values)
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
