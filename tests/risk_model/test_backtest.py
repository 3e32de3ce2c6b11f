"""Backtests on a synthetic world with known dead SKUs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from ingest.errors import ConfigError
from risk_model.backtest import (
    JSON_KEYS,
    BacktestConfig,
    evaluate,
    format_table,
    json_rows,
    plot_backtest,
    run_backtest,
)
from risk_model.labels import LabelConfig

TEST_CUTOFF = 44


def _truth_target(truth: pd.DataFrame, index: pd.Index) -> np.ndarray:
    """Known outcome: the SKU's demand has died by two weeks after the test cutoff."""
    t = truth.set_index("sku").reindex(index)
    return (t["goes_dead"] & (t["dead_week"] <= TEST_CUTOFF + 2)).to_numpy(dtype=int)


def test_rows_have_exactly_the_json_keys_and_baselines(synth_backtest):
    rows = json_rows(synth_backtest)
    assert [r["model"] for r in rows] == ["lr", "xgb", "rule_wsls", "noise_floor"]
    for r in rows:
        assert tuple(r) == JSON_KEYS
        lo, hi = r["roc_auc_ci"]
        assert lo <= r["roc_auc"] <= hi
        assert r["n_pos"] == round(r["base_rate"] * r["n"])
    text = format_table(rows)
    assert "rule_wsls" in text and "noise_floor" in text
    assert 0 <= synth_backtest.noise_floor < 0.05


def test_model_beats_the_rule_against_the_known_truth(synth_backtest, synth):
    _, _, truth = synth
    preds = synth_backtest.predictions
    target = _truth_target(truth, preds["xgb"].index)
    assert 0.03 < target.mean() < 0.3
    auc = {k: roc_auc_score(target, df["risk"]) for k, df in preds.items()}
    assert auc["xgb"] > auc["rule_wsls"] + 0.05
    assert auc["lr"] > auc["rule_wsls"] + 0.05
    assert auc["rule_wsls"] > auc["noise_floor"]


def test_calibration_per_decile_within_ci(synth_backtest):
    df = synth_backtest.predictions["xgb"]
    deciles = pd.qcut(df["risk"].rank(method="first"), 10, labels=False)
    # Exact (Clopper-Pearson) intervals, Bonferroni-adjusted for the 10 deciles.
    alpha = 0.05 / 10
    for _, g in df.groupby(deciles):
        k, n = int(g["y"].sum()), len(g)
        lo = stats.beta.ppf(alpha / 2, k, n - k + 1) if k > 0 else 0.0
        hi = stats.beta.ppf(1 - alpha / 2, k + 1, n - k) if k < n else 1.0
        assert lo <= g["risk"].mean() <= hi, (k, n, g["risk"].mean())


def test_same_seed_same_numbers(synth, synth_backtest):
    ds, panel, _ = synth
    again = run_backtest(ds, panel, synth_backtest.config)
    assert json_rows(again) == json_rows(synth_backtest)


def test_plots_are_written(synth_backtest, tmp_path):
    paths = plot_backtest(synth_backtest, tmp_path)
    assert {p.name for p in paths} == {"roc.png", "pr.png", "calibration.png", "importance.png"}
    assert all(p.stat().st_size > 1000 for p in paths)


def test_evaluate_known_values():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    m = evaluate(y, p, 0.5, n_bootstrap=20, rng=np.random.default_rng(0))
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.5)
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert m["n"] == 4 and m["n_pos"] == 2


def test_overlapping_train_and_test_windows_are_refused():
    with pytest.raises(ConfigError, match="train_cutoff"):
        BacktestConfig(train_cutoff=30, test_cutoff=35, label=LabelConfig(horizon_weeks=13))
    with pytest.raises(ConfigError, match="models"):
        BacktestConfig(models=("svm",))
