"""The pricing team's business rules as action masks (pure NumPy, vectorized over SKUs).

This module is the one place where the rules are decided and where the rule state moves:
the environments, the exact DP and the heuristics all call :func:`action_mask` and
:func:`advance`, so a rule is implemented once.

Actions are flat indices ``a = depth_index * n_coupons + coupon_index`` (see
:class:`envs.config.RulesConfig`). The *depth* is the shelf discount in force, which persists
from week to week; a *coupon* is a one-week targeted offer on top of it. A "price change"
means a change of the depth; coupons do not count as changes (but see the exit freeze).

Rules (each a switch in :class:`~envs.config.RulesConfig`)
----------------------------------------------------------
``ladder``
    Only the depths in ``discount_levels`` and ``coupon_levels`` exist in the action space,
    so the ladder is enforced by construction; it never masks anything.
``max_discount``
    Depths above ``max_discount`` are masked (coupons are bounded by ``coupon_levels``).
``min_weeks_between_changes`` (k)
    The depth may change only when ``weeks_since_change >= k``; ``weeks_since_change`` is 1
    in the week right after a change, so k = 0 or 1 switches the rule off.
``markdown_only``
    The depth never decreases (no price increase after a markdown).
``margin_floor`` (x)
    ``list_price * (1 - d - c) >= unit_cost * (1 + x)``; the no-discount, no-coupon action is
    always allowed even if the list price itself is below the floor.
``no_touch_after_launch`` (k)
    While ``age_weeks < k`` only action 0 (no discount, no coupon) is allowed. Plans start at
    depth 0 and age only grows, so during this window action 0 is also "no change".
``no_touch_before_exit`` (k)
    While ``weeks_left <= k`` the depth is frozen at its current value and no coupon is
    given (a coupon changes the price the shopper pays).
``coupon_budget``
    When ``coupon_weeks_left == 0`` only coupon level 0 is allowed; each week with a coupon
    uses one week of the budget.
``sell_through_hard`` (``sell_through_mode == "hard"``)
    In the exit week (``weeks_left == 1``), while the units sold so far are below
    ``sell_through_target * initial_stock``, only the deepest depth that the other rules
    allow is allowed (with any coupon the other rules allow at that depth). In penalty mode
    the target is instead charged at exit by :func:`exit_penalty`.

Precedence
----------
All rules but the hard sell-through rule are combined with a logical AND. The hard
sell-through rule is applied last and *selects among* what the others allow (the deepest
allowed depth), so it never conflicts with them: e.g. with an exit freeze it forces the depth
already in force. From the state :func:`initial_decision_state` builds, and moving only by
allowed actions through :func:`advance`, the *hold* action (current depth, no coupon) is
always allowed, so a mask row is never empty. For a state supplied from outside that no action
satisfies (say a depth already above ``max_discount`` with ``markdown_only``), the hold action
is allowed alone: the rules cannot undo a price already in force.
"""

from __future__ import annotations

import numpy as np

from envs.config import NO_BUDGET, DecisionState, RulesConfig
from simulator.demand import Catalog

LONG_AGO = 10**6
"""``weeks_since_change`` at the start of a plan (no change has happened yet)."""

RULE_NAMES: tuple[str, ...] = (
    "max_discount",
    "min_weeks_between_changes",
    "markdown_only",
    "margin_floor",
    "no_touch_after_launch",
    "no_touch_before_exit",
    "coupon_budget",
    "sell_through_hard",
)
"""Names of the rules that can mask an action, in the order :func:`rule_masks` returns."""

_EPS = 1e-9


def active_rules(rules: RulesConfig) -> tuple[str, ...]:
    """Names of the rules in :data:`RULE_NAMES` that are switched on in ``rules``."""
    on = {
        "max_discount": rules.max_discount is not None
        and rules.max_discount < rules.discount_levels[-1],
        "min_weeks_between_changes": rules.min_weeks_between_changes > 1,
        "markdown_only": rules.markdown_only,
        "margin_floor": rules.margin_floor is not None,
        "no_touch_after_launch": rules.no_touch_after_launch_weeks > 0,
        "no_touch_before_exit": rules.no_touch_before_exit_weeks > 0,
        "coupon_budget": rules.coupon_budget_weeks is not None and rules.n_coupons > 1,
        "sell_through_hard": rules.sell_through_target is not None
        and rules.sell_through_mode == "hard",
    }
    return tuple(name for name in RULE_NAMES if on[name])


def initial_decision_state(
    catalog: Catalog, horizon_weeks: int | np.ndarray, rules: RulesConfig
) -> DecisionState:
    """The decision state at the start of a plan: full horizon, the catalog's stock, no
    discount in force, no change yet, the whole coupon budget, the catalog's age.

    Parameters
    ----------
    catalog : Catalog
        The ``n_skus`` SKUs (``initial_stock`` and ``age_weeks`` are read).
    horizon_weeks : int or array-like of int of shape (n_skus,)
        Weeks until exit, counting the first week (>= 1).
    rules : RulesConfig
        Read for the coupon budget (``NO_BUDGET`` when unlimited).

    Returns
    -------
    DecisionState
        Arrays of shape ``(n_skus,)``.
    """
    n = catalog.n_skus
    budget = NO_BUDGET if rules.coupon_budget_weeks is None else rules.coupon_budget_weeks
    stock = np.array(catalog.initial_stock, dtype=float)
    return DecisionState(
        weeks_left=np.broadcast_to(np.asarray(horizon_weeks, dtype=np.int64), (n,)).copy(),
        stock=stock,
        initial_stock=stock.copy(),
        depth_index=np.zeros(n, dtype=np.int64),
        weeks_since_change=np.full(n, LONG_AGO, dtype=np.int64),
        coupon_weeks_left=np.full(n, budget, dtype=np.int64),
        age_weeks=np.array(catalog.age_weeks, dtype=np.int64),
    )


def hold_actions(rules: RulesConfig, state: DecisionState) -> np.ndarray:
    """The *hold* action of each SKU: keep the current depth, no coupon. Shape ``(n,)``."""
    depth = np.asarray(state.depth_index, dtype=np.int64)
    return rules.encode(depth, np.zeros_like(depth))


Factor = tuple[str, np.ndarray]
"""A piece of a rule's mask, *actions-major*: ``("depth", (n_d, n|1))``,
``("coupon", (n_c, n|1))`` or ``("full", (n_actions, n|1))`` bool arrays. A rule's mask is
the AND of its factors. Keeping the SKU axis last makes every operation a long contiguous
loop over thousands of SKUs, and most rules only need one axis of the action grid."""


def _base_masks(
    rules: RulesConfig, state: DecisionState, catalog: Catalog, names: tuple[str, ...]
) -> dict[str, list[Factor]]:
    """Per-rule factors for every rule in ``names`` except the hard sell-through rule."""
    depths = np.asarray(rules.discount_levels)
    coupons = np.asarray(rules.coupon_levels)
    di = np.arange(rules.n_discounts)[:, None]
    ci = np.arange(rules.n_coupons)[:, None]
    cur = np.asarray(state.depth_index, dtype=np.int64)[None, :]
    out: dict[str, list[Factor]] = {}
    if "max_discount" in names:
        assert rules.max_discount is not None
        out["max_discount"] = [("depth", (depths <= rules.max_discount + _EPS)[:, None])]
    if "min_weeks_between_changes" in names:
        locked = np.asarray(state.weeks_since_change) < rules.min_weeks_between_changes
        out["min_weeks_between_changes"] = [("depth", ~locked[None, :] | (di == cur))]
    if "markdown_only" in names:
        out["markdown_only"] = [("depth", di >= cur)]
    if "margin_floor" in names:
        assert rules.margin_floor is not None
        net = (1.0 - depths[:, None] - coupons[None, :]).reshape(-1)  # share of list price
        # least net share of list price each SKU may sell at
        floor = catalog.unit_cost * (1.0 + rules.margin_floor) / catalog.list_price - _EPS
        ok = net[:, None] >= floor[None, :]
        ok[0, :] = True
        out["margin_floor"] = [("full", ok)]
    if "no_touch_after_launch" in names:
        young = (np.asarray(state.age_weeks) < rules.no_touch_after_launch_weeks)[None, :]
        out["no_touch_after_launch"] = [
            ("depth", ~young | (di == 0)),
            ("coupon", ~young | (ci == 0)),
        ]
    if "no_touch_before_exit" in names:
        frozen = (np.asarray(state.weeks_left) <= rules.no_touch_before_exit_weeks)[None, :]
        out["no_touch_before_exit"] = [
            ("depth", ~frozen | (di == cur)),
            ("coupon", ~frozen | (ci == 0)),
        ]
    if "coupon_budget" in names:
        spent = (np.asarray(state.coupon_weeks_left) <= 0)[None, :]
        out["coupon_budget"] = [("coupon", ~spent | (ci == 0))]
    return out


def _combine(rules: RulesConfig, n: int, factors: list[Factor]) -> np.ndarray:
    """AND of the factors, as a fresh actions-major bool array of shape ``(n_actions, n)``."""
    n_d, n_c = rules.n_discounts, rules.n_coupons
    depth = np.ones((n_d, n), dtype=bool)
    coupon = np.ones((n_c, n), dtype=bool)
    full: list[np.ndarray] = []
    for kind, f in factors:
        if kind == "depth":
            depth &= f
        elif kind == "coupon":
            coupon &= f
        else:
            full.append(f)
    if n_c == 1:
        allowed = depth & coupon
    else:
        # flat action a = depth * n_c + coupon: one broadcast AND over (n_d, n_c, n)
        allowed = (depth[:, None, :] & coupon[None, :, :]).reshape(n_d * n_c, n)
    for f in full:
        allowed &= f
    return allowed


def _all_factors(masks: dict[str, list[Factor]]) -> list[Factor]:
    return [f for factors in masks.values() for f in factors]


def _below_target(rules: RulesConfig, state: DecisionState) -> np.ndarray:
    """SKUs in their exit week whose sell-through so far is below the target."""
    assert rules.sell_through_target is not None
    initial = np.asarray(state.initial_stock, dtype=float)
    sold = initial - np.asarray(state.stock, dtype=float)
    short = sold < rules.sell_through_target * initial - _EPS
    return (np.asarray(state.weeks_left) == 1) & short


def _hard_mask(rules: RulesConfig, state: DecisionState, others: np.ndarray) -> Factor:
    """The hard sell-through rule's depth factor, given what the others allow ``(A, n)``."""
    in_force = _below_target(rules, state)
    n_d = rules.n_discounts
    depth_ok: np.ndarray = np.any(others.reshape(n_d, rules.n_coupons, -1), axis=1)  # (n_d, n)
    # deepest allowed depth; -1 where nothing is allowed (the fallback handles it)
    deepest = np.where(depth_ok.any(axis=0), n_d - 1 - np.argmax(depth_ok[::-1], axis=0), -1)
    di = np.arange(n_d)[:, None]
    return ("depth", ~in_force[None, :] | (di == deepest[None, :]))


def _to_rows(allowed: np.ndarray) -> np.ndarray:
    """Actions-major ``(A, n)`` -> the public SKU-major ``(n, A)`` layout (contiguous)."""
    return np.ascontiguousarray(allowed.T)


def rule_masks(rules: RulesConfig, state: DecisionState, catalog: Catalog) -> dict[str, np.ndarray]:
    """What each active rule allows, before combining.

    Parameters
    ----------
    rules : RulesConfig
    state : DecisionState
        Arrays of shape ``(n,)``.
    catalog : Catalog
        The same ``n`` SKUs (``list_price`` and ``unit_cost`` are read for the margin floor).

    Returns
    -------
    dict of str to ndarray of bool of shape (n, n_actions)
        One entry per active rule (see :func:`active_rules`). The hard sell-through rule's
        entry is relative to what the other rules allow (see the module's precedence).
    """
    n = int(np.shape(state.depth_index)[0])
    names = active_rules(rules)
    masks = _base_masks(rules, state, catalog, names)
    out = {k: _to_rows(_combine(rules, n, v)) for k, v in masks.items()}
    if "sell_through_hard" in names:
        hard = _hard_mask(rules, state, _combine(rules, n, _all_factors(masks)))
        out["sell_through_hard"] = _to_rows(_combine(rules, n, [hard]))
    return out


def action_mask(rules: RulesConfig, state: DecisionState, catalog: Catalog) -> np.ndarray:
    """Which actions every rule allows, for each SKU.

    Parameters
    ----------
    rules : RulesConfig
    state : DecisionState
        Arrays of shape ``(n,)``.
    catalog : Catalog
        The same ``n`` SKUs, row for row.

    Returns
    -------
    ndarray of bool of shape (n, n_actions)
        ``True`` where the flat action is allowed. Every row has at least one ``True``
        (see the module's precedence).
    """
    n = int(np.shape(state.depth_index)[0])
    names = active_rules(rules)
    if not names:
        return np.ones((n, rules.n_actions), dtype=bool)
    allowed = _combine(rules, n, _all_factors(_base_masks(rules, state, catalog, names)))
    if "sell_through_hard" in names and _below_target(rules, state).any():
        allowed &= _combine(rules, n, [_hard_mask(rules, state, allowed)])
    # the hold action is allowed in every reachable state; only rows where it is not can be
    # empty, so the full any() runs on those few rows only
    hold = hold_actions(rules, state)
    cols = np.arange(n)
    suspect = np.flatnonzero(~allowed[hold, cols])
    if suspect.size:
        empty = suspect[~allowed[:, suspect].any(axis=0)]
        allowed[hold[empty], empty] = True
    return _to_rows(allowed)


def violations(
    rules: RulesConfig, state: DecisionState, actions: np.ndarray, catalog: Catalog
) -> np.ndarray:
    """Whether each SKU's action breaks a rule.

    Parameters
    ----------
    rules : RulesConfig
    state : DecisionState
        State before the actions, arrays of shape ``(n,)``.
    actions : array-like of int of shape (n,)
        Flat action indices; an index outside ``[0, n_actions)`` counts as a violation.
    catalog : Catalog

    Returns
    -------
    ndarray of bool of shape (n,)
    """
    a = np.asarray(actions, dtype=np.int64)
    valid = (a >= 0) & (a < rules.n_actions)
    mask = action_mask(rules, state, catalog)
    ok = mask[np.arange(a.shape[0]), np.where(valid, a, 0)]
    return ~(valid & ok)


def violated_rules(
    rules: RulesConfig, state: DecisionState, actions: np.ndarray, catalog: Catalog
) -> dict[str, np.ndarray]:
    """Per active rule, which SKUs' actions break it (bool arrays of shape ``(n,)``).

    Used to say *which* rule an action broke; :func:`violations` is the combined verdict
    (it also counts the fallback of the module's precedence as allowed). An index outside
    ``[0, n_actions)`` breaks every rule.
    """
    a = np.asarray(actions, dtype=np.int64)
    valid = (a >= 0) & (a < rules.n_actions)
    rows = np.arange(a.shape[0])
    safe = np.where(valid, a, 0)
    return {k: ~(valid & m[rows, safe]) for k, m in rule_masks(rules, state, catalog).items()}


def advance(
    rules: RulesConfig, state: DecisionState, actions: np.ndarray, units_sold: np.ndarray
) -> DecisionState:
    """The decision state after a week in which ``actions`` were taken and ``units_sold``
    units sold. This is the one place the rule state moves.

    ``weeks_left`` and the coupon budget go down by one (the budget only in weeks with a
    coupon, and never when unlimited), ``age_weeks`` goes up by one, ``stock`` goes down by
    the units sold, ``depth_index`` becomes the chosen depth, and ``weeks_since_change``
    becomes 1 after a change and grows by one otherwise.

    Parameters
    ----------
    rules : RulesConfig
    state : DecisionState
        State before the week; not modified.
    actions : array-like of int of shape (n,)
    units_sold : array-like of float of shape (n,)

    Returns
    -------
    DecisionState
    """
    di, ci = rules.decode(actions)
    changed = di != state.depth_index
    wsc = np.asarray(state.weeks_since_change, dtype=np.int64)
    budget = np.asarray(state.coupon_weeks_left, dtype=np.int64)
    limited = budget < NO_BUDGET
    return DecisionState(
        weeks_left=np.asarray(state.weeks_left, dtype=np.int64) - 1,
        stock=np.asarray(state.stock, dtype=float) - np.asarray(units_sold, dtype=float),
        initial_stock=np.array(state.initial_stock, dtype=float),
        depth_index=di,
        weeks_since_change=np.where(changed, 1, np.minimum(wsc + 1, LONG_AGO)),
        coupon_weeks_left=np.where(limited & (ci > 0), np.maximum(budget - 1, 0), budget),
        age_weeks=np.asarray(state.age_weeks, dtype=np.int64) + 1,
    )


def exit_penalty(
    rules: RulesConfig, catalog: Catalog, stock_left: np.ndarray, initial_stock: np.ndarray
) -> np.ndarray:
    """The sell-through penalty charged at exit, in currency (penalty mode; 0 otherwise).

    ``penalty = max(0, target * initial_stock - units_sold) * penalty_per_unit * list_price``
    with ``units_sold = initial_stock - stock_left`` and ``penalty_per_unit`` the configured
    share of list price. It is a cost: subtract it from the profit.

    Parameters
    ----------
    rules : RulesConfig
    catalog : Catalog
        ``list_price`` is read.
    stock_left : array-like of float of shape (n,)
        Units on hand after the exit week's sales.
    initial_stock : array-like of float of shape (n,)
        Units on hand when the plan started.

    Returns
    -------
    ndarray of float of shape (n,)
    """
    stock_left = np.asarray(stock_left, dtype=float)
    if rules.sell_through_target is None or rules.sell_through_mode != "penalty":
        return np.zeros_like(stock_left)
    initial = np.asarray(initial_stock, dtype=float)
    short = np.maximum(rules.sell_through_target * initial - (initial - stock_left), 0.0)
    return short * rules.sell_through_penalty_per_unit * catalog.list_price
