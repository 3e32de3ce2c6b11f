"""Features of every SKU at a cutoff week, from data up to the cutoff only.

The first thing :func:`build_features` does is drop every panel row and basket line after the
cutoff; everything else is computed from what is left, so no feature can see the future
(``tests/risk_model/test_features.py`` perturbs the future and checks nothing moves). The
panel is turned into dense ``(n_skus, n_weeks)`` matrices so that a hundred thousand SKUs
take a second or two.

Feature groups (names in :data:`FEATURE_GROUPS`)
------------------------------------------------
- sales: velocity over 4, 8, 13 and 26 weeks, velocity ratios, the 13-week trend, weeks since
  the last sale and how unusual that gap is at the SKU's rate, active-week shares, age, the
  longest earlier gap, weekly variability, return rate.
- price and promotion level: discount and coupon share of the gross price, share of units
  sold on discount, display and mailer intensity, price level against the category.
- price change (dropped with ``price_change_features=False``): recent discount depth and its
  change, recent shelf and effective price change. On Complete Journey the label partly
  reflects the retailer's own clearance, so these make the score circular for the policy
  stage.
- buyers (only with baskets): distinct buyers over 13 and 26 weeks, repeat-buyer rate, share
  of recent buyers who bought before, units per buyer.
- product and category: private-brand flag, category and department context (size, recent
  trend, seasonality proxy, the share of the category's established SKUs that went quiet in
  the last 13 weeks -- a label rate computed entirely before the cutoff), the SKU's share of
  its category.
- stock (only where ``on_hand`` is present): weeks of cover, weeks since the last receipt,
  sell-through over 13 weeks.
- interactions (only where present): CTR, add-to-cart-without-purchase rate, conversion, the
  4-week vs 13-week change of views and of abandonment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ingest.errors import ConfigError, DataError

EPS = 0.1  # smoothing of velocity ratios (units/week)

FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "sales": (
        "vel_4",
        "vel_8",
        "vel_13",
        "vel_26",
        "log_vel_13",
        "ratio_4_13",
        "ratio_8_26",
        "ratio_13_prev13",
        "trend_13",
        "weeks_since_last_sale",
        "gap_surprise",
        "p_zero_13",
        "active_share_4",
        "active_share_13",
        "active_share_26",
        "age_weeks",
        "max_prior_gap_26",
        "peak_ratio_4",
        "weeks_since_peak_4",
        "cv_13",
        "log_revenue_13",
        "return_rate",
    ),
    "price_level": (
        "disc_share_13",
        "units_on_discount_13",
        "coupon_share_13",
        "display_13",
        "mailer_13",
        "price_rel_category",
    ),
    "price_change": (
        "disc_share_4",
        "disc_change_4_26",
        "shelf_price_change_4",
        "eff_price_change_4",
    ),
    "buyers": (
        "buyers_13",
        "buyers_26",
        "repeat_rate_26",
        "retained_share_13",
        "units_per_buyer_13",
        "buyers_active_share",
        "buyers_active_4",
        "top_buyer_share_13",
        "cat_switch_share_4",
        "ptype_switch_share_4",
    ),
    "product": (
        "private_brand",
        "cat_log_n_skus",
        "cat_ratio_4_13",
        "cat_ratio_13_prev13",
        "cat_quiet_rate_13",
        "cat_new_share_8",
        "cat_gone_share_8",
        "cat_vel_rank",
        "dept_quiet_rate_13",
        "dept_new_share_8",
        "dept_gone_share_8",
        "dept_vel_rank",
        "mfr_quiet_rate_13",
        "mfr_new_share_8",
        "mfr_gone_share_8",
        "mfr_vel_rank",
        "ptype_quiet_rate_13",
        "ptype_new_share_8",
        "ptype_gone_share_8",
        "ptype_vel_rank",
        "line_quiet_rate_13",
        "line_gone_share_8",
        "line_new_share_8",
        "line_vel_rank",
        "cat_share_13",
        "ptype_ratio_4_13",
        "ptype_ratio_13_prev13",
        "ptype_log_n_skus",
        "ptype_share_13",
    ),
    "stock": ("weeks_of_cover", "weeks_since_receipt", "sell_through_13", "log_on_hand"),
    "interactions": (
        "ctr_13",
        "atc_no_purchase_13",
        "conversion_13",
        "views_ratio_4_13",
        "atc_no_purchase_change",
    ),
}


@dataclass(frozen=True)
class FeatureConfig:
    """Which features to build.

    Parameters
    ----------
    price_change_features : bool
        Keep the price-change group. ``False`` drops it so the score does not reflect the
        retailer's own recent markdowns (see the module docstring).
    buyer_features, stock_features, interaction_features : bool
        Build these groups when the data has them (baskets, ``on_hand``, interactions).
        Absent data always drops the group, whatever the switch says.
    min_history_weeks : int
        SKUs whose first panel week is later than ``cutoff - min_history_weeks + 1`` are
        still scored (their windows are shorter); this only bounds the cutoff itself.
    """

    price_change_features: bool = True
    buyer_features: bool = True
    stock_features: bool = True
    interaction_features: bool = True
    min_history_weeks: int = 4

    def __post_init__(self) -> None:
        if self.min_history_weeks < 1:
            raise ConfigError(
                f"FeatureConfig.min_history_weeks = {self.min_history_weeks!r}; expected >= 1"
            )


@dataclass
class _Matrices:
    skus: np.ndarray
    first: np.ndarray  # index of the first present week per SKU
    present: np.ndarray
    cols: dict[str, np.ndarray]
    n_weeks: int


def _to_matrices(panel: pd.DataFrame, columns: list[str]) -> _Matrices:
    sku_codes, skus = pd.factorize(panel["sku"], sort=True)
    weeks = panel["week"].to_numpy(dtype=np.int64)
    w0 = int(weeks.min())
    wi = weeks - w0
    n, T = len(skus), int(wi.max()) + 1
    present = np.zeros((n, T), dtype=bool)
    present[sku_codes, wi] = True
    cols = {}
    for c in columns:
        m = np.zeros((n, T))
        m[sku_codes, wi] = panel[c].to_numpy(dtype=float, na_value=np.nan)
        cols[c] = m
    first = np.argmax(present, axis=1)
    return _Matrices(np.asarray(skus, dtype=object), first, present, cols, T)


def _window(m: _Matrices, x: np.ndarray, k: int, skip: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sum of ``x`` and the count of present weeks over the ``k`` weeks ending ``skip`` weeks
    before the cutoff."""
    T = m.n_weeks
    lo, hi = max(T - skip - k, 0), max(T - skip, 0)
    p = m.present[:, lo:hi]
    return np.where(p, x[:, lo:hi], 0.0).sum(axis=1), p.sum(axis=1)


def _rate(m: _Matrices, x: np.ndarray, k: int, skip: int = 0) -> np.ndarray:
    s, c = _window(m, x, k, skip)
    return s / np.maximum(c, 1)


def _safe_div(a: np.ndarray, b: np.ndarray, fill: float = 0.0) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / b
    return np.where(np.isfinite(out), out, fill)


def _sales_features(m: _Matrices) -> dict[str, np.ndarray]:
    T = m.n_weeks
    u = np.where(m.present, m.cols["units"], 0.0)
    f: dict[str, np.ndarray] = {}
    for k in (4, 8, 13, 26):
        f[f"vel_{k}"] = _rate(m, u, k)
    f["log_vel_13"] = np.log(f["vel_13"] + EPS)
    f["ratio_4_13"] = (f["vel_4"] + EPS) / (f["vel_13"] + EPS)
    f["ratio_8_26"] = (f["vel_8"] + EPS) / (f["vel_26"] + EPS)
    prev13 = _rate(m, u, 13, skip=13)
    f["ratio_13_prev13"] = (f["vel_13"] + EPS) / (prev13 + EPS)
    k = min(13, T)
    t = np.arange(k) - (k - 1) / 2
    f["trend_13"] = (u[:, T - k :] @ t) / (t @ t) / (f["vel_13"] + EPS)
    sold = u > 0
    any_sale = sold.any(axis=1)
    last = T - 1 - np.argmax(sold[:, ::-1], axis=1)
    age = T - m.first
    wsls = np.where(any_sale, T - 1 - last, age)
    f["weeks_since_last_sale"] = wsls.astype(float)
    f["gap_surprise"] = wsls * f["vel_26"]  # -log P(no sale for the gap) at the 26-week rate
    f["p_zero_13"] = np.exp(-13 * f["vel_13"])
    for k in (4, 13, 26):
        s, c = _window(m, sold.astype(float), k)
        f[f"active_share_{k}"] = s / np.maximum(c, 1)
    f["age_weeks"] = age.astype(float)
    # Longest run of zero weeks in the 26 weeks before the current gap.
    lo = max(T - 26, 0)
    run = np.zeros(len(u))
    best = np.zeros(len(u))
    for j in range(lo, T):
        inside = m.present[:, j] & (j <= last)
        run = np.where(inside & ~sold[:, j], run + 1, 0)
        best = np.maximum(best, run)
    f["max_prior_gap_26"] = best
    # How far below its best 4-week run the SKU sells now, and how long ago that run was.
    c = np.cumsum(np.pad(u, ((0, 0), (1, 0))), axis=1)
    roll4 = (c[:, 4:] - c[:, :-4]) / 4 if T >= 4 else c[:, -1:] / max(T, 1)
    f["peak_ratio_4"] = (f["vel_4"] + EPS) / (roll4.max(axis=1) + EPS)
    f["weeks_since_peak_4"] = (roll4.shape[1] - 1 - np.argmax(roll4, axis=1)).astype(float)
    w = u[:, max(T - 13, 0) :]
    f["cv_13"] = _safe_div(w.std(axis=1), w.mean(axis=1))
    rev = np.where(m.present, m.cols["revenue"], 0.0)
    f["log_revenue_13"] = np.log1p(np.maximum(_window(m, rev, 13)[0], 0))
    ret = np.where(m.present, m.cols["returns"], 0.0)
    f["return_rate"] = _safe_div(ret.sum(axis=1), u.sum(axis=1))
    return f


def _price_features(m: _Matrices, category: np.ndarray, change: bool) -> dict[str, np.ndarray]:
    u = np.where(m.present, m.cols["units"], 0.0)
    rev = np.where(m.present, m.cols["revenue"], 0.0)
    disc = np.where(m.present, m.cols["discount_amount"], 0.0)
    coup = np.where(m.present, m.cols["coupon_amount"], 0.0)
    gross = rev + disc + coup
    f: dict[str, np.ndarray] = {}
    g13 = _window(m, gross, 13)[0]
    f["disc_share_13"] = _safe_div(_window(m, disc, 13)[0], g13)
    f["coupon_share_13"] = _safe_div(_window(m, coup, 13)[0], g13)
    on_disc = _safe_div(disc, gross) > 0.05
    f["units_on_discount_13"] = _safe_div(
        _window(m, np.where(on_disc, u, 0.0), 13)[0], _window(m, u, 13)[0]
    )
    f["display_13"] = _rate(m, np.nan_to_num(m.cols["display"]), 13)
    f["mailer_13"] = _rate(m, np.nan_to_num(m.cols["mailer"]), 13)
    # Price level: the SKU's mean gross price per unit so far against its category's median.
    log_price = np.log(np.maximum(_safe_div(gross.sum(axis=1), u.sum(axis=1), np.nan), 1e-3))
    cat_median = pd.Series(log_price).groupby(category).transform("median").to_numpy()
    f["price_rel_category"] = np.nan_to_num(log_price - cat_median)
    if change:
        f["disc_share_4"] = _safe_div(_window(m, disc, 4)[0], _window(m, gross, 4)[0])
        prior = _safe_div(_window(m, disc, 22, skip=4)[0], _window(m, gross, 22, skip=4)[0])
        f["disc_change_4_26"] = f["disc_share_4"] - prior
        for name, num in (("shelf", gross), ("eff", rev + coup)):
            recent = _safe_div(_window(m, num, 4)[0], _window(m, u, 4)[0], np.nan)
            before = _safe_div(_window(m, num, 22, skip=4)[0], _window(m, u, 22, skip=4)[0], np.nan)
            ratio = np.clip(_safe_div(recent, before, 1.0), 1e-3, 1e3)
            f[f"{name}_price_change_4"] = np.log(ratio)
    return f


def _switching(
    s_idx: np.ndarray,
    h_idx: np.ndarray,
    first: np.ndarray,
    lines: pd.DataFrame,
    groups: np.ndarray,
    cutoff: int,
    n: int,
) -> np.ndarray:
    """Share of a SKU's earlier buyers who still buy its group (category or product type)
    in the last 4 weeks but not the SKU: buyers switching away, or the SKU off the shelf."""
    g_codes = pd.factorize(pd.Series(groups).astype(object).fillna("<missing>"))[0]
    recent = lines[lines["w"] > cutoff - 4]
    n_h = int(max(lines["h"].max(), 0)) + 1
    group_key = np.unique(g_codes[recent["s"].to_numpy()].astype(np.int64) * n_h + recent["h"])
    sku_key = np.unique(recent["s"].to_numpy().astype(np.int64) * n_h + recent["h"])
    older = first <= cutoff - 4
    in_group = np.isin(g_codes[s_idx].astype(np.int64) * n_h + h_idx, group_key) & older
    bought = np.isin(s_idx.astype(np.int64) * n_h + h_idx, sku_key)
    active = np.bincount(s_idx, weights=in_group, minlength=n)
    switched = np.bincount(s_idx, weights=in_group & ~bought, minlength=n)
    return _safe_div(switched, active, 0.0)


def _buyer_features(
    baskets: pd.DataFrame,
    skus: np.ndarray,
    cutoff: int,
    vel_13: np.ndarray,
    groups: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Buyer features from basket lines up to the cutoff (household ids as integer codes)."""
    past = baskets[baskets["week"] <= cutoff]
    hh_codes, hh = pd.factorize(past["household_id"])
    hh_week = past["week"].to_numpy(dtype=np.int64)
    # Each household's last shopping week (any SKU): buyers who stopped shopping take their
    # SKUs' sales with them.
    last_seen = np.full(len(hh), -1, dtype=np.int64)
    np.maximum.at(last_seen, hh_codes, hh_week)
    sku_index = pd.Index(np.asarray(skus, dtype=str))
    sc = sku_index.get_indexer(past["sku"].astype(str))
    keep = (sc >= 0) & (hh_week > cutoff - 26)
    n = len(skus)
    lines = pd.DataFrame(
        {
            "s": sc[keep],
            "h": hh_codes[keep],
            "w": hh_week[keep],
            "u": past["units"].to_numpy(dtype=float)[keep],
        }
    )
    per_pair = lines.groupby(["s", "h"], sort=False).agg(
        weeks=("w", "nunique"), first=("w", "min"), last=("w", "max"), units=("u", "sum")
    )
    s_idx = per_pair.index.get_level_values("s").to_numpy()
    h_idx = per_pair.index.get_level_values("h").to_numpy()
    recent = per_pair["last"].to_numpy() > cutoff - 13
    earlier = per_pair["first"].to_numpy() <= cutoff - 13
    active = last_seen[h_idx] > cutoff - 4

    def count(mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        w = mask.astype(float) if weights is None else np.where(mask, weights, 0.0)
        return np.bincount(s_idx, weights=w, minlength=n)

    buyers_13 = count(recent)
    buyers_26 = count(np.ones(len(s_idx), dtype=bool))
    units_13 = count(recent, per_pair["units"].to_numpy())
    top = pd.Series(np.where(recent, per_pair["units"].to_numpy(), 0.0)).groupby(s_idx).max()
    top_units = np.zeros(n)
    top_units[top.index.to_numpy()] = top.to_numpy()
    out = {
        "buyers_13": buyers_13,
        "buyers_26": buyers_26,
        "repeat_rate_26": _safe_div(count(per_pair["weeks"].to_numpy() >= 2), buyers_26),
        "retained_share_13": _safe_div(count(recent & earlier), buyers_13),
        "units_per_buyer_13": _safe_div(vel_13 * 13, buyers_13),
        "buyers_active_share": _safe_div(count(active), buyers_26),
        "buyers_active_4": count(active),
        "top_buyer_share_13": _safe_div(top_units, units_13),
    }
    first = per_pair["first"].to_numpy()
    for prefix, grp in (groups or {}).items():
        out[f"{prefix}_switch_share_4"] = _switching(s_idx, h_idx, first, lines, grp, cutoff, n)
    return out


def _group_context(
    m: _Matrices, groups: np.ndarray, prefix: str, full: bool
) -> dict[str, np.ndarray]:
    """Context of each SKU's group (category, department, manufacturer, product type) from
    the group's SKUs up to the cutoff."""
    u = np.where(m.present, m.cols["units"], 0.0)
    T = m.n_weeks
    codes, uniq = pd.factorize(pd.Series(groups).astype(object).fillna("<missing>"))
    g = len(uniq)
    f: dict[str, np.ndarray] = {}
    n_group = np.bincount(codes, minlength=g).astype(float)

    def shrunk(hits: np.ndarray, base: np.ndarray) -> np.ndarray:
        # Shrink towards the overall rate so small groups do not get extreme values.
        overall = hits.sum() / max(base.sum(), 1)
        k = np.bincount(codes, weights=hits, minlength=g)
        n = np.bincount(codes, weights=base, minlength=g)
        return ((k + 10 * overall) / (n + 10))[codes]

    # "Quiet rate": share of the group's SKUs established in weeks T-26..T-14 that sold
    # nothing in the last 13 weeks -- the default label, fully observed before the cutoff.
    before = u[:, max(T - 26, 0) : max(T - 13, 0)]
    established = (before.sum(axis=1) >= 5) & ((before > 0).sum(axis=1) >= 3)
    quiet = established & (u[:, max(T - 13, 0) :].sum(axis=1) == 0)
    f[f"{prefix}_quiet_rate_13"] = shrunk(quiet.astype(float), established.astype(float))
    # Turnover: share of the group's SKUs that sold before the last 8 weeks but not in them.
    sold_before = u[:, : max(T - 8, 0)].sum(axis=1) > 0
    gone = sold_before & (u[:, max(T - 8, 0) :].sum(axis=1) == 0)
    f[f"{prefix}_gone_share_8"] = shrunk(gone.astype(float), sold_before.astype(float))
    # Newcomers: share of the group's SKUs whose first sale is in the last 8 weeks (a
    # planogram reset brings new SKUs in and pushes old ones out).
    sold = u > 0
    first_sale = np.where(sold.any(axis=1), np.argmax(sold, axis=1), T)
    new = (first_sale >= T - 8) & (first_sale > 0)
    f[f"{prefix}_new_share_8"] = shrunk(new.astype(float), np.ones(len(u)))
    # The SKU's velocity rank within its group (0 = slowest).
    vel = u[:, max(T - 13, 0) :].sum(axis=1)
    rank = pd.Series(vel).groupby(codes).rank(pct=True).to_numpy()
    f[f"{prefix}_vel_rank"] = np.where(n_group[codes] > 1, rank, 0.5)
    if full:

        def total(lo: int, hi: int) -> np.ndarray:
            w = u[:, max(lo, 0) : max(hi, 0)].sum(axis=1)
            return np.bincount(codes, weights=w, minlength=g)

        last4, last13, prev13 = total(T - 4, T), total(T - 13, T), total(T - 26, T - 13)
        f[f"{prefix}_ratio_4_13"] = ((last4 / 4 + EPS) / (last13 / 13 + EPS))[codes]
        f[f"{prefix}_ratio_13_prev13"] = ((last13 + EPS) / (prev13 + EPS))[codes]
        f[f"{prefix}_log_n_skus"] = np.log(n_group)[codes]
        f[f"{prefix}_share_13"] = _safe_div(vel, last13[codes])
    return f


def _stock_features(m: _Matrices, vel_4: np.ndarray, vel_13: np.ndarray) -> dict[str, np.ndarray]:
    oh = m.cols["on_hand"]
    T = m.n_weeks
    last = np.nan_to_num(oh[:, -1])
    rose = np.zeros_like(m.present)
    rose[:, 1:] = m.present[:, 1:] & m.present[:, :-1] & (oh[:, 1:] > oh[:, :-1])
    any_rise = rose.any(axis=1)
    last_rise = T - 1 - np.argmax(rose[:, ::-1], axis=1)
    return {
        "weeks_of_cover": last / (vel_4 + EPS),
        "weeks_since_receipt": np.where(any_rise, T - 1 - last_rise, T - m.first).astype(float),
        "sell_through_13": _safe_div(vel_13 * 13, vel_13 * 13 + last),
        "log_on_hand": np.log1p(last),
    }


def _interaction_features(m: _Matrices) -> dict[str, np.ndarray]:
    def tot(col: str, k: int) -> np.ndarray:
        return _window(m, np.nan_to_num(m.cols[col]), k)[0]

    views13, clicks13, atc13, pur13 = (
        tot(c, 13) for c in ("views", "clicks", "add_to_cart", "purchases")
    )
    views4, atc4, pur4 = (tot(c, 4) for c in ("views", "add_to_cart", "purchases"))
    abandon13 = _safe_div(atc13 - pur13, atc13)
    return {
        "ctr_13": _safe_div(clicks13, views13),
        "atc_no_purchase_13": abandon13,
        "conversion_13": _safe_div(pur13, clicks13),
        "views_ratio_4_13": (views4 / 4 + 1) / (views13 / 13 + 1),
        "atc_no_purchase_change": _safe_div(atc4 - pur4, atc4, 0.0) - abandon13,
    }


PANEL_COLUMNS = (
    "units",
    "revenue",
    "discount_amount",
    "coupon_amount",
    "returns",
    "display",
    "mailer",
)


def build_features(
    panel: pd.DataFrame,
    cutoff: int,
    config: FeatureConfig | None = None,
    *,
    products: pd.DataFrame | None = None,
    baskets: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Features of every SKU present in the panel at or before ``cutoff``.

    Parameters
    ----------
    panel : DataFrame
        Weekly panel (contract of ``ingest.panel.build_panel``).
    cutoff : int
        Last week whose data may be used.
    config : FeatureConfig, optional
    products : DataFrame, optional
        Canonical products table (for the brand).
    baskets : DataFrame, optional
        Canonical baskets table; buyer features need it.

    Returns
    -------
    DataFrame of shape (n_skus, n_features), indexed by ``sku`` (sorted), all float.
    """
    cfg = config or FeatureConfig()
    missing = [
        c for c in ("sku", "week", "category", "department", *PANEL_COLUMNS) if c not in panel
    ]
    if missing:
        raise DataError(f"panel: column(s) {missing} missing; expected the build_panel contract")
    past = panel[panel["week"] <= cutoff]
    if past.empty or int(past["week"].min()) > cutoff - cfg.min_history_weeks + 1:
        raise DataError(
            f"features at cutoff week {cutoff}: the panel has fewer than "
            f"{cfg.min_history_weeks} weeks up to it (it starts at week "
            f"{int(panel['week'].min())})"
        )
    has_stock = cfg.stock_features and "on_hand" in past and past["on_hand"].notna().any()
    has_inter = cfg.interaction_features and "views" in past and past["views"].notna().any()
    cols = list(PANEL_COLUMNS)
    if has_stock:
        cols.append("on_hand")
    if has_inter:
        cols += ["views", "clicks", "add_to_cart", "purchases"]
    # Weeks are aligned so that the matrices' last column is the cutoff week.
    pad = past.iloc[:0]
    if int(past["week"].max()) < cutoff:
        pad = pd.DataFrame({"sku": [past["sku"].iloc[0]], "week": [cutoff]})
    m = _to_matrices(pd.concat([past, pad]) if len(pad) else past, cols)
    if len(pad):
        m.present[:, -1] = False
    firsts = past.drop_duplicates("sku").set_index("sku")
    category = firsts["category"].reindex(m.skus).to_numpy(dtype=object)
    department = firsts["department"].reindex(m.skus).to_numpy(dtype=object)

    f = _sales_features(m)
    f.update(_price_features(m, category, cfg.price_change_features))
    if cfg.buyer_features and baskets is not None and len(baskets):
        groups = {"cat": category}
        if products is not None and "product_type" in products:
            types = products.set_index(products["sku"].astype(str))["product_type"]
            groups["ptype"] = types.reindex(m.skus).to_numpy(dtype=object)
        f.update(_buyer_features(baskets, m.skus, cutoff, f["vel_13"], groups))
    brand = pd.Series(0.0, index=m.skus)
    if products is not None and "brand" in products:
        b = products.set_index(products["sku"].astype(str))["brand"].reindex(m.skus)
        brand = b.astype("string").str.contains("private", case=False).fillna(False).astype(float)
    f["private_brand"] = brand.to_numpy(dtype=float)
    f.update(_group_context(m, category, "cat", full=True))
    f.update(_group_context(m, department, "dept", full=False))
    attrs = products.set_index(products["sku"].astype(str)) if products is not None else None
    for col, prefix in (("manufacturer_id", "mfr"), ("product_type", "ptype")):
        if attrs is not None and col in attrs and attrs[col].notna().any():
            grp = attrs[col].reindex(m.skus).to_numpy(dtype=object)
            full = prefix == "ptype"
            f.update(_group_context(m, grp, prefix, full=full))
    if attrs is not None and {"manufacturer_id", "product_type"} <= set(attrs.columns):
        # A product line (manufacturer x product type): new sizes or flavours replace old ones.
        line = (
            attrs["manufacturer_id"].astype("string") + "|" + attrs["product_type"].astype("string")
        )
        if line.notna().any():
            grp = line.reindex(m.skus).to_numpy(dtype=object)
            f.update(_group_context(m, grp, "line", full=False))
    if has_stock:
        f.update(_stock_features(m, f["vel_4"], f["vel_13"]))
    if has_inter:
        f.update(_interaction_features(m))
    order = [n for group in FEATURE_GROUPS.values() for n in group if n in f]
    out = pd.DataFrame(
        {n: np.asarray(f[n], dtype=float) for n in order}, index=pd.Index(m.skus, name="sku")
    )
    # Bounded so that float32 tree code never sees an overflow.
    return out.replace([np.inf, -np.inf], np.nan).fillna(0.0).clip(-1e6, 1e6)
