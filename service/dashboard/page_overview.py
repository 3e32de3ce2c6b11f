"""Overview: the plan's at-risk SKUs and their stock value by category, the risk
distribution, the ROI of the plan against doing nothing with its CIs, and what is waiting
for review."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from service.dashboard import charts, fmt
from service.dashboard.client import ApiError
from service.dashboard.session import Ctx, show_error

CHART_CATEGORIES = 20
"""Categories drawn in the charts (the most stock at risk first); the table lists all."""


def category_table(overview: dict, ctx: Ctx) -> pd.DataFrame:
    """One readable row per category."""
    rows = []
    for c in overview["categories"]:
        rows.append(
            {
                "category": c["category"],
                "at-risk SKUs": c["n_skus"],
                "high risk": c["by_tier"].get("high", 0),
                "waiting for review": c["by_status"].get("pending", 0),
                "approved": c["by_status"].get("approved", 0) + c["by_status"].get("overridden", 0),
                "stock units": round(c["stock_units"]),
                f"stock value at cost{ctx.plan.currency_label}": round(c["stock_value_at_cost"]),
                f"expected gain{ctx.plan.currency_label}": ctx.plan.money_ci(
                    c["expected_gain"], c["expected_gain_ci_low"], c["expected_gain_ci_high"]
                ),
                "dead units avoided": round(c["dead_units_avoided"]),
                "mean risk": fmt.pct(c["mean_risk"]),
            }
        )
    return pd.DataFrame(rows)


def roi_table(overview: dict, ctx: Ctx) -> pd.DataFrame:
    """The ROI lines, their total and the memo items, with CIs (money in one number of
    decimals for the whole table, so the lines read as a sum)."""
    lines = overview.get("roi_lines") or []
    biggest = max((abs(r["mean"] or 0.0) for r in lines if r["unit"] == "currency"), default=0.0)
    decimals = 0 if biggest >= fmt.BIG_MONEY else 2
    rows = []
    for line in lines:
        if line["unit"] == "currency":
            value = ctx.plan.money(line["mean"], decimals)
            bounds = fmt.ci(line["ci_low"], line["ci_high"], decimals)
        else:
            value = f"{fmt.number(line['mean'])} {line['unit']}"
            bounds = fmt.ci(line["ci_low"], line["ci_high"])
        item = line["item"] if line["part"] != "total" else f"= {line['item']}"
        rows.append({"": item, "expected": value, "95 % CI": bounds})
    return pd.DataFrame(rows)


def render(ctx: Ctx) -> None:
    plan = ctx.plan
    try:
        ov = ctx.client.overview(plan.id)
    except ApiError as err:
        show_error(err, "The overview")
        return
    lines = {r["key"]: r for r in ov.get("roi_lines") or []}
    cats = ov["categories"]
    stock_value = sum(c["stock_value_at_cost"] for c in cats)
    cols = st.columns(4)
    cols[0].metric("at-risk SKUs in the plan", fmt.number(ov["n_skus"]))
    cols[1].metric("waiting for review", fmt.number(ov["pending_review"]))
    cols[2].metric("stock at risk (value at cost)", plan.money(stock_value))
    if "profit" in lines:
        p = lines["profit"]
        cols[3].metric(
            "profit vs doing nothing",
            plan.money(p["mean"]),
            help=f"95 % CI {fmt.ci(p['ci_low'], p['ci_high'])}, paired per SKU",
        )
    st.caption(
        f"Plan {plan.id} · {plan.horizon_weeks} weeks"
        + (f" from {plan.week_starts[0]}" if plan.week_starts and plan.week_starts[0] else "")
        + (f" · money in {plan.currency}" if plan.currency else "")
    )

    top = sorted(cats, key=lambda c: -c["stock_value_at_cost"])[:CHART_CATEGORIES]
    order = [c["category"] for c in top]
    left, right = st.columns(2)
    by_tier = pd.DataFrame(
        [{"category": c["category"], "tier": t, "SKUs": n}
         for c in top for t, n in c["by_tier"].items()]
    )  # fmt: skip
    if not by_tier.empty:
        left.altair_chart(
            charts.stacked_counts(by_tier, "category", "tier", "SKUs", "At-risk SKUs by category",
                                  order),
            width="stretch",
        )  # fmt: skip
    hist = ov["risk_histogram"]
    right.altair_chart(
        charts.histogram(hist["edges"], hist["counts"], "Risk distribution"), width="stretch"
    )

    gain = pd.DataFrame(
        {
            "category": order,
            "gain": [c["expected_gain"] for c in top],
            "low": [c["expected_gain_ci_low"] for c in top],
            "high": [c["expected_gain_ci_high"] for c in top],
        }
    )
    left, right = st.columns(2)
    if not gain.empty:
        left.altair_chart(
            charts.bars_with_ci(gain, "category", "gain", "low", "high",
                                "Expected gain over doing nothing (95 % CI)",
                                f"profit vs doing nothing{plan.currency_label}"),
            width="stretch",
        )  # fmt: skip
    if len(cats) > len(top):
        left.caption(f"The {len(top)} of {len(cats)} categories with the most stock at risk "
                     "(value at cost); every category is in the table below.")  # fmt: skip
    with right:
        st.markdown("**ROI of the plan against doing nothing**")
        roi = roi_table(ov, ctx)
        if roi.empty:
            st.info("This plan was imported without ROI figures (no MLflow run found).")
        else:
            st.dataframe(roi, hide_index=True, width="stretch")

    st.subheader("By category")
    st.dataframe(category_table(ov, ctx), hide_index=True, width="stretch")
