"""Label definitions and the noise floor on a hand-built panel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingest.errors import ConfigError, DataError
from risk_model.labels import LabelConfig, established, make_labels, noise_floor


def _panel(series: dict[str, list[float]], on_hand: dict[str, list[float]] | None = None):
    rows = []
    for sku, units in series.items():
        for w, u in enumerate(units, start=1):
            row = {"sku": sku, "week": w, "units": float(u)}
            if on_hand is not None:
                row["on_hand"] = on_hand[sku][w - 1]
            rows.append(row)
    return pd.DataFrame(rows)


# 10 weeks: cutoff 5 with lookback 5 and horizon 5.
SERIES = {
    "dies": [2, 2, 2, 0, 2, 0, 0, 0, 0, 0],  # established, nothing after -> 1
    "lives": [2, 2, 2, 2, 2, 1, 0, 1, 0, 3],  # established, keeps selling -> 0
    "drops": [4, 4, 4, 4, 4, 1, 0, 0, 0, 0],  # falls by 95 %
    "thin": [0, 0, 0, 0, 1, 0, 0, 0, 0, 0],  # not established; any-sale only
    "never": [0] * 10,  # not eligible anywhere
}
CFG = {"lookback_weeks": 5, "horizon_weeks": 5, "min_units": 5, "min_active_weeks": 3}


def test_default_label_and_eligibility():
    lab = make_labels(_panel(SERIES), 5, LabelConfig(**CFG))
    assert list(lab.index) == ["dies", "drops", "lives"]
    assert lab["label"].to_dict() == {"dies": 1, "drops": 0, "lives": 0}
    assert lab.loc["dies", "recent_rate"] == pytest.approx(8 / 5)
    assert lab.loc["dies", "p_chance"] == pytest.approx(np.exp(-8))


def test_alternative_labels():
    any_sale = make_labels(_panel(SERIES), 5, LabelConfig(kind="any_sale", **CFG))
    assert any_sale["label"].to_dict() == {"dies": 1, "drops": 0, "lives": 0, "thin": 1}
    drop = make_labels(_panel(SERIES), 5, LabelConfig(kind="sales_drop", **CFG))
    assert drop["label"].to_dict() == {"dies": 1, "drops": 1, "lives": 0}


def test_sell_through_label_needs_stock():
    with pytest.raises(DataError, match="on_hand"):
        make_labels(_panel(SERIES), 5, LabelConfig(kind="sell_through", **CFG))
    stock = {k: [20.0] * 10 for k in SERIES}
    stock["lives"] = [5.0] * 10  # sells 7 of 5 on hand -> well above 20 %
    lab = make_labels(
        _panel(SERIES, stock),
        5,
        LabelConfig(kind="sell_through", sell_through_threshold=0.2, **CFG),
    )
    # dies: 0/20 < 0.2; drops: 1/20 < 0.2; lives: 7/5 >= 0.2
    assert lab["label"].to_dict() == {"dies": 1, "drops": 1, "lives": 0}


def test_noise_floor_is_mean_chance_probability():
    lab = make_labels(_panel(SERIES), 5, LabelConfig(**CFG))
    expected = np.mean([np.exp(-8), np.exp(-20), np.exp(-10)])
    assert noise_floor(lab) == pytest.approx(expected)
    assert np.isnan(noise_floor(lab.iloc[:0]))


def test_cutoff_without_enough_future_is_refused():
    with pytest.raises(DataError, match="cutoff <= 5"):
        make_labels(_panel(SERIES), 6, LabelConfig(**CFG))


@pytest.mark.parametrize(
    ("field", "value"),
    [("kind", "nope"), ("horizon_weeks", 0), ("drop_share", 1.2), ("min_active_weeks", 20)],
)
def test_bad_label_config_names_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        LabelConfig(**{field: value})


def test_established_uses_only_the_past():
    est = established(_panel(SERIES), 5, LabelConfig(**CFG))
    assert est.to_dict() == {
        "dies": True,
        "drops": True,
        "lives": True,
        "never": False,
        "thin": False,
    }
    changed = _panel(SERIES)
    changed.loc[changed["week"] > 5, "units"] = 100.0
    assert established(changed, 5, LabelConfig(**CFG)).equals(est)
