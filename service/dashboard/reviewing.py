"""The pieces the SKU explorer and the review queue share: the hand-edited weekly schedule
and the review form (approve, reject, or override with the edited schedule, always with a
reason; a refused override shows the rule it breaks)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from service.dashboard.client import ApiError
from service.dashboard.session import Ctx, Plan, forget, show_error

DISCOUNT = "discount (%)"
COUPON = "coupon (%)"
ACTIONS = {
    "approve": "Approve",
    "reject": "Reject",
    "override": "Override with the edited schedule",
}
"""The review actions and their buttons."""


def schedule_frame(plan: Plan, discount: Sequence[float], coupon: Sequence[float]) -> pd.DataFrame:
    """A weekly schedule as the table people edit: week (with its date), depths in %."""
    n = len(discount)
    return pd.DataFrame(
        {
            "week": plan.week_labels(n),
            DISCOUNT: [round(100.0 * d, 1) for d in discount],
            COUPON: [round(100.0 * c, 1) for c in (coupon or [0.0] * n)],
        }
    )


def schedule_editor(
    plan: Plan, discount: Sequence[float], coupon: Sequence[float], key: str
) -> tuple[list[float], list[float]]:
    """An editable weekly schedule, started from ``discount``/``coupon``; returns the
    edited depths as shares (0.3 = 30 %)."""
    edited = st.data_editor(
        schedule_frame(plan, discount, coupon),
        key=key,
        hide_index=True,
        disabled=["week"],
        num_rows="fixed",
        column_config={
            DISCOUNT: st.column_config.NumberColumn(
                min_value=0.0, max_value=90.0, step=5.0, format="%.0f %%"
            ),
            COUPON: st.column_config.NumberColumn(
                min_value=0.0, max_value=90.0, step=5.0, format="%.0f %%"
            ),
        },  # fmt: skip
    )
    d = [round(float(x) / 100.0, 4) for x in edited[DISCOUNT].fillna(0.0)]
    c = [round(float(x) / 100.0, 4) for x in edited[COUPON].fillna(0.0)]
    return d, c


def review_form(
    ctx: Ctx,
    key: str,
    *,
    sku: str | None = None,
    category: str | None = None,
    schedule: tuple[list[float], list[float]] | None = None,
) -> dict | None:
    """The review form of one SKU or a category; returns the API's answer after a review.

    ``schedule`` is the edited schedule an override sends (the override button is shown
    only with one).
    """
    if not ctx.can_review:
        st.info(f"Your role ({ctx.user.get('role')}) can look but not review.")
        return None
    target = f"SKU {sku}" if sku is not None else f"every SKU of {category}"
    with st.form(key, clear_on_submit=False):
        reason = st.text_area(f"Reason for the review of {target}", key=f"{key}-reason",
                              placeholder="why (kept in the audit log)", height=80)  # fmt: skip
        cols = st.columns(3)
        clicked = None
        for col, (action, label) in zip(cols, ACTIONS.items(), strict=True):
            if action == "override" and schedule is None:
                continue
            if col.form_submit_button(label, key=f"{key}-{action}"):
                clicked = action
    if clicked is None:
        return None
    if not reason.strip():
        st.error("Give a reason: every review is kept with its reason.")
        return None
    discount, coupon = schedule if clicked == "override" and schedule else (None, None)
    try:
        out = ctx.client.review(ctx.plan.id, action=clicked, reason=reason.strip(), sku=sku,
                                category=category, discount=discount, coupon=coupon)  # fmt: skip
    except ApiError as err:
        show_error(err, f"The {clicked} of {target}", ctx.plan)
        return None
    forget()
    st.success(f"{target}: {out['status']} ({out['n_skus']} SKU(s)); recorded with your reason.")
    return out
