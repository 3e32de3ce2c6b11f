"""Export tables, writers (files and SQL), alerts and the report, on a small simulated plan."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.alerts import alerts_table, describe_schedule, write_alerts
from app.exports import (
    SCHEDULE_COLUMNS,
    check_export_target,
    drivers_text,
    new_product_flags_table,
    read_table,
    schedules_table,
    sku_summary_table,
    write_tables,
)
from app.pipeline_config import ExportConfig, NewProductConfig
from app.report import ReportInputs, roi_summary, write_report
from ingest.errors import ConfigError, DataError
from planning.outcomes import simulate_schedule
from planning.schedule import Schedule
from simulator.demand import Catalog

N, H = 6, 5


@pytest.fixture(scope="module")
def plan():
    cat = Catalog.build(
        n_skus=N,
        sku=[f"A{i}" for i in range(N)],
        category=["SOUP", "SOUP", "SOUP", "BREAD & ROLLS", "BREAD & ROLLS", "TEA"],
        base_demand=np.linspace(1, 4, N),
        elasticity=-3.0,
        list_price=2.0,
        unit_cost=1.0,
        initial_stock=30.0,
        holding_cost_per_unit_week=0.02,
    )
    disc = np.tile([0.0, 0.1, 0.3, 0.3, 0.5], (N, 1))
    rec = Schedule(cat.sku, disc, np.zeros((N, H)), name="ppo")
    kw = dict(n_episodes=80, seed=5)
    outcomes = {
        "recommended": simulate_schedule(cat, rec, **kw),
        "no_markdown": simulate_schedule(cat, Schedule.constant(cat.sku, H, 0.0, "none"), **kw),
        "best_heuristic": simulate_schedule(cat, Schedule.constant(cat.sku, H, 0.2), **kw),
    }
    scores = pd.DataFrame(
        {
            "sku": [f"A{i}" for i in range(N)] + ["NEW1", "NEW2", "OLD"],
            "risk": [0.9, 0.8, 0.7, 0.95, 0.6, 0.85, 0.9, 0.2, 0.9],
            "tier": ["high"] * 5 + ["high", "high", "low", "high"],
            "driver_1": "weeks_since_last_sale",
            "driver_1_contribution": 0.5,
            "driver_2": "velocity_4",
            "driver_2_contribution": -0.25,
        }
    )
    return cat, outcomes, scores


def test_tables_have_the_columns_and_rows(plan):
    cat, outcomes, scores = plan
    sched = schedules_table(outcomes["recommended"], "K")
    assert list(sched.columns) == list(SCHEDULE_COLUMNS)
    assert len(sched) == N * H and set(sched["week"]) == set(range(1, H + 1))
    assert (sched["expected_stock_left"] >= 0).all()
    # Stock left falls by the units sold, week by week (means over the same episodes).
    one = sched[sched["sku"] == "A5"]
    assert np.allclose(-np.diff(np.r_[30.0, one["expected_stock_left"]]), one["expected_units"])
    summary = sku_summary_table(cat, scores, outcomes, "K")
    assert len(summary) == N and summary["sku"].tolist() == [f"A{i}" for i in range(N)]
    for col in ("rec_profit", "none_profit", "heur_profit", "profit_vs_none", "rec_sell_through",
                "heur_leftover_units", "none_margin_given_away", "profit_vs_heur_ci_low"):  # fmt: skip
        assert col in summary.columns
    assert np.allclose(summary["none_margin_given_away"], 0.0)
    assert np.allclose(summary["profit_vs_none"], summary["rec_profit"] - summary["none_profit"])
    assert (summary["profit_vs_none_ci_low"] <= summary["profit_vs_none"]).all()
    assert summary["top_drivers"].iloc[0] == "weeks_since_last_sale (+0.500); velocity_4 (-0.250)"
    with pytest.raises(DataError, match="no_markdown"):
        sku_summary_table(cat, scores, {"recommended": outcomes["recommended"]}, "K")


def test_new_product_flag_rule(plan):
    _, _, scores = plan
    products = pd.DataFrame(
        {
            "sku": ["NEW1", "NEW2", "OLD", "A0"],
            "category": ["X", "X", "X", "SOUP"],
            "launch_week": [45, 50, 2, 40],
        }
    )
    flags = new_product_flags_table(scores, products, 52, NewProductConfig(13, 0.5), "K")
    # NEW2 is too safe, OLD too old; A0 launched 12 weeks ago with risk 0.9.
    assert flags["sku"].tolist() == ["A0", "NEW1"]
    assert flags["age_weeks"].tolist() == [12, 7]
    assert flags["rule"].iloc[0].startswith("launched in the last 13 weeks")


def test_files_are_replaced_and_sql_does_not_duplicate(plan, tmp_path):
    cat, outcomes, scores = plan
    sched = schedules_table(outcomes["recommended"], "K1")
    tables = {"schedules": sched, "sku_summary": sku_summary_table(cat, scores, outcomes, "K1")}
    for fmt in ("csv", "parquet"):
        cfg = ExportConfig(format=fmt)
        write_tables(tables, tmp_path, cfg)
        write_tables(tables, tmp_path, cfg)
        back = read_table("schedules", tmp_path, cfg)
        assert len(back) == N * H and back["sku"].iloc[0] == "A0"
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    cfg = ExportConfig(format="sql", sql_url=url)
    write_tables(tables, tmp_path, cfg)
    write_tables(tables, tmp_path, cfg)  # same plan key: replaced, not added
    other = {k: v.assign(plan_key="K2") for k, v in tables.items()}
    write_tables(other, tmp_path, cfg)  # another plan sits beside it
    back = read_table("schedules", tmp_path, cfg)
    assert back.groupby("plan_key").size().to_dict() == {"K1": N * H, "K2": N * H}
    # A failing write rolls the whole transaction back: nothing of it lands.
    bad = {"schedules": sched.assign(plan_key="K3"), "sku_summary": sched.assign(plan_key="K3")}
    with pytest.raises(DataError, match="without column"):
        write_tables(bad, tmp_path, cfg)
    assert "K3" not in set(read_table("schedules", tmp_path, cfg)["plan_key"])


def test_bad_targets_fail_early(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match="cannot create output folder"):
        check_export_target(blocker / "out", ExportConfig())
    with pytest.raises(DataError, match="unknown database driver 'nosuchdb'"):
        check_export_target(tmp_path, ExportConfig(format="sql", sql_url="nosuchdb://x"))
    refused = "postgresql+psycopg2://u:secret@127.0.0.1:1/db"
    with pytest.raises(DataError, match="cannot be opened") as info:
        check_export_target(tmp_path, ExportConfig(format="sql", sql_url=refused))
    assert "secret" not in str(info.value)
    with pytest.raises(ConfigError, match="sql_url"):
        ExportConfig(format="sql")


def test_alerts_and_report(plan, tmp_path):
    cat, outcomes, scores = plan
    sched = schedules_table(outcomes["recommended"], "K")
    summary = sku_summary_table(cat, scores, outcomes, "K")
    alerts = alerts_table(summary, sched)
    assert len(alerts) == N
    assert (
        alerts["recommendation"].iloc[0]
        == "wk 1 full price; wk 2 10% off; wk 3-4 30% off; wk 5 50% off"
    )
    (tmp_path / "alerts").mkdir()
    (tmp_path / "alerts" / "stale.md").write_text("old")
    files = write_alerts(
        alerts, tmp_path, stock_assumption="S", horizon_weeks=H, n_episodes=80, ci_level=0.95
    )
    assert sorted(p.name for p in files.values()) == ["bread-rolls.md", "soup.md", "tea.md"]
    assert not (tmp_path / "alerts" / "stale.md").exists()
    soup = files["SOUP"].read_text()
    assert "3 SKU(s) at risk" in soup and "A0" in soup and "weeks_since_last_sale" in soup

    roi = roi_summary(outcomes["recommended"], outcomes["no_markdown"]).set_index("key")
    rec, none = outcomes["recommended"], outcomes["no_markdown"]
    avoided = (none.totals["leftover_units"] - rec.totals["leftover_units"]).sum(0).mean()
    assert roi.loc["leftover_units", "mean"] == pytest.approx(avoided)
    assert roi.loc["leftover_units", "ci_low"] <= avoided <= roi.loc["leftover_units", "ci_high"]
    inputs = ReportInputs(
        scores=scores,
        selected=list(cat.sku),
        selection_rule="tier high",
        outcomes=outcomes,
        catalog_frame=cat.to_frame(),
        stock_assumption="S",
        n_episodes=80,
        ci_level=0.95,
        horizon_weeks=H,
        stages=pd.DataFrame({"stage": ["x"], "seconds": [1.0]}),
    )
    path, headline = write_report(inputs, tmp_path)
    text = path.read_text()
    assert "Stock assumption:** S" in text and "profit vs doing nothing" in text
    for png in ("roi.png", "policy_comparison.png", "risk_distribution.png", "top_schedules.png"):
        assert (path.parent / png).stat().st_size > 1000
    assert headline["roi/leftover_units"] == pytest.approx(avoided)


def test_describe_schedule_and_drivers():
    weeks = pd.DataFrame(
        {"week": [1, 2, 3, 4], "discount": [0.0, 0.2, 0.2, 0.2], "coupon": [0, 0, 0.1, 0]}
    )
    assert describe_schedule(weeks) == "wk 1 full price; wk 2-4 20% off (+10% coupon wk 3)"
    assert drivers_text(pd.DataFrame({"top_drivers": ["a; b"]})).tolist() == ["a; b"]
