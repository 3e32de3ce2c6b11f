"""Promotion lifts (coupon, display, mailer): their columns in the panel, when a category's
data identifies one, and the documented prior where it does not.

A lift is fitted per category, as a shared column of the GLM's design (:mod:`simulator.fit`).
It counts as identified when the category has at least ``min_promo_weeks`` SKU-weeks with the
promotion and its standard error is at most ``max_lift_se``; a coupon lift is fitted only
on request (``fit_coupons``), because a panel sees a coupon only in weeks that sold. Where a
lift is not identified the catalog carries the prior: no lift for display and mailer, and for
coupons ``coupon_prior_share * -elasticity`` (a coupon of depth c acts as a discount of depth
``coupon_prior_share * c``) with a 100 % standard error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ingest.panel import MAX_DISCOUNT_DEPTH

PROMO_TERMS = ("coupon", "display", "mailer")
_PROMO_COLUMNS = {"coupon": "coupon_depth", "display": "display", "mailer": "mailer"}

Lift = tuple[np.ndarray, np.ndarray, np.ndarray]
"""One promotion's ``(coef, se, assumed)`` per SKU."""


def promotion_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each promotion's value per panel row (0 where the panel lacks the column)."""
    promo = {
        term: frame[col].to_numpy(dtype=float) if col in frame.columns else np.zeros(len(frame))
        for term, col in _PROMO_COLUMNS.items()
    }
    # a coupon can exceed the list price (a free-item coupon); its depth is capped like a
    # discount's
    promo["coupon"] = np.minimum(promo["coupon"], MAX_DISCOUNT_DEPTH)
    return promo


def lift_identified(
    term: str,
    weeks_with: np.ndarray,
    se: np.ndarray,
    *,
    min_promo_weeks: int,
    max_lift_se: float,
    fit_coupons: bool,
) -> np.ndarray:
    """Per category: is the lift of ``term`` identified (enough weeks with it, a small
    enough standard error, and for coupons only when ``fit_coupons``)?"""
    ok = (weeks_with >= min_promo_weeks) & (se <= max_lift_se)
    if term == "coupon":
        ok &= fit_coupons
    return ok


def promotion_lifts(
    theta: np.ndarray,
    theta_se: np.ndarray,
    promo: dict[str, np.ndarray],
    promo_terms: list[str],
    first_column: int,
    cat_rows: np.ndarray,
    cat_code: np.ndarray,
    elasticity: np.ndarray,
    *,
    min_promo_weeks: int,
    max_lift_se: float,
    fit_coupons: bool,
    coupon_prior_share: float,
) -> tuple[dict[str, Lift], dict[str, Any]]:
    """Each promotion's lift per SKU, fitted where its category identifies it, else the prior.

    Parameters
    ----------
    theta, theta_se : ndarray of shape (n_cats, n_shared)
        The GLM's shared coefficients per category and their standard errors.
    promo : dict of str to ndarray of shape (n_rows,)
        :func:`promotion_columns` of the panel.
    promo_terms : list of str
        The promotions in the design, in column order from ``first_column``.
    first_column : int
        Column of ``theta`` holding the first of ``promo_terms``.
    cat_rows : ndarray of int of shape (n_rows,)
        Each panel row's category.
    cat_code : ndarray of int of shape (n_skus,)
        Each SKU's category.
    elasticity : ndarray of shape (n_skus,)
        The SKUs' elasticities (the coupon prior scales with them).

    Returns
    -------
    lifts : dict of str to (coef, se, assumed)
        Per promotion, arrays of shape ``(n_skus,)``.
    columns : dict of str to ndarray of shape (n_cats,)
        ``<term>_weeks``, ``<term>_coef``, ``<term>_se`` (NaN where not fitted) and
        ``<term>_fitted``, for the fit's table of categories.
    """
    n_cats = theta.shape[0]
    n_skus = cat_code.shape[0]
    lifts: dict[str, Lift] = {}
    columns: dict[str, Any] = {}
    for term in PROMO_TERMS:
        weeks_with = np.bincount(
            cat_rows, weights=(promo[term] > 0).astype(float), minlength=n_cats
        )
        if term in promo_terms:
            j = first_column + promo_terms.index(term)
            coef_c, se_c = theta[:, j], theta_se[:, j]
        else:
            coef_c, se_c = np.zeros(n_cats), np.full(n_cats, np.inf)
        fitted = lift_identified(
            term,
            weeks_with,
            se_c,
            min_promo_weeks=min_promo_weeks,
            max_lift_se=max_lift_se,
            fit_coupons=fit_coupons,
        )
        if term == "coupon":
            prior = coupon_prior_share * -elasticity
            prior_se = np.abs(prior)
        else:
            prior = np.zeros(n_skus)
            prior_se = np.zeros(n_skus)
        f_sku = fitted[cat_code]
        coef = np.where(f_sku, coef_c[cat_code], prior)
        if term == "coupon":
            coef = np.maximum(coef, 0.0)
        se = np.where(f_sku, se_c[cat_code], prior_se)
        lifts[term] = (coef, se, ~f_sku)
        columns[f"{term}_weeks"] = weeks_with
        columns[f"{term}_coef"] = np.where(fitted, coef_c, np.nan)
        columns[f"{term}_se"] = np.where(fitted, se_c, np.nan)
        columns[f"{term}_fitted"] = fitted
    return lifts, columns
