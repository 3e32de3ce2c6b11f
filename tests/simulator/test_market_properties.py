"""Laws of the market step, checked by Hypothesis over random catalogs and actions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.errors import DataError
from simulator.demand import Catalog
from simulator.market import expected_demand, expected_demand_grid, initial_state, step

N = 16


@st.composite
def catalogs(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    return Catalog.build(
        n_skus=N,
        base_demand=rng.uniform(0.0, 30.0, N),
        elasticity=-rng.uniform(0.05, 4.0, N),
        coupon_coef=rng.uniform(0.0, 3.0, N),
        dispersion=rng.choice([0.0, 0.3, 2.0], N),
        ref_price_sensitivity=rng.choice([0.0, 0.8], N),
        ref_price_memory=rng.uniform(0.0, 0.9, N),
        fatigue_rate=rng.choice([0.0, 0.1], N),
        fatigue_decay=rng.uniform(0.0, 0.9, N),
        return_rate=rng.uniform(0.0, 0.2, N),
        list_price=rng.uniform(0.5, 20.0, N),
        unit_cost=rng.uniform(0.1, 10.0, N),
        holding_cost_per_unit_week=rng.uniform(0.0, 0.2, N),
        salvage_value_per_unit=rng.uniform(0.0, 1.0, N),
        initial_stock=rng.integers(0, 60, N).astype(float),
        start_week=rng.integers(0, 52, N),
    )


actions = st.lists(
    st.tuples(st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.7]), st.sampled_from([0.0, 0.05, 0.2])),
    min_size=1,
    max_size=8,
)


def _play(cat, plan, seed):
    rng = np.random.default_rng(seed)
    state = initial_state(cat)
    out = []
    for t, (d, c) in enumerate(plan):
        state, res = step(cat, state, d, c, rng, exit_now=t == len(plan) - 1)
        out.append((state, res))
    return out


@settings(max_examples=40, deadline=None)
@given(cat=catalogs(), plan=actions, seed=st.integers(0, 10**6))
def test_stock_never_negative_and_sales_within_stock(cat, plan, seed):
    rng = np.random.default_rng(seed)
    state = initial_state(cat)
    for d, c in plan:
        before = state.stock.copy()
        state, res = step(cat, state, d, c, rng)
        assert np.all(res.units_sold <= before)
        assert np.all(res.units_sold >= 0)
        assert np.all(state.stock >= 0)
        assert np.all(res.units_returned <= res.units_sold)
        assert np.allclose(res.lost_sales, res.demand - res.units_sold)


@settings(max_examples=40, deadline=None)
@given(cat=catalogs(), plan=actions, seed=st.integers(0, 10**6))
def test_profit_adds_up(cat, plan, seed):
    for _, r in _play(cat, plan, seed):
        total = (
            r.revenue - r.coupon_cost - r.refunds - r.cogs - r.holding_cost + r.salvage - r.writeoff
        )
        assert np.allclose(total, r.profit)


@settings(max_examples=40, deadline=None)
@given(
    cat=catalogs(),
    d1=st.floats(0.0, 0.9),
    d2=st.floats(0.0, 0.9),
    week=st.integers(0, 200),
    ref=st.floats(0.3, 1.0),
)
def test_deeper_discount_never_lowers_expected_demand(cat, d1, d2, week, ref):
    lo, hi = min(d1, d2), max(d1, d2)
    weeks = np.full(N, week)
    # with reference-price memory the net exponent is elasticity - gamma (< 0 as well)
    a = expected_demand(cat, weeks, lo, ref_price=ref)
    b = expected_demand(cat, weeks, hi, ref_price=ref)
    assert np.all(b >= a * (1 - 1e-12))


@settings(max_examples=30, deadline=None)
@given(
    cat=catalogs(),
    grid=actions,
    week=st.integers(0, 200),
    ref=st.floats(0.3, 1.0),
    fatigue=st.floats(0.0, 0.9),
)
def test_demand_grid_equals_expected_demand_column_by_column(cat, grid, week, ref, fatigue):
    weeks = np.full(N, week)
    d = np.array([g[0] for g in grid])
    c = np.array([g[1] for g in grid])
    table = expected_demand_grid(cat, weeks, d, c, ref_price=ref, fatigue=fatigue)
    assert table.shape == (N, len(grid))
    for j, (dj, cj) in enumerate(grid):
        one = expected_demand(cat, weeks, dj, cj, ref_price=ref, fatigue=fatigue)
        np.testing.assert_allclose(table[:, j], one, rtol=1e-12, atol=1e-12)


def test_demand_grid_rejects_discounts_out_of_range():
    cat = Catalog.build(n_skus=2)
    with pytest.raises(DataError, match="discount must lie in"):
        expected_demand_grid(cat, np.zeros(2, int), [0.0, 0.9], [0.0, 0.1])


@settings(max_examples=20, deadline=None)
@given(cat=catalogs(), plan=actions, seed=st.integers(0, 10**6))
def test_same_seed_same_path(cat, plan, seed):
    a = _play(cat, plan, seed)
    b = _play(cat, plan, seed)
    for (sa, ra), (sb, rb) in zip(a, b, strict=True):
        assert np.array_equal(ra.demand, rb.demand)
        assert np.array_equal(ra.profit, rb.profit)
        assert np.array_equal(sa.stock, sb.stock)


def test_catalog_round_trip_through_parquet(tmp_path):
    rng = np.random.default_rng(0)
    cat = Catalog.build(
        n_skus=5,
        elasticity=-rng.uniform(0.5, 3.0, 5),
        elasticity_se=rng.uniform(0.1, 0.5, 5),
        coupon_assumed=[True, False, True, False, True],
        season=rng.uniform(0.5, 1.5, (5, 52)),
        start_week=[0, 3, 7, 51, 20],
    )
    path = tmp_path / "c.parquet"
    cat.to_frame().to_parquet(path)
    back = Catalog.from_frame(pd.read_parquet(path))
    for name in ("elasticity", "elasticity_se", "season", "coupon_assumed", "start_week"):
        assert np.array_equal(getattr(back, name), getattr(cat, name))
    assert back.sku.tolist() == cat.sku.tolist()
    assert not back.elasticity_assumed.any()


def test_bad_catalog_files_give_clear_errors(tmp_path):
    from simulator.demand import read_catalog

    with pytest.raises(DataError, match="not found"):
        read_catalog(tmp_path / "missing.parquet")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="could not be read"):
        read_catalog(junk)
    frame = Catalog.build(n_skus=3).to_frame().drop(columns="elasticity")
    frame.to_csv(tmp_path / "noel.csv", index=False)
    with pytest.raises(DataError, match="'elasticity' is missing"):
        read_catalog(tmp_path / "noel.csv")
    frame = Catalog.build(n_skus=3).to_frame()
    frame.loc[1, "elasticity"] = 0.7
    frame.to_csv(tmp_path / "pos.csv", index=False)
    with pytest.raises(DataError, match=r"elasticity.*sku1.*<= 0"):
        read_catalog(tmp_path / "pos.csv")
