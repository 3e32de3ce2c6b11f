"""The rule baseline as a scorer: works where a model cannot be trained, monotone in the weeks
since the last sale, same columns as the models' scores."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.errors import DataError
from ingest.panel import build_panel
from risk_model.labels import LabelConfig
from risk_model.rule import RULE_FEATURE, rule_scores
from risk_model.scoring import RiskConfig, train_and_score
from simulator.synthetic import SyntheticConfig
from tests.risk_model.conftest import world_dataset


@pytest.fixture(scope="module")
def small():
    ds, _ = world_dataset(SyntheticConfig(n_skus=60, n_weeks=52, seed=1))
    return ds, build_panel(ds)


def test_a_small_world_cannot_train_a_model_but_the_rule_scores_it(small):
    ds, panel = small
    cfg = RiskConfig(models=("lr",), train_offsets=(0,))
    with pytest.raises(DataError, match="positive"):
        train_and_score(ds, panel, cfg)
    out = rule_scores(ds, panel, cfg)
    sc = out.scores
    assert sorted(sc["sku"]) == sorted(panel["sku"].astype(str).unique())
    assert {"sku", "risk", "tier", "established", "driver_1", "driver_1_value"} <= set(sc.columns)
    assert (sc["driver_1"] == RULE_FEATURE).all()
    assert sc["risk"].between(0, 1).all() and set(sc["tier"]) <= {"high", "medium", "low"}
    assert list(sc["risk"]) == sorted(sc["risk"], reverse=True)
    assert out.n_positive >= 1 and (sc["tier"] == "high").any()
    # Monotone: a SKU longer without a sale is never less at risk.
    by_weeks = sc.sort_values("driver_1_value")
    assert np.all(np.diff(by_weeks["risk"].to_numpy()) >= -1e-6)
    # The high tier is the top of the ranking.
    high = sc.loc[sc["tier"] == "high", "risk"]
    assert high.min() >= sc.loc[sc["tier"] != "high", "risk"].max()


def test_same_inputs_same_scores(small):
    ds, panel = small
    cfg = RiskConfig(models=("lr",), train_offsets=(0, 4))
    a, b = rule_scores(ds, panel, cfg).scores, rule_scores(ds, panel, cfg).scores
    assert a.equals(b)


def test_too_little_history_is_a_clear_error(small):
    ds, panel = small
    short = panel[panel["week"] <= panel["week"].min() + 15]
    cfg = RiskConfig(label=LabelConfig(horizon_weeks=13, lookback_weeks=13), train_offsets=(0,))
    with pytest.raises(DataError, match="no training cutoff has 13 weeks of history"):
        rule_scores(ds, short, cfg)
