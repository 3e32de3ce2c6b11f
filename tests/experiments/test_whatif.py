"""Schedule simulation and what-ifs: determinism, paired CIs, caps and the plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from envs.config import RulesConfig
from experiments.whatif import (
    Schedule,
    WhatIfConfig,
    constrain_schedule,
    paired_ci,
    plot_what_if,
    simulate_schedule,
    what_if,
)
from ingest.errors import ConfigError, DataError
from simulator.demand import Catalog


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    n = 12
    return Catalog.build(
        n_skus=n,
        base_demand=np.linspace(1.0, 6.0, n),
        elasticity=-2.5,
        elasticity_se=0.2,
        list_price=2.0,
        unit_cost=1.0,
        initial_stock=40.0,
        dispersion=0.3,
        holding_cost_per_unit_week=0.01,
    )


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
    import experiments.plan_outcomes as wi

    sched = Schedule.constant(catalog.sku, 6, 0.2)
    whole = simulate_schedule(catalog, sched, n_episodes=40, seed=3)
    monkeypatch.setattr(wi, "_CHUNK_ROWS", 5)  # 5 SKUs per chunk, one episode at a time
    chunked = simulate_schedule(catalog, sched, n_episodes=40, seed=3)
    assert whole.totals["profit"].shape == chunked.totals["profit"].shape == (12, 40)
    # Different chunking draws different numbers, but both estimate the same means.
    m1, m2 = whole.sku_mean("units_sold"), chunked.sku_mean("units_sold")
    assert np.all(np.abs(m1 - m2) < 0.25 * m1 + 2)


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


def test_what_if_from_files(catalog, tmp_path):
    from experiments.whatif import read_rules, what_if_from_files

    sched = Schedule(
        sku=catalog.sku[:2],
        discount=np.tile([0.0, 0.2, 0.4, 0.6], (2, 1)),
        coupon=np.zeros((2, 4)),
    )
    path = tmp_path / "plan.csv"
    sched.to_frame().assign(plan_key="K").to_csv(path, index=False)
    rules = tmp_path / "rules.toml"
    rules.write_text("[rules]\ndiscount_levels = [0.0, 0.25, 0.5]\nmarkdown_only = true\n")
    assert read_rules(rules).discount_levels == (0.0, 0.25, 0.5)
    table, plot, text = what_if_from_files(
        catalog,
        WhatIfConfig(sku="sku1", max_discount=0.5, n_episodes=50),
        schedule_path=path,
        rules_path=rules,
        fallback=Schedule.constant(catalog.sku, 4, 0.0),
        plot_path=tmp_path / "p.png",
    )
    # Depths snap down to the ladder (0.2 -> 0, 0.4 -> 0.25); 0.6 is capped at 0.5.
    assert "weekly discount: 0%, 0%, 25%, 50%" in text
    assert plot is not None and plot.exists()
    assert set(table["metric"]) >= {"profit", "sell_through", "leftover_units"}
    rules.write_text("[rules]\ndiscount_levels = [0.1]\n")
    with pytest.raises(ConfigError, match="must start at 0.0"):
        read_rules(rules)


def test_what_if_command_uses_the_run_exports(catalog, tmp_path):
    from experiments.whatif import what_if_command

    catalog.to_frame().to_parquet(tmp_path / "catalog.parquet")
    sched = Schedule(catalog.sku, np.tile([0.1, 0.3, 0.3], (12, 1)), np.zeros((12, 3)))
    sched.to_frame().to_csv(tmp_path / "schedules.csv", index=False)
    plot = tmp_path / "w.png"
    text = what_if_command(
        tmp_path / "catalog.parquet",
        WhatIfConfig(sku="sku2", n_episodes=20),
        plot_path=plot,
    )
    assert f"schedule: {tmp_path / 'schedules.csv'}" in text
    assert "weekly discount: 10%, 30%, 30%" in text and plot.exists()
    (tmp_path / "schedules.csv").unlink()
    text = what_if_command(
        tmp_path / "catalog.parquet",
        WhatIfConfig(sku="sku2", n_episodes=20, exit_week=2),
        plot_path=plot,
        policy="fixed:0.2",
        weeks=4,
    )
    assert "fixed:0.2 (fixed)" in text and "weekly discount: 20%, 20%\n" in text


def test_simulate_cli_what_if(catalog, tmp_path, capsys):
    from experiments.cli import main

    catalog.to_frame().to_parquet(tmp_path / "catalog.parquet")
    sched = Schedule(catalog.sku, np.tile([0.1, 0.3, 0.5], (12, 1)), np.zeros((12, 3)))
    sched.to_frame().to_csv(tmp_path / "schedules.csv", index=False)
    plot = tmp_path / "cli.png"
    args = ["simulate", "--catalog", str(tmp_path / "catalog.parquet"), "--sku", "sku4",
            "--max-discount", "0.4", "--n-runs", "30", "--plot", str(plot)]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "weekly discount: 10%, 30%, 40%" in out and plot.exists()
    assert main(args[:5] + ["--sku", "sku5", "--exit-week", "2"]) == 2
    assert "exactly one --sku" in capsys.readouterr().err
