"""Features at a cutoff: no leakage, switches, groups present only with their data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingest.errors import DataError
from risk_model.features import FEATURE_GROUPS, FeatureConfig, build_features

CUTOFF = 30


def _features(ds, panel, config=None, baskets=True):
    b = ds.get("baskets") if baskets is True else (baskets if baskets is not False else None)
    return build_features(panel, CUTOFF, config, products=ds.products, baskets=b)


def test_perturbing_the_future_leaves_features_unchanged(synth):
    ds, panel, _ = synth
    before = _features(ds, panel)
    future = panel["week"] > CUTOFF
    rng = np.random.default_rng(0)
    shifted = panel.copy()
    for col in ("units", "revenue", "discount_amount", "coupon_amount", "returns", "display"):
        shifted.loc[future, col] = rng.permutation(shifted.loc[future, col].to_numpy()) * 3 + 1
    for col in ("on_hand", "views", "clicks", "add_to_cart", "purchases"):
        shifted.loc[future, col] = 0.0
    # A SKU that only appears after the cutoff must not show up either.
    extra = shifted[shifted["sku"] == shifted["sku"].iloc[0]].copy()
    extra = extra[extra["week"] > CUTOFF].assign(sku="LATECOMER")
    shifted = pd.concat([shifted, extra], ignore_index=True)
    baskets = ds.get("baskets").copy()
    late = baskets["week"] > CUTOFF
    baskets.loc[late, "household_id"] = "H-future"
    baskets.loc[late, "units"] = 99.0
    after = _features(ds, shifted, baskets=baskets)
    pd.testing.assert_frame_equal(before, after)
    # ... while changing the past does move them (the test can fail).
    past = shifted.copy()
    past.loc[past["week"] == CUTOFF, "units"] += 5
    assert not _features(ds, past).equals(before)


def test_price_change_switch_drops_exactly_that_group(synth):
    ds, panel, _ = synth
    full = _features(ds, panel)
    lean = _features(ds, panel, FeatureConfig(price_change_features=False))
    assert set(full.columns) - set(lean.columns) == set(FEATURE_GROUPS["price_change"])
    pd.testing.assert_frame_equal(full[lean.columns], lean)


def test_optional_groups_follow_the_data(synth):
    ds, panel, _ = synth
    full = _features(ds, panel)
    for group in ("stock", "interactions", "buyers"):
        # product-type and manufacturer features need those product columns (not synthetic)
        wanted = {c for c in FEATURE_GROUPS[group] if not c.startswith(("ptype", "mfr", "line"))}
        assert wanted <= set(full.columns), group
    bare = panel.assign(on_hand=np.nan, views=np.nan)
    lean = _features(ds, bare, baskets=False)
    for group in ("stock", "interactions", "buyers"):
        assert not set(FEATURE_GROUPS[group]) & set(lean.columns), group
    assert np.isfinite(full.to_numpy()).all()


def test_known_values_on_one_sku(synth):
    ds, panel, _ = synth
    feats = _features(ds, panel)
    sku = feats.index[0]
    rows = panel[(panel["sku"] == sku) & (panel["week"] <= CUTOFF)].set_index("week")
    units = rows["units"]
    assert feats.loc[sku, "vel_4"] == pytest.approx(units.loc[CUTOFF - 3 : CUTOFF].mean())
    sold_weeks = units[units > 0].index
    assert feats.loc[sku, "weeks_since_last_sale"] == CUTOFF - sold_weeks.max()
    assert feats.loc[sku, "active_share_13"] == pytest.approx(
        (units.loc[CUTOFF - 12 : CUTOFF] > 0).mean()
    )


def test_cutoff_before_the_data_is_refused(synth):
    ds, panel, _ = synth
    with pytest.raises(DataError, match="cutoff week 1"):
        build_features(panel, 1)
