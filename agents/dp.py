"""The exact optimum: backward dynamic programming for one SKU with a known demand law.

The state is ``(weeks left, stock)`` plus what the *active* rules need (see
:func:`envs.rules.active_rules`): the depth in force (markdown-only, minimum weeks between
changes, exit freeze), the weeks since the last change capped at the rule's minimum, and the
coupon weeks left. Calendar week and age follow from the weeks left, so they are not state.
Demand in a week is Poisson or negative binomial with the mean that
:func:`simulator.market.expected_demand` gives for the chosen depth and coupon (seasonality
and known week-by-week display/mailer included); units sold are ``min(demand, stock)``.

The expected reward uses the market's accounting (see :mod:`simulator.market`) in
expectation: per unit sold ``L (1 - d - c_paid) (1 - return_rate) - unit_cost`` (``c_paid``
the coupon paid per unit, ``c`` unless the coupon reaches only part of demand); per unit left
``-holding`` in ordinary weeks and ``salvage - unit_cost`` after the exit week, minus the
sell-through penalty of :func:`envs.rules.exit_penalty`. The rules enter only through
:func:`envs.rules.action_mask` and :func:`envs.rules.advance`, evaluated on the whole state
grid, so they are implemented once.

Transitions are vectorized over stock: with ``p`` the demand pmf,
``E[V(s - min(D, s))] = (p * V)(s) + P(D > s) V(0)``, a truncated convolution computed by
FFT for every (action, next rule state) pair of a week at once.

Features that make the optimum depend on the whole price path (reference-price memory,
promotion fatigue) are refused with :class:`DPNotExactError`; the DP never approximates.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import scipy.fft as sfft
from scipy import special, stats

from envs.config import NO_BUDGET, DecisionState, RulesConfig
from envs.context import PolicyContext
from envs.rules import (
    LONG_AGO,
    action_mask,
    active_rules,
    advance,
    exit_penalty,
    initial_decision_state,
)
from ingest.errors import ConfigError, DeadstockError
from simulator.demand import Catalog
from simulator.market import MarketState, expected_demand, paid_coupon_depth

MAX_GRID_CELLS = 40_000_000
"""Largest ``(horizon + 1) x stock levels x rule states`` table, and largest one-week
``stock levels x rule states x actions`` array, the DP agrees to build (about 320 MB each)."""

POOL_MAX_BYTES = 64 * 2**20
"""Largest work array (bytes) kept for reuse between solves (see :func:`_lease`)."""


class _Pool(threading.local):
    """Free work arrays of this thread, one per name (the last one given back)."""

    def __init__(self) -> None:
        self.free: dict[str, np.ndarray] = {}


_POOL = _Pool()


def _lease(name: str, shape: tuple[int, ...], dtype: Any = float) -> np.ndarray:
    """An uninitialised work array, the one an earlier solve gave back when it fits.

    Each solve needs several large arrays (pmfs, their FFTs, the reward table). Fresh
    ones are pages the C allocator has just handed back to the kernel, and touching them
    again costs page faults, a large share of a solve's time (``docs/benchmarks/dp.md``,
    written by ``benchmarks/bench_dp.py``, counts them per solve).
    Reusing the previous solve's arrays (same name, shape and dtype) avoids that. A model
    that is still alive holds its arrays, so nested solves get fresh ones.
    """
    arr = _POOL.free.pop(name, None)
    if arr is not None and arr.shape == shape and arr.dtype == np.dtype(dtype):
        return arr
    return np.empty(shape, dtype)


def _give_back(name: str, arr: np.ndarray) -> None:
    """Keep ``arr`` for the next :func:`_lease` of ``name`` (if it is not too big)."""
    if arr.nbytes <= POOL_MAX_BYTES:
        _POOL.free[name] = arr


_DEPTH_RULES = ("min_weeks_between_changes", "markdown_only", "no_touch_before_exit")


class DPNotExactError(DeadstockError):
    """The exact DP cannot represent this SKU or rule set; it refuses instead of guessing."""


# ---------------------------------------------------------------------------- distributions
def demand_pmf(
    lam: np.ndarray, dispersion: float, n_units: int, *, work: dict[str, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Demand pmf and survival function of ``m`` (week, action) cells.

    Parameters
    ----------
    lam : ndarray of shape (m,)
        Expected demand of each cell.
    dispersion : float
        Negative-binomial alpha (variance ``lam + alpha lam^2``); 0 = Poisson.
    n_units : int
        Largest count needed (the initial stock).
    work : dict or None
        When given, the large arrays are leased from the work pool (see :func:`_lease`) and
        recorded here by name, for the caller to give back when it no longer needs them.

    Returns
    -------
    pmf : ndarray of shape (m, K + 1)
        ``P(D = k)`` for ``k = 0 .. K`` with ``K <= n_units``. For Poisson demand ``K`` stops
        where the tail is below 1e-30 (``max lam + 13 sqrt(max lam) + 40``); the pmf beyond
        it is zero in double precision.
    sf : ndarray of shape (m, n_units + 1)
        ``P(D > k)``, summed from the right plus the exact tail beyond ``K`` (so it stays
        accurate far out).
    """
    lam = np.asarray(lam, dtype=float)[:, None]
    top = float(lam.max(initial=0.0))
    n_k = n_units
    if dispersion == 0:
        n_k = min(n_units, int(np.ceil(top + 13.0 * np.sqrt(top) + 40.0)))
    k = np.arange(n_k + 1, dtype=float)[None, :]
    m = lam.shape[0]

    def big(name: str, width: int = n_k + 1) -> np.ndarray:
        if work is None:
            return np.empty((m, width))
        work[name] = _lease(name, (m, width))
        return work[name]

    if dispersion > 0:
        r = 1.0 / dispersion
        p = 1.0 / (1.0 + dispersion * lam)
        # xlogy(k, 1 - p) as k * log(1 - p) with xlogy's own log (the same numbers, one log per
        # row instead of one per cell); xlogy(0, .) = 0 even where lam = 0 makes the log -inf
        with np.errstate(invalid="ignore"):  # 0 * -inf in column 0, overwritten next
            k_log_q = np.multiply(k, special.xlogy(1.0, 1.0 - p), out=big("k_log_q"))
        k_log_q[:, 0] = 0.0
        # evaluated left to right as the one expression was, without its temporaries
        logpmf = np.add(
            special.gammaln(k + r) - special.gammaln(r) - special.gammaln(k + 1.0),
            r * np.log(p),
            out=big("logpmf"),
        )
        logpmf += k_log_q
        tail = stats.nbinom.sf(n_k, r, p[:, 0])
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            loglam = np.log(lam)
            logpmf = k * loglam
        logpmf -= lam
        logpmf -= special.gammaln(k + 1.0)
        logpmf[:, 0] = -lam[:, 0]  # 0 * log(0) = 0 when lam == 0
        tail = stats.poisson.sf(n_k, lam[:, 0])
    pmf = np.exp(logpmf, out=logpmf)
    sf = big("sf", n_units + 1)
    # P(D > k) = sum_{j > k} p_j: a reversed cumulative sum keeps the far tail accurate.
    head = sf[:, : n_k + 1]
    np.cumsum(pmf[:, ::-1], axis=1, out=head[:, ::-1])
    head -= pmf
    head += tail[:, None]
    sf[:, n_k + 1 :] = tail[:, None]  # below 1e-30 for Poisson
    return pmf, np.maximum(sf, 0.0, out=sf)


def expected_units_sold(lam: np.ndarray, dispersion: np.ndarray, stock: np.ndarray) -> np.ndarray:
    """``E[min(D, stock)]`` in closed form, elementwise (broadcasting).

    For Poisson ``E[min(D, s)] = lam F(s - 1) + s P(D > s)``; for the negative binomial
    ``NB(r, p)`` the first term uses ``F`` of ``NB(r + 1, p)``.
    """
    lam, alpha, s = np.broadcast_arrays(
        np.asarray(lam, float), np.asarray(dispersion, float), np.asarray(stock, float)
    )
    out = np.empty(lam.shape)
    nb = alpha > 0
    if np.any(~nb):
        lp, sp = lam[~nb], s[~nb]
        out[~nb] = lp * stats.poisson.cdf(sp - 1, lp) + sp * stats.poisson.sf(sp, lp)
    if np.any(nb):
        r = 1.0 / alpha[nb]
        p = 1.0 / (1.0 + alpha[nb] * lam[nb])
        sn = s[nb]
        out[nb] = lam[nb] * stats.nbinom.cdf(sn - 1, r + 1, p) + sn * stats.nbinom.sf(sn, r, p)
    return out


# ---------------------------------------------------------------------------- the model
def broadcast_catalog(catalog: Catalog, n: int) -> Catalog:
    """``n`` read-only copies of a one-SKU catalog's row, without copying memory."""
    return Catalog(
        **{
            f.name: np.broadcast_to(
                getattr(catalog, f.name)[:1], (n, *getattr(catalog, f.name).shape[1:])
            )
            for f in fields(catalog)
        }
    )


def check_exact(catalog: Catalog) -> None:
    """Raise :class:`DPNotExactError` unless the exact DP can represent this one-SKU catalog."""
    if catalog.n_skus != 1:
        raise ConfigError(
            f"the DP solves one SKU at a time; got a catalog of {catalog.n_skus} SKUs "
            f"(use catalog.take([i]))"
        )
    sku = catalog.sku[0]
    if catalog.ref_price_sensitivity[0] > 0:
        raise DPNotExactError(
            f"sku {sku!r}: ref_price_sensitivity = {catalog.ref_price_sensitivity[0]} > 0; "
            f"reference-price memory makes demand depend on the whole price path, which the "
            f"exact DP's state (weeks left, stock, rule state) cannot hold. Set it to 0 for a "
            f"DP benchmark, or compare against simulation instead."
        )
    if catalog.fatigue_rate[0] > 0:
        raise DPNotExactError(
            f"sku {sku!r}: fatigue_rate = {catalog.fatigue_rate[0]} > 0; promotion fatigue "
            f"depends on the whole discount history, which the exact DP's state cannot hold. "
            f"Set it to 0 for a DP benchmark, or compare against simulation instead."
        )
    stock = float(catalog.initial_stock[0])
    if stock != round(stock):
        raise DPNotExactError(f"sku {sku!r}: initial_stock = {stock} is not a whole number")


@dataclass(frozen=True)
class RuleGrid:
    """The rule part of the DP state and how to index it.

    ``n_depth`` depths are tracked when a rule reads the depth in force (else 1, depth 0);
    ``k_cap`` is the weeks-since-change cap (states ``1..k_cap``; 1 = untracked);
    ``budget_cap`` the coupon weeks left tracked (states ``0..budget_cap``; -1 = untracked).
    """

    n_depth: int
    k_cap: int
    budget_cap: int

    @property
    def n_k(self) -> int:
        return self.k_cap

    @property
    def n_b(self) -> int:
        return self.budget_cap + 1 if self.budget_cap >= 0 else 1

    @property
    def size(self) -> int:
        return self.n_depth * self.n_k * self.n_b

    def components(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Depth index, weeks since change, coupon weeks left of every rule state."""
        j, k, b = np.unravel_index(np.arange(self.size), (self.n_depth, self.n_k, self.n_b))
        wsc = np.where(self.k_cap > 1, k + 1, LONG_AGO)
        budget = np.where(self.budget_cap >= 0, b, NO_BUDGET)
        return j.astype(np.int64), wsc.astype(np.int64), budget.astype(np.int64)

    def index(
        self, depth_index: np.ndarray, weeks_since_change: np.ndarray, coupon_weeks_left: np.ndarray
    ) -> np.ndarray:
        """Rule-state index of decision states (values beyond a cap map to the cap)."""
        j = np.asarray(depth_index, np.int64) if self.n_depth > 1 else 0 * np.asarray(depth_index)
        k = np.clip(np.asarray(weeks_since_change, np.int64), 1, self.k_cap) - 1
        if self.budget_cap >= 0:
            b = np.clip(np.asarray(coupon_weeks_left, np.int64), 0, self.budget_cap)
        else:
            b = np.zeros_like(k)
        return np.ravel_multi_index((j, k, b), (self.n_depth, self.n_k, self.n_b))


def rule_grid(rules: RulesConfig, horizon_weeks: int, *, track_depth: bool = False) -> RuleGrid:
    """The smallest rule state the active rules need (``track_depth`` forces the depth)."""
    names = active_rules(rules)
    depth = track_depth or any(n in names for n in _DEPTH_RULES)
    k_cap = rules.min_weeks_between_changes if "min_weeks_between_changes" in names else 1
    budget = -1
    if "coupon_budget" in names:
        assert rules.coupon_budget_weeks is not None
        budget = min(rules.coupon_budget_weeks, horizon_weeks)
    return RuleGrid(rules.n_discounts if depth else 1, max(k_cap, 1), budget)


class BellmanModel:
    """Everything the backward pass needs, built once per (SKU, rules, horizon).

    Public so that a DP on a larger state (:mod:`agents.dp_memory`: one model per point of a
    reference-price and fatigue grid) reuses the same Bellman step (:meth:`q_values`), masks
    and terminal values instead of a copy. Call :meth:`release` when done with it.
    """

    def __init__(
        self,
        catalog: Catalog,
        rules: RulesConfig,
        horizon_weeks: int,
        *,
        display: np.ndarray | None,
        mailer: np.ndarray | None,
        track_depth: bool,
    ) -> None:
        check_exact(catalog)
        if int(horizon_weeks) != horizon_weeks or horizon_weeks < 1:
            raise ConfigError(f"horizon_weeks = {horizon_weeks!r}: expected an integer >= 1")
        self.catalog, self.rules, self.horizon = catalog, rules, int(horizon_weeks)
        self.n_units = int(round(float(catalog.initial_stock[0])))
        self.grid = rule_grid(rules, self.horizon, track_depth=track_depth)
        n_s, n_r, n_a = self.n_units + 1, self.grid.size, rules.n_actions
        cells = max((self.horizon + 1) * n_s * n_r, n_s * n_r * n_a)
        if cells > MAX_GRID_CELLS:
            raise ConfigError(
                f"DP grid too large: {self.horizon} weeks x {n_s} stock levels x {n_r} rule "
                f"states x {n_a} actions needs {cells:,} cells > {MAX_GRID_CELLS:,}; lower the "
                f"stock (units), the coupon budget or the number of ladder levels"
            )
        H = self.horizon
        self.weeks = catalog.start_week[0] + np.arange(H)  # calendar week of step t = H - w
        promo = []
        for name, arr in (("display", display), ("mailer", mailer)):
            if arr is None:
                promo.append(np.zeros(H))
                continue
            a = np.asarray(arr, dtype=float)
            if a.shape != (H,):
                raise ConfigError(f"{name} has shape {a.shape}; expected ({H},), one per week")
            promo.append(a)
        # Expected demand of every (week, action) through the market's own function.
        act = np.arange(n_a)
        d, c = rules.depths(act)
        rep = broadcast_catalog(catalog, H * n_a)
        lam = expected_demand(
            rep,
            np.repeat(self.weeks, n_a),
            np.tile(d, H),
            np.tile(c, H),
            display=np.repeat(promo[0], n_a),
            mailer=np.repeat(promo[1], n_a),
        )
        self.lam = lam.reshape(H, n_a)
        # large arrays leased from the work pool, given back by release()
        self._work: dict[str, np.ndarray] = {}
        pmf, sf = demand_pmf(lam, float(catalog.dispersion[0]), self.n_units, work=self._work)
        self.pmf = pmf.reshape(H, n_a, pmf.shape[1])
        self.sf = sf.reshape(H, n_a, n_s)
        # E[min(D, s)] = sum_{k < s} P(D > k); beyond the pmf's support P(D > k) is the tail.
        m = min(self.pmf.shape[2], n_s - 1)
        sold = self._work["sold"] = _lease("sold", (H, n_a, n_s))
        sold[:, :, 0] = 0.0
        np.cumsum(self.sf[:, :, :m], axis=2, out=sold[:, :, 1 : m + 1])
        if n_s > m + 1:
            extra = np.arange(1, n_s - m, dtype=float)
            # sold[m] + extra * P(D > K), written in place (addition commutes exactly)
            beyond = np.multiply(extra, self.sf[:, :, -1, None], out=sold[:, :, m + 1 :])
            beyond += sold[:, :, m, None]
        L, u = float(catalog.list_price[0]), float(catalog.unit_cost[0])
        r_ret = float(catalog.return_rate[0])
        # per unit sold, refunds in expectation; a targeted coupon is paid on the reached
        # households' units only (simulator.market.paid_coupon_depth; c itself at reach 1)
        c_paid = paid_coupon_depth(catalog.coupon_coef[:1], catalog.coupon_reach[:1], c)
        margin = L * (1.0 - d - c_paid) * (1.0 - r_ret) - u
        hold = float(catalog.holding_cost_per_unit_week[0])
        # margin * sold - holding * (s - sold); no holding cost in the exit week.
        self.reward = sold  # reused in place: (H, n_a, n_s)
        if hold:
            self.reward[: H - 1] *= (margin + hold)[None, :, None]
            self.reward[: H - 1] -= hold * np.arange(n_s, dtype=float)
            self.reward[H - 1] *= margin[:, None]
        else:
            self.reward *= margin[None, :, None]

        stock_grid = np.arange(n_s, dtype=float)
        self.terminal = (float(catalog.salvage_value_per_unit[0]) - u) * stock_grid - exit_penalty(
            rules, broadcast_catalog(catalog, n_s), stock_grid, np.full(n_s, float(self.n_units))
        )
        # Rule-state transitions: next rule state of every (rule state, action).
        j, wsc, bud = self.grid.components()
        st = DecisionState(
            weeks_left=np.full(n_r * n_a, 2, np.int64),
            stock=np.zeros(n_r * n_a),
            initial_stock=np.zeros(n_r * n_a),
            depth_index=np.repeat(j, n_a),
            weeks_since_change=np.repeat(wsc, n_a),
            coupon_weeks_left=np.repeat(bud, n_a),
            age_weeks=np.zeros(n_r * n_a, np.int64),
        )
        nxt = advance(rules, st, np.tile(act, n_r), np.zeros(n_r * n_a))
        self.next_r = self.grid.index(
            nxt.depth_index, nxt.weeks_since_change, nxt.coupon_weeks_left
        ).reshape(n_r, n_a)
        # The whole state grid as a DecisionState (stock-major), for the masks.
        s_all = np.repeat(stock_grid, n_r)
        self._grid_state = DecisionState(
            weeks_left=np.zeros(n_s * n_r, np.int64),
            stock=s_all,
            initial_stock=np.full(n_s * n_r, float(self.n_units)),
            depth_index=np.tile(j, n_s),
            weeks_since_change=np.tile(wsc, n_s),
            coupon_weeks_left=np.tile(bud, n_s),
            age_weeks=np.zeros(n_s * n_r, np.int64),
        )
        self.no_rules = not active_rules(rules)
        self._fft_len = sfft.next_fast_len(n_s + self.pmf.shape[2] - 1, real=True)
        # (H, n_a, n_freq); NumPy's pocketfft, faster than SciPy's on this batch
        self._pmf_hat = self._work["pmf_hat"] = np.fft.rfft(
            self.pmf,
            self._fft_len,
            axis=2,
            out=_lease("pmf_hat", (H, n_a, self._fft_len // 2 + 1), complex),
        )
        # The distinct (action, next rule state) pairs whose continuation is needed.
        pairs, inv = np.unique(np.arange(n_a)[None, :] * n_r + self.next_r, return_inverse=True)
        self._pair_action, self._pair_rule = np.divmod(pairs, n_r)
        self._pair_inv = inv.reshape(self.next_r.shape)
        # Without rule state (one rule state, every action its own pair) no gather is needed.
        self._pairs_are_actions = n_r == 1 and np.array_equal(self._pair_action, np.arange(n_a))
        self._rule_unique, self._rule_pos = np.unique(self._pair_rule, return_inverse=True)

    def release(self) -> None:
        """Give the large work arrays back to the pool; the model is unusable after this."""
        for name, arr in self._work.items():
            _give_back(name, arr)
        self._work = {}

    # ---------------------------------------------------------------- per-week pieces
    @functools.cached_property
    def _grid_catalog(self) -> Catalog:
        """The SKU broadcast over the state grid (built on first use: masks, contexts)."""
        return broadcast_catalog(self.catalog, (self.n_units + 1) * self.grid.size)

    def decision_state(self, weeks_left: int) -> DecisionState:
        """The grid's decision state at ``weeks_left`` (arrays of shape (n_s * n_r,))."""
        g = self._grid_state
        g.weeks_left = np.full_like(g.weeks_left, weeks_left)
        g.age_weeks = np.full_like(
            g.age_weeks, int(self.catalog.age_weeks[0]) + self.horizon - weeks_left
        )
        return g

    def mask(self, weeks_left: int) -> np.ndarray:
        """Allowed actions on the grid, shape (n_s, n_r, n_a)."""
        m = action_mask(self.rules, self.decision_state(weeks_left), self._grid_catalog)
        return m.reshape(self.n_units + 1, self.grid.size, self.rules.n_actions)

    def context(self, weeks_left: int) -> Any:
        """A :class:`~envs.context.PolicyContext` over the grid at ``weeks_left``."""
        g = self.decision_state(weeks_left)
        n = g.stock.shape[0]
        market = MarketState(
            stock=g.stock.copy(),
            week=np.full(n, self.weeks[self.horizon - weeks_left], np.int64),
            ref_price=np.ones(n),
            fatigue=np.zeros(n),
        )
        return PolicyContext(self._grid_catalog, g, market, self.rules, self.horizon)

    def q_values(self, weeks_left: int, v_next: np.ndarray) -> np.ndarray:
        """Expected reward plus continuation of every (stock, rule state, action).

        ``v_next`` has shape (n_s, n_r), or (n_a, n_s, n_r) when the continuation depends on
        the action beyond the rule state (the augmented-state DP of :mod:`agents.dp_memory`,
        where the action also moves the reference price and fatigue); returns shape
        (n_s, n_r, n_a) (a transposed view of an action-major array: the FFTs run along
        contiguous rows).
        """
        t = self.horizon - weeks_left
        n_s, n = self.n_units + 1, self._fft_len
        if v_next.ndim == 3:
            # one forward FFT per (action, next rule state) pair: each has its own continuation
            rows = v_next[self._pair_action, :, self._pair_rule]
            v_hat = sfft.rfft(rows, n, axis=1)
            v_zero = rows[:, 0]
        else:
            # One forward FFT per distinct next rule state, one inverse per (action, next state).
            v_hat = sfft.rfft(v_next.T[self._rule_unique], n, axis=1)
            if self._rule_unique.size > 1:
                v_hat = v_hat[self._rule_pos]
            v_zero = v_next[0, self._pair_rule]
        pmf_hat = (
            self._pmf_hat[t] if self._pairs_are_actions else self._pmf_hat[t, self._pair_action]
        )
        conv = sfft.irfft(pmf_hat * v_hat, n, axis=1)[:, :n_s]
        sf = self.sf[t] if self._pairs_are_actions else self.sf[t, self._pair_action]
        conv += sf * v_zero[:, None]  # + P(D > s) V(0)
        # (n_r, n_a, n_s): a view when each action has its own pair (no rule state moves)
        q = conv[None] if self._pairs_are_actions else conv[self._pair_inv]
        q += self.reward[t][None]
        return q.transpose(2, 0, 1)


# ---------------------------------------------------------------------------- results
@dataclass
class DPSolution:
    """The solved DP for one SKU.

    Attributes
    ----------
    value : float
        Optimal expected profit from the initial state (currency, market accounting,
        including the exit penalty).
    values : ndarray of shape (horizon_weeks + 1, n_units + 1, n_rule_states)
        ``values[w, s, r]``: optimal expected profit to go with ``w`` weeks left (0 = after
        exit), ``s`` units on hand, rule state ``r`` (see :attr:`grid`).
    actions : ndarray of int of shape (horizon_weeks + 1, n_units + 1, n_rule_states)
        Optimal flat action (``actions[0]`` is unused, -1).
    grid : RuleGrid
    catalog, rules, horizon_weeks
        What was solved.
    solve_seconds : float
        Wall time of the solve.
    """

    value: float
    values: np.ndarray
    actions: np.ndarray
    grid: RuleGrid
    catalog: Catalog
    rules: RulesConfig
    horizon_weeks: int
    solve_seconds: float
    q: np.ndarray | None = None
    """With ``solve(..., keep_q=True)``: ``q[w, s, r, a]``, the expected reward of action
    ``a`` (less its ``action_cost``) plus the optimal continuation, ``-inf`` where the rules
    mask ``a`` (``q[0]`` unused); else None."""

    def index(self, state: DecisionState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Table indices ``(w, s, r)`` of decision states; raises on states off the grid."""
        w = np.asarray(state.weeks_left, np.int64)
        s = np.asarray(state.stock, float)
        si = np.rint(s).astype(np.int64)
        bad = (w < 0) | (w > self.horizon_weeks) | (si < 0) | (si >= self.values.shape[1])
        if np.any(bad) or np.any(np.abs(s - si) > 1e-9):
            i = int(np.flatnonzero(bad | (np.abs(s - si) > 1e-9))[0])
            raise ConfigError(
                f"decision state off the DP grid: weeks_left={int(w[i])}, stock={s[i]} "
                f"(solved for {self.horizon_weeks} weeks and 0..{self.values.shape[1] - 1} units)"
            )
        r = self.grid.index(state.depth_index, state.weeks_since_change, state.coupon_weeks_left)
        return w, si, r

    def policy(self, state: DecisionState) -> np.ndarray:
        """Optimal flat actions of decision states (arrays of shape (n,))."""
        w, s, r = self.index(state)
        return self.actions[w, s, r]

    def value_at(self, state: DecisionState) -> np.ndarray:
        """Optimal expected profit to go of decision states."""
        w, s, r = self.index(state)
        return self.values[w, s, r]


Chooser = Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``(weeks left, q of shape (n_s, n_r, n_a)) -> (actions, their q values)``, each (n_s, n_r)."""


def _backward(model: BellmanModel, choose: Chooser) -> tuple[np.ndarray, np.ndarray]:
    H, n_s, n_r = model.horizon, model.n_units + 1, model.grid.size
    values = np.empty((H + 1, n_s, n_r))
    actions = np.full((H + 1, n_s, n_r), -1, dtype=np.int16)
    values[0] = model.terminal[:, None]
    for w in range(1, H + 1):
        a, v = choose(w, model.q_values(w, values[w - 1]))
        actions[w] = a
        values[w] = v
    return values, actions


def _chosen(q: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``q[s, r, a[s, r]]``."""
    return np.take_along_axis(q, a[..., None].astype(np.int64), axis=2)[..., 0]


def _start_value(model: BellmanModel, values: np.ndarray) -> float:
    r0 = start_rule_state(model)
    return float(values[model.horizon, model.n_units, r0])


def start_rule_state(model: BellmanModel) -> int:
    """Rule-state index of the plan's first week (the rules' initial decision state)."""
    s0 = initial_decision_state(model.catalog, model.horizon, model.rules)
    r0 = model.grid.index(s0.depth_index, s0.weeks_since_change, s0.coupon_weeks_left)
    return int(r0[0])


def solve(
    catalog: Catalog,
    rules: RulesConfig,
    horizon_weeks: int,
    *,
    display: np.ndarray | None = None,
    mailer: np.ndarray | None = None,
    action_cost: np.ndarray | None = None,
    keep_q: bool = False,
) -> DPSolution:
    """Solve the markdown problem of one SKU exactly.

    Parameters
    ----------
    catalog : Catalog
        One SKU (``n_skus == 1``) with ``ref_price_sensitivity == 0`` and
        ``fatigue_rate == 0`` and a whole-number ``initial_stock``.
    rules : RulesConfig
        The business rules; every active one is respected through its action mask.
    horizon_weeks : int
        Weeks to the exit week, counting the first.
    display, mailer : ndarray of shape (horizon_weeks,) or None
        Known promotion intensity of each week (default none).
    action_cost : ndarray of shape (n_actions,) or (horizon_weeks, n_actions), or None
        A charge on each action (the same every week, or per week from the first), subtracted
        from its expected reward (a Lagrange multiplier's price of a shared limit,
        :mod:`agents.lagrangian`); the values and ``value`` are then of the charged problem.
        Default none.
    keep_q : bool
        Keep every week's masked Q-values in ``DPSolution.q`` (memory
        ``(horizon + 1) x stock levels x rule states x actions``).

    Returns
    -------
    DPSolution

    Raises
    ------
    DPNotExactError
        When the SKU has reference-price memory or promotion fatigue.
    ConfigError
        When the catalog holds more than one SKU or the grid would be too large.
    """
    cost = None if action_cost is None else np.asarray(action_cost, dtype=float)
    if cost is not None and cost.shape not in (
        (rules.n_actions,),
        (horizon_weeks, rules.n_actions),
    ):
        raise ConfigError(
            f"action_cost has shape {cost.shape}; expected ({rules.n_actions},), one per "
            f"action, or ({horizon_weeks}, {rules.n_actions}), one per week and action"
        )
    kept: dict[int, np.ndarray] = {}

    t0 = time.perf_counter()
    model = BellmanModel(
        catalog, rules, horizon_weeks, display=display, mailer=mailer, track_depth=False
    )

    def best(w: int, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # First maximum among allowed actions: ties go to the shallower, cheaper action.
        # Without active rules every action is allowed, so the mask is skipped.
        if cost is not None:
            q = q - (cost[model.horizon - w] if cost.ndim == 2 else cost)
        qm = q if model.no_rules else np.where(model.mask(w), q, -np.inf)
        if keep_q:
            kept[w] = np.array(qm)
        a = np.argmax(qm, axis=2)
        return a, _chosen(qm, a)

    try:
        values, actions = _backward(model, best)
        value = _start_value(model, values)
    finally:
        model.release()
    q_all = None
    if keep_q:
        q_all = np.full((values.shape[0], *kept[1].shape), -np.inf)
        for w, qw in kept.items():
            q_all[w] = qw
    return DPSolution(
        value=value,
        values=values,
        actions=actions,
        grid=model.grid,
        catalog=catalog,
        rules=rules,
        horizon_weeks=model.horizon,
        solve_seconds=time.perf_counter() - t0,
        q=q_all,
    )


DecisionFn = Callable[[Any, np.ndarray], np.ndarray]
"""A policy as a function of the DP state: ``(PolicyContext over the grid, masks) -> actions``."""


def evaluate_exact(
    catalog: Catalog,
    rules: RulesConfig,
    horizon_weeks: int,
    decision_fn: Any,
    *,
    display: np.ndarray | None = None,
    mailer: np.ndarray | None = None,
) -> float:
    """Exact expected profit of a policy that is a function of the DP state.

    The state always includes the depth in force (so ratchets and ladders are exact), plus
    what the active rules need. The policy may read a context's ``decision`` (weeks left,
    stock, depth, weeks since change capped at the rule's minimum, coupon weeks left),
    ``market.week``, the ``catalog`` and ``rules``; anything else (last week's sales, the
    reference price) is not part of the state and the evaluation would not be exact.

    Parameters
    ----------
    catalog, rules, horizon_weeks, display, mailer
        As for :func:`solve`.
    decision_fn : Policy or callable
        A :class:`agents.policy.Policy` (called as ``act(empty observations, masks,
        context)``) or a callable ``(context, masks) -> actions`` on a grid of states.

    Returns
    -------
    float
        Expected total profit from the initial state.
    """
    from agents.policy import Policy, check_actions

    model = BellmanModel(
        catalog, rules, horizon_weeks, display=display, mailer=mailer, track_depth=True
    )
    name = getattr(decision_fn, "name", getattr(decision_fn, "__name__", "decision_fn"))
    if isinstance(decision_fn, Policy):
        decision_fn.reset(model.context(model.horizon))

    def fixed(w: int, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mask = model.mask(w)
        flat = mask.reshape(-1, mask.shape[-1])
        ctx = model.context(w)
        if isinstance(decision_fn, Policy):
            a = decision_fn.act(np.zeros((flat.shape[0], 0)), flat, ctx)
        else:
            a = decision_fn(ctx, flat)
        a = np.asarray(a, dtype=np.int64)
        check_actions(a, flat, policy=str(name))
        a2 = a.reshape(mask.shape[:2])
        return a2, _chosen(q, a2)

    try:
        values, _ = _backward(model, fixed)
        return _start_value(model, values)
    finally:
        model.release()
