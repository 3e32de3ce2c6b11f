"""The fluid (certainty-equivalent) model of a markdown, in one place.

In the fluid model demand is replaced by its expectation: an action held for ``W`` weeks
sells ``min(expected demand, stock)`` units, the units left pay holding every week but the
exit week and, at exit, are salvaged, written off and charged the sell-through penalty
(Gallego and van Ryzin, 1994, re-solved every week from the realised state). Three users
read it:

- the ``certainty_equiv`` baseline (:class:`agents.baselines.CertaintyEquivalent`) takes the
  action with the best :func:`week_by_week_values`: the season and the price memory of every
  week ahead, each action held to exit, the coupon budget ignored;
- the PPO features (:class:`agents.ppo.FluidHint`) append :func:`augment` to the env's
  observation: :func:`hint_features` (the continuous run-out price, from the observation
  alone, and a few of the SKU's parameters) and :func:`value_features`, the re-solve over the
  action grid in closed form (:func:`closed_form_values`: the mean season of the weeks left,
  the coupon only while its budget lasts, and the two-price plan of a discrete ladder);
- the PPO prior (:class:`agents.ppo.FluidPriorPolicy`) starts its logits at the fluid
  regrets of :func:`value_features`.

A trained PPO model has learnt on these features: changing any number here changes what a
saved model reads (``tests/agents/test_fluid.py`` compares them with frozen values).
"""

from __future__ import annotations

import numpy as np

from envs.config import DecisionState, RulesConfig
from envs.context import PolicyContext
from envs.observation import ELASTICITY_SCALE, OBS_DIM, OBS_NAMES
from envs.rules import exit_penalty
from simulator.demand import Catalog
from simulator.market import expected_demand, expected_demand_grid, paid_coupon_depth

# ---------------------------------------------------------------------------- shared terms


def demand_table(ctx: PolicyContext, n_weeks: int) -> np.ndarray:
    """Expected demand of every slot, action and week ahead, shape ``(n, n_actions, n_weeks)``.

    Week ``j`` is ``j`` weeks after the week being decided; the reference price and fatigue
    are held at their current values (a certainty-equivalent view of memory).
    """
    rules = ctx.rules
    single = ctx.is_one_sku()
    cat = ctx.catalog.take([0]) if single else ctx.catalog
    rows = slice(0, 1) if single else slice(None)
    week = np.asarray(ctx.market.week)[rows]
    ref = np.asarray(ctx.market.ref_price)[rows]
    fat = np.asarray(ctx.market.fatigue)[rows]
    d_all, c_all = rules.depths(np.arange(rules.n_actions))
    out = np.empty((cat.n_skus, rules.n_actions, n_weeks))
    for a in range(rules.n_actions):
        for j in range(n_weeks):
            out[:, a, j] = expected_demand(
                cat, week + j, d_all[a], c_all[a], ref_price=ref, fatigue=fat
            )
    if single:
        return np.broadcast_to(out, (ctx.n_slots, *out.shape[1:]))
    return out


def unit_margin(ctx: PolicyContext) -> np.ndarray:
    """Expected profit per unit sold of every slot and action, ``(n, n_actions)``: net price
    after coupon and expected refunds, minus unit cost."""
    cat, rules = ctx.catalog, ctx.rules
    d, c = rules.depths(np.arange(rules.n_actions))
    # a targeted coupon is paid only on the reached households' units (simulator.market)
    c_paid = paid_coupon_depth(cat.coupon_coef[:, None], cat.coupon_reach[:, None], c[None, :])
    net = cat.list_price[:, None] * (1.0 - d[None, :] - c_paid)
    return net * (1.0 - cat.return_rate[:, None]) - cat.unit_cost[:, None]


def _plus_exit(
    before_exit: np.ndarray, ctx: PolicyContext, left: np.ndarray, initial_stock: np.ndarray
) -> np.ndarray:
    """``before_exit`` (profit of the weeks to exit, ``(n, n_actions)``) plus the exit: the
    ``left`` units salvaged and written off, less the sell-through penalty."""
    cat = ctx.catalog
    value = before_exit + (cat.salvage_value_per_unit - cat.unit_cost)[:, None] * left
    # (actions, slots) so the catalog's per-slot arrays broadcast on the last axis
    return value - exit_penalty(ctx.rules, cat, left.T, initial_stock).T


def held_unit_weeks(stock: np.ndarray, lam: np.ndarray, weeks: np.ndarray) -> np.ndarray:
    """``sum_{k=1}^{weeks} max(stock - lam * k, 0)``: unit-weeks held at the end of each of
    ``weeks`` weeks of fluid demand ``lam`` (closed form, elementwise, ``weeks >= 0``)."""
    m = np.minimum(weeks, np.floor(stock / np.maximum(lam, 1e-12)))
    m = np.maximum(m, 0.0)
    return m * stock - lam * m * (m + 1.0) / 2.0


# ---------------------------------------------------------------------------- the baseline's re-solve


def week_by_week_values(ctx: PolicyContext) -> np.ndarray:
    """Fluid profit of holding each action until exit, in currency, shape ``(n, n_actions)``.

    Demand of each week ahead comes from :func:`demand_table` (its season, memory held);
    sales accumulate week by week up to the stock; the coupon budget is not modelled.
    """
    cat, dec = ctx.catalog, ctx.decision
    wl = np.asarray(dec.weeks_left, np.int64)
    n_w = int(max(wl.max(initial=1), 1))
    lam = demand_table(ctx, n_w)
    ahead = np.arange(n_w)[None, None, :] < wl[:, None, None]
    cum = np.cumsum(np.where(ahead, lam, 0.0), axis=2)
    stock = np.asarray(dec.stock, float)[:, None]
    total = cum[:, :, -1]
    sold = np.minimum(total, stock)
    left_by_week = stock[:, :, None] - np.minimum(cum, stock[:, :, None])
    # Holding on the stock left after every week but the exit week.
    not_exit = np.arange(n_w)[None, None, :] < (wl[:, None, None] - 1)
    holding = (left_by_week * not_exit).sum(axis=2) * cat.holding_cost_per_unit_week[:, None]
    left = stock - sold
    initial = np.asarray(dec.initial_stock, float)
    return _plus_exit(unit_margin(ctx) * sold - holding, ctx, left, initial)


# ---------------------------------------------------------------------------- the hint
LOG_STOCK_SCALE = 4.0
"""The hint's ``log_stock`` is ``log10(1 + stock) / LOG_STOCK_SCALE`` (10,000 units read 1)."""

HINT_FIELDS: tuple[tuple[str, float, float, str], ...] = (
    ("fluid_depth", 0.0, 1.0, "certainty-equivalent (fluid) depth from cover and elasticity"),
    ("log_cover", -3.0, 2.0, "log of demand_cover"),
    ("holding_to_exit", 0.0, 1.0, "holding cost of a unit until exit / list price"),
    ("dispersion", 0.0, 2.0, "negative-binomial overdispersion (0 = Poisson)"),
    (
        "log_stock",
        0.0,
        1.5,
        f"log10(1 + stock on hand) / {LOG_STOCK_SCALE:g} (noise matters more for few units)",
    ),
)
"""Features :func:`hint_features` appends to the env's observation (``PPOConfig.fluid_hint``).
The first two are computed from the observation; the others from the SKU's parameters and
state (the env's observation leaves them out), so a hinted policy needs a
:class:`~envs.context.PolicyContext`."""

_I_ELASTICITY = OBS_NAMES.index("elasticity")
_I_COVER = OBS_NAMES.index("demand_cover")
_I_SALVAGE = OBS_NAMES.index("salvage_ratio")
_I_SEASON_NOW = OBS_NAMES.index("season_now")
_I_SEASON_AHEAD = OBS_NAMES.index("season_ahead")


def hint_features(obs: np.ndarray, catalog: Catalog, decision: DecisionState) -> np.ndarray:
    """Features of :data:`HINT_FIELDS` for a batch of SKUs.

    The fluid depth: with full-price demand over the weeks left ``cover * stock`` and demand
    scaling as ``(1 - d) ** elasticity``, the fluid revenue ``(p - salvage) * D(p) + salvage *
    stock`` is maximised at price ``p = max(p_runout, salvage * e / (e - 1))`` for ``e =
    |elasticity| > 1`` (``p_runout = cover ** (1 / e)`` sells the stock exactly), and at list
    price for inelastic SKUs. Re-solved every week from the observation, it lets the network
    learn a correction to the fluid price rather than the price itself.

    Parameters
    ----------
    obs : ndarray of shape (n, OBS_DIM)
    catalog : Catalog
        The ``n`` SKUs, row for row.
    decision : DecisionState
        Their decision state (weeks left, stock).

    Returns
    -------
    ndarray of float32 of shape (n, len(HINT_FIELDS))
    """
    o = np.asarray(obs, dtype=np.float64)
    e = np.maximum(-ELASTICITY_SCALE * o[:, _I_ELASTICITY], 1e-6)
    cover = np.maximum(o[:, _I_COVER], 1e-6)
    salvage = o[:, _I_SALVAGE]
    p_runout = np.minimum(cover, 1.0) ** (1.0 / e)
    p_salvage = np.where(e > 1.0, salvage * e / np.maximum(e - 1.0, 1e-6), 1.0)
    price = np.where(e > 1.0, np.maximum(p_runout, p_salvage), 1.0)
    weeks_left = np.maximum(np.asarray(decision.weeks_left, dtype=float) - 1.0, 0.0)
    out = np.empty((o.shape[0], len(HINT_FIELDS)), dtype=np.float64)
    out[:, 0] = 1.0 - price
    out[:, 1] = np.log(cover)
    out[:, 2] = catalog.holding_cost_per_unit_week * weeks_left / catalog.list_price
    out[:, 3] = catalog.dispersion
    out[:, 4] = np.log10(1.0 + np.asarray(decision.stock, dtype=float)) / LOG_STOCK_SCALE
    low = np.array([f[1] for f in HINT_FIELDS])
    high = np.array([f[2] for f in HINT_FIELDS])
    return np.clip(out, low, high).astype(np.float32)


# ---------------------------------------------------------------------------- the grid re-solve
VALUE_SCALE = 4.0
"""Fluid regrets are multiplied by this before clipping to [-1, 0] (a regret of 0.25 list
prices per unit of stock or more reads as -1)."""


def closed_form_values(
    obs: np.ndarray,
    context: PolicyContext,
    masks: np.ndarray | None = None,
    *,
    split: bool = True,
) -> np.ndarray:
    """Fluid profit of holding each action until exit, per unit of stock and list price,
    shape ``(n, n_actions)``; ``-inf`` where ``masks`` forbids.

    Demand is its expectation at the current week, scaled to the mean seasonal factor of the
    weeks left (``season_ahead / season_now`` of the observation), so the sums over the weeks
    left are closed-form: with weekly demand ``lam``, stock ``S`` and ``W`` weeks left the
    fluid sells ``min(lam W, S)`` units and holds ``sum_{k<W} max(S - lam k, 0)`` unit-weeks.
    A coupon runs only while the coupon budget lasts (``B`` weeks), then the same shelf
    discount continues without it. With ``split``, each action is also valued as the first
    of two prices: it runs until the week from which the next deeper shelf discount sells the
    stock out exactly at exit (the fluid LP's mix of two adjacent prices of a discrete
    ladder); the better of the two plans counts. Leftover units count as in
    :func:`week_by_week_values` (which sums week by week and ignores the coupon budget).
    """
    cat, rules, dec = context.catalog, context.rules, context.decision
    o = np.asarray(obs, dtype=np.float64)
    n_act = rules.n_actions
    actions = np.arange(n_act)
    d_all, c_all = rules.depths(actions)
    ratio = o[:, _I_SEASON_AHEAD] / np.maximum(o[:, _I_SEASON_NOW], 1e-6)
    week = np.asarray(context.market.week)
    ref = np.asarray(context.market.ref_price)
    fat = np.asarray(context.market.fatigue)
    lam = expected_demand_grid(cat, week, d_all, c_all, ref_price=ref, fatigue=fat)
    lam *= ratio[:, None]
    margin = unit_margin(context)
    stock = np.maximum(np.asarray(dec.stock, dtype=float), 0.0)[:, None]
    w = np.maximum(np.asarray(dec.weeks_left, dtype=float), 1.0)[:, None]
    init = np.asarray(dec.initial_stock, dtype=float)

    def plan(lam1: np.ndarray, m1: np.ndarray, lam2: np.ndarray, m2: np.ndarray, b: np.ndarray):
        """Fluid profit of (lam1, m1) for b weeks, then (lam2, m2) to exit."""
        sold1 = np.minimum(lam1 * b, stock)
        rest = stock - sold1
        sold2 = np.minimum(lam2 * (w - b), rest)
        # unit-weeks held after each week but the exit week (weeks 1..W-1)
        held = held_unit_weeks(stock, lam1, np.minimum(b, w - 1.0)) + held_unit_weeks(
            rest, lam2, w - 1.0 - b
        )
        before_exit = m1 * sold1 + m2 * sold2 - cat.holding_cost_per_unit_week[:, None] * held
        return _plus_exit(before_exit, context, rest - sold2, init)

    # hold: the action for B weeks (B = W, or the coupon weeks left for a coupon action),
    # then the same shelf discount without the coupon to exit
    budget = np.asarray(dec.coupon_weeks_left, dtype=float)[:, None]
    b = np.where(c_all[None, :] > 0, np.minimum(budget, w), w)
    depth_index = rules.decode(actions)[0]
    after = rules.encode(depth_index, np.zeros_like(depth_index))
    value = plan(lam, margin, lam[:, after], margin[:, after], b)
    # split: the action until the week that, followed by the next deeper shelf discount,
    # sells the stock out exactly at exit (the fluid LP's mix of two adjacent prices)
    deeper = np.minimum(depth_index + 1, rules.n_discounts - 1)
    if rules.max_discount is not None:
        cap = np.asarray(rules.discount_levels)[deeper] <= rules.max_discount + 1e-9
        deeper = np.where(cap, deeper, depth_index)
    nxt = rules.encode(deeper, np.zeros_like(deeper))
    lam_n = lam[:, nxt]
    gap = lam_n - lam
    k = (lam_n * w - stock) / np.where(gap > 0, gap, 1.0)
    ok = (gap > 0) & (k > 0) & (k < b)
    if split and ok.any():
        two_prices = plan(lam, margin, lam_n, margin[:, nxt], np.where(ok, k, b))
        value = np.where(ok, np.maximum(value, two_prices), value)
    value /= np.maximum(stock, 1.0) * cat.list_price[:, None]
    if masks is not None:
        value = np.where(np.asarray(masks, dtype=bool), value, -np.inf)
    return value


N_VALUE_HEAD = 3
"""Features :func:`value_features` puts before the regrets (depth, coupon, value to go)."""


def value_features(
    obs: np.ndarray, context: PolicyContext, masks: np.ndarray | None = None
) -> np.ndarray:
    """The closed-form re-solve as features, shape ``(n, N_VALUE_HEAD + n_actions)``:

    - the fluid action's discount and coupon depth;
    - its value to go in reward units (fluid profit per unit of *initial* stock value,
      clipped to [-1, 2]), a baseline for the critic;
    - each action's fluid regret, ``VALUE_SCALE * (value - best allowed value)`` per unit of
      stock on hand, clipped to [-1, 0] (forbidden actions read -1), the prior of
      :class:`agents.ppo.FluidPriorPolicy`.

    The network then learns a correction to the fluid re-solve instead of the price map.
    """
    value = closed_form_values(obs, context, masks)
    rows = np.arange(value.shape[0])
    best = np.argmax(value, axis=1)
    d, c = context.rules.depths(best)
    top = value[rows, best]
    dec = context.decision
    share = np.asarray(dec.stock, float) / np.maximum(np.asarray(dec.initial_stock, float), 1.0)
    to_go = np.clip(np.where(np.isfinite(top), top, 0.0) * share, -1.0, 2.0)
    regret = np.clip(VALUE_SCALE * (value - top[:, None]), -1.0, 0.0)
    regret = np.where(np.isfinite(regret), regret, -1.0)
    return np.concatenate([d[:, None], c[:, None], to_go[:, None], regret], axis=1).astype(
        np.float32
    )


# ---------------------------------------------------------------------------- the features
PRIOR_START = OBS_DIM + len(HINT_FIELDS) + N_VALUE_HEAD
"""Index of the first fluid regret in a hinted observation (after the env's fields, the
:data:`HINT_FIELDS` and the fluid action's depth, coupon and value to go)."""


def augment(
    obs: np.ndarray,
    context: PolicyContext,
    masks: np.ndarray | None = None,
    *,
    values: bool = True,
) -> np.ndarray:
    """``obs`` with the hint appended: :func:`hint_features`, then (``values=True``)
    :func:`value_features`."""
    o = np.asarray(obs, dtype=np.float32)
    parts = [o, hint_features(o, context.catalog, context.decision)]
    if values:
        parts.append(value_features(o, context, masks))
    return np.concatenate(parts, axis=1)


def hint_dim(rules: RulesConfig, values: bool = True) -> int:
    """Number of features :func:`augment` appends for ``rules``' action grid."""
    return len(HINT_FIELDS) + (N_VALUE_HEAD + rules.n_actions if values else 0)


def hint_bounds(rules: RulesConfig, values: bool = True) -> tuple[list[float], list[float]]:
    """Lowest and highest value of each feature :func:`augment` appends (for the observation
    space of a hinted env)."""
    low = [f[1] for f in HINT_FIELDS]
    high = [f[2] for f in HINT_FIELDS]
    if values:  # depth, coupon, value to go, then the regrets
        low += [0.0, 0.0, -1.0] + [-1.0] * rules.n_actions
        high += [1.0, 1.0, 2.0] + [0.0] * rules.n_actions
    return low, high
