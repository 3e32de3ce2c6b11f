"""Classifiers: estimator API, calibration and thresholds from validation, determinism,
explanations that add up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.base import clone

from ingest.errors import ConfigError, DataError
from risk_model.explain import contributions, top_drivers
from risk_model.models import (
    RiskClassifier,
    best_f1_threshold,
    cost_threshold,
    recall_threshold,
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    n = 1500
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "noise", "c"])
    logit = -3 + 2.0 * X["a"] - 1.5 * X["b"] + 0.5 * X["c"]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def test_threshold_helpers():
    y = np.array([1, 1, 0, 1, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.2, 0.1, 0.05])
    # F1 at 0.6: tp 3, fp 1 -> 6/7; at 0.8: tp 2 -> 4/5
    assert best_f1_threshold(y, p) == pytest.approx(0.6)
    # missing a positive costs 10: flag down to the last positive
    assert cost_threshold(y, p, 10.0) == pytest.approx(0.6)
    # missing costs 0.1: only the top two (both positive) are worth flagging
    assert cost_threshold(y, p, 0.1) == pytest.approx(0.8)
    # the top scores are negatives and a miss is cheap: flag nothing
    assert cost_threshold(np.array([0, 0, 1]), np.array([0.9, 0.8, 0.7]), 0.5) > 0.9
    assert recall_threshold(y, p, 2 / 3) == pytest.approx(0.8)


@pytest.mark.parametrize("kind", ["lr", "rf", "xgb", "ens"])
def test_fit_follows_estimator_api_and_is_deterministic(data, kind):
    X, y = data
    model = RiskClassifier(kind=kind, random_state=3)
    assert clone(model).get_params() == model.get_params()
    assert model.fit(X, y) is model
    p = model.predict_proba(X)[:, 1]
    assert p.min() >= 0 and p.max() <= 1
    assert model.calibration_ in ("isotonic", "sigmoid")
    assert set(model.calibration_brier_) == {"isotonic", "sigmoid"}
    assert model.medium_threshold_ <= model.threshold_
    np.testing.assert_array_equal(model.predict(X), (p >= model.threshold_).astype(int))
    again = RiskClassifier(kind=kind, random_state=3).fit(X, y).predict_proba(X)[:, 1]
    np.testing.assert_array_equal(p, again)
    assert model.feature_importances_.argmax() in (0, 1)  # a or b drive the outcome


def test_threshold_comes_from_validation_not_training(data):
    X, y = data
    val = slice(1000, None)
    model = RiskClassifier(kind="lr").fit(X[:1000], y[:1000], X_val=X[val], y_val=y[val])
    # Refit with the validation labels shuffled: the estimator is the same, the threshold
    # and calibration move -> they were read from the validation set.
    rng = np.random.default_rng(0)
    shuffled = RiskClassifier(kind="lr").fit(
        X[:1000], y[:1000], X_val=X[val], y_val=rng.permutation(y[val])
    )
    np.testing.assert_allclose(
        model.estimator_[-1].coef_, shuffled.estimator_[-1].coef_, rtol=1e-12
    )
    assert model.threshold_ != shuffled.threshold_


def test_single_class_training_is_a_clear_error(data):
    X, _ = data
    with pytest.raises(DataError, match="2 of each class"):
        RiskClassifier(kind="lr").fit(X, np.zeros(len(X), dtype=int))
    # One positive in validation cannot be cross-fitted for calibration: a clear error, not
    # scikit-learn's ValueError from inside the calibrator.
    y_val = np.zeros(200, dtype=int)
    y_val[0] = 1
    with pytest.raises(DataError, match="validation set has 1 positive"):
        RiskClassifier(kind="lr").fit(X, data[1], X_val=X.iloc[:200], y_val=y_val)
    with pytest.raises(ConfigError, match="kind"):
        RiskClassifier(kind="svm").fit(X, np.r_[0, 1, 0, 1].repeat(len(X) // 4))  # type: ignore[arg-type]


def test_contributions_add_up_to_the_score(data):
    X, y = data
    for kind in ("xgb", "lr", "rf", "ens"):
        model = RiskClassifier(kind=kind, random_state=0).fit(X, y)
        c = contributions(model, X.iloc[:50])
        est = model.estimator_
        if kind == "xgb":
            margin = est.get_booster().predict(
                xgb.DMatrix(X.iloc[:50].to_numpy()), output_margin=True
            )
            bias = margin - c.sum(axis=1).to_numpy()
            np.testing.assert_allclose(bias, bias[0], atol=1e-4)
        elif kind == "lr":
            logit = est.decision_function(X.iloc[:50].to_numpy())
            np.testing.assert_allclose(logit - c.sum(axis=1), est[-1].intercept_[0], atol=1e-8)
        else:  # random forest and the ensemble: probability units, constant base value
            prob = est.predict_proba(X.iloc[:50].to_numpy())[:, 1]
            bias = prob - c.sum(axis=1).to_numpy()
            # XGBoost computes in float32: the ensemble adds up to about 1e-6
            np.testing.assert_allclose(bias, bias[0], atol=1e-8 if kind == "rf" else 1e-5)
        assert c["a"].abs().mean() > c["noise"].abs().mean()


def test_top_drivers_are_sorted_by_size(data):
    X, y = data
    model = RiskClassifier(kind="xgb").fit(X, y)
    top = top_drivers(model, X.iloc[:20], k=3)
    assert list(top.columns[:3]) == ["driver_1", "driver_1_contribution", "driver_1_value"]
    sizes = top[[f"driver_{j}_contribution" for j in (1, 2, 3)]].abs().to_numpy()
    assert (np.diff(sizes, axis=1) <= 1e-12).all()
    row = top.iloc[0]
    assert row["driver_1_value"] == X.iloc[0][row["driver_1"]]
