"""Export tables, writers (files and SQL), alerts and the report, on a small simulated plan."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.alerts import alerts_table, describe_schedule, write_alerts
from app.exports import (
    NOT_ESTABLISHED,
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
from app.presentation import (
    SETTING_NAMES,
    TableContext,
    plan_week_starts,
    product_labels,
    readable_note,
)
from app.report import (
    ROI_LINES,
    ReportInputs,
    cents_adding_up,
    policy_comparison,
    roi_per_episode,
    roi_summary,
    top_gain_skus,
    write_report,
)
from envs.config import RulesConfig
from ingest.errors import ConfigError, DataError
from planning.diagnostics import (
    NO_DEMAND_NOTE,
    deepest_allowed_schedule,
    sells_nothing,
    without_markdown,
)
from planning.outcomes import SimulationSettings, simulate_schedule, simulate_schedules
from planning.schedule import Schedule
from simulator.demand import Catalog

N, H = 6, 5
RULES = RulesConfig(discount_levels=(0.0, 0.1, 0.3, 0.5))


@pytest.fixture(scope="module")
def plan():
    cat = Catalog.build(
        n_skus=N,
        sku=[f"A{i}" for i in range(N)],
        category=["SOUP", "SOUP", "SOUP", "BREAD & ROLLS", "BREAD & ROLLS", "TEA"],
        # A4 sells nothing at any price; A5 keeps its full price in the plan
        base_demand=[1.0, 1.6, 2.2, 2.8, 0.0, 4.0],
        base_demand_se=0.2,
        elasticity=-3.0,
        elasticity_se=0.2,
        list_price=2.0,
        unit_cost=1.1,
        initial_stock=30.0,
        holding_cost_per_unit_week=0.02,
        salvage_value_per_unit=0.1,
        return_rate=0.05,
    )
    disc = np.tile([0.0, 0.1, 0.3, 0.3, 0.5], (N, 1))
    disc[5] = 0.0
    settings = SimulationSettings(seed=5, n_episodes=80)
    probe = simulate_schedule(
        cat, deepest_allowed_schedule(cat, RULES, H), n_episodes=80, seed=settings.simulation_seed
    )
    no_demand = sells_nothing(probe)
    rec = without_markdown(Schedule(cat.sku, disc, np.zeros((N, H)), name="ppo"), no_demand)
    plans = {
        "recommended": rec,
        "no_markdown": Schedule.constant(cat.sku, H, 0.0, "no_markdown"),
        "best_heuristic": Schedule.constant(cat.sku, H, 0.3, "fixed_30"),
    }
    outcomes = simulate_schedules(
        cat, plans, n_episodes=80, seed=settings.simulation_seed, draw_parameters=True
    )
    scores = pd.DataFrame(
        {
            "sku": [f"A{i}" for i in range(N)] + ["NEW1", "NEW2", "OLD", "NEW3"],
            "risk": [0.9, 0.8, 0.25, 0.95, 0.6, 0.85, 0.9, 0.2, 0.9, 0.7],
            "tier": ["high"] * 5 + ["high", "high", "low", "high", "high"],
            "established": [True] * 6 + [False, True, True, True],
            "driver_1": "weeks_since_last_sale",
            "driver_1_contribution": 0.5,
            "driver_1_value": 7.0,
            "driver_2": "vel_4",
            "driver_2_contribution": -0.25,
            "driver_2_value": 0.25,
        }
    )
    products = pd.DataFrame(
        {
            "sku": [f"A{i}" for i in range(N)] + ["NEW1", "NEW2", "OLD", "NEW3"],
            "category": ["SOUP"] * 3 + ["BREAD & ROLLS"] * 2 + ["TEA"] + ["X"] * 4,
            "department": "GROCERY",
            "description": [
                "CHICKEN SOUP 10 OZ",
                None,
                "TOMATO SOUP",
                "RYE BREAD",
                "BAGELS",
                "GREEN TEA",
                "NEW A",
                "NEW B",
                "OLD C",
                "NEW D",
            ],  # fmt: skip
            "unit_cost": 1.0,
            "launch_week": [40, 40, 40, 40, 40, 40, 45, 50, 2, 48],
        }
    )
    calendar = pd.DataFrame({"week": [51, 52], "week_start": ["2017-12-18", "2017-12-25"]})
    ctx = TableContext(
        currency="USD",
        labels=product_labels(products),
        week_starts=plan_week_starts(calendar, 52, H),
        settings=settings,
    )
    return cat, outcomes, scores, products, ctx, no_demand


def _decimals_ok(values: pd.Series, decimals: int) -> bool:
    v = values.astype(float).to_numpy()
    return bool(np.allclose(v, np.round(v, decimals), rtol=0, atol=1e-12))


def test_tables_have_the_columns_rows_and_readable_values(plan):
    cat, outcomes, scores, _, ctx, no_demand = plan
    sched = schedules_table(outcomes["recommended"], "K", cat, ctx)
    assert list(sched.columns) == list(SCHEDULE_COLUMNS)
    assert len(sched) == N * H and set(sched["week"]) == set(range(1, H + 1))
    assert (sched["expected_stock_left"] >= 0).all()
    # Plan week 1 is the week after the data's last (52, starting 2017-12-25).
    assert sched.loc[sched["week"] == 1, "week_start"].unique().tolist() == ["2018-01-01"]
    assert sched.loc[sched["week"] == 5, "week_start"].unique().tolist() == ["2018-01-29"]
    assert (sched["currency"] == "USD").all()
    assert sched.loc[sched["sku"] == "A0", "description"].iloc[0] == "CHICKEN SOUP 10 OZ"
    # No description: the category stands in.
    assert sched.loc[sched["sku"] == "A1", "description"].iloc[0] == "SOUP"
    for col in ("net_price", "expected_revenue", "expected_margin"):
        assert _decimals_ok(sched[col], 2), col
    assert _decimals_ok(sched["discount"], 4)
    a0 = sched[sched["sku"] == "A0"]
    assert a0["net_price"].tolist() == [2.0, 1.8, 1.4, 1.4, 1.0]
    summary = sku_summary_table(cat, scores, outcomes, "K", ctx, no_demand=no_demand)
    assert len(summary) == N and summary["sku"].tolist() == [f"A{i}" for i in range(N)]
    for col in ("rec_profit", "none_profit", "heur_profit", "profit_vs_none", "rec_sell_through",
                "heur_leftover_units", "none_margin_given_away", "profit_vs_heur_ci_low",
                "description", "department", "currency", "recommendation", "weeks_below_cost",
                "no_demand_at_any_price", "simulation"):  # fmt: skip
        assert col in summary.columns, col
    money = [c for c in summary.columns if "profit" in c or "margin_given_away" in c]
    for col in money + ["list_price", "unit_cost", "min_net_price"]:
        assert _decimals_ok(summary[col], 2), col
    assert _decimals_ok(summary["rec_sell_through"], 4)
    assert (summary["none_margin_given_away"] == 0.0).all()
    assert (summary["profit_vs_none_ci_low"] <= summary["profit_vs_none"]).all()
    assert summary["top_drivers"].iloc[0] == (
        "weeks since the last sale = 7 (raises risk); units per week (last 4 weeks) = 0.25 "
        "(lowers risk)"
    )
    assert summary["simulation"].iloc[0] == ctx.settings.describe()
    with pytest.raises(DataError, match="no_markdown"):
        sku_summary_table(cat, scores, {"recommended": outcomes["recommended"]}, "K")


def test_a_sku_left_at_full_price_differs_from_doing_nothing_by_exactly_zero(plan):
    cat, outcomes, scores, _, ctx, no_demand = plan
    summary = sku_summary_table(cat, scores, outcomes, "K", ctx, no_demand=no_demand)
    full_price = summary.set_index("sku").loc[["A4", "A5"]]
    for col in ("profit_vs_none", "profit_vs_none_ci_low", "profit_vs_none_ci_high",
                "leftover_units_vs_none", "margin_given_away_vs_none"):  # fmt: skip
        assert (full_price[col] == 0.0).all(), col
    assert summary.set_index("sku").loc["A3", "profit_vs_none"] != 0.0


def test_no_demand_and_below_cost_are_said(plan):
    cat, outcomes, scores, _, ctx, no_demand = plan
    assert no_demand.tolist() == [False, False, False, False, True, False]
    rec = outcomes["recommended"].schedule
    assert not np.asarray(rec.discount)[4].any()  # no markdown where no price sells
    summary = sku_summary_table(cat, scores, outcomes, "K", ctx, no_demand=no_demand)
    s = summary.set_index("sku")
    assert s.loc["A4", "recommendation"] == f"none: {NO_DEMAND_NOTE}"
    assert s.loc["A5", "recommendation"] == "wk 1-5 full price"
    # 50 % off a 2.00 list price is 1.00 < unit cost 1.10 (week 5 only); 30 % off is 1.40.
    assert s.loc["A0", "weeks_below_cost"] == 1 and s.loc["A0", "first_week_below_cost"] == 5
    assert s.loc["A0", "min_net_price"] == 1.0
    assert s.loc["A5", "weeks_below_cost"] == 0
    alerts = alerts_table(summary).set_index("sku")
    assert NO_DEMAND_NOTE in alerts.loc["A4", "check"]
    assert "below unit cost 1.10 in 1 week(s) from week 5" in alerts.loc["A0", "check"]
    assert alerts.loc["A5", "check"] == ""


def test_roi_lines_add_up_to_the_profit_per_episode_and_as_printed(plan):
    _, outcomes, *_ = plan
    rec, none = outcomes["recommended"], outcomes["no_markdown"]
    per_episode = roi_per_episode(rec, none)
    lines = sum(per_episode[key] for _, key, _ in ROI_LINES)
    assert np.allclose(lines, per_episode["profit"], rtol=0, atol=1e-9)
    # Cost of goods and write-off cancel: every unit is sold or written off at cost.
    assert np.allclose(per_episode["cogs"] + per_episode["writeoff"], 0.0, atol=1e-9)
    roi = roi_summary(rec, none)
    shown = roi.set_index("key")["shown"]
    line_cents = sum(round(shown[key] * 100) for _, key, _ in ROI_LINES)
    assert line_cents == round(shown["profit"] * 100)
    assert shown["profit"] == round(per_episode["profit"].mean(), 2)
    assert shown["sales_at_list"] > 0 and shown["discount_given"] < 0
    r = roi.set_index("key")
    assert (r["ci_low"] <= r["mean"]).all() and (r["mean"] <= r["ci_high"]).all()
    avoided = (none.totals["leftover_units"] - rec.totals["leftover_units"]).sum(0).mean()
    assert r.loc["leftover_units", "mean"] == pytest.approx(avoided)


def test_cents_adding_up():
    assert cents_adding_up([0.004, 0.004, 0.004], 0.012) == [0.01, 0.0, 0.0]
    values = [1.005, 2.335, -3.3349, 10.0]
    out = cents_adding_up(values, sum(values))
    assert round(sum(out) * 100) == round(sum(values) * 100)
    assert all(abs(a - b) < 0.01 for a, b in zip(out, values, strict=True))


def test_new_product_flags_are_ranked_short_and_exclude_planned_skus(plan):
    _, _, scores, products, ctx, _ = plan
    panel = pd.DataFrame(
        {
            "sku": ["NEW1"] * 3 + ["NEW3"] * 3 + ["A0"] * 3,
            "week": [50, 51, 52] * 3,
            "units": [1.0, 1.0, 1.0, 9.0, 9.0, 9.0, 5.0, 5.0, 5.0],
        }
    )
    rule = NewProductConfig(max_age_weeks=13, min_risk=0.5, max_flags=5)
    flags, n = new_product_flags_table(
        scores, products, panel, 52, rule, "K", ctx, exclude={"A0"}, velocity_weeks=3
    )
    # A0 is planned already; NEW2 and A2 are too safe; OLD too old. NEW3 (risk 0.7, 9 units a week)
    # outranks NEW1 (risk 0.9, 1 unit a week) by risk x stock value; the A SKUs sell nothing.
    assert n == 6 and flags["sku"].tolist()[:2] == ["NEW3", "NEW1"]
    assert "A0" not in set(flags["sku"])
    assert flags.set_index("sku").loc["NEW3", "stock_value"] == 8 * 9.0 * 1.0
    assert flags.set_index("sku").loc["NEW1", "tier"] == NOT_ESTABLISHED
    assert flags["description"].iloc[0] == "NEW D" and (flags["currency"] == "USD").all()
    short, n2 = new_product_flags_table(
        scores, products, panel, 52, NewProductConfig(13, 0.5, max_flags=1), "K", ctx
    )
    assert len(short) == 1 and n2 == 7
    assert flags["rule"].iloc[0].startswith("launched in the last 13 weeks")


def test_files_are_replaced_and_sql_does_not_duplicate(plan, tmp_path):
    cat, outcomes, scores, _, ctx, _ = plan
    sched = schedules_table(outcomes["recommended"], "K1", cat, ctx)
    tables = {"schedules": sched, "sku_summary": sku_summary_table(cat, scores, outcomes, "K1")}
    for fmt in ("csv", "parquet"):
        cfg = ExportConfig(format=fmt)
        write_tables(tables, tmp_path, cfg)
        write_tables(tables, tmp_path, cfg)
        back = read_table("schedules", tmp_path, cfg)
        assert len(back) == N * H and back["sku"].iloc[0] == "A0"
    text = (tmp_path / "schedules.csv").read_text()
    assert "0000000" not in text and "9999999" not in text  # no 1.9900000000000002
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
    with pytest.raises(ConfigError, match="currency"):
        ExportConfig(currency="dollars")


def test_alerts_and_report(plan, tmp_path):
    cat, outcomes, scores, _, ctx, no_demand = plan
    summary = sku_summary_table(cat, scores, outcomes, "K", ctx, no_demand=no_demand)
    alerts = alerts_table(summary)
    assert len(alerts) == N
    assert (
        alerts.set_index("sku").loc["A0", "recommendation"]
        == "wk 1 full price; wk 2 10% off; wk 3-4 30% off; wk 5 50% off"
    )
    (tmp_path / "alerts").mkdir()
    (tmp_path / "alerts" / "stale.md").write_text("old")
    files = write_alerts(alerts, tmp_path, stock_assumption="S", horizon_weeks=H, simulation="SIM")
    assert sorted(p.name for p in files.values()) == ["bread-rolls.md", "soup.md", "tea.md"]
    assert not (tmp_path / "alerts" / "stale.md").exists()
    soup = files["SOUP"].read_text()
    assert "3 SKU(s) at risk" in soup and "A0" in soup and "weeks since the last sale" in soup
    assert "CHICKEN SOUP 10 OZ" in soup and "USD" in soup and "Expected values: SIM" in soup
    # A2 (risk 0.25) reaches 50 % off, below cost: called out with its low risk.
    assert "3 SKU(s) would sell below unit cost" in soup and "1 of them with risk below" in soup
    assert "no demand at any price" in files["BREAD & ROLLS"].read_text()

    inputs = ReportInputs(
        scores=scores,
        selected=list(cat.sku),
        selection_rule="tier high",
        outcomes=outcomes,
        catalog_frame=cat.to_frame(),
        stock_assumption="S",
        simulation=ctx.settings.describe(),
        horizon_weeks=H,
        stages=pd.DataFrame({"stage": ["x"], "seconds": [1.0]}),
        summary=summary,
        notes=[readable_note("assumed (fit.stock.weeks_of_cover)")],
    )
    path, headline = write_report(inputs, tmp_path)
    text = path.read_text()
    assert "Stock assumption:** S" in text and "profit vs doing nothing" in text
    assert "SKUs scored: 10" in text and "Established SKUs" in text and "9, by tier 8 high" in text
    assert "4 of 6 planned SKUs in some weeks, 1 of them with risk below 0.3" in text
    assert "[fit.stock] weeks_of_cover" in text and "fit.stock.weeks_of_cover" not in text
    for png in ("roi.png", "policy_comparison.png", "risk_distribution.png", "top_schedules.png"):
        assert (path.parent / png).stat().st_size > 1000
    shown = roi_summary(outcomes["recommended"], outcomes["no_markdown"]).set_index("key")
    assert headline["roi/profit"] == shown.loc["profit", "shown"]
    assert headline["policy/no_markdown/profit_vs_none"] == 0.0


def test_plots_answer_the_right_questions(plan):
    cat, outcomes, *_ = plan
    rec, none = outcomes["recommended"], outcomes["no_markdown"]
    comp = policy_comparison(outcomes).set_index("policy")
    assert comp.loc["no_markdown", "profit_vs_none"] == 0.0
    assert comp.loc["no_markdown", "profit_vs_none_ci_high"] == 0.0
    gain = (rec.totals["profit"] - none.totals["profit"]).mean(axis=1)
    top = top_gain_skus(rec, none, 3)
    # Only SKUs the plan changes (not A4, A5), largest gain first.
    assert not {4, 5} & set(top.tolist()) and len(top) == 3
    assert list(gain[top]) == sorted(gain[[0, 1, 2, 3]], reverse=True)[:3]


def test_describe_schedule_drivers_labels_and_calendar():
    weeks = pd.DataFrame(
        {"week": [1, 2, 3, 4], "discount": [0.0, 0.2, 0.2, 0.2], "coupon": [0, 0, 0.1, 0]}
    )
    assert describe_schedule(weeks) == "wk 1 full price; wk 2-4 20% off (+10% coupon wk 3)"
    assert drivers_text(pd.DataFrame({"top_drivers": ["a; b"]})).tolist() == ["a; b"]
    assert plan_week_starts(None, 52, 3) is None
    cal = pd.DataFrame({"week": [10], "week_start": ["2020-02-29"]})
    assert plan_week_starts(cal, 10, 2) == ["2020-03-07", "2020-03-14"]
    with pytest.raises(DataError, match="not a YYYY-MM-DD date"):
        plan_week_starts(cal.assign(week_start="soon"), 10, 2)
    assert all(v.startswith(("[", "a fixed")) for v in SETTING_NAMES.values())
    assert readable_note("(fit.cost_share, fit.stock.salvage_share)") == (
        "([fit] cost_share, [fit.stock] salvage_share)"
    )


def test_label_columns_fast_path_for_text_series_equals_the_general_path():
    labels = pd.DataFrame(
        {"sku": ["a", "b", "b"], "description": ["A", "B", "B2"], "department": ["x", pd.NA, "y"]}
    )
    skus = ["b", "zz", "a", "b"]
    for ctx in (TableContext(), TableContext(labels=product_labels(labels))):
        general = ctx.label_columns(iter(skus))  # an iterator: the per-element path
        fast = ctx.label_columns(pd.Series(skus, dtype="str"))
        pd.testing.assert_frame_equal(fast, general, check_exact=True)
        assert list(fast.index) == skus
    # with a missing id the general path still runs (no fast path, same as before)
    with_na = TableContext().label_columns(pd.Series(["a", None], dtype="str"))
    assert len(with_na) == 2
