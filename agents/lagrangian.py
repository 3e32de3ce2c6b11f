"""A shared promotion limit priced by a Lagrange multiplier: baseline plans and an upper bound.

The category's SKUs share the weekly limit of :mod:`envs.budget`: at most ``K`` of its ``N``
SKUs on promotion in any week (``H`` weeks). Charging every promoted SKU-week a price
``lam >= 0`` and refunding ``lam K`` per week relaxes the limit; the relaxed problem splits into
one exact DP per SKU (:func:`agents.dp.solve` with ``action_cost = lam`` on the promotion
actions), and its value

    L(lam) = sum_i V_i(lam) + lam K H

is an upper bound on the expected profit of every policy that respects the limit on every path
(such a policy pays at most the refund in charges, and no policy of SKU ``i`` beats its own
exact DP: SKUs' demands are independent, so seeing the other SKUs cannot help). ``L`` is
convex and piecewise linear in ``lam``; :func:`solve_category` finds its minimum by bisection
on the sign of its slope, and that minimum is the dual value (``reference =
"lagrangian_bound"``).

The plans (:class:`CategoryDPPolicy`) are made feasible on every path by one repair: each
week, every SKU's *advantage* of promoting is ``Q_i(best promotion) + lam - Q_i(best
non-promotion)`` at its current state (the charge of this week's slot given back, the future
still priced at ``lam``); the ``K`` SKUs with the largest positive advantages get the slots
and play their best promotion, the others their best non-promotion. With ``lam = lam*`` this
is the Lagrangian plan; with ``lam = 0`` (the unconstrained per-SKU DPs) it is the greedy
allocation by DP advantage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from agents.dp import DPSolution, solve
from agents.policy import Policy
from envs.budget import promo_actions, repair
from envs.config import RulesConfig
from envs.context import PolicyContext
from ingest.errors import ConfigError
from simulator.demand import Catalog

log = logging.getLogger(__name__)

BISECTION_STEPS = 40
"""Most bisection steps on the multiplier (each solves every SKU's DP twice)."""
RELATIVE_TOL = 1e-6
"""Bisection stops when the bracket is narrower than this share of its upper end."""


@dataclass
class CategorySolution:
    """The Lagrangian relaxation of a category, solved.

    Attributes
    ----------
    multiplier : float
        ``lam*``, the price per promoted SKU-week at the dual minimum (0 when the limit does
        not bind).
    dual_value : float
        ``L(lam*)``, an upper bound on the optimum under the limit.
    solutions : list of DPSolution
        Each SKU's DP charged ``lam*`` per promotion week, with Q-values.
    unconstrained : list of DPSolution
        Each SKU's DP without charge (``lam = 0``), with Q-values: the greedy plan's.
    unconstrained_value : float
        ``sum_i V_i(0)``, the category's value without the limit.
    max_promoted, horizon_weeks : int
    rules : RulesConfig
    """

    multiplier: float
    dual_value: float
    solutions: list[DPSolution]
    unconstrained: list[DPSolution]
    unconstrained_value: float
    max_promoted: int
    horizon_weeks: int
    rules: RulesConfig


def _solve_all(
    catalog: Catalog, rules: RulesConfig, horizon: int, lam: float, promo: np.ndarray
) -> list[DPSolution]:
    cost = np.where(promo, lam, 0.0)
    return [
        solve(catalog.take([i]), rules, horizon, action_cost=cost, keep_q=True)
        for i in range(catalog.n_skus)
    ]


def dual_function(
    catalog: Catalog, rules: RulesConfig, horizon_weeks: int, max_promoted: int, lam: float
) -> float:
    """``L(lam) = sum_i V_i(lam) + lam K H`` (an upper bound for every ``lam >= 0``)."""
    if lam < 0:
        raise ConfigError(f"multiplier = {lam}; expected >= 0")
    promo = promo_actions(rules)
    cost = np.where(promo, lam, 0.0)
    total = sum(
        solve(catalog.take([i]), rules, horizon_weeks, action_cost=cost).value
        for i in range(catalog.n_skus)
    )
    return float(total + lam * max_promoted * horizon_weeks)


def solve_category(
    catalog: Catalog, rules: RulesConfig, horizon_weeks: int, max_promoted: int
) -> CategorySolution:
    """Minimize the dual function over the multiplier by bisection; solve both plans' DPs.

    Parameters
    ----------
    catalog : Catalog
        The category's SKUs (each DP-exact, see :func:`agents.dp.check_exact`).
    rules : RulesConfig
        Per-SKU rules (the same for every SKU).
    horizon_weeks, max_promoted : int
        Weeks to exit; at most ``max_promoted`` SKUs on promotion per week.

    Returns
    -------
    CategorySolution
    """
    if max_promoted < 1:
        raise ConfigError(f"max_promoted = {max_promoted}; expected >= 1")
    promo = promo_actions(rules)
    if not promo.any():
        raise ConfigError("the rules allow no promotion; a promotion limit has nothing to bind")

    def dual(lam: float) -> float:
        return dual_function(catalog, rules, horizon_weeks, max_promoted, lam)

    free = _solve_all(catalog, rules, horizon_weeks, 0.0, promo)
    free_value = float(sum(s.value for s in free))
    # a promotion week is worth at most the list value of the whole stock: beyond that price
    # no SKU promotes and L only grows
    hi = float(np.sum(catalog.list_price * catalog.initial_stock)) + 1.0
    lo = 0.0
    h0 = hi * RELATIVE_TOL
    if dual(h0) >= free_value:  # the slope at 0 is >= 0: the limit does not bind
        lam = 0.0
    else:
        for _ in range(BISECTION_STEPS):
            if hi - lo <= RELATIVE_TOL * hi:
                break
            mid = 0.5 * (lo + hi)
            step = max(min(mid, hi - mid) * 1e-3, h0)
            if dual(mid + step) >= dual(mid - step):
                hi = mid
            else:
                lo = mid
        lam = min((lo, hi), key=dual)
    priced = _solve_all(catalog, rules, horizon_weeks, lam, promo)
    value = float(sum(s.value for s in priced) + lam * max_promoted * horizon_weeks)
    log.info(
        "lagrangian: %d SKUs, K=%d: multiplier %.4g, dual value %.4f (unconstrained %.4f)",
        catalog.n_skus,
        max_promoted,
        lam,
        value,
        free_value,
    )
    return CategorySolution(
        multiplier=float(lam),
        dual_value=value,
        solutions=priced,
        unconstrained=free,
        unconstrained_value=free_value,
        max_promoted=int(max_promoted),
        horizon_weeks=int(horizon_weeks),
        rules=rules,
    )


class CategoryDPPolicy(Policy):
    """Per-SKU DPs with the slots repaired to the limit by advantage (module docstring).

    Parameters
    ----------
    solution : CategorySolution
    mode : {"lagrangian", "greedy"}
        ``lagrangian``: the DPs charged ``lam*``; ``greedy``: the uncharged DPs (``lam = 0``).

    The slots are laid out as :class:`envs.budget.CategoryEnv` lays them (slot
    ``p * n_skus + i`` is SKU ``i``).
    """

    requires_context = True

    def __init__(self, solution: CategorySolution, mode: str = "lagrangian") -> None:
        if mode not in ("lagrangian", "greedy"):
            raise ConfigError(f"mode = {mode!r}; expected 'lagrangian' or 'greedy'")
        self.solution, self.mode, self.name = solution, mode, mode
        self.sols = solution.solutions if mode == "lagrangian" else solution.unconstrained
        self.lam = solution.multiplier if mode == "lagrangian" else 0.0
        self.promo = promo_actions(solution.rules)
        self.n_skus = len(self.sols)

    def advantages(self, context: PolicyContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per slot: the advantage of promoting this week, the best promotion and the best
        non-promotion action (each of shape ``(n_slots,)``)."""
        n = context.decision.stock.shape[0]
        adv = np.empty(n)
        best_p = np.empty(n, np.int64)
        best_o = np.empty(n, np.int64)
        sku = np.arange(n) % self.n_skus
        for i, sol in enumerate(self.sols):
            rows = np.flatnonzero(sku == i)
            assert sol.q is not None
            w, s, r = sol.index(context.decision.take(rows))
            q = sol.q[w, s, r]  # (rows, n_actions), charged lam on promotions
            qp = np.where(self.promo, q, -np.inf)
            qo = np.where(self.promo, -np.inf, q)
            best_p[rows] = np.argmax(qp, axis=1)
            best_o[rows] = np.argmax(qo, axis=1)
            idx = np.arange(rows.size)
            adv[rows] = qp[idx, best_p[rows]] + self.lam - qo[idx, best_o[rows]]
        return adv, best_p, best_o

    def act(
        self,
        observations: np.ndarray,
        masks: np.ndarray,
        context: PolicyContext | None = None,
    ) -> np.ndarray:
        ctx = self._need_context(context)
        adv, best_p, best_o = self.advantages(ctx)
        want = np.where(adv > 0, best_p, best_o)
        return repair(
            want,
            adv,
            self.promo,
            n_skus=self.n_skus,
            max_promoted=self.solution.max_promoted,
            off=best_o,
        )


class RepairedPolicy(Policy):
    """A per-SKU policy made feasible: each week, per path, the ``max_promoted`` deepest
    promotions it proposes are kept (depth plus coupon; ties to the lower SKU index), the
    rest play no promotion.

    Parameters
    ----------
    base : Policy
    rules : RulesConfig
    n_skus, max_promoted : int
    """

    def __init__(self, base: Policy, rules: RulesConfig, n_skus: int, max_promoted: int) -> None:
        self.base, self.rules = base, rules
        self.n_skus, self.max_promoted = n_skus, max_promoted
        self.name = base.name
        self.requires_context = base.requires_context
        self.promo = promo_actions(rules)
        d, c = rules.depths(np.arange(rules.n_actions))
        self.depth = np.asarray(d, float) + np.asarray(c, float)

    def reset(self, context: PolicyContext | None = None) -> None:
        self.base.reset(context)

    def act(
        self,
        observations: np.ndarray,
        masks: np.ndarray,
        context: PolicyContext | None = None,
    ) -> np.ndarray:
        a = np.asarray(self.base.act(observations, masks, context), dtype=np.int64)
        return repair(
            a, self.depth[a], self.promo, n_skus=self.n_skus, max_promoted=self.max_promoted
        )
