"""The demand fit's category groups are independent tasks: any map gives the same catalog,
and a category fitted alone gives the same estimates as inside the full fit."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.dataset import Dataset
from ingest.panel import build_panel
from simulator.fit import FitConfig, fit_catalog
from simulator.synthetic import SyntheticConfig, generate_world

FIELDS = ("elasticity", "elasticity_se", "base_demand", "season", "coupon_coef", "dispersion")


@pytest.fixture(scope="module")
def panel():
    world = generate_world(SyntheticConfig(n_skus=240, n_weeks=60, n_categories=4, seed=3))
    return build_panel(Dataset(tables=world.tables, source="synthetic", fingerprint="g"))


@pytest.fixture(scope="module")
def full(panel):
    return fit_catalog(panel, FitConfig())


def test_each_group_is_one_task_and_the_map_does_not_change_the_fit(panel, full):
    calls: list[int] = []

    def reversed_map(fn, items):
        calls.append(len(items))
        return [fn(item) for item in items[::-1]][::-1]

    other = fit_catalog(panel, FitConfig(), map_tasks=reversed_map)
    n_cats = full.categories.shape[0]
    assert n_cats >= 3
    assert calls and all(n == n_cats for n in calls)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(other.catalog, name), getattr(full.catalog, name))
    np.testing.assert_array_equal(
        other.estimates["elasticity_raw"].to_numpy(), full.estimates["elasticity_raw"].to_numpy()
    )


def test_global_pooling_is_a_single_task(panel):
    calls: list[int] = []

    def counting_map(fn, items):
        calls.append(len(items))
        return [fn(item) for item in items]

    fit_catalog(panel, FitConfig(pooling="global"), map_tasks=counting_map)
    assert calls == [1]


def test_a_category_fitted_alone_matches_the_full_fit(panel, full):
    # pooling "none": the raw per-SKU estimates, so nothing is borrowed across categories
    # after the GLM either
    cfg = FitConfig(pooling="none")
    whole = fit_catalog(panel, cfg)
    cat = str(whole.categories["category"].iloc[1])
    alone = fit_catalog(panel[panel["category"].astype(str) == cat], cfg)
    est = whole.estimates.set_index("sku")
    own = alone.estimates.set_index("sku")
    assert len(own) == int((est["category"].astype(str) == cat).sum()) > 10
    for col in ("elasticity_raw", "elasticity_raw_se"):
        np.testing.assert_array_equal(own[col].to_numpy(), est.loc[own.index, col].to_numpy())
    # the level's weighted mean price is summed over the panel's rows in another order
    np.testing.assert_allclose(
        own["base_demand_fitted"].to_numpy(),
        est.loc[own.index, "base_demand_fitted"].to_numpy(),
        rtol=1e-12,
    )
    row = whole.categories.set_index("category").loc[cat]
    assert alone.categories["dispersion"].iloc[0] == row["dispersion"]
