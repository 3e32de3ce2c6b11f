"""Fit the demand model from the weekly SKU panel: a count GLM, shrunk by empirical Bayes.

The model (see :mod:`simulator.demand` for how the simulator reads it back)::

    log E[units_it] = a_i + eps_i * log(1 - discount_depth_it)                 (SKU effects)
                      + sum_k [s_ck sin(2 pi k w / 52) + c_ck cos(2 pi k w / 52)] (season, per category)
                      + kappa_c coupon_depth_it + delta_c display_it + mu_c mailer_it
    units_it ~ NegBin(mean, variance mean + alpha_c mean^2)

fitted by :func:`simulator.glm.fit_sku_group_glm` (Newton steps, no loop over SKUs), one
task per category group (:func:`fit_by_group`: the groups share no parameter, so a caller can
run them on an engine's workers; the elasticities are pooled across categories afterwards). Zero-sales weeks are observations at the price the SKU is taken
to have had (``FitConfig.zero_week_price``). The overdispersion ``alpha_c`` is a method-of-moments
estimate per category on Pearson residuals.

Each SKU's elasticity is then shrunk towards its category by empirical Bayes
(:mod:`simulator.shrinkage`): the between-SKU variance ``tau_c^2`` is estimated per category
(falling back to the department, then to all SKUs, when a category has fewer than
``FitConfig.min_group_skus`` SKUs with an identified elasticity).

What the data cannot identify falls back to a documented prior and is flagged in the catalog:

- a SKU whose price never varied (fewer than ``min_price_change_weeks`` weeks away from its
  usual price): ``elasticity`` = its group's mean, ``elasticity_se`` = the group's spread
  (``sqrt(tau^2 + se(mean)^2)``), ``elasticity_assumed = True``;
- a coupon term with too few coupon weeks in the category or a standard error above
  ``max_lift_se``: ``coupon_coef = coupon_prior_share * (-elasticity)`` (a coupon of depth c
  lifts demand about as a discount of depth ``coupon_prior_share * c`` would), with a 100 %
  standard error, ``coupon_assumed = True``;
- display and mailer lifts likewise: prior 0 (no lift), ``*_assumed = True``.

The commercial fields come from the panel (list price, stock on hand, start week, age) and,
where the source has no such facts, from the assumptions in :class:`FitConfig` (unit cost as a
share of list price, stock as weeks of cover times recent velocity, holding cost, salvage),
each recorded in ``FitResult.notes``.

This module holds the configuration and the estimation (:func:`fit_catalog`); each other
step of the fit is a module of its own:

=============================  ===========================================================
:mod:`simulator.panel_prep`    checks, prices of weeks without sales, stock-outs, SKUs that
                               stopped selling
:mod:`simulator.seasonality`   the Fourier season and its profile
:mod:`simulator.lifts`         promotion columns, when a lift is identified, its prior
:mod:`simulator.shrinkage`     empirical-Bayes pooling of the elasticities
:mod:`simulator.commercial`    cost, stock, holding, salvage, returns
:mod:`simulator.forecast`      expected units of a panel's rows under a fitted catalog
=============================  ===========================================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd

from ingest.errors import ConfigError
from ingest.panel import MAX_DISCOUNT_DEPTH
from simulator.commercial import commercial_fields
from simulator.demand import SEASON_PERIOD, Catalog
from simulator.forecast import predict_units
from simulator.glm import GLMResult, fit_with_dispersion
from simulator.lifts import PROMO_TERMS, lift_identified, promotion_columns, promotion_lifts
from simulator.panel_prep import (
    FitPanel,
    fit_depths,
    prepare_panel,
    stockout_weeks,
    stopped_selling,
)
from simulator.seasonality import fourier_basis, log_mean_factor, season_index, season_profile
from simulator.shrinkage import pool_elasticities
from simulator.stock import StockAssumptions

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_R = TypeVar("_R")
MapTasks = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]
"""Runs ``fn`` on every item and returns the results in order (e.g. an engine's
``run_tasks``); the demand fit hands it one task per category group."""


def _map_in_process(fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    return [fn(item) for item in items]


@dataclass(frozen=True)
class FitConfig:
    """How the demand model is fitted from the panel.

    Parameters
    ----------
    distribution : {"negbin", "poisson"}
        Count distribution; ``negbin`` estimates the overdispersion per category.
    n_harmonics : int
        Fourier pairs of the category's seasonal profile (0 = no seasonality).
    min_season_weeks : int
        The seasonal profile is fitted only when the panel covers at least this many
        distinct calendar weeks; with less than a year of history the Fourier terms would be
        extrapolated into weeks never seen (which worsens the holdout error on Complete
        Journey: ``docs/simulator.md``, "Holdout"), so the season is then flat (an
        assumption, stated in the notes).
    pooling : {"eb", "none", "global"}
        ``eb``: per-SKU elasticities shrunk towards the category (empirical Bayes);
        ``none``: the raw per-SKU estimates; ``global``: one elasticity for every SKU (the
        pooled constant-elasticity benchmark).
    min_group_skus : int
        Fewest identified SKUs for a category to get its own mean and spread; smaller
        categories borrow their department's (then everyone's).
    tau_prior_skus : float
        A category's between-SKU variance is a blend of its own estimate and the spread
        pooled over all categories, ``(n tau2_own + k tau2_pooled) / (n + k)`` with
        ``k = tau_prior_skus``: a variance from a few dozen noisy estimates is itself very
        noisy, and an estimate of 0 would shrink every SKU onto the mean with too-narrow
        intervals.
    min_selling_weeks : int
        Fewest weeks with sales for a SKU's own elasticity to be estimated.
    min_price_change_weeks : int
        Fewest weeks whose price differs from the SKU's median price by more than
        ``price_change_tol`` (in log price) for its elasticity to count as identified.
    price_change_tol : float
        Log price-ratio difference that counts as a price change.
    prior_elasticity, prior_elasticity_se : float
        Used only when no SKU at all has an identified elasticity.
    zero_week_price : {"regular", "carry"}
        The price a week without sales is taken to have had (the panel cannot see it).
        ``regular``: the SKU's usual price (its most frequent observed discount depth):
        discounts are temporary, and a discounted week is the one least likely to sell
        nothing. ``carry``: the panel's carried-forward price, which labels the quiet weeks
        after a promotion as discounted and pulls elasticities towards zero (measured in
        ``docs/simulator.md``, "How the fit works").
    max_fit_depth : float
        Discount depths above this (near-free sales, e.g. 95 % loyalty discounts in Complete
        Journey) enter the fit at this depth.
    coupons : {"auto", "prior"}
        ``prior`` (default) always uses the documented prior; ``auto`` fits the coupon lift
        where a category has at least ``min_promo_weeks`` coupon weeks and a standard error
        below ``max_lift_se``. The default is the prior because a panel only sees a coupon
        in weeks that sold (coupon depth = coupon amount / units), so a fitted coupon lift is
        biased upwards by construction; ``auto`` is for data that records coupons offered.
    coupon_prior_share : float
        The coupon prior: a coupon of depth c acts like a discount of depth
        ``coupon_prior_share * c`` (coupon_coef = share * -elasticity).
    min_promo_weeks : int
        Fewest SKU-weeks with the promotion in a category for its lift to be fitted.
    max_lift_se : float
        A lift coefficient with a larger standard error is reported as not identified.
    cost_share : float
        Unit cost as a share of list price, used where the products table has no unit cost.
    stock : StockAssumptions
        Starting stock (weeks of cover x recent velocity) where the panel has no stock levels,
        holding cost and salvage value (:class:`simulator.stock.StockAssumptions`).
    max_elasticity : float
        Fitted elasticities above this are capped (the catalog needs elasticity <= 0).
    gone_after_weeks : int or None
        A run of at least this many weeks without sales at the end of a SKU's history is
        left out of the fit (the SKU stopped selling; that is dead stock, not a price
        response). ``None`` keeps every week.
    level_weeks : int or None
        Base demand is rescaled to the SKU's level over the panel's last ``level_weeks``
        weeks (actual over expected units under the fitted model), so a SKU that is fading
        or has died starts its plan at today's level, not its historical average. ``None``
        keeps the historical level.
    level_pseudo_units : float
        Pseudo-count ``c`` of that ratio, ``(actual + c) / (expected + c)``: a SKU with few
        recent units stays near its fitted level.
    max_iter : int
        Newton iterations per fit.
    """

    distribution: Literal["negbin", "poisson"] = "negbin"
    n_harmonics: int = 2
    min_season_weeks: int = 52
    pooling: Literal["eb", "none", "global"] = "eb"
    min_group_skus: int = 5
    tau_prior_skus: float = 30.0
    min_selling_weeks: int = 3
    min_price_change_weeks: int = 2
    price_change_tol: float = 0.01
    prior_elasticity: float = -1.0
    prior_elasticity_se: float = 1.0
    zero_week_price: Literal["regular", "carry"] = "regular"
    max_fit_depth: float = 0.8
    coupons: Literal["auto", "prior"] = "prior"
    coupon_prior_share: float = 0.5
    min_promo_weeks: int = 20
    max_lift_se: float = 1.0
    cost_share: float = 0.7
    stock: StockAssumptions = field(default_factory=StockAssumptions)
    max_elasticity: float = 0.0
    gone_after_weeks: int | None = 6
    level_weeks: int | None = 8
    level_pseudo_units: float = 0.3
    max_iter: int = 100

    def __post_init__(self) -> None:
        choices = {
            "distribution": ("negbin", "poisson"),
            "pooling": ("eb", "none", "global"),
            "coupons": ("auto", "prior"),
            "zero_week_price": ("regular", "carry"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"fit.{name} = {getattr(self, name)!r}; expected one of {allowed}"
                )
        for name in ("n_harmonics", "min_group_skus", "min_selling_weeks", "max_iter"):
            least = 0 if name == "n_harmonics" else 1
            if int(getattr(self, name)) < least:
                raise ConfigError(f"fit.{name} = {getattr(self, name)!r}; expected >= {least}")
        if self.level_weeks is not None and self.level_weeks < 1:
            raise ConfigError(f"fit.level_weeks = {self.level_weeks}; expected >= 1 or None")
        if self.gone_after_weeks is not None and self.gone_after_weeks < 1:
            raise ConfigError(
                f"fit.gone_after_weeks = {self.gone_after_weeks}; expected >= 1 or None"
            )
        if self.level_pseudo_units < 0 or self.tau_prior_skus < 0:
            raise ConfigError("fit.level_pseudo_units and fit.tau_prior_skus must be >= 0")
        if self.n_harmonics > SEASON_PERIOD // 2 - 1:
            raise ConfigError(f"fit.n_harmonics = {self.n_harmonics}; expected <= 25")
        for name in ("cost_share", "coupon_prior_share"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"fit.{name} = {v!r}; expected a share in [0, 1]")
        if not 0.0 < self.max_fit_depth <= MAX_DISCOUNT_DEPTH:
            raise ConfigError(
                f"fit.max_fit_depth = {self.max_fit_depth}; expected in (0, {MAX_DISCOUNT_DEPTH}]"
            )
        for name in ("prior_elasticity_se", "max_lift_se"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"fit.{name} = {getattr(self, name)!r}; expected > 0")
        if self.min_price_change_weeks < 1:
            raise ConfigError(
                f"fit.min_price_change_weeks = {self.min_price_change_weeks!r}; expected >= 1"
            )
        if self.prior_elasticity > 0 or self.max_elasticity > 0:
            raise ConfigError(
                f"fit.prior_elasticity = {self.prior_elasticity}, fit.max_elasticity = "
                f"{self.max_elasticity}; both must be <= 0 (a discount never lowers demand)"
            )


@dataclass
class FitResult:
    """What :func:`fit_catalog` returns.

    Attributes
    ----------
    catalog : Catalog
        One SKU per fitted SKU, parameters and commercial fields filled.
    estimates : DataFrame
        Per SKU: raw and shrunk elasticity with standard errors, shrinkage weight, flags,
        selling weeks.
    categories : DataFrame
        Per category: pooled elasticity mean and spread, dispersion, lifts and whether each
        was fitted.
    diagnostics : dict of str to float
        Scalar fit diagnostics (namespaced ``fit/...``) for MLflow.
    notes : list of str
        Assumptions made (which commercial fields came from config, skipped SKUs, ...).
    """

    catalog: Catalog
    estimates: pd.DataFrame
    categories: pd.DataFrame
    diagnostics: dict[str, float]
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- the fit
def fit_catalog(
    panel: pd.DataFrame,
    config: FitConfig | None = None,
    *,
    products: pd.DataFrame | None = None,
    map_tasks: MapTasks | None = None,
) -> FitResult:
    """Fit every SKU's demand parameters from the weekly panel.

    Parameters
    ----------
    panel : DataFrame
        The weekly SKU panel (``ingest.panel.build_panel``): one row per SKU and week with
        at least ``sku, week, category, units, discount_depth, list_price``; ``department``,
        ``coupon_depth``, ``display``, ``mailer``, ``on_hand`` and ``returns`` are used when
        present.
    config : FitConfig, optional
    products : DataFrame, optional
        The canonical products table; its ``unit_cost`` is used where known.
    map_tasks : callable, optional
        ``map_tasks(fn, items) -> list`` runs the GLM of each category group as one task
        (``app.engine.Engine.run_tasks`` on a cluster); default: in this process, one after
        the other. The groups are independent problems, so the estimates do not depend on
        it; the shrinkage across categories runs here afterwards.

    Returns
    -------
    FitResult

    Raises
    ------
    DataError
        A required column is missing, a value is out of range, or no SKU sold anything.
    """
    cfg = config or FitConfig()
    data, notes = prepare_panel(panel)
    frame, sku_code, n_skus = data.frame, data.sku_code, data.n_skus
    cat_code, n_cats = data.cat_code, len(data.cat_ids)
    week = frame["week"].to_numpy(dtype=np.int64)
    y = frame["units"].to_numpy(dtype=float)
    depth = fit_depths(data, cfg.zero_week_price)
    # near-free sales (depth above max_fit_depth) are not a price response one can plan with;
    # they count at max_fit_depth so a handful of them cannot dominate the slope
    x = np.log1p(-np.minimum(depth, cfg.max_fit_depth))
    promo = promotion_columns(frame)

    # -- which SKUs' prices varied enough to identify an elasticity
    selling = np.bincount(sku_code, weights=(y > 0).astype(float), minlength=n_skus)
    median_x = frame.assign(_x=x).groupby(sku_code)["_x"].transform("median").to_numpy()
    changed = np.bincount(
        sku_code,
        weights=(np.abs(x - median_x) > cfg.price_change_tol).astype(float),
        minlength=n_skus,
    )
    identified = (selling >= cfg.min_selling_weeks) & (changed >= cfg.min_price_change_weeks)
    censored = stockout_weeks(frame)
    use = ~stopped_selling(data, cfg.gone_after_weeks)

    # -- shared (category-level) design: season + the promotions present in the data
    n_harmonics = cfg.n_harmonics
    n_season_weeks = int(np.unique(season_index(week)).size)
    if n_harmonics and n_season_weeks < cfg.min_season_weeks:
        notes.append(
            f"the panel covers {n_season_weeks} of 52 calendar weeks: seasonality is not "
            f"identified for the rest, so the season is assumed flat (fit.min_season_weeks)"
        )
        n_harmonics = 0
    z_cols = [fourier_basis(season_index(week), n_harmonics)]
    promo_terms = [t for t in PROMO_TERMS if np.any(promo[t] > 0)]
    z_cols += [promo[t][:, None] for t in promo_terms]
    z = np.concatenate(z_cols, axis=1)
    n_season = 2 * n_harmonics

    if cfg.pooling == "global":
        group_of_sku = np.zeros(n_skus, dtype=np.int64)
        n_groups = 1
        z_fit = np.concatenate([z, x[:, None]], axis=1)
        fixed = np.ones(n_skus, bool)
    else:
        group_of_sku = cat_code.astype(np.int64)
        n_groups = n_cats
        z_fit = z
        fixed = ~identified

    def run_glm(z_rows: np.ndarray, start: GLMResult | None = None) -> GLMResult:
        return fit_by_group(
            y[use],
            x[use],
            z_rows[use],
            sku_code[use],
            group_of_sku,
            n_groups=n_groups,
            negative_binomial=cfg.distribution == "negbin",
            fixed_slope=fixed,
            max_iter=cfg.max_iter,
            censored=censored[use],
            start=start,
            map_tasks=map_tasks or _map_in_process,
        )

    fit_coupons = cfg.coupons == "auto"
    rows_cat = cat_code[sku_code]
    log.info(
        "fitting %s SKUs in %s group(s) over %s SKU-weeks",
        f"{n_skus:,}",
        f"{n_groups:,}",
        f"{int(use.sum()):,}",
    )
    glm = run_glm(z_fit)
    if cfg.pooling != "global" and promo_terms:
        # A lift the data cannot identify in a category is replaced by its prior in the
        # catalog; refit with that column switched off there, so the SKU levels are
        # estimated consistently with the lift the simulator will use (otherwise a wild,
        # unidentified lift hides in the intercepts).
        z_fit = z_fit.copy()
        n_off = 0
        for k, term in enumerate(promo_terms):
            j = n_season + k
            seen = np.bincount(rows_cat, weights=(promo[term] > 0), minlength=n_cats)
            ok = lift_identified(
                term,
                seen,
                glm.theta_se[:, j],
                min_promo_weeks=cfg.min_promo_weeks,
                max_lift_se=cfg.max_lift_se,
                fit_coupons=fit_coupons,
            )
            off = ~ok & (seen > 0)
            z_fit[off[rows_cat], j] = 0.0
            n_off += int(off.sum())
        if n_off:
            log.info("refitting with %d unidentified category lift(s) set to their prior", n_off)
            glm = run_glm(z_fit, start=glm)
    y_u, x_u, sku_u = y[use], x[use], sku_code[use]
    if not glm.converged:
        notes.append(f"the GLM stopped after {glm.n_iter} Newton iterations without converging")

    # -- elasticities: raw, pooled, shrunk
    raw = glm.slope.copy()
    raw_se = np.sqrt(np.maximum(glm.cov[:, 1, 1], 0.0))
    if cfg.pooling == "global":
        raw[:] = glm.theta[0, -1]
        raw_se[:] = glm.theta_se[0, -1]
        post, post_se, weight = raw.copy(), raw_se.copy(), np.ones(n_skus)
        pooled_mean = np.full(n_cats, raw[0])
        pooled_tau = np.zeros(n_cats)
        level = np.full(n_cats, "global", dtype=object)
        identified = np.ones(n_skus, bool)
    else:
        pooled = pool_elasticities(
            raw,
            raw_se,
            identified,
            cat_code,
            data.dep_code,
            n_cats,
            len(data.dep_ids),
            prior_mean=cfg.prior_elasticity,
            prior_se=cfg.prior_elasticity_se,
            tau_prior_skus=cfg.tau_prior_skus,
            min_group_skus=cfg.min_group_skus,
            shrink_raw=cfg.pooling != "none",
        )
        post, post_se, weight = pooled.post, pooled.post_se, pooled.weight
        pooled_mean, pooled_tau, level = pooled.mean, pooled.tau, pooled.level
        raw[~identified] = np.nan
        raw_se[~identified] = np.nan
    n_capped = int(np.sum(post > cfg.max_elasticity))
    elasticity = np.minimum(post, cfg.max_elasticity)

    # intercept at list price: keep the fitted level where the SKU's data lies
    # (a + b * xbar) and move along the shrunk slope to x = 0
    w = glm.weight
    xbar = np.bincount(sku_u, weights=w * x_u, minlength=n_skus) / np.maximum(
        np.bincount(sku_u, weights=w, minlength=n_skus), 1e-12
    )
    slope_used = glm.slope if cfg.pooling != "global" else np.full(n_skus, glm.theta[0, -1])
    log_base = glm.intercept + (slope_used - elasticity) * xbar

    theta = glm.theta[:, : z.shape[1]]
    theta_se = glm.theta_se[:, : z.shape[1]]
    if cfg.pooling == "global":
        theta = np.repeat(theta, n_cats, axis=0)
        theta_se = np.repeat(theta_se, n_cats, axis=0)
    season_c = season_profile(theta[:, :n_season], n_harmonics)
    # base demand is at season factor 1: fold the profile's normalisation into the level
    base_demand = np.exp(log_base + log_mean_factor(theta[:, :n_season], n_harmonics)[cat_code])

    lifts, cat_table = promotion_lifts(
        theta,
        theta_se,
        promo,
        promo_terms,
        n_season,
        rows_cat,
        cat_code,
        elasticity,
        min_promo_weeks=cfg.min_promo_weeks,
        max_lift_se=cfg.max_lift_se,
        fit_coupons=fit_coupons,
        coupon_prior_share=cfg.coupon_prior_share,
    )
    commercial, commercial_notes = commercial_fields(data, products, cfg)
    notes += commercial_notes
    dispersion = glm.alpha[group_of_sku] if cfg.distribution == "negbin" else np.zeros(n_skus)
    catalog = Catalog.build(
        n_skus=n_skus,
        sku=np.asarray(data.sku_ids, dtype=object).astype(str),
        category=data.category_of_sku,
        base_demand=base_demand,
        base_demand_se=np.sqrt(np.maximum(glm.cov[:, 0, 0], 0.0)),
        season=season_c[cat_code],
        elasticity=elasticity,
        elasticity_se=post_se,
        elasticity_assumed=~identified,
        coupon_coef=lifts["coupon"][0],
        coupon_coef_se=lifts["coupon"][1],
        coupon_assumed=lifts["coupon"][2],
        display_coef=lifts["display"][0],
        display_coef_se=lifts["display"][1],
        display_assumed=lifts["display"][2],
        mailer_coef=lifts["mailer"][0],
        mailer_coef_se=lifts["mailer"][1],
        mailer_assumed=lifts["mailer"][2],
        dispersion=dispersion,
        **commercial,
    )
    level_ratio = np.ones(n_skus)
    if cfg.level_weeks:
        level_ratio = _recent_level(catalog, data, depth, cfg)
        catalog.base_demand = base_demand * level_ratio

    estimates = pd.DataFrame(
        {
            "sku": catalog.sku,
            "category": data.category_of_sku,
            "department": data.department_of_sku,
            "n_weeks": np.bincount(sku_code, minlength=n_skus),
            "n_selling_weeks": selling.astype(int),
            "n_price_change_weeks": changed.astype(int),
            "elasticity_raw": raw,
            "elasticity_raw_se": raw_se,
            "elasticity": elasticity,
            "elasticity_se": post_se,
            "shrinkage_weight": weight,
            "elasticity_assumed": ~identified,
            "base_demand_fitted": base_demand,
            "recent_level_ratio": level_ratio,
            "base_demand": catalog.base_demand,
        }
    )
    categories = pd.DataFrame(
        {
            "category": np.asarray(data.cat_ids, dtype=object).astype(str),
            "n_skus": np.bincount(cat_code, minlength=n_cats),
            "n_identified": np.bincount(cat_code, weights=identified, minlength=n_cats).astype(int),
            "elasticity_mean": pooled_mean,
            "elasticity_tau": pooled_tau,
            "pooled_at": level,
            "dispersion": glm.alpha if cfg.pooling != "global" else np.full(n_cats, glm.alpha[0]),
            **cat_table,
        }
    )
    mu = glm.mu
    diagnostics = {
        "fit/n_rows": float(len(frame)),
        "fit/n_skus": float(n_skus),
        "fit/n_skus_skipped": float(data.n_skipped),
        "fit/share_weeks_stocked_out": float(np.mean(censored)),
        "fit/n_categories": float(n_cats),
        "fit/n_elasticity_identified": float(identified.sum()),
        "fit/share_elasticity_assumed": float(np.mean(~identified)),
        "fit/n_elasticity_capped": float(n_capped),
        "fit/elasticity_median": float(np.median(elasticity)),
        "fit/elasticity_raw_median": float(np.nanmedian(raw)) if identified.any() else np.nan,
        "fit/elasticity_se_median": float(np.median(post_se)),
        "fit/shrinkage_weight_median": float(np.median(weight[identified]))
        if identified.any()
        else np.nan,
        "fit/dispersion_median": float(np.median(dispersion)),
        "fit/season_harmonics": float(n_harmonics),
        "fit/recent_level_ratio_median": float(np.median(level_ratio)),
        "fit/newton_iterations": float(glm.n_iter),
        "fit/converged": float(glm.converged),
        "fit/loglik": glm.loglik,
        "fit/share_weeks_after_last_sale_left_out": float(np.mean(~use)),
        "fit/wmape_in_sample": float(np.sum(np.abs(y_u - mu)) / max(np.sum(y_u), 1e-12)),
        "fit/deviance_explained": _deviance_explained(y_u, mu, sku_u, n_skus),
    }
    for term in PROMO_TERMS:
        diagnostics[f"fit/share_{term}_fitted"] = float(np.mean(~lifts[term][2]))
    return FitResult(catalog, estimates, categories, diagnostics, notes)


@dataclass(frozen=True)
class GroupTask:
    """One category group's rows for :func:`fit_group` (all a worker receives).

    SKU codes are local to the group, ``0 .. n_skus - 1``.
    """

    y: np.ndarray
    x: np.ndarray
    z: np.ndarray
    sku: np.ndarray
    n_skus: int
    fixed_slope: np.ndarray
    censored: np.ndarray
    negative_binomial: bool
    max_iter: int
    start: GLMResult | None = None


def fit_group(task: GroupTask) -> GLMResult:
    """Fit one group's GLM with its overdispersion (a task of :func:`fit_by_group`)."""
    return fit_with_dispersion(
        task.y,
        task.x,
        task.z,
        task.sku,
        np.zeros(task.n_skus, dtype=np.int64),
        n_groups=1,
        negative_binomial=task.negative_binomial,
        fixed_slope=task.fixed_slope,
        max_iter=task.max_iter,
        censored=task.censored,
        start=task.start,
        progress=False,
    )


def fit_by_group(
    y: np.ndarray,
    x: np.ndarray,
    z: np.ndarray,
    sku: np.ndarray,
    group_of_sku: np.ndarray,
    *,
    n_groups: int,
    negative_binomial: bool,
    fixed_slope: np.ndarray,
    max_iter: int,
    censored: np.ndarray,
    start: GLMResult | None,
    map_tasks: MapTasks,
) -> GLMResult:
    """The GLM of :func:`simulator.glm.fit_with_dispersion`, one task per group.

    The groups share no parameter (the likelihood, the Hessian and the overdispersion are
    per group), so each is fitted from its own rows alone and the results are put back in
    the joint layout: per-SKU arrays by SKU, per-group arrays by group, per-row arrays by
    row; ``n_iter`` is the most any group took, ``converged`` whether all did. Each group
    stops at its own convergence test (the joint fit stopped when the last group did), so
    the estimates agree with a joint fit up to Newton's tolerance.
    """
    group_rows = group_of_sku[sku]
    # each group's SKUs and rows in ascending order, from one stable sort each (not a scan
    # of every row per group)
    skus_of = np.split(
        np.argsort(group_of_sku, kind="stable"),
        np.cumsum(np.bincount(group_of_sku, minlength=n_groups))[:-1],
    )
    rows_of = np.split(
        np.argsort(group_rows, kind="stable"),
        np.cumsum(np.bincount(group_rows, minlength=n_groups))[:-1],
    )
    tasks: list[GroupTask] = []
    members: list[tuple[np.ndarray, np.ndarray]] = []
    for g in range(n_groups):
        skus, rows = skus_of[g], rows_of[g]
        local = np.searchsorted(skus, sku[rows])
        part = None
        if start is not None:
            part = GLMResult(
                intercept=start.intercept[skus],
                slope=start.slope[skus],
                cov=start.cov[skus],
                theta=start.theta[g : g + 1],
                theta_se=start.theta_se[g : g + 1],
                alpha=start.alpha[g : g + 1],
                mu=start.mu[rows],
                weight=start.weight[rows],
                n_iter=start.n_iter,
                converged=start.converged,
                loglik=start.loglik,
                y_filled=start.y_filled[rows],
            )
        tasks.append(
            GroupTask(
                y=y[rows],
                x=x[rows],
                z=z[rows],
                sku=local,
                n_skus=int(skus.size),
                fixed_slope=fixed_slope[skus],
                censored=censored[rows],
                negative_binomial=negative_binomial,
                max_iter=max_iter,
                start=part,
            )
        )
        members.append((skus, rows))
    log.info("demand fit: %d category group task(s)", len(tasks))
    results = map_tasks(fit_group, tasks)
    n_skus, n_rows, k = int(group_of_sku.size), int(y.size), int(z.shape[1])
    out = GLMResult(
        intercept=np.zeros(n_skus),
        slope=np.zeros(n_skus),
        cov=np.zeros((n_skus, 2, 2)),
        theta=np.zeros((n_groups, k)),
        theta_se=np.zeros((n_groups, k)),
        alpha=np.zeros(n_groups),
        mu=np.zeros(n_rows),
        weight=np.zeros(n_rows),
        n_iter=0,
        converged=True,
        loglik=0.0,
        y_filled=np.zeros(n_rows),
    )
    for g, ((skus, rows), res) in enumerate(zip(members, results, strict=True)):
        out.intercept[skus] = res.intercept
        out.slope[skus] = res.slope
        out.cov[skus] = res.cov
        out.theta[g] = res.theta[0]
        out.theta_se[g] = res.theta_se[0]
        out.alpha[g] = res.alpha[0]
        out.mu[rows] = res.mu
        out.weight[rows] = res.weight
        out.y_filled[rows] = res.y_filled
        out.n_iter = max(out.n_iter, res.n_iter)
        out.converged = out.converged and res.converged
        out.loglik += res.loglik
    return out


def _recent_level(
    catalog: Catalog, data: FitPanel, depth: np.ndarray, cfg: FitConfig
) -> np.ndarray:
    """Each SKU's recent level: (units + c) / (expected units + c) over the panel's last
    ``cfg.level_weeks`` weeks, under the fitted model at the prices the fit used.

    The fit's level averages the whole history, but a plan starts from now; ``c``
    (``cfg.level_pseudo_units``) keeps a SKU with little recent data near its fitted level.
    """
    frame, sku_code, n_skus = data.frame, data.sku_code, data.n_skus
    week = frame["week"].to_numpy(dtype=np.int64)
    y = frame["units"].to_numpy(dtype=float)
    recent = week > int(week.max()) - int(cfg.level_weeks or 0)
    rows = frame.loc[
        recent,
        ["sku", "week", "display", "mailer"]
        if {"display", "mailer"} <= set(frame.columns)
        else ["sku", "week"],
    ]
    rows = rows.assign(discount_depth=np.minimum(depth[recent], cfg.max_fit_depth))
    expected = predict_units(catalog, rows)
    c0 = cfg.level_pseudo_units
    got = np.bincount(sku_code[recent], weights=y[recent], minlength=n_skus)
    exp_ = np.bincount(sku_code[recent], weights=expected, minlength=n_skus)
    return (got + c0) / (exp_ + c0)


def _deviance_explained(y: np.ndarray, mu: np.ndarray, sku: np.ndarray, n_skus: int) -> float:
    """Poisson deviance explained against each SKU's own constant mean (so it measures what
    price, season and promotions add beyond the SKU effects)."""

    def dev(m: np.ndarray) -> float:
        m = np.maximum(m, 1e-12)
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(y > 0, y * np.log(y / m), 0.0)
        return float(2.0 * np.sum(term - (y - m)))

    mean = np.bincount(sku, weights=y, minlength=n_skus) / np.bincount(sku, minlength=n_skus)
    d0 = dev(mean[sku])
    return 1.0 - dev(mu) / d0 if d0 > 0 else float("nan")
