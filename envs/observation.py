"""The observation of a SKU at a decision: one function for both envs and the PPO model.

:func:`build_observation` turns the rules' :class:`~envs.config.DecisionState`, the market's
:class:`~simulator.market.MarketState` and the SKU's parameters into a ``float32`` row per SKU.
The single-SKU env, the batched env and the exported PPO model (MLflow pyfunc) all call it,
so a policy sees the same numbers in training, evaluation and serving.

Every field is scaled to be of order one and clipped to the bounds in :data:`OBS_FIELDS`
(the observation space's ``low`` and ``high``). The action mask is not part of the
observation; the envs return it separately.

======================  ==========  =================================================
field                   range       meaning
======================  ==========  =================================================
weeks_left_frac         [0, 1]      weeks left / the episode's horizon
weeks_left_26           [0, 4]      weeks left / 26 (absolute time, for mixed horizons)
stock_ratio             [0, 1]      stock on hand / stock at the start of the plan
depth                   [0, 1]      discount in force (share of list price)
weeks_since_change      [0, 1]      min(weeks since the depth last changed, 13) / 13
last_sales_rate         [0, 10]     last week's units sold / (initial stock / horizon)
ref_price               [0, 2]      reference price / list price (1 = list)
fatigue                 [0, 1]      promotion fatigue (demand x (1 - fatigue))
elasticity              [-3, 0]     price elasticity / 4 (-2 -> -0.5)
demand_cover            [0, 5]      full-price expected demand over the weeks left /
                                    stock on hand (> 1: sells out without discount)
cost_ratio              [0, 2]      unit cost / list price
salvage_ratio           [0, 2]      salvage value / list price
risk_score              [0, 1]      dead-stock risk score (0 when not scored)
season_now              [0, 5]      seasonal factor of the week being decided
season_ahead            [0, 5]      mean seasonal factor over the weeks left
coupon_lift             [0, 3]      coupon_coef * deepest coupon level (log-lift)
coupon_weeks_share      [0, 1]      coupon weeks left in the budget / weeks left
                                    (1 when unlimited or coupons are off)
======================  ==========  =================================================
"""

from __future__ import annotations

import numpy as np

from envs.config import DecisionState, RulesConfig
from simulator.demand import SEASON_PERIOD, Catalog
from simulator.market import MarketState

WSC_CAP = 13
"""``weeks_since_change`` is capped at this many weeks in the observation."""
WEEKS_SCALE = 26.0
"""``weeks_left_26`` = weeks left / this (half a year reads 1, for mixed horizons)."""
ELASTICITY_SCALE = 4.0
"""``elasticity`` = price elasticity / this (an elasticity of -2 reads -0.5); a reader of the
observation multiplies by it to get the elasticity back."""

# (name, low, high, meaning)
OBS_FIELDS: tuple[tuple[str, float, float, str], ...] = (
    ("weeks_left_frac", 0.0, 1.0, "weeks left / the episode's horizon"),
    ("weeks_left_26", 0.0, 4.0, f"weeks left / {WEEKS_SCALE:g}"),
    ("stock_ratio", 0.0, 1.0, "stock on hand / stock at the start of the plan"),
    ("depth", 0.0, 1.0, "discount in force, share of list price"),
    ("weeks_since_change", 0.0, 1.0, f"min(weeks since the last change, {WSC_CAP}) / {WSC_CAP}"),
    ("last_sales_rate", 0.0, 10.0, "last week's units sold / (initial stock / horizon)"),
    ("ref_price", 0.0, 2.0, "reference price / list price"),
    ("fatigue", 0.0, 1.0, "promotion fatigue"),
    ("elasticity", -3.0, 0.0, f"price elasticity / {ELASTICITY_SCALE:g}"),
    ("demand_cover", 0.0, 5.0, "full-price expected demand over the weeks left / stock"),
    ("cost_ratio", 0.0, 2.0, "unit cost / list price"),
    ("salvage_ratio", 0.0, 2.0, "salvage value / list price"),
    ("risk_score", 0.0, 1.0, "dead-stock risk score, 0 when not scored"),
    ("season_now", 0.0, 5.0, "seasonal factor of the week being decided"),
    ("season_ahead", 0.0, 5.0, "mean seasonal factor over the weeks left"),
    ("coupon_lift", 0.0, 3.0, "coupon_coef * deepest coupon level"),
    ("coupon_weeks_share", 0.0, 1.0, "coupon weeks left / weeks left (1 when unlimited)"),
)
OBS_NAMES: tuple[str, ...] = tuple(f[0] for f in OBS_FIELDS)
OBS_DIM = len(OBS_FIELDS)
OBS_LOW = np.array([f[1] for f in OBS_FIELDS], dtype=np.float32)
OBS_HIGH = np.array([f[2] for f in OBS_FIELDS], dtype=np.float32)
_INDEX = {name: i for i, name in enumerate(OBS_NAMES)}


def season_cumsum(catalog: Catalog) -> np.ndarray:
    """Cumulative seasonal factors over two periods, shape ``(n, 2 * 52 + 1)``, starting at 0.

    Envs that build many observations for the same SKUs compute it once and pass it to
    :func:`build_observation` (``season_cum=``).
    """
    season = catalog.season
    cum = np.zeros((season.shape[0], 2 * SEASON_PERIOD + 1))
    np.cumsum(np.concatenate([season, season], axis=1), axis=1, out=cum[:, 1:])
    return cum


def season_window_mean(
    season_cum: np.ndarray,
    week: np.ndarray,
    n_weeks: np.ndarray,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Seasonal factor of each SKU at calendar week ``week`` and its mean over the
    ``n_weeks`` weeks from there.

    Parameters
    ----------
    season_cum : ndarray of shape (n, 105)
        :func:`season_cumsum` of the SKUs.
    week : array-like of int of shape (n,)
        First calendar week of the window.
    n_weeks : array-like of int of shape (n,)
        Length of the window (windows of length 0 give the factor at ``week``).
    rows : array-like of int of shape (n,) or None
        Row of ``season_cum`` of each SKU (default: row ``i`` for SKU ``i``). Batched envs
        pass each slot's source SKU, so they gather from the source's small table instead of
        keeping (and copying at every episode start) one row per slot.

    Returns
    -------
    now, mean : ndarray of float of shape (n,)
    """
    cum = season_cum
    flat = cum.reshape(-1)
    start = np.asarray(week, dtype=np.int64) % SEASON_PERIOD
    if rows is None:
        start += np.arange(start.shape[0]) * cum.shape[1]
    else:
        start += np.asarray(rows, dtype=np.int64) * cum.shape[1]
    length = np.maximum(np.asarray(n_weeks, dtype=np.int64), 0)
    at_start = flat.take(start)
    now = flat.take(start + 1) - at_start
    if length.max(initial=0) < SEASON_PERIOD:  # the usual case: no whole period to add
        total = flat.take(start + length) - at_start
    else:
        # a window is whole periods plus a remainder that may wrap (cum covers two periods)
        full, rest = np.divmod(length, SEASON_PERIOD)
        period = flat.take(start - start % cum.shape[1] + SEASON_PERIOD)
        total = full * period + flat.take(start + rest) - at_start
    return now, np.where(length > 0, total / np.maximum(length, 1), now)


STATIC_FIELDS: tuple[str, ...] = (
    "elasticity",
    "cost_ratio",
    "salvage_ratio",
    "risk_score",
    "coupon_lift",
)
"""Fields that depend only on the SKU and the rules (see :func:`sku_features`)."""
_STATIC_INDEX = np.array([OBS_NAMES.index(f) for f in STATIC_FIELDS])
_DYNAMIC_FIELDS: tuple[str, ...] = tuple(f for f in OBS_NAMES if f not in STATIC_FIELDS)
_DYNAMIC_INDEX = np.array([OBS_NAMES.index(f) for f in _DYNAMIC_FIELDS])
_DYNAMIC_LOW = OBS_LOW[_DYNAMIC_INDEX].astype(float)[:, None]
_DYNAMIC_HIGH = OBS_HIGH[_DYNAMIC_INDEX].astype(float)[:, None]


def sku_features(catalog: Catalog, rules: RulesConfig) -> np.ndarray:
    """The SKU-descriptor fields that never change within an episode, shape
    ``(n, len(STATIC_FIELDS))``; envs compute them once per SKU and pass them to
    :func:`build_observation` (``sku_features=``)."""
    out = np.empty((catalog.n_skus, len(STATIC_FIELDS)))
    out[:, 0] = catalog.elasticity / ELASTICITY_SCALE
    out[:, 1] = catalog.unit_cost / catalog.list_price
    out[:, 2] = catalog.salvage_value_per_unit / catalog.list_price
    out[:, 3] = np.nan_to_num(catalog.risk_score, nan=0.0)
    out[:, 4] = catalog.coupon_coef * rules.coupon_levels[-1]
    return out


def static_observation(static: np.ndarray) -> np.ndarray:
    """Observation rows with only the :data:`STATIC_FIELDS` columns filled (clipped, the other
    columns 0), float32 ``(n, OBS_DIM)``, from :func:`sku_features` ``(n, 5)``.

    These columns never change within an episode: batched envs keep one such row per slot,
    set when the slot's episode starts, and pass them to :func:`assemble_observation`
    (``static_obs=``) instead of clipping the descriptors again at every step.
    """
    static = np.asarray(static, dtype=float)
    obs = np.zeros((static.shape[0], OBS_DIM), dtype=np.float32)
    for j, k in enumerate(_STATIC_INDEX.tolist()):
        np.clip(static[:, j], OBS_LOW[k], OBS_HIGH[k], out=obs[:, k])
    return obs


def build_observation(
    catalog: Catalog,
    decision: DecisionState,
    market: MarketState,
    rules: RulesConfig,
    *,
    horizon_weeks: np.ndarray | int,
    last_units_sold: np.ndarray | float = 0.0,
    season_cum: np.ndarray | None = None,
    static_features: np.ndarray | None = None,
) -> np.ndarray:
    """Observation rows for ``n`` SKUs at a decision (see the module docstring's table).

    Parameters
    ----------
    catalog : Catalog
        The ``n`` SKUs' parameters, row for row with the states.
    decision : DecisionState
        The rules' state before the week being decided.
    market : MarketState
        The market's state before the week (calendar week, reference price, fatigue).
    rules : RulesConfig
        For the discount ladder and the coupon levels.
    horizon_weeks : int or array-like of int of shape (n,)
        Each SKU's planned horizon (weeks from the start of its episode to exit).
    last_units_sold : float or array-like of shape (n,)
        Units sold in the week before (0 at the start of an episode).
    season_cum : ndarray of shape (n, 105) or None
        :func:`season_cumsum` of ``catalog`` if the caller keeps it (saves time).
    static_features : ndarray of shape (n, len(STATIC_FIELDS)) or None
        :func:`sku_features` of ``catalog`` if the caller keeps it (saves time).

    Returns
    -------
    ndarray of float32 of shape (n, OBS_DIM)
    """
    return assemble_observation(
        catalog.base_demand,
        season_cumsum(catalog) if season_cum is None else season_cum,
        sku_features(catalog, rules) if static_features is None else static_features,
        decision,
        market,
        rules,
        horizon_weeks=horizon_weeks,
        last_units_sold=last_units_sold,
    )


def assemble_observation(
    base_demand: np.ndarray,
    season_cum: np.ndarray,
    static: np.ndarray | None,
    decision: DecisionState,
    market: MarketState,
    rules: RulesConfig,
    *,
    horizon_weeks: np.ndarray | int,
    last_units_sold: np.ndarray | float = 0.0,
    season_rows: np.ndarray | None = None,
    static_obs: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`build_observation` from the only SKU data it needs: ``base_demand`` ``(n,)``,
    :func:`season_cumsum` ``(n, 105)`` and :func:`sku_features` ``(n, 5)`` (batched envs
    keep these per slot).

    Batched envs may instead pass ``season_rows`` (the row of ``season_cum`` of each SKU, see
    :func:`season_window_mean`) and ``static_obs``, the :func:`static_observation` rows of
    the SKUs (then ``static`` is not read and may be None); the result is the same.
    """
    n = base_demand.shape[0]
    weeks_left = np.asarray(decision.weeks_left, dtype=float)
    horizon = np.asarray(horizon_weeks, dtype=float)
    stock = np.asarray(decision.stock, dtype=float)
    safe_initial = np.maximum(np.asarray(decision.initial_stock, dtype=float), 1.0)
    safe_left = np.maximum(weeks_left, 1.0)
    season_now, season_ahead = season_window_mean(
        season_cum, market.week, decision.weeks_left, season_rows
    )
    if rules.n_coupons > 1:
        coupon_share = np.minimum(decision.coupon_weeks_left, safe_left) / safe_left
    else:
        coupon_share = np.ones(n)
    # the dynamic fields, computed field-major into one float64 buffer and clipped at once
    buf = np.empty((len(_DYNAMIC_FIELDS), n))
    row = dict(zip(_DYNAMIC_FIELDS, buf, strict=True))
    np.divide(weeks_left, np.maximum(horizon, 1.0), out=row["weeks_left_frac"])
    np.divide(weeks_left, WEEKS_SCALE, out=row["weeks_left_26"])
    np.divide(stock, safe_initial, out=row["stock_ratio"])
    np.take(np.asarray(rules.discount_levels), decision.depth_index, out=row["depth"])
    np.divide(
        np.minimum(decision.weeks_since_change, WSC_CAP), WSC_CAP, out=row["weeks_since_change"]
    )
    last = np.multiply(np.asarray(last_units_sold, dtype=float), horizon)
    np.divide(last, safe_initial, out=row["last_sales_rate"])
    row["ref_price"][:] = market.ref_price
    row["fatigue"][:] = market.fatigue
    cover = base_demand * season_ahead
    cover *= weeks_left
    np.divide(cover, np.maximum(stock, 1.0), out=row["demand_cover"])
    row["season_now"][:] = season_now
    row["season_ahead"][:] = season_ahead
    row["coupon_weeks_share"][:] = coupon_share
    np.clip(buf, _DYNAMIC_LOW, _DYNAMIC_HIGH, out=buf)
    if static_obs is not None:
        obs = np.array(static_obs, dtype=np.float32)  # a copy: the caller keeps its rows
    else:
        if static is None:
            raise ValueError("assemble_observation needs static or static_obs")
        obs = static_observation(static)
    obs[:, _DYNAMIC_INDEX] = buf.T  # float64 -> float32, as a clip straight into obs would
    return obs
