"""Review queue: the SKUs waiting for review; approve, reject or override one SKU or a whole
category with a reason (an override that breaks a business rule is refused with the rule and
the week); the plan's latest reviews."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from service.dashboard import fmt
from service.dashboard.client import ApiError
from service.dashboard.reviewing import review_form, schedule_editor
from service.dashboard.session import Ctx, memo, show_error

QUEUE_SIZE = 200


def pending_table(ctx: Ctx, items: list[dict]) -> pd.DataFrame:
    cur = ctx.plan.currency_label
    return pd.DataFrame(
        [{"SKU": fmt.sku_label(r["sku"], r.get("description")), "category": r["category"],
          "risk": fmt.pct(r.get("risk")), "planner": r.get("recommended_policy") or "",
          f"gain vs doing nothing{cur}": ctx.plan.money_ci(
              r.get("profit_vs_none"), r.get("profit_vs_none_ci_low"),
              r.get("profit_vs_none_ci_high"))}
         for r in items]
    )  # fmt: skip


def recent_reviews(ctx: Ctx) -> None:
    try:
        page = ctx.client.reviews(ctx.plan.id, limit=50)
    except ApiError as err:
        show_error(err, "The reviews")
        return
    st.caption(f"{page['total']:,} reviews of this plan, newest first")
    if page["items"]:
        st.dataframe(
            pd.DataFrame([{"when": r["created_at"][:19].replace("T", " "), "SKU": r["sku"],
                           "category": r["category"], "by": r["scope"], "action": r["action"],
                           "before": r["status_before"], "reason": r["reason"],
                           "user": r["user_id"]} for r in page["items"]]),
            hide_index=True, width="stretch",
        )  # fmt: skip


def render(ctx: Ctx) -> None:
    plan = ctx.plan
    try:
        ov = memo(("overview", plan.id), lambda: ctx.client.overview(plan.id))
    except ApiError as err:
        show_error(err, "The plan")
        return
    categories = [c["category"] for c in ov["categories"]]
    chosen = st.multiselect("categories", categories, key="rq-categories")
    try:
        res = ctx.client.skus(plan.id, status=["pending"], category=chosen, sort="-risk",
                              limit=QUEUE_SIZE)  # fmt: skip
    except ApiError as err:
        show_error(err, "The queue")
        return
    st.metric("waiting for review", fmt.number(res["total"]))
    items = res["items"]
    if items:
        st.dataframe(pending_table(ctx, items), hide_index=True, width="stretch")
    if res["total"] > len(items):
        st.caption(f"the {len(items)} riskiest shown")

    by_sku, by_category = st.tabs(["Review one SKU", "Review a whole category"])
    with by_sku:
        labels = {r["sku"]: fmt.sku_label(r["sku"], r.get("description")) for r in items}
        sku = st.selectbox("SKU", list(labels), index=None, format_func=lambda s: labels.get(s, s),
                           placeholder="choose a SKU waiting for review", key="rq-sku")  # fmt: skip
        if sku:
            try:
                detail = ctx.client.sku(plan.id, sku)
            except ApiError as err:
                show_error(err, f"SKU {sku}")
                detail = None
            if detail is not None:
                s = detail["summary"]
                st.markdown(f"**{fmt.sku_label(sku, s.get('description'))}**: "
                            f"{s.get('recommendation') or ''}")  # fmt: skip
                rec = detail["effective"]
                edited = schedule_editor(plan, rec["discount"], rec["coupon"],
                                         key=f"rq-edit-{plan.id}-{sku}")  # fmt: skip
                review_form(ctx, f"rq-review-{plan.id}-{sku}", sku=sku, schedule=edited)
    with by_category:
        category = st.selectbox("category", categories, index=None, key="rq-category",
                                placeholder="choose a category")  # fmt: skip
        if category:
            n = next(c["by_status"].get("pending", 0) for c in ov["categories"]
                     if c["category"] == category)  # fmt: skip
            st.caption(f"{n} SKU(s) of {category} wait for review; a category review applies "
                       "to every SKU of the category. An override gives every SKU the schedule "
                       "below.")  # fmt: skip
            edited = schedule_editor(plan, [0.0] * plan.horizon_weeks,
                                     [0.0] * plan.horizon_weeks, key=f"rq-cat-edit-{category}")  # fmt: skip
            review_form(ctx, f"rq-cat-review-{plan.id}-{category}", category=category,
                        schedule=edited)  # fmt: skip

    st.subheader("Latest reviews")
    recent_reviews(ctx)
