"""Schedule simulation and what-ifs: determinism, paired CIs, caps and the plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.whatif import plot_what_if
from envs.config import RulesConfig
from ingest.errors import ConfigError, DataError
from planning.outcomes import paired_ci, simulate_schedule
from planning.schedule import Schedule
from planning.whatif import WhatIfConfig, constrain_schedule, what_if


@pytest.fixture(scope="module")
def catalog(plan_catalog):
    return plan_catalog


def test_same_seed_same_numbers_and_bookkeeping(catalog):
    sched = Schedule.constant(catalog.sku, 8, 0.3)
    a = simulate_schedule(catalog, sched, n_episodes=50, seed=7, draw_parameters=True)
    b = simulate_schedule(catalog, sched, n_episodes=50, seed=7, draw_parameters=True)
    c = simulate_schedule(catalog, sched, n_episodes=50, seed=8, draw_parameters=True)
    assert np.array_equal(a.totals["profit"], b.totals["profit"])
    assert not np.array_equal(a.totals["profit"], c.totals["profit"])
    t = a.totals
    # Profit is the sum of its terms; sold + left = stock; nothing sells below zero stock.
    recon = (
        t["revenue"]
        - t["coupon_cost"]
        - t["refunds"]
        - t["cogs"]
        - t["holding_cost"]
        + t["salvage"]
        - t["writeoff"]
    )
    assert np.allclose(recon, t["profit"])
    assert np.allclose(t["units_sold"] + t["leftover_units"], 40.0)
    assert (t["leftover_units"] >= 0).all()
    assert np.allclose(t["margin_given_away"], t["units_sold"] * 2.0 * 0.3)
    # Weekly means add up to the totals' means.
    assert np.allclose(a.weekly_mean["units"].sum(axis=1), t["units_sold"].mean(axis=1))
    assert np.allclose(a.weekly_mean["stock_left"][:, -1], t["leftover_units"].mean(axis=1))


def test_chunking_does_not_change_results(catalog, monkeypatch):
    import planning.outcomes as wi

    sched = Schedule.constant(catalog.sku, 6, 0.2)
    whole = simulate_schedule(catalog, sched, n_episodes=40, seed=3)
    monkeypatch.setattr(wi, "_CHUNK_ROWS", 5)  # 5 SKUs per chunk, one episode at a time
    chunked = simulate_schedule(catalog, sched, n_episodes=40, seed=3)
    assert whole.totals["profit"].shape == chunked.totals["profit"].shape == (12, 40)
    # Every draw is keyed by (seed, SKU, episode, week): chunking changes no number.
    for name, total in whole.totals.items():
        assert np.array_equal(total, chunked.totals[name]), name
    assert np.array_equal(whole.weekly_mean["units"], chunked.weekly_mean["units"])


def test_discount_sells_more_with_a_tight_paired_ci(catalog):
    none = simulate_schedule(
        catalog, Schedule.constant(catalog.sku, 8, 0.0), n_episodes=200, seed=1
    )
    deep = simulate_schedule(
        catalog, Schedule.constant(catalog.sku, 8, 0.4), n_episodes=200, seed=1
    )
    m, lo, hi = paired_ci(deep, none, "units_sold")
    assert lo > 0 and lo <= m <= hi
    # Common random numbers: the paired interval is narrower than the unpaired one.
    unpaired = np.sqrt(
        deep.totals["units_sold"].sum(0).var(ddof=1) + none.totals["units_sold"].sum(0).var(ddof=1)
    )
    paired = (deep.totals["units_sold"] - none.totals["units_sold"]).sum(0).std(ddof=1)
    assert paired < unpaired


def test_schedule_round_trip_and_bad_input(catalog):
    sched = Schedule(
        sku=catalog.sku,
        discount=np.tile(np.r_[0.0, 0.0, 0.2, 0.2, 0.4], (12, 1)),
        coupon=np.zeros((12, 5)),
        name="x",
    )
    back = Schedule.from_frame(sched.to_frame())
    assert np.array_equal(back.discount, sched.discount)
    frame = sched.to_frame()
    with pytest.raises(DataError, match="weeks 1..5"):
        Schedule.from_frame(frame.iloc[1:])
    with pytest.raises(DataError, match="'discount' is missing"):
        Schedule.from_frame(frame.drop(columns="discount"))
    with pytest.raises(DataError, match="discount \\+ coupon"):
        Schedule(sku=catalog.sku[:1], discount=np.full((1, 3), 0.96), coupon=np.zeros((1, 3)))
    with pytest.raises(DataError, match="do not match"):
        simulate_schedule(catalog.take([0, 1]), sched, n_episodes=2, seed=0)


def test_constrain_caps_exit_and_ladder(catalog):
    sched = Schedule(
        sku=catalog.sku[:1],
        discount=np.array([[0.0, 0.15, 0.35, 0.5, 0.6, 0.7]]),
        coupon=np.array([[0.0, 0.1, 0.1, 0.0, 0.0, 0.0]]),
    )
    rules = RulesConfig(discount_levels=(0.0, 0.1, 0.2, 0.3, 0.5), coupon_levels=(0.0, 0.1))
    out = constrain_schedule(sched, WhatIfConfig(sku="sku0", max_discount=0.4, exit_week=4), rules)
    assert out.horizon == 4
    assert np.allclose(out.discount, [[0.0, 0.1, 0.3, 0.3]])
    assert (out.discount + out.coupon <= 0.4 + 1e-12).all()
    with pytest.raises(ConfigError, match="past the schedule"):
        constrain_schedule(sched, WhatIfConfig(sku="sku0", exit_week=9))


def test_what_if_table_and_plot(catalog, tmp_path):
    sched = Schedule.constant(catalog.sku, 10, 0.3, "plan")
    cfg = WhatIfConfig(sku="sku3", max_discount=0.2, exit_week=6, n_episodes=300, seed=2)
    out, base, table = what_if(catalog, sched, cfg)
    assert out.schedule.horizon == 6 and np.allclose(out.schedule.discount, 0.2)
    assert base is not None
    row = table.set_index("metric")
    assert row.loc["units_sold", "vs_ci_low"] > 0  # 20 % off sells more than full price
    assert (row["ci_low"] <= row["mean"]).all() and (row["mean"] <= row["ci_high"]).all()
    png = plot_what_if(catalog, out, tmp_path / "wi.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(DataError, match="not in the catalog"):
        what_if(catalog, sched, WhatIfConfig(sku="nope"))
    assert isinstance(table, pd.DataFrame)
