"""Plain-English labels of the risk features, for the people who read the drivers.

:data:`DRIVER_LABELS` is the one table from internal feature names
(:data:`risk_model.features.FEATURE_GROUPS`) to what a category manager reads in the exports
and alerts ("weeks since the last sale" rather than ``weeks_since_last_sale``). A test keeps
it complete.
"""

from __future__ import annotations

_GROUPS = {
    "cat": "category",
    "dept": "department",
    "mfr": "manufacturer",
    "ptype": "product type",
    "line": "product line",
}

_GROUP_TEMPLATES = {
    "quiet_rate_13": "share of the {g}'s established products that stopped selling (13 weeks)",
    "gone_share_8": "share of the {g}'s products that stopped selling (last 8 weeks)",
    "new_share_8": "share of the {g}'s products launched in the last 8 weeks",
    "vel_rank": "sales rank within its {g} (0 = slowest)",
    "ratio_4_13": "{g} sales trend (last 4 weeks vs last 13)",
    "ratio_13_prev13": "{g} sales trend (last 13 weeks vs the 13 before)",
    "log_n_skus": "number of products in its {g}",
    "share_13": "its share of the {g}'s sales (last 13 weeks)",
    "switch_share_4": "earlier buyers still buying the {g} but not it (last 4 weeks)",
}

DRIVER_LABELS: dict[str, str] = {
    # sales
    "vel_4": "units per week (last 4 weeks)",
    "vel_8": "units per week (last 8 weeks)",
    "vel_13": "units per week (last 13 weeks)",
    "vel_26": "units per week (last 26 weeks)",
    "log_vel_13": "sales rate (last 13 weeks, log)",
    "ratio_4_13": "sales trend (last 4 weeks vs last 13)",
    "ratio_8_26": "sales trend (last 8 weeks vs last 26)",
    "ratio_13_prev13": "sales trend (last 13 weeks vs the 13 before)",
    "trend_13": "weekly sales slope (last 13 weeks)",
    "weeks_since_last_sale": "weeks since the last sale",
    "gap_surprise": "how unusual the current gap without sales is for its sales rate",
    "p_zero_13": "chance of 13 weeks without a sale at its current rate",
    "active_share_4": "share of weeks with a sale (last 4)",
    "active_share_13": "share of weeks with a sale (last 13)",
    "active_share_26": "share of weeks with a sale (last 26)",
    "age_weeks": "weeks since its first sale",
    "max_prior_gap_26": "longest earlier gap without sales (weeks, last 26)",
    "peak_ratio_4": "sales now vs its best 4 weeks",
    "weeks_since_peak_4": "weeks since its best 4 weeks",
    "cv_13": "week-to-week sales variability (last 13 weeks)",
    "log_revenue_13": "revenue (last 13 weeks, log)",
    "return_rate": "share of units returned",
    # price level and promotion
    "disc_share_13": "share of the price given as discount (last 13 weeks)",
    "units_on_discount_13": "share of units sold on discount (last 13 weeks)",
    "coupon_share_13": "share of the price given as coupons (last 13 weeks)",
    "display_13": "in-store display intensity (last 13 weeks)",
    "mailer_13": "mailer intensity (last 13 weeks)",
    "price_rel_category": "price level against its category",
    # price change
    "disc_share_4": "share of the price given as discount (last 4 weeks)",
    "disc_change_4_26": "change of the discount share (last 4 weeks vs the 22 before)",
    "shelf_price_change_4": "shelf price change (last 4 weeks vs the 22 before)",
    "eff_price_change_4": "price paid change (last 4 weeks vs the 22 before)",
    # buyers
    "buyers_13": "households buying it (last 13 weeks)",
    "buyers_26": "households buying it (last 26 weeks)",
    "repeat_rate_26": "share of its buyers who bought it again (last 26 weeks)",
    "retained_share_13": "share of recent buyers who had bought it before",
    "units_per_buyer_13": "units per buyer (last 13 weeks)",
    "buyers_active_share": "share of its buyers still shopping (last 4 weeks)",
    "buyers_active_4": "its buyers still shopping (last 4 weeks)",
    "top_buyer_share_13": "share of its units bought by its biggest buyer (last 13 weeks)",
    # product
    "private_brand": "private-label brand",
    # stock
    "weeks_of_cover": "weeks of stock cover at the recent sales rate",
    "weeks_since_receipt": "weeks since stock last arrived",
    "sell_through_13": "sell-through of the stock (last 13 weeks)",
    "log_on_hand": "units on hand (log)",
    # online interactions
    "ctr_13": "click-through rate (last 13 weeks)",
    "atc_no_purchase_13": "added to cart but not bought (last 13 weeks)",
    "conversion_13": "conversion rate (last 13 weeks)",
    "views_ratio_4_13": "page views trend (last 4 weeks vs last 13)",
    "atc_no_purchase_change": "change of cart abandonment (last 4 weeks vs 13)",
    # the context of its category, department, manufacturer, product type and line
    **{f"{p}_{k}": t.format(g=g) for p, g in _GROUPS.items() for k, t in _GROUP_TEMPLATES.items()},
}


def driver_label(name: str) -> str:
    """The plain-English label of feature ``name`` (the name itself, spaced, when unknown)."""
    return DRIVER_LABELS.get(str(name), str(name).replace("_", " "))
