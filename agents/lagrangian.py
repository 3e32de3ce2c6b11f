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

from agents.dp import DPSolution, broadcast_catalog, demand_pmf, solve
from agents.fluid import VALUE_SCALE
from agents.policy import Policy
from envs.budget import OFF_ACTION, promo_actions, repair, stock_value
from envs.config import RulesConfig
from envs.context import PolicyContext
from ingest.errors import ConfigError
from simulator.demand import Catalog
from simulator.market import expected_demand

log = logging.getLogger(__name__)

WEEKLY_ITERATIONS = 40
"""Projected subgradient steps of :func:`weekly_bound`."""
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
    weekly: WeeklyPrices | None = None


@dataclass
class WeeklyPrices:
    """One multiplier per week (:func:`solve_weekly`), and the DPs charged them.

    Attributes
    ----------
    multipliers : ndarray of shape (horizon_weeks,)
        ``lam_t`` for week ``t`` (0 = the first week).
    bound : float
        ``L(lam_1..lam_H)``, an upper bound on the optimum under the limit (at most the
        single multiplier's).
    solutions : list of DPSolution
        Each SKU's DP charged ``lam_t`` per promotion in week ``t``, with Q-values.
    """

    multipliers: np.ndarray
    bound: float
    solutions: list[DPSolution]


def _solve_all(
    catalog: Catalog, rules: RulesConfig, horizon: int, cost: np.ndarray
) -> list[DPSolution]:
    """Every SKU's DP charged ``cost`` (per action, or per week and action), with Q-values."""
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
    catalog: Catalog,
    rules: RulesConfig,
    horizon_weeks: int,
    max_promoted: int,
    *,
    tol: float = RELATIVE_TOL,
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
    tol : float
        Bisection stops when the bracket is narrower than this share of its upper end (the
        training pool of :func:`solve_pool` uses a coarser one than the suite's bound).

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

    free = _solve_all(catalog, rules, horizon_weeks, np.zeros(promo.size))
    free_value = float(sum(s.value for s in free))
    # a promotion week is worth at most the list value of the whole stock: beyond that price
    # no SKU promotes and L only grows
    hi = float(np.sum(catalog.list_price * catalog.initial_stock)) + 1.0
    lo = 0.0
    if not 0 < tol < 1:
        raise ConfigError(f"tol = {tol}; expected 0 < tol < 1")
    h0 = hi * min(tol, RELATIVE_TOL)
    if dual(h0) >= free_value:  # the slope at 0 is >= 0: the limit does not bind
        lam = 0.0
    else:
        for _ in range(BISECTION_STEPS):
            if hi - lo <= tol * hi:
                break
            mid = 0.5 * (lo + hi)
            step = max(min(mid, hi - mid) * 1e-3, h0)
            if dual(mid + step) >= dual(mid - step):
                hi = mid
            else:
                lo = mid
        lam = min((lo, hi), key=dual)
    priced = _solve_all(catalog, rules, horizon_weeks, np.where(promo, lam, 0.0))
    value = float(sum(s.value for s in priced) + lam * max_promoted * horizon_weeks)
    log.debug(  # once per category: a training pool solves 128 of them (its progress is INFO)
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


def expected_promotions(solution: DPSolution, promo: np.ndarray) -> np.ndarray:
    """Expected number of promotion weeks of a solved SKU's policy, per week (shape
    ``(horizon,)``), by propagating the stock's distribution forward (rule-free DPs only:
    the budget market's rules keep no rule state). A sold-out SKU takes no slot, as in
    :class:`envs.budget.CategoryEnv`."""
    if solution.grid.size != 1:
        raise ConfigError("expected_promotions needs a DP without rule state")
    cat, rules, H = solution.catalog, solution.rules, solution.horizon_weeks
    n_s = solution.values.shape[1]
    n_a = rules.n_actions
    d, c = rules.depths(np.arange(n_a))
    weeks = cat.start_week[0] + np.arange(H)
    lam = expected_demand(
        broadcast_catalog(cat, H * n_a), np.repeat(weeks, n_a), np.tile(d, H), np.tile(c, H)
    )
    pmf, sf = demand_pmf(lam, float(cat.dispersion[0]), n_s - 1)
    pmf, sf = pmf.reshape(H, n_a, -1), sf.reshape(H, n_a, n_s)
    dist = np.zeros(n_s)
    dist[-1] = 1.0
    usage = np.zeros(H)
    for t in range(H):
        act = solution.actions[H - t, :, 0].astype(np.int64)
        usage[t] = float(dist[1:][promo[act[1:]]].sum())  # sold out: no slot taken
        nxt = np.zeros(n_s)
        for s in (int(i) for i in np.flatnonzero(dist > 0)):
            k = min(s, int(pmf.shape[2]))  # sold k' < s units with P(D = k'); s with P(D >= s)
            p = pmf[t, act[s], :k]
            nxt[s - np.arange(k)] += dist[s] * p
            nxt[0] += dist[s] * (sf[t, act[s], s - 1] if s > 0 else 1.0)
        dist = nxt
    return usage


def weekly_bound(
    catalog: Catalog,
    rules: RulesConfig,
    horizon_weeks: int,
    max_promoted: int,
    start: float,
    *,
    iterations: int = WEEKLY_ITERATIONS,
) -> tuple[float, np.ndarray]:
    """A tighter bound: one multiplier per week, ``L(lam_1..lam_H) = sum_i V_i(lam) + K
    sum_t lam_t``, lowered by projected subgradient steps from ``lam_t = start`` (the
    gradient in ``lam_t`` is ``K`` minus the week's expected promotions, from
    :func:`expected_promotions`). Every ``lam >= 0`` gives a bound; the lowest met is
    returned with its multipliers. A diagnostic of how loose the single multiplier's bound
    is (``benchmarks/bench_budget.py``), not the suite's reference.
    """
    promo = promo_actions(rules)
    lam = np.full(horizon_weeks, float(start))
    best, best_lam = np.inf, lam.copy()
    # normalized steps, a fifth of the starting price at first: the week-by-week usage
    # swings by whole SKUs, so raw gradient steps overshoot
    step0 = 0.2 * max(float(start), 1e-3)
    for k in range(iterations):
        cost = lam[:, None] * promo[None, :]
        sols = [
            solve(catalog.take([i]), rules, horizon_weeks, action_cost=cost)
            for i in range(catalog.n_skus)
        ]
        value = float(sum(s.value for s in sols) + max_promoted * lam.sum())
        if value < best:
            best, best_lam = value, lam.copy()
        usage = sum(expected_promotions(s, promo) for s in sols)
        grad = max_promoted - np.asarray(usage)
        scale = float(np.abs(grad).max())
        if scale == 0.0:
            break
        lam = np.maximum(0.0, lam - step0 / np.sqrt(k + 1.0) * grad / scale)
    return best, best_lam


def solve_weekly(
    catalog: Catalog, solution: CategorySolution, *, iterations: int = WEEKLY_ITERATIONS
) -> WeeklyPrices:
    """Price each week's slots on its own: the multipliers of :func:`weekly_bound` (started
    from the single multiplier) and every SKU's DP charged them, kept on
    ``solution.weekly`` (a second call returns it).

    Parameters
    ----------
    catalog : Catalog
        The category's SKUs, as given to :func:`solve_category`.
    solution : CategorySolution
        The category solved with one multiplier.
    iterations : int
        Projected subgradient steps.

    Returns
    -------
    WeeklyPrices
    """
    if solution.weekly is not None:
        return solution.weekly
    if catalog.n_skus != len(solution.solutions):
        raise ConfigError(
            f"catalog has {catalog.n_skus} SKUs and the solution {len(solution.solutions)}; "
            "expected the category the solution was solved for"
        )
    rules, horizon = solution.rules, solution.horizon_weeks
    bound, lam = weekly_bound(
        catalog, rules, horizon, solution.max_promoted, solution.multiplier,
        iterations=iterations,
    )  # fmt: skip
    sols = _solve_all(catalog, rules, horizon, lam[:, None] * promo_actions(rules)[None, :])
    log.debug(
        "lagrangian: weekly multipliers %s, bound %.4f (one multiplier: %.4f)",
        np.round(lam, 3).tolist(),
        bound,
        solution.dual_value,
    )
    solution.weekly = WeeklyPrices(multipliers=lam, bound=bound, solutions=sols)
    return solution.weekly


class CategoryDPPolicy(Policy):
    """Per-SKU DPs with the slots repaired to the limit by advantage (module docstring).

    Parameters
    ----------
    solution : CategorySolution
    mode : {"lagrangian", "greedy", "weekly"}
        ``lagrangian``: the DPs charged ``lam*``; ``greedy``: the uncharged DPs (``lam = 0``);
        ``weekly``: the DPs charged ``lam_t`` (``solution.weekly``, from :func:`solve_weekly`).

    The slots are laid out as :class:`envs.budget.CategoryEnv` lays them (slot
    ``p * n_skus + i`` is SKU ``i``).
    """

    requires_context = True

    def __init__(self, solution: CategorySolution, mode: str = "lagrangian") -> None:
        if mode not in ("lagrangian", "greedy", "weekly"):
            raise ConfigError(f"mode = {mode!r}; expected 'lagrangian', 'greedy' or 'weekly'")
        self.solution, self.mode = solution, mode
        self.name = "lagrangian_weekly" if mode == "weekly" else mode
        if mode == "weekly":
            if solution.weekly is None:
                raise ConfigError(
                    "mode 'weekly' needs the weekly multipliers: call "
                    "agents.lagrangian.solve_weekly(catalog, solution) first"
                )
            self.sols = solution.weekly.solutions
            self.lam = np.asarray(solution.weekly.multipliers, float)
        else:
            self.sols = solution.solutions if mode == "lagrangian" else solution.unconstrained
            lam = solution.multiplier if mode == "lagrangian" else 0.0
            self.lam = np.full(solution.horizon_weeks, lam)
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
        # this week's price of a slot (week t = horizon - weeks left)
        H = self.solution.horizon_weeks
        weeks_left = np.broadcast_to(np.asarray(context.decision.weeks_left, np.int64), (n,))
        lam_now = self.lam[np.clip(H - weeks_left, 0, H - 1)]
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
            adv[rows] = qp[idx, best_p[rows]] + lam_now[rows] - qo[idx, best_o[rows]]
        # a sold-out SKU gains nothing from a slot (its Q-values all tie)
        adv[context.decision.stock <= 0] = -np.inf
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
        if context is not None:  # a sold-out SKU takes no slot
            a = np.where(context.decision.stock <= 0, OFF_ACTION, a)
        return repair(
            a, self.depth[a], self.promo, n_skus=self.n_skus, max_promoted=self.max_promoted
        )


class SlotPrices:
    """Each SKU's DP priced at its category's multiplier, read at the SKUs' current states: the
    Lagrangian plan as features of the sequential allocator (:mod:`envs.budget_seq`).

    For SKU ``i`` with multiplier ``lam_i`` and DP Q-values ``Q_i`` charged ``lam_i`` per
    promotion week, ``R_i(a) = Q_i(a) + lam_i promo(a)`` is the value of playing ``a`` this
    week when this week's slot is already held (the charge given back, the future still priced
    at ``lam_i``). Then

    - :meth:`advantages`: ``max_promo R - max_off R``, the Lagrangian plan's ranking (a
      sold-out SKU reads ``-inf``);
    - :meth:`regrets`: each action's regret against the best allowed one, scaled like the
      fluid regrets of :func:`agents.fluid.value_features` (``VALUE_SCALE * regret`` per unit
      of stock on hand and list price, clipped to [-1, 0]; forbidden actions read -1).

    With the SKUs deciding in order of advantage and a promotion masked once no slot is left,
    playing the best allowed action (regret 0) is the Lagrangian plan
    (:class:`CategoryDPPolicy`), up to ties.

    The tables of all SKUs are stored flat, so a lookup for any mix of SKUs is one gather (in
    float64: at the dual optimum several SKUs' advantages nearly tie, and single precision
    would reorder them); only DPs without rule state are accepted (the budget market's rules
    keep none).

    With one multiplier per week (:func:`solve_weekly`; ``multipliers`` of shape
    ``(n_skus, horizon)``, week 0 first), ``lam_i`` is this week's price ``lam_{i,t}`` and
    ``Q_i`` the DP charged the weekly prices: the plan played is the weekly one
    (:class:`CategoryDPPolicy` with ``mode="weekly"``).

    Parameters
    ----------
    solutions : sequence of DPSolution
        One per SKU, solved with ``keep_q=True`` and charged ``multipliers[i]``.
    multipliers : array-like of float
        ``lam_i`` per SKU (the multiplier of its category), shape ``(n_skus,)``, or one per SKU
        and week, shape ``(n_skus, horizon)``.
    promo : ndarray of bool
        :func:`envs.budget.promo_actions` of the rules.
    """

    def __init__(
        self, solutions: list[DPSolution], multipliers: np.ndarray, promo: np.ndarray
    ) -> None:
        lam = np.asarray(multipliers, float)
        if lam.ndim not in (1, 2) or lam.shape[0] != len(solutions) or not solutions:
            raise ConfigError(
                f"{len(solutions)} solutions and multipliers of shape {lam.shape}; expected "
                f"one per SKU (shape ({len(solutions)},) or ({len(solutions)}, horizon))"
            )
        self.promo = np.asarray(promo, dtype=bool)
        n_a = self.promo.size
        tables, sizes, horizons = [], [], []
        for i, sol in enumerate(solutions):
            if sol.q is None or sol.grid.size != 1:
                raise ConfigError(
                    f"SKU {i}: SlotPrices needs a DP solved with keep_q=True and no rule state"
                )
            H = sol.horizon_weeks
            if lam.ndim == 2 and lam.shape[1] != H:
                raise ConfigError(
                    f"SKU {i}: {lam.shape[1]} weekly multipliers for a {H}-week DP; expected {H}"
                )
            # the price by weeks left w = H - t (w = 0: the end, no decision left)
            by_left = np.zeros(H + 1)
            by_left[1:] = lam[i, ::-1] if lam.ndim == 2 else lam[i]
            r = sol.q[:, :, 0, :] + by_left[:, None, None] * self.promo  # (H + 1, n_s, n_a)
            if r.shape[2] != n_a:
                raise ConfigError(f"SKU {i}: {r.shape[2]} actions; expected {n_a}")
            tables.append(r.reshape(-1))
            sizes.append(r.shape[1])
            horizons.append(sol.horizon_weeks)
        self.n_actions = n_a
        self.n_states = np.asarray(sizes, np.int64)
        self.horizons = np.asarray(horizons, np.int64)
        self.offsets = np.concatenate([[0], np.cumsum([t.size for t in tables])[:-1]])
        self.table = np.concatenate(tables)
        self.multipliers = lam
        self.scale = VALUE_SCALE  # the fluid regrets' scale: the two priors read alike

    @classmethod
    def from_category(cls, solution: CategorySolution, *, weekly: bool = False) -> SlotPrices:
        """The slot prices of one solved category (SKU ``i`` = the catalog's row ``i``); with
        ``weekly``, those of its weekly multipliers (``solution.weekly``, from
        :func:`solve_weekly`)."""
        promo = promo_actions(solution.rules)
        if weekly:
            if solution.weekly is None:
                raise ConfigError(
                    "weekly slot prices need the weekly multipliers: call "
                    "agents.lagrangian.solve_weekly(catalog, solution) first"
                )
            w = solution.weekly
            lam = np.tile(np.asarray(w.multipliers, float), (len(w.solutions), 1))
            return cls(w.solutions, lam, promo)
        lam = np.full(len(solution.solutions), solution.multiplier)
        return cls(solution.solutions, lam, promo)

    @property
    def n_skus(self) -> int:
        return int(self.n_states.size)

    def values(self, sku: np.ndarray, weeks_left: np.ndarray, stock: np.ndarray) -> np.ndarray:
        """``R_i(a)`` at the given states, shape ``(n, n_actions)`` (``-inf`` where the rules
        mask ``a``)."""
        sku = np.asarray(sku, np.int64)
        w = np.asarray(weeks_left, np.int64)
        s = np.rint(np.asarray(stock, float)).astype(np.int64)
        n_s = self.n_states[sku]
        bad = (w < 0) | (w > self.horizons[sku]) | (s < 0) | (s >= n_s)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ConfigError(
                f"SKU {int(sku[i])}: state off its DP grid: weeks_left={int(w[i])}, "
                f"stock={int(s[i])} (solved for {int(self.horizons[sku[i]])} weeks and "
                f"0..{int(n_s[i]) - 1} units)"
            )
        start = self.offsets[sku] + (w * n_s + s) * self.n_actions
        return self.table[start[:, None] + np.arange(self.n_actions)]

    def advantages(self, sku: np.ndarray, context: PolicyContext) -> np.ndarray:
        """Per row: the Lagrangian advantage of promoting this week (``-inf`` when sold out)."""
        dec = context.decision
        r = self.values(sku, dec.weeks_left, dec.stock)
        best_p = np.where(self.promo, r, -np.inf).max(axis=1)
        best_o = np.where(self.promo, -np.inf, r).max(axis=1)
        adv = best_p - best_o
        return np.where(np.asarray(dec.stock) > 0, adv, -np.inf)

    def regrets(self, sku: np.ndarray, context: PolicyContext, masks: np.ndarray) -> np.ndarray:
        """Per row and action: the scaled regret against the best allowed action, float32
        ``(n, n_actions)`` in [-1, 0]."""
        dec = context.decision
        r = self.values(sku, dec.weeks_left, dec.stock)
        r = np.where(np.asarray(masks, dtype=bool), r, -np.inf)
        top = r.max(axis=1, keepdims=True)
        with np.errstate(invalid="ignore"):
            reg = self.scale * (r - top) / stock_value(context)[:, None]
        reg = np.where(np.isfinite(reg), np.clip(reg, -1.0, 0.0), -1.0)
        return reg.astype(np.float32)
