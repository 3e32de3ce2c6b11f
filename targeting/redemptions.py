"""How well a ranking predicts the retailer's recorded coupon redemptions.

For every coupon redeemed in weeks ``c + 1 .. c + horizon``, a model ranks the households
known at the cutoff by their best score over the products the coupon covers (the
``MAX_COUPON_SKUS`` most bought of them, so a coupon on a whole department stays cheap), and
recall@k counts the coupon's redeemers in the top ``k``. The counts are small (Complete
Journey records 2,102 redemptions in a year, a few hundred per 13 weeks), so the intervals
are wide: this is a check of direction, not a benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from targeting.evaluate import KS, N_BOOTSTRAP, hits_at, rank_rows, recall_at_k
from targeting.interactions import Interactions
from targeting.models import Targeter

MAX_COUPON_SKUS = 200


def coupon_sets(
    inter: Interactions,
    redemptions: pd.DataFrame,
    coupon_products: pd.DataFrame,
    horizon_weeks: int,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, int]:
    """The coupons redeemed in the window: their SKU columns (most bought first, capped),
    the truth matrix of known redeemers ``(n_households, n_coupons)``, the number of
    redeemers of each (unknown households included) and the number of redemptions."""
    c = inter.cutoff
    week = redemptions["week"].to_numpy(dtype=np.int64)
    window = redemptions[(week > c) & (week <= c + horizon_weeks)]
    popularity = np.bincount(inter.s, minlength=inter.n_skus)
    redeemed = set(window["coupon"])
    cols_of: dict[str, np.ndarray] = {}
    offered = coupon_products[coupon_products["coupon"].isin(redeemed)]
    for coupon, skus in offered.groupby("coupon", sort=True)["sku"]:
        cols = inter.sku_codes(skus.to_numpy())
        cols = np.unique(cols[cols >= 0])
        if cols.size:
            cols_of[str(coupon)] = cols[np.argsort(-popularity[cols], kind="stable")][
                :MAX_COUPON_SKUS
            ]
    coupons = sorted(cols_of)
    pairs = window[window["coupon"].isin(coupons)].drop_duplicates(["coupon", "household_id"])
    col = pd.Series(np.arange(len(coupons)), index=coupons)
    rows = inter.household_codes(pairs["household_id"])
    known = rows >= 0
    truth = np.zeros((inter.n_households, len(coupons)), dtype=bool)
    truth[rows[known], col[pairs["coupon"].to_numpy()[known]].to_numpy()] = True
    n_redeemers = pairs.groupby("coupon").size().reindex(coupons).to_numpy(dtype=np.int64)
    n_redemptions = int(window["coupon"].isin(coupons).sum())
    return [cols_of[k] for k in coupons], truth, n_redeemers, n_redemptions


def redemption_rows(
    models: Sequence[Targeter],
    inter: Interactions,
    redemptions: pd.DataFrame,
    coupon_products: pd.DataFrame,
    horizon_weeks: int,
    ks: Sequence[int] = KS,
    seed: int = 0,
) -> list[dict[str, object]]:
    """Recall@k of the coupons' redeemers per (fitted) model, with a bootstrap interval
    over coupons and the counts behind it (``n_coupons``, ``n_redemptions``)."""
    sets, truth, n_redeemers, n_redemptions = coupon_sets(
        inter, redemptions, coupon_products, horizon_weeks
    )
    if not sets:
        return []
    all_rows = np.arange(inter.n_households)
    rng = np.random.default_rng(np.random.SeedSequence([seed, inter.cutoff]))
    idx = rng.integers(0, len(sets), size=(N_BOOTSTRAP, len(sets)))
    out: list[dict[str, object]] = []
    for model in models:
        scores = np.column_stack([model.score_codes(all_rows, cols).max(axis=1) for cols in sets])
        hits = hits_at(rank_rows(scores, max(ks)), truth)
        for k in ks:
            rec = recall_at_k(hits, n_redeemers, k)
            lo, hi = np.quantile(rec[idx].mean(axis=1), [0.025, 0.975])
            out.append(
                {
                    "model": model.name,
                    "baseline": model.baseline,
                    "cutoff": inter.cutoff,
                    "k": int(k),
                    "recall": float(rec.mean()),
                    "recall_ci": [float(lo), float(hi)],
                    "n_coupons": len(sets),
                    "n_redemptions": n_redemptions,
                    "n_redeemers": int(n_redeemers.sum()),
                }
            )
    return out
