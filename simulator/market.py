"""The market step: one vectorized week for N SKUs. Pure NumPy, explicit ``Generator``.

Every environment, evaluation, DP check and export calls :func:`step` (or, for expectations,
:func:`expected_demand`); the market's arithmetic lives here once.

Accounting (per SKU and week; ``L`` = list price, ``d`` = discount, ``c`` = coupon depth,
``c_paid = c * coupon_share`` the coupon paid per unit sold on average)::

    units_sold     = min(demand, stock)
    units_returned ~ Binomial(units_sold, return_rate)   (refunded, not resold)
    revenue        = units_sold * L * (1 - d)
    coupon_cost    = units_sold * L * c_paid
    refunds        = units_returned * L * (1 - d - c_paid)
    cogs           = units_sold * unit_cost
    holding_cost   = stock_after * holding_cost_per_unit_week      (not in the exit week)
    salvage        = stock_after * salvage_value_per_unit          (exit week only)
    writeoff       = stock_after * unit_cost                       (exit week only)
    profit         = revenue - coupon_cost - refunds - cogs - holding_cost + salvage - writeoff

A coupon reaches the share ``r = coupon_reach`` of demand (its target households): only that
share is lifted, ``coupon_factor = (1 - r) + r * exp(coupon_coef * c)`` (:func:`coupon_log_lift`),
and only the reached households' units pay it, ``coupon_share = r * exp(coupon_coef * c) /
coupon_factor`` of the units sold (:func:`paid_coupon_depth`). With ``r = 1`` (the default)
both reduce to the untargeted model bit for bit: ``exp(coupon_coef * c)`` and ``c_paid = c``.

Charging ``cogs`` on units sold and ``writeoff`` on units left makes the total cost of goods
the same for every policy (``initial_stock * unit_cost``), so the profit ranks schedules by
what they earn from the stock and its leftover, as the design's margin accounting asks.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ingest.errors import DataError
from ingest.panel import MAX_DISCOUNT_DEPTH
from simulator.demand import Catalog

MAX_FATIGUE = 0.95


@dataclass
class MarketState:
    """State of each SKU between weeks (arrays of shape ``(n_skus,)``).

    Attributes
    ----------
    stock : ndarray of float
        Units on hand (whole numbers stored as float).
    week : ndarray of int
        Calendar week index of the *next* week to simulate (season index = week % 52).
    ref_price : ndarray of float
        Reference price as a ratio to list price (1.0 = shoppers expect the list price).
    fatigue : ndarray of float
        Promotion fatigue in [0, 0.95]; demand is scaled by ``1 - fatigue``.
    """

    stock: np.ndarray
    week: np.ndarray
    ref_price: np.ndarray
    fatigue: np.ndarray

    def copy(self) -> MarketState:
        return MarketState(
            self.stock.copy(), self.week.copy(), self.ref_price.copy(), self.fatigue.copy()
        )

    def take(self, rows: np.ndarray) -> MarketState:
        """The states of ``rows`` (an index array or mask), as new arrays."""
        return MarketState(
            **{f.name: np.asarray(getattr(self, f.name))[rows] for f in fields(self)}
        )


@dataclass
class StepResult:
    """What one week produced, each reward term separately (arrays of shape (n_skus,))."""

    demand: np.ndarray
    units_sold: np.ndarray
    units_returned: np.ndarray
    lost_sales: np.ndarray
    revenue: np.ndarray
    coupon_cost: np.ndarray
    refunds: np.ndarray
    cogs: np.ndarray
    holding_cost: np.ndarray
    salvage: np.ndarray
    writeoff: np.ndarray
    profit: np.ndarray
    stock_after: np.ndarray


def initial_state(catalog: Catalog, stock: np.ndarray | None = None) -> MarketState:
    """State at the start of a plan: stock on hand, the catalog's start week, reference price
    at list, no fatigue."""
    n = catalog.n_skus
    s = catalog.initial_stock if stock is None else np.asarray(stock, dtype=float)
    return MarketState(
        stock=np.array(s, dtype=float),
        week=np.array(catalog.start_week, dtype=np.int64),
        ref_price=np.ones(n),
        fatigue=np.zeros(n),
    )


def _as_array(x: np.ndarray | float, n: int, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.shape != (n,):
        raise DataError(f"{name} has shape {arr.shape}; expected ({n},) — one value per SKU")
    return arr


def _times(coef: np.ndarray, x: np.ndarray | float, n: int, name: str) -> np.ndarray:
    """``coef * x`` with ``x`` a scalar or one value per SKU (a scalar is not first
    broadcast into an array: the same products, one allocation fewer)."""
    if np.ndim(x) == 0:
        return coef * float(x)
    return coef * _as_array(x, n, name)


def _check_depths(d: np.ndarray, c: np.ndarray) -> None:
    """Refuse discounts and coupons outside ``[0, MAX_DISCOUNT_DEPTH]`` (together)."""
    # min/max reductions instead of elementwise masks: this runs every simulated week
    # (d.max() > MAX_DISCOUNT_DEPTH needs no check of its own: with c >= 0, d + c >= d)
    if d.min() < 0 or c.min() < 0 or (d + c).max() > MAX_DISCOUNT_DEPTH:
        raise DataError(
            f"discount must lie in [0, {MAX_DISCOUNT_DEPTH}] and discount + coupon "
            f"<= {MAX_DISCOUNT_DEPTH}; got discount in [{d.min()}, {d.max()}], "
            f"coupon in [{c.min()}, {c.max()}]"
        )


def coupon_log_lift(coupon_coef: np.ndarray, reach: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``log((1 - reach) + reach * exp(coupon_coef * c))`` (arrays broadcast): the coupon's
    lift on the SKU's whole demand when only the share ``reach`` of it is reached.

    ``reach == 1`` gives ``coupon_coef * c`` exactly, ``reach == 0`` or ``c == 0`` exactly 0.
    """
    log_lift = coupon_coef * c
    if np.all(reach == 1.0):  # untargeted coupons: the model before reach, bit for bit
        return log_lift
    with np.errstate(divide="ignore"):  # log(0) = -inf is the exact limit logaddexp needs
        mixed = np.logaddexp(np.log1p(-reach), np.log(reach) + log_lift)
    return np.where(reach == 1.0, log_lift, np.where(c == 0, 0.0, mixed))


def paid_coupon_depth(coupon_coef: np.ndarray, reach: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The coupon paid per unit sold on average, ``c * coupon_share`` (arrays broadcast):
    only the reached households' units, ``reach * exp(coupon_coef * c) / coupon_factor`` of
    them, redeem it. ``reach == 1`` returns ``c`` itself, ``reach == 0`` returns 0."""
    if np.all(reach == 1.0):
        return np.broadcast_to(c, np.broadcast_shapes(np.shape(c), np.shape(reach)))
    with np.errstate(divide="ignore"):
        share = np.exp(np.log(reach) + coupon_coef * c - coupon_log_lift(coupon_coef, reach, c))
    return np.where(reach == 1.0, c, c * np.where(reach == 0.0, 0.0, share))


def _season_at(catalog: Catalog, week: np.ndarray) -> np.ndarray:
    """:meth:`Catalog.season_at`, as one ``take`` from the flat season table (the same
    values; a 2-D fancy index costs more, and this runs every simulated week)."""
    season = catalog.season
    if not season.flags.c_contiguous:
        return catalog.season_at(week)
    n, period = season.shape
    flat_index = np.arange(0, n * period, period) + np.asarray(week) % period
    return season.reshape(-1).take(flat_index)


def expected_demand(
    catalog: Catalog,
    week: np.ndarray,
    discount: np.ndarray | float,
    coupon: np.ndarray | float = 0.0,
    *,
    ref_price: np.ndarray | float = 1.0,
    fatigue: np.ndarray | float = 0.0,
    display: np.ndarray | float = 0.0,
    mailer: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Expected units demanded (before the stock limit), shape ``(n_skus,)``."""
    n = catalog.n_skus
    d = _as_array(discount, n, "discount")
    c = _as_array(coupon, n, "coupon")
    _check_depths(d, c)
    price_ratio = 1.0 - d
    log_lift = (
        catalog.elasticity * np.log(price_ratio)
        + coupon_log_lift(catalog.coupon_coef, catalog.coupon_reach, c)
        + _times(catalog.display_coef, display, n, "display")
        + _times(catalog.mailer_coef, mailer, n, "mailer")
    )
    gamma = catalog.ref_price_sensitivity
    if np.any(gamma):
        ref = _as_array(ref_price, n, "ref_price")
        log_lift = log_lift - gamma * (np.log(price_ratio) - np.log(ref))
    lam = catalog.base_demand * _season_at(catalog, week) * np.exp(log_lift)
    if np.any(catalog.fatigue_rate):
        lam = lam * (1.0 - _as_array(fatigue, n, "fatigue"))
    return lam


def expected_demand_grid(
    catalog: Catalog,
    week: np.ndarray,
    discounts: np.ndarray,
    coupons: np.ndarray,
    *,
    ref_price: np.ndarray | float = 1.0,
    fatigue: np.ndarray | float = 0.0,
) -> np.ndarray:
    """:func:`expected_demand` of every SKU under each of ``k`` (discount, coupon) pairs at
    once (no display or mailer), shape ``(n_skus, k)``: column ``j`` equals
    ``expected_demand(catalog, week, discounts[j], coupons[j], ...)``."""
    n = catalog.n_skus
    d = np.asarray(discounts, dtype=float).reshape(-1)
    c = np.asarray(coupons, dtype=float).reshape(-1)
    if d.shape != c.shape:
        raise DataError(f"discounts {d.shape} and coupons {c.shape} must have the same shape")
    _check_depths(d, c)
    log_ratio = np.log(1.0 - d)[None, :]
    log_lift = catalog.elasticity[:, None] * log_ratio + coupon_log_lift(
        catalog.coupon_coef[:, None], catalog.coupon_reach[:, None], c[None, :]
    )
    gamma = catalog.ref_price_sensitivity
    if np.any(gamma):
        log_ref = np.log(_as_array(ref_price, n, "ref_price"))
        log_lift = log_lift - gamma[:, None] * (log_ratio - log_ref[:, None])
    lam = (catalog.base_demand * _season_at(catalog, week))[:, None] * np.exp(log_lift)
    if np.any(catalog.fatigue_rate):
        lam = lam * (1.0 - _as_array(fatigue, n, "fatigue"))[:, None]
    return lam


def draw_demand(lam: np.ndarray, dispersion: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Negative-binomial draws with mean ``lam`` (gamma-Poisson mixture); Poisson where
    ``dispersion == 0``."""
    nb = dispersion > 0
    if nb.all():  # the common case: no masking needed (same draws as the general branch)
        shape = 1.0 / dispersion
        lam = lam * (rng.gamma(shape, 1.0, size=lam.shape) / shape)
    elif nb.any():
        shape = np.where(nb, 1.0 / np.where(nb, dispersion, 1.0), 1.0)
        mix = rng.gamma(shape, 1.0, size=lam.shape) / shape
        lam = np.where(nb, lam * mix, lam)
    return rng.poisson(lam).astype(float)


def step(
    catalog: Catalog,
    state: MarketState,
    discount: np.ndarray | float,
    coupon: np.ndarray | float,
    rng: np.random.Generator,
    *,
    exit_now: np.ndarray | bool = False,
    display: np.ndarray | float = 0.0,
    mailer: np.ndarray | float = 0.0,
) -> tuple[MarketState, StepResult]:
    """Simulate one week for every SKU.

    Parameters
    ----------
    catalog : Catalog
        Parameters of the ``n_skus`` SKUs being simulated (one row per slot).
    state : MarketState
        State before the week; not modified.
    discount, coupon : array-like of shape (n_skus,) or float
        Discount and coupon depth as shares of list price.
    rng : numpy.random.Generator
        The only source of randomness.
    exit_now : array-like of bool of shape (n_skus,) or bool
        SKUs whose exit week this is: their leftover stock is salvaged and written off.
    display, mailer : array-like of shape (n_skus,) or float
        Promotion intensity (share of stores).

    Returns
    -------
    next_state : MarketState
    result : StepResult
    """
    n = catalog.n_skus
    d = _as_array(discount, n, "discount")
    c = _as_array(coupon, n, "coupon")
    lam = expected_demand(
        catalog,
        state.week,
        d,
        c,
        ref_price=state.ref_price,
        fatigue=state.fatigue,
        display=display,
        mailer=mailer,
    )
    demand = draw_demand(lam, catalog.dispersion, rng)
    sold = np.minimum(demand, state.stock)
    list_price = catalog.list_price
    c_paid = paid_coupon_depth(catalog.coupon_coef, catalog.coupon_reach, c)
    if np.any(catalog.return_rate > 0):
        returned = rng.binomial(sold.astype(np.int64), catalog.return_rate).astype(float)
        refunds = returned * list_price * (1.0 - d - c_paid)
    else:  # no returns: refunds are 0 (1 - d - c > 0), as the product above would give
        returned = np.zeros(n)
        refunds = np.zeros(n)
    stock_after = state.stock - sold
    sold_at_list = sold * list_price
    revenue = sold_at_list * (1.0 - d)
    coupon_cost = sold_at_list * c_paid
    cogs = sold * catalog.unit_cost
    exit_mask = np.broadcast_to(np.asarray(exit_now, dtype=bool), (n,))
    if exit_mask.any():
        holding = np.where(exit_mask, 0.0, stock_after * catalog.holding_cost_per_unit_week)
        salvage = np.where(exit_mask, stock_after * catalog.salvage_value_per_unit, 0.0)
        writeoff = np.where(exit_mask, stock_after * catalog.unit_cost, 0.0)
    else:  # most weeks: nobody exits
        holding = stock_after * catalog.holding_cost_per_unit_week
        salvage = np.zeros(n)
        writeoff = np.zeros(n)
    profit = revenue - coupon_cost - refunds - cogs - holding + salvage - writeoff

    mem = catalog.ref_price_memory
    next_state = MarketState(
        stock=stock_after,
        week=state.week + 1,
        ref_price=mem * state.ref_price + (1.0 - mem) * (1.0 - d),
        fatigue=np.minimum(
            catalog.fatigue_decay * state.fatigue + catalog.fatigue_rate * (d > 0), MAX_FATIGUE
        ),
    )
    result = StepResult(
        demand=demand,
        units_sold=sold,
        units_returned=returned,
        lost_sales=demand - sold,
        revenue=revenue,
        coupon_cost=coupon_cost,
        refunds=refunds,
        cogs=cogs,
        holding_cost=holding,
        salvage=salvage,
        writeoff=writeoff,
        profit=profit,
        stock_after=stock_after,
    )
    return next_state, result
