"""Tests of the synthetic world: determinism, known truth, consistency laws, dead SKUs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingest.errors import ConfigError
from ingest.schema import TABLES
from simulator.synthetic import SyntheticConfig, generate_world, write_world


@pytest.fixture(scope="module")
def world():
    return generate_world(SyntheticConfig(n_skus=120, n_weeks=40, seed=3, with_baskets=True))


def test_same_seed_same_world_and_flags_do_not_change_history(world):
    again = generate_world(SyntheticConfig(n_skus=120, n_weeks=40, seed=3, with_baskets=True))
    for name, frame in world.tables.items():
        pd.testing.assert_frame_equal(frame, again.tables[name])
    pd.testing.assert_frame_equal(world.truth, again.truth)
    bare = generate_world(
        SyntheticConfig(
            n_skus=120,
            n_weeks=40,
            seed=3,
            with_interactions=False,
            with_stock=False,
            with_promotions=False,
        )
    )
    assert set(bare.tables) == {"products", "sales"}
    pd.testing.assert_frame_equal(bare.tables["sales"], world.tables["sales"])
    other = generate_world(SyntheticConfig(n_skus=120, n_weeks=40, seed=4))
    assert not other.tables["sales"]["units"].equals(world.tables["sales"]["units"])


def test_tables_follow_canonical_schema(world):
    for name, frame in world.tables.items():
        spec = TABLES[name]
        assert set(spec.required_columns) <= set(frame.columns), name
        assert set(frame.columns) <= set(spec.column_names), name
        assert not frame.duplicated(list(spec.key)).any(), name
        assert frame["sku"].isin(world.tables["products"]["sku"]).all(), name


def test_truth_is_known_and_matches_catalog(world):
    truth = world.truth
    for col in (
        "sku",
        "category",
        "elasticity",
        "base_demand",
        "coupon_coef",
        "display_coef",
        "mailer_coef",
        "goes_dead",
        "dead_week",
        "launch_week",
        "dispersion",
    ):
        assert col in truth.columns
    assert len(truth) == 120 and (truth["elasticity"] < 0).all()
    np.testing.assert_allclose(world.catalog.elasticity, truth["elasticity"])
    np.testing.assert_allclose(world.catalog.base_demand, truth["base_demand"])
    assert truth["goes_dead"].any() and not truth["goes_dead"].all()
    assert truth.loc[truth["goes_dead"], "dead_week"].notna().all()
    assert truth.loc[~truth["goes_dead"], "dead_week"].isna().all()
    assert (truth["launch_week"] > 1).any()  # some SKUs launch inside the history
    # categories carry their own elasticity means (pooling helps)
    spread_between = truth.groupby("category")["elasticity"].mean().std()
    assert spread_between > 0.3


def test_interaction_funnel_is_monotone_and_matches_sales(world):
    inter = world.tables["interactions"]
    assert (inter["views"] >= inter["clicks"]).all()
    assert (inter["clicks"] >= inter["add_to_cart"]).all()
    assert (inter["add_to_cart"] >= inter["purchases"]).all()
    m = inter.merge(world.tables["sales"], on=["sku", "week"], how="left").fillna({"units": 0})
    assert (m["purchases"] <= m["units"]).all()
    # views follow demand: more units, more views
    assert np.corrcoef(m["views"], m["units"])[0, 1] > 0.5


def test_units_never_exceed_stock_available_and_censoring_is_rare(world):
    stock = world.tables["stock"]
    prev = stock.assign(week=stock["week"] + 1).rename(columns={"on_hand": "prev"})
    m = world.tables["sales"].merge(prev, on=["sku", "week"], how="inner")
    assert len(m) > 1000
    assert (m["units"] <= m["prev"]).all()
    censored = (m["units"] == m["prev"]).mean()
    assert censored < 0.05
    both = stock.merge(prev, on=["sku", "week"]).merge(
        world.tables["sales"], on=["sku", "week"], how="left"
    )
    # replenishment never takes stock away
    assert (both["on_hand"] >= both["prev"] - both["units"].fillna(0) - 1e-9).all()


def test_revenue_arithmetic(world):
    sales = world.tables["sales"].merge(world.tables["products"], on="sku")
    gross = sales["revenue"] + sales["discount_amount"] + sales["coupon_amount"]
    np.testing.assert_allclose(gross, sales["units"] * sales["list_price"], atol=0.02)
    assert (sales["discount_amount"] > 0).mean() > 0.1  # prices vary enough to identify
    assert (sales["coupon_amount"] > 0).any()
    assert (sales["returns"] <= sales["units"]).all()
    baskets = world.tables["baskets"]
    per_sku_week = baskets.groupby(["sku", "week"])["units"].sum()
    joined = sales.set_index(["sku", "week"])["units"]
    np.testing.assert_allclose(per_sku_week.reindex(joined.index).fillna(0), joined)


def test_dead_skus_really_stop_selling(world):
    truth = world.truth.set_index("sku")
    sales = world.tables["sales"].join(truth[["goes_dead", "dead_week"]], on="sku")
    dead = sales[sales["goes_dead"]]
    late = dead[dead["week"] > dead["dead_week"] + 6]["units"].sum()
    early = dead[dead["week"] <= dead["dead_week"] - 10]["units"].sum()
    assert early > 100 and late <= 0.01 * early
    # no sales before launch
    launch = sales.join(truth[["launch_week"]], on="sku")
    assert (launch["week"] >= launch["launch_week"]).all()


def test_write_world_csv_round_trip(world, tmp_path):
    paths = write_world(world, tmp_path, fmt="csv")
    assert {p.name for p in paths} >= {"products.csv", "sales.csv", "truth.csv", "stock.csv"}
    sales = pd.read_csv(tmp_path / "sales.csv", dtype={"sku": str})
    np.testing.assert_allclose(sales["units"], world.tables["sales"]["units"])
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("field", "value"),
    [("n_skus", 0), ("dead_share", 1.5), ("elasticity_range", (-1.0, 0.5)), ("n_weeks", 3)],
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        SyntheticConfig(**{field: value})
