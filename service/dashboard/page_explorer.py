"""SKU explorer: a filtered, sorted table of the plan's SKUs; one SKU's risk drivers, its
schedule beside the alternatives (doing nothing, the heuristics, the exact DP), what-if
controls that re-simulate it, and its review; and a what-if for a whole category with its
progress."""

from __future__ import annotations

import math
import time
from typing import Any

import pandas as pd
import streamlit as st

from service.dashboard import charts, fmt
from service.dashboard.client import FINISHED, ApiError
from service.dashboard.reviewing import review_form, schedule_editor
from service.dashboard.session import Ctx, Plan, memo, show_error

PAGE_SIZE = 50
STATUSES = ("pending", "approved", "rejected", "overridden", "exported")
SORTS = {
    "risk, highest first": "-risk",
    "gain over doing nothing, highest first": "-gain",
    "gain over doing nothing, lowest first": "gain",
    "expected profit, highest first": "-profit",
    "stock, largest first": "-initial_stock",
    "SKU": "sku",
    "category": "category",
    "review status": "status",
    "planner": "planner",
}
OUTCOMES = (
    ("profit", "profit", "money"),
    ("units_sold", "units sold", "units"),
    ("sell_through", "sell-through", "share"),
    ("leftover_units", "leftover units", "units"),
    ("margin_given_away", "margin given away", "money"),
    ("dead_stock_value", "dead stock (value at cost)", "money"),
)
"""Simulated outcomes shown, with their kind (how they are written)."""
EPISODES = (100, 200, 500, 1000)
MAX_DISCOUNT_PCT = 90
POLL_S = 0.4
"""Seconds between two looks at a category what-if's progress."""
SHOWN_BY_DEFAULT = ("recommended", "no_markdown", "dp")


def _value(plan: Plan, kind: str, x: Any) -> str:
    if kind == "money":
        return plan.money(x)
    if kind == "share":
        return fmt.pct(x, 1)
    return fmt.number(x, 1)


def _bounds(kind: str, lo: Any, hi: Any) -> str:
    if kind == "share":
        return f"[{fmt.pct(lo, 1)}, {fmt.pct(hi, 1)}]" if lo is not None else ""
    return fmt.ci(lo, hi, 0 if kind == "money" and abs(hi or 0) >= fmt.BIG_MONEY else 2)


def outcome_table(plan: Plan, outcomes: dict[str, dict], label: str) -> pd.DataFrame:
    """Each outcome of a simulated plan with its CI, and the paired difference against
    doing nothing with its CI."""
    rows = []
    for key, name, kind in OUTCOMES:
        o = outcomes.get(key)
        if not o:
            continue
        rows.append({
            "outcome": name,
            label: _value(plan, kind, o["mean"]),
            "95 % CI": _bounds(kind, o["ci_low"], o["ci_high"]),
            "vs doing nothing": _value(plan, kind, o.get("vs_no_markdown")),
            "95 % CI (paired)": _bounds(kind, o.get("vs_ci_low"), o.get("vs_ci_high")),
        })  # fmt: skip
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ the table
def _first_page() -> None:
    """A new filter or sort starts again from the first page."""
    st.session_state["f-page"] = 1


def _filters(ctx: Ctx, categories: list[str], tiers: list[str]) -> dict[str, Any]:
    c = st.columns([2, 2, 2, 2])
    f: dict[str, Any] = {
        "category": c[0].multiselect(
            "category", categories, key="f-category", on_change=_first_page
        ),
        "tier": c[1].multiselect("risk tier", tiers, key="f-tier", on_change=_first_page),
        "status": c[2].multiselect(
            "review status", STATUSES, key="f-status", on_change=_first_page
        ),
        "sort": SORTS[c[3].selectbox("sort by", list(SORTS), key="f-sort", on_change=_first_page)],
    }
    c = st.columns([2, 2, 2, 2])
    f["q"] = c[0].text_input("SKU contains", key="f-q", on_change=_first_page).strip() or None
    f["planner"] = (
        c[1].text_input("planner (e.g. ppo, dp)", key="f-planner", on_change=_first_page).strip()
        or None
    )
    min_risk = c[2].slider("minimum risk (%)", 0, 100, 0, 5, key="f-risk", on_change=_first_page)
    f["min_risk"] = min_risk / 100.0 if min_risk else None
    f["min_gain"] = c[3].number_input(f"minimum gain{ctx.plan.currency_label}", value=None,
                                      step=10.0, key="f-gain", on_change=_first_page)  # fmt: skip
    return f


def sku_rows(plan: Plan, items: list[dict]) -> pd.DataFrame:
    """The SKU page as a table (money rounded, shares as percentages)."""
    cur = plan.currency_label
    return pd.DataFrame(
        [
            {
                "SKU": r["sku"],
                "description": r.get("description") or "",
                "category": r["category"],
                "tier": r.get("tier") or "",
                "risk": r.get("risk"),
                "status": "exported" if r.get("export_id") else r["status"],
                "planner": r.get("recommended_policy") or "",
                "stock units": r.get("initial_stock"),
                f"gain vs doing nothing{cur}": _round(r.get("profit_vs_none"), 2),
                "95 % CI": fmt.ci(r.get("profit_vs_none_ci_low"), r.get("profit_vs_none_ci_high")),
                "sell-through": r.get("rec_sell_through"),
                f"margin given away{cur}": _round(r.get("rec_margin_given_away"), 2),
            }
            for r in items
        ]
    )


def _round(x: Any, decimals: int) -> float | None:
    return round(float(x), decimals) if isinstance(x, int | float) and math.isfinite(x) else None


def sku_table(ctx: Ctx, categories: list[str], tiers: list[str]) -> list[dict]:
    """The filters and one page of SKUs; returns the page's rows."""
    f = _filters(ctx, categories, tiers)
    page = int(st.session_state.get("f-page", 1))
    try:
        res = ctx.client.skus(ctx.plan.id, **f, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        n_pages = max(1, math.ceil(int(res["total"]) / PAGE_SIZE))
        if page > n_pages:  # fewer SKUs than before (reviews elsewhere): the last page
            page = st.session_state["f-page"] = n_pages
            res = ctx.client.skus(ctx.plan.id, **f, offset=(page - 1) * PAGE_SIZE,
                                  limit=PAGE_SIZE)  # fmt: skip
    except ApiError as err:
        show_error(err, "The SKU list")
        return []
    total = int(res["total"])
    st.dataframe(
        sku_rows(ctx.plan, res["items"]),
        hide_index=True,
        width="stretch",
        column_config={
            "risk": st.column_config.NumberColumn(format="percent"),
            "sell-through": st.column_config.NumberColumn(format="percent"),
            "stock units": st.column_config.NumberColumn(format="localized"),
            f"gain vs doing nothing{ctx.plan.currency_label}": st.column_config.NumberColumn(
                format="localized"
            ),
            f"margin given away{ctx.plan.currency_label}": st.column_config.NumberColumn(
                format="localized"
            ),
        },
    )
    c = st.columns([1, 3])
    c[0].number_input("page", 1, n_pages, key="f-page")
    c[1].caption(f"{total:,} SKUs match; page {page} of {n_pages}")
    return res["items"]


# ------------------------------------------------------------------------------ one SKU
def _alternatives(ctx: Ctx, sku: str, n_episodes: int) -> dict | None:
    try:
        return memo(("alternatives", ctx.plan.id, sku, n_episodes),
                    lambda: ctx.client.alternatives(ctx.plan.id, sku, n_episodes))  # fmt: skip
    except ApiError as err:
        show_error(err, "The alternatives")
        return None


def alternatives_frames(plan: Plan, alts: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(weekly depths of every available plan for the chart, one row per plan for the
    table)."""
    weeks, rows = [], []
    for a in alts:
        if not a["available"]:
            rows.append({"plan": a["policy"], "note": a["note"]})
            continue
        labels = plan.week_axis(len(a["discount"]))
        for w, d in zip(labels, a["discount"], strict=True):
            weeks.append({"plan": a["policy"], "week": w, "discount": round(100.0 * d, 1)})
        o = a["outcomes"]
        p = o.get("profit", {})
        rows.append({
            "plan": a["policy"],
            "profit": plan.money(p.get("mean")),
            "gain vs doing nothing": plan.money_ci(p.get("vs_no_markdown"), p.get("vs_ci_low"),
                                                   p.get("vs_ci_high")),
            "sell-through": fmt.pct(o.get("sell_through", {}).get("mean"), 1),
            "leftover units": fmt.number(o.get("leftover_units", {}).get("mean"), 1),
            "margin given away": plan.money(o.get("margin_given_away", {}).get("mean")),
            "coupon weeks": sum(1 for c in a["coupon"] if c > 0),
            "note": a["note"],
        })  # fmt: skip
    return pd.DataFrame(weeks), pd.DataFrame(rows)


def _sku_header(ctx: Ctx, detail: dict) -> None:
    s = detail["summary"]
    plan = ctx.plan
    st.subheader(fmt.sku_label(s["sku"], s.get("description")))
    st.caption(
        f"category {s.get('category')} · department {s.get('department') or '–'} · "
        f"review status **{s.get('status')}** · planner {s.get('recommended_policy') or '–'}"
    )
    note: dict[str, Any] = {"delta_color": "off", "delta_arrow": "off"}  # a remark, no arrow
    gain_ci = fmt.ci(s.get("profit_vs_none_ci_low"), s.get("profit_vs_none_ci_high"), 2)
    c = st.columns(5)
    c[0].metric("risk of going dead", fmt.pct(s.get("risk")), s.get("tier") or None, **note)
    c[1].metric("stock units", fmt.number(s.get("initial_stock")))
    c[2].metric("list price", plan.money(s.get("list_price")),
                f"unit cost {plan.money(s.get('unit_cost'))}", **note)  # fmt: skip
    c[3].metric("gain vs doing nothing", plan.money(s.get("profit_vs_none")),
                f"95 % CI {gain_ci}", **note)  # fmt: skip
    c[4].metric("expected sell-through", fmt.pct(s.get("rec_sell_through")),
                f"{fmt.pct(s.get('none_sell_through'))} doing nothing", **note)  # fmt: skip
    left, right = st.columns(2)
    with left:
        st.markdown("**Why it is at risk** (the risk model's top drivers)")
        drivers = fmt.drivers(s.get("top_drivers"))
        st.markdown("\n".join(f"- {d}" for d in drivers) if drivers else "no drivers recorded")
    with right:
        st.markdown("**Recommendation**")
        st.markdown(str(s.get("recommendation") or "–"))
        if s.get("weeks_below_cost"):
            st.warning(f"The net price falls below cost in {int(s['weeks_below_cost'])} week(s) "
                       f"(lowest {plan.money(s.get('min_net_price'))}).")  # fmt: skip


def whatif_controls(ctx: Ctx, sku: str, edited: tuple[list[float], list[float]]) -> dict | None:
    """The what-if form of one SKU; returns the request body when submitted."""
    h = ctx.plan.horizon_weeks
    with st.form(f"whatif-{ctx.plan.id}-{sku}"):
        c = st.columns(5)
        base = c[0].selectbox("base schedule", ["recommended", "current", "hand-edited"],
                              key=f"wi-base-{sku}",
                              help="current: the latest override where there is one")  # fmt: skip
        max_pct = c[1].slider("maximum discount (%)", 0, MAX_DISCOUNT_PCT, MAX_DISCOUNT_PCT, 5,
                              key=f"wi-max-{sku}")  # fmt: skip
        exit_week = c[2].number_input("exit week", 1, h, h, key=f"wi-exit-{sku}",
                                      help="leftovers are written off after this week")  # fmt: skip
        coupons = c[3].checkbox("coupons on", value=True, key=f"wi-coupons-{sku}")
        n_ep = c[4].select_slider("simulated paths", EPISODES, 500, key=f"wi-episodes-{sku}")
        if not st.form_submit_button("Simulate", type="primary"):
            return None
    body: dict[str, Any] = {"skus": [sku], "coupons": bool(coupons), "n_episodes": int(n_ep)}
    if base == "hand-edited":
        body["policy"] = None
        body["schedule"] = {"discount": edited[0], "coupon": edited[1]}
    else:
        body["policy"] = base
    if max_pct < MAX_DISCOUNT_PCT:
        body["max_discount"] = max_pct / 100.0
    if int(exit_week) < h:
        body["exit_week"] = int(exit_week)
    return body


def _describe(body: dict, plan: Plan) -> str:
    parts = ["hand-edited schedule" if body.get("schedule") else f"{body['policy']} schedule"]
    if "max_discount" in body:
        parts.append(f"at most {fmt.pct(body['max_discount'])} off")
    if "exit_week" in body:
        parts.append(f"exit after {fmt.week_label(body['exit_week'], plan.week_starts)}")
    parts.append("coupons on" if body["coupons"] else "coupons off")
    parts.append(f"{body['n_episodes']} paired paths")
    return ", ".join(parts)


def whatif_result(ctx: Ctx, sku: str, edited: tuple[list[float], list[float]]) -> None:
    plan = ctx.plan
    key = f"whatif-result-{plan.id}-{sku}"
    body = whatif_controls(ctx, sku, edited)
    if body is not None:
        try:
            st.session_state[key] = (body, ctx.client.whatif(plan.id, body))
        except ApiError as err:
            show_error(err, "The what-if", plan)
    if key not in st.session_state:
        st.caption("Change a control and press Simulate: the SKU is re-simulated on paired "
                   "paths against doing nothing.")  # fmt: skip
        return
    body, res = st.session_state[key]
    one = res["skus"][0]
    st.markdown(f"**What-if:** {_describe(body, plan)}")
    st.dataframe(outcome_table(plan, one["outcomes"], "what-if"), hide_index=True,
                 width="stretch")  # fmt: skip
    weekly = res.get("weekly") or {}
    shown = [(k, t) for k, t in (("stock_left", "Stock left"), ("units", "Units sold"))
             if k in weekly]  # fmt: skip
    for col, (k, title) in zip(st.columns(max(len(shown), 1)), shown, strict=False):
        b = weekly[k]
        frame = pd.DataFrame({"week": plan.week_axis(len(b["mean"])), "mean": b["mean"],
                              "p05": b["p05"], "p95": b["p95"]})  # fmt: skip
        col.altair_chart(charts.band(frame, "units", f"{title} by week (mean, 5-95 %)"),
                         width="stretch")  # fmt: skip
    depths = ", ".join(fmt.pct(d) for d in one["discount"])
    st.caption(f"Simulated discounts by week: {depths}")


def sku_panel(ctx: Ctx, sku: str) -> None:
    """Everything about one SKU."""
    plan = ctx.plan
    try:
        detail = ctx.client.sku(plan.id, sku)
    except ApiError as err:
        show_error(err, f"SKU {sku}")
        return
    _sku_header(ctx, detail)
    n_ep = 200
    alts = _alternatives(ctx, sku, n_ep)
    if alts is not None:
        weeks, table = alternatives_frames(plan, alts["alternatives"])
        names = list(dict.fromkeys(weeks["plan"])) if not weeks.empty else []
        best = detail["summary"].get("best_heuristic")
        default = [n for n in (*SHOWN_BY_DEFAULT, best) if n in names]
        shown = st.multiselect("plans on the chart", names, default=list(dict.fromkeys(default)),
                               key=f"alt-shown-{sku}")  # fmt: skip
        if not weeks.empty and shown:
            st.altair_chart(
                charts.schedules(weeks[weeks["plan"].isin(shown)],
                                 "Discount by week: the recommended plan beside the alternatives"),
                width="stretch",
            )  # fmt: skip
        st.dataframe(table, hide_index=True, width="stretch")
        st.caption(f"All plans simulated on the same {n_ep} paths (seed 0); gains are paired "
                   "differences against doing nothing with 95 % CIs.")  # fmt: skip
    st.markdown("#### What-if")
    st.caption("The hand-edited schedule starts from the SKU's current schedule; the what-if "
               "uses it when the base is 'hand-edited', and an override sends it.")  # fmt: skip
    eff = detail["effective"]
    edited = schedule_editor(plan, eff["discount"], eff["coupon"], key=f"edit-{plan.id}-{sku}")
    whatif_result(ctx, sku, edited)
    st.markdown("#### Review")
    if review_form(ctx, f"review-{plan.id}-{sku}", sku=sku, schedule=edited):
        st.session_state.pop(f"edit-{plan.id}-{sku}", None)
    if detail["reviews"]:
        st.dataframe(
            pd.DataFrame([{"when": r["created_at"][:19].replace("T", " "), "action": r["action"],
                           "reason": r["reason"], "user": r["user_id"]}
                          for r in detail["reviews"]]),
            hide_index=True, width="stretch",
        )  # fmt: skip


# ------------------------------------------------------------------------------ a category
def _cancel(ctx: Ctx, task_id: str) -> None:
    try:
        ctx.client.cancel_whatif(task_id)
    except ApiError:
        pass  # finished meanwhile: nothing left to cancel


def category_whatif(ctx: Ctx, categories: list[str]) -> None:
    """A what-if over every SKU of a category, run as a task: its progress, then the
    portfolio's outcomes and the SKUs' gains."""
    plan = ctx.plan
    with st.form(f"cat-whatif-{plan.id}"):
        c = st.columns(5)
        category = c[0].selectbox("category", categories, key="cw-category")
        max_pct = c[1].slider("maximum discount (%)", 0, MAX_DISCOUNT_PCT, MAX_DISCOUNT_PCT, 5,
                              key="cw-max")  # fmt: skip
        exit_week = c[2].number_input("exit week", 1, plan.horizon_weeks, plan.horizon_weeks,
                                      key="cw-exit")  # fmt: skip
        coupons = c[3].checkbox("coupons on", value=True, key="cw-coupons")
        n_ep = c[4].select_slider("simulated paths", EPISODES, 200, key="cw-episodes")
        go = st.form_submit_button("Simulate the category")
    if go and category:
        body: dict[str, Any] = {"category": category, "policy": "current",
                                "coupons": bool(coupons), "n_episodes": int(n_ep)}  # fmt: skip
        if max_pct < MAX_DISCOUNT_PCT:
            body["max_discount"] = max_pct / 100.0
        if int(exit_week) < plan.horizon_weeks:
            body["exit_week"] = int(exit_week)
        try:
            task = ctx.client.submit_whatif(plan.id, body)
            st.session_state["cw-task"] = (task["id"], body)
            st.session_state.pop("cw-result", None)
        except ApiError as err:
            show_error(err, "The category what-if", plan)
    running = st.session_state.get("cw-task")
    if running:
        task_id, body = running
        st.button("Cancel", key="cw-cancel", on_click=_cancel, args=(ctx, task_id))
        bar = st.progress(0.0, text="queued")
        while True:
            try:
                t = ctx.client.whatif_task(task_id)
            except ApiError as err:
                show_error(err, "The category what-if")
                st.session_state.pop("cw-task", None)
                return
            share = t["done"] / t["total"] if t["total"] else 0.0
            bar.progress(min(share, 1.0), text=f"{t['done']:,} of {t['total']:,} SKUs simulated")
            if t["status"] in FINISHED:
                break
            time.sleep(POLL_S)
        st.session_state.pop("cw-task", None)
        st.session_state["cw-result"] = (body, t)
    if "cw-result" not in st.session_state:
        return
    body, t = st.session_state["cw-result"]
    if t["status"] != "succeeded":
        st.warning(f"The what-if of {body['category']} {t['status']}"
                   + (f": {t['error']}" if t.get("error") else ""))  # fmt: skip
        return
    res = t["result"]
    st.markdown(f"**{body['category']}** ({len(res['skus'])} SKUs): "
                f"{_describe({**body, 'schedule': None, 'policy': 'current'}, plan)}")  # fmt: skip
    st.dataframe(outcome_table(plan, res["totals"], "category total"), hide_index=True,
                 width="stretch")  # fmt: skip
    rows = [{"SKU": s["sku"],
             "gain vs doing nothing": _round(s["outcomes"]["profit"].get("vs_no_markdown"), 2),
             "95 % CI": fmt.ci(s["outcomes"]["profit"].get("vs_ci_low"),
                               s["outcomes"]["profit"].get("vs_ci_high"), 2)}
            for s in res["skus"]]  # fmt: skip
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def render(ctx: Ctx) -> None:
    try:
        ov = memo(("overview", ctx.plan.id), lambda: ctx.client.overview(ctx.plan.id))
    except ApiError as err:
        show_error(err, "The plan")
        return
    categories = [c["category"] for c in ov["categories"]]
    tiers = sorted({t for c in ov["categories"] for t in c["by_tier"]})
    items = sku_table(ctx, categories, tiers)
    labels = {r["sku"]: fmt.sku_label(r["sku"], r.get("description")) for r in items}
    sku = st.selectbox("open a SKU", list(labels), index=None, format_func=lambda s: labels.get(s, s),
                       placeholder="choose a SKU of this page", key="sku")  # fmt: skip
    if sku:
        sku_panel(ctx, sku)
    with st.expander("What-if for a whole category", expanded="cw-task" in st.session_state):
        category_whatif(ctx, categories)
