"""Demand with memory: the DP on a state augmented with the reference price and fatigue.

With reference-price memory and promotion fatigue on (:mod:`simulator.market`), this week's
expected demand depends on the reference price ``R`` (a ratio to list) and the fatigue ``F``
besides the price: ``lam = base * season * p^e * (p / R)^(-gamma) * (1 - F)``, and the
action moves both deterministically, ``R' = m R + (1 - m)(1 - d)`` and
``F' = min(decay F + rate [d > 0], 0.95)``. So ``(weeks left, stock, rule state, R, F)`` is
a Markov state, and the exact DP of :mod:`agents.dp` extends to it once ``R`` and ``F``
live on a grid:

- at a grid point ``(R_i, F_j)`` the week's demand is that of a memoryless SKU with
  elasticity ``e - gamma`` and demand level ``base * R_i^gamma * (1 - F_j)``
  (:func:`frozen_memory_catalog`), so one :class:`agents.dp.BellmanModel` per grid point
  gives the week's pmfs, rewards, masks and Bellman step (no copy of them here);
- the continuation of action ``a`` is ``V`` interpolated bilinearly at ``(R', F')``, which
  generally falls between grid points: this is the only approximation, and it vanishes when
  memory is off (one grid point, ``R = 1``, ``F = 0``: the exact DP's numbers).

The policy (:class:`MemoryDPPolicy`) interpolates the stored Q values at the slot's actual
``(R, F)`` and takes the best allowed action. Its value on the grid (``value``) and the
simulated value of the policy differ by the discretization error, which the tests and
``docs/agents.md`` report for two grid sizes.

:class:`MemoryBlindDP` is the baseline a team without a memory model would run: the exact DP
re-solved every week at the current reference price held fixed, fatigue ignored.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from agents.dp import BellmanModel, DPSolution, RuleGrid, solve, start_rule_state
from agents.policy import Policy, PolicyError
from envs.config import RulesConfig
from envs.context import PolicyContext
from ingest.errors import ConfigError
from simulator.demand import Catalog
from simulator.market import MAX_FATIGUE

DEFAULT_REF_POINTS = 9
"""Reference-price grid points (between the deepest shelf price and list)."""
DEFAULT_FATIGUE_POINTS = 5
"""Fatigue grid points (between 0 and the most fatigue the horizon can build)."""
MAX_Q_CELLS = 60_000_000
"""Largest stored Q table ``(horizon + 1) x R x F x stock x rule states x actions``
(float32, 240 MB)."""
REF_ROUND = 0.005
"""The memory-blind DP re-solves at the reference price rounded to this step (solves are
cached by it; demand at most ``gamma * 0.25 %`` off)."""


def frozen_memory_catalog(catalog: Catalog, ref_price: float, fatigue: float) -> Catalog:
    """The memoryless SKU whose demand equals ``catalog``'s at a fixed reference price and
    fatigue: elasticity ``e - gamma``, level ``base * ref_price^gamma * (1 - fatigue)``
    (the fatigue factor only where the SKU has fatigue, as :func:`simulator.market.expected_demand`
    applies it).

    Parameters
    ----------
    catalog : Catalog
        One SKU.
    ref_price : float
        Reference price as a ratio to list (> 0).
    fatigue : float
        Promotion fatigue in ``[0, 0.95]``.
    """
    gamma = float(catalog.ref_price_sensitivity[0])
    level = float(catalog.base_demand[0]) * float(ref_price) ** gamma
    if float(catalog.fatigue_rate[0]) > 0:
        level *= 1.0 - float(fatigue)
    return catalog.replace(
        elasticity=float(catalog.elasticity[0]) - gamma,
        base_demand=level,
        ref_price_sensitivity=0.0,
        fatigue_rate=0.0,
    )


@dataclass(frozen=True)
class MemoryGrid:
    """Points of the reference-price and fatigue axes (each increasing)."""

    ref: np.ndarray
    fatigue: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return (self.ref.size, self.fatigue.size)


def memory_grid(
    catalog: Catalog,
    rules: RulesConfig,
    horizon_weeks: int,
    n_ref: int = DEFAULT_REF_POINTS,
    n_fatigue: int = DEFAULT_FATIGUE_POINTS,
) -> MemoryGrid:
    """The grid that covers every reachable ``(R, F)``; one point on an axis that is off.

    ``R`` starts at 1 and moves towards the shelf prices, so it stays in
    ``[1 - deepest discount, 1]``; ``F`` starts at 0 and after ``H`` weeks is at most
    ``rate (1 - decay^H) / (1 - decay)`` (capped at 0.95).
    """
    if n_ref < 2 or n_fatigue < 2:
        raise ConfigError(f"memory grid {n_ref} x {n_fatigue}: expected >= 2 points per axis")
    if float(catalog.ref_price_sensitivity[0]) > 0:
        ref = np.linspace(1.0 - max(rules.discount_levels), 1.0, n_ref)
    else:
        ref = np.ones(1)
    rate, decay = float(catalog.fatigue_rate[0]), float(catalog.fatigue_decay[0])
    if rate > 0:
        top = min(MAX_FATIGUE, rate * (1.0 - decay**horizon_weeks) / (1.0 - decay))
        fatigue = np.linspace(0.0, top, n_fatigue)
    else:
        fatigue = np.zeros(1)
    return MemoryGrid(ref, fatigue)


def interp_weights(points: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Linear-interpolation weights of values ``x`` on increasing ``points`` (clipped to
    the ends), shape ``(x.size, points.size)``; each row sums to 1."""
    x = np.clip(np.asarray(x, float).ravel(), points[0], points[-1])
    w = np.zeros((x.size, points.size))
    if points.size == 1:
        w[:, 0] = 1.0
        return w
    hi = np.clip(np.searchsorted(points, x, side="right"), 1, points.size - 1)
    lo = hi - 1
    t = (x - points[lo]) / (points[hi] - points[lo])
    rows = np.arange(x.size)
    np.add.at(w, (rows, lo), 1.0 - t)
    np.add.at(w, (rows, hi), t)
    return w


def next_memory(
    catalog: Catalog, rules: RulesConfig, ref: np.ndarray, fatigue: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Next week's reference price and fatigue of every (point, action), as
    :func:`simulator.market.step` moves them: shapes ``(ref.size, n_a)`` and
    ``(fatigue.size, n_a)``."""
    d, _ = rules.depths(np.arange(rules.n_actions))
    m = float(catalog.ref_price_memory[0])
    rate, decay = float(catalog.fatigue_rate[0]), float(catalog.fatigue_decay[0])
    ref_next = m * ref[:, None] + (1.0 - m) * (1.0 - d)[None, :]
    fat_next = np.minimum(decay * fatigue[:, None] + rate * (d > 0)[None, :], MAX_FATIGUE)
    return ref_next, fat_next


@dataclass
class MemorySolution:
    """The augmented-state DP of one SKU.

    Attributes
    ----------
    value : float
        Value on the grid at the start (reference price at list, no fatigue): the
        yardstick's own estimate of its expected profit (see the module docstring).
    values : ndarray of shape (horizon + 1, n_s, n_r, n_ref, n_fatigue)
        Value to go on the grid.
    q : ndarray of float32 of shape (horizon + 1, n_ref, n_fatigue, n_s, n_r, n_a)
        Expected reward plus interpolated continuation of every action (not masked).
    actions : ndarray of int16 of shape (horizon + 1, n_s, n_r, n_ref, n_fatigue)
        The best allowed action at each grid point (``actions[0]`` unused, -1).
    grid : MemoryGrid
    rule_grid : RuleGrid
    catalog, rules, horizon_weeks
    solve_seconds : float
    """

    value: float
    values: np.ndarray
    q: np.ndarray
    actions: np.ndarray
    grid: MemoryGrid
    rule_grid: RuleGrid
    catalog: Catalog
    rules: RulesConfig
    horizon_weeks: int
    solve_seconds: float

    def q_at(self, context: PolicyContext) -> np.ndarray:
        """Q values of every slot's actual state, interpolated in ``(R, F)``, shape (n, n_a)."""
        dec, market = context.decision, context.market
        w = np.asarray(dec.weeks_left, np.int64)
        s = np.rint(np.asarray(dec.stock, float)).astype(np.int64)
        n_s = self.values.shape[1]
        if np.any((w < 1) | (w > self.horizon_weeks) | (s < 0) | (s >= n_s)):
            raise ConfigError(
                f"state off the memory DP's grid: weeks left {w.min()}-{w.max()}, stock "
                f"{s.min()}-{s.max()} (solved for 1-{self.horizon_weeks} weeks, 0-{n_s - 1} units)"
            )
        r = self.rule_grid.index(dec.depth_index, dec.weeks_since_change, dec.coupon_weeks_left)
        wr = interp_weights(self.grid.ref, market.ref_price)
        wf = interp_weights(self.grid.fatigue, market.fatigue)
        out = np.zeros((w.size, self.q.shape[-1]))
        for i in np.flatnonzero(wr.any(axis=0)):
            for j in np.flatnonzero(wf.any(axis=0)):
                weight = wr[:, i] * wf[:, j]
                if weight.any():
                    out += weight[:, None] * self.q[w, i, j, s, r]
        return out


def solve_memory(
    catalog: Catalog,
    rules: RulesConfig,
    horizon_weeks: int,
    *,
    n_ref: int = DEFAULT_REF_POINTS,
    n_fatigue: int = DEFAULT_FATIGUE_POINTS,
    display: np.ndarray | None = None,
    mailer: np.ndarray | None = None,
) -> MemorySolution:
    """Solve the markdown problem of one SKU with demand memory on a ``(R, F)`` grid.

    Parameters
    ----------
    catalog : Catalog
        One SKU; ``ref_price_sensitivity``, ``ref_price_memory``, ``fatigue_rate`` and
        ``fatigue_decay`` may be on (with both off this is :func:`agents.dp.solve`).
    rules, horizon_weeks, display, mailer
        As for :func:`agents.dp.solve`.
    n_ref, n_fatigue : int
        Grid points of each axis (an axis that is off has one point).

    Returns
    -------
    MemorySolution

    Raises
    ------
    ConfigError
        For a catalog of several SKUs or a table too large to store.
    """
    t0 = time.perf_counter()
    if catalog.n_skus != 1:
        raise ConfigError(f"the memory DP solves one SKU at a time; got {catalog.n_skus} SKUs")
    grid = memory_grid(catalog, rules, horizon_weeks, n_ref, n_fatigue)
    n_ref_, n_fat = grid.shape
    n_s, n_a = int(round(float(catalog.initial_stock[0]))) + 1, rules.n_actions
    models: list[list[BellmanModel]] = []
    try:
        for ref in grid.ref:
            row = []
            for fat in grid.fatigue:
                row.append(
                    BellmanModel(
                        frozen_memory_catalog(catalog, float(ref), float(fat)),
                        rules,
                        horizon_weeks,
                        display=display,
                        mailer=mailer,
                        track_depth=False,
                    )
                )
            models.append(row)
        first = models[0][0]
        H, n_r = first.horizon, first.grid.size
        cells = (H + 1) * n_ref_ * n_fat * n_s * n_r * n_a
        if cells > MAX_Q_CELLS:
            raise ConfigError(
                f"memory DP table too large: {cells:,} cells > {MAX_Q_CELLS:,}; lower the grid "
                f"({n_ref_} x {n_fat}), the stock or the horizon"
            )
        ref_next, fat_next = next_memory(catalog, rules, grid.ref, grid.fatigue)
        # w_ref[a, i, i']: weight of grid point i' in the next reference price of (i, a)
        w_ref = interp_weights(grid.ref, ref_next.T).reshape(n_a, n_ref_, n_ref_)
        w_fat = interp_weights(grid.fatigue, fat_next.T).reshape(n_a, n_fat, n_fat)
        values = np.empty((H + 1, n_s, n_r, n_ref_, n_fat))
        q_table = np.zeros((H + 1, n_ref_, n_fat, n_s, n_r, n_a), np.float32)
        actions = np.full((H + 1, n_s, n_r, n_ref_, n_fat), -1, np.int16)
        values[0] = first.terminal[:, None, None, None]
        for w in range(1, H + 1):
            # continuation of every (i, j, a): V interpolated at the action's next (R, F)
            cont = np.einsum("aip,ajq,srpq->ijasr", w_ref, w_fat, values[w - 1], optimize=True)
            mask = None if first.no_rules else first.mask(w)
            for i in range(n_ref_):
                for j in range(n_fat):
                    q = models[i][j].q_values(w, cont[i, j])
                    q_table[w, i, j] = q
                    qm = q if mask is None else np.where(mask, q, -np.inf)
                    a = np.argmax(qm, axis=2)
                    actions[w, :, :, i, j] = a
                    values[w, :, :, i, j] = np.take_along_axis(qm, a[..., None], axis=2)[..., 0]
        r0 = start_rule_state(first)
        value = float(values[H, n_s - 1, r0, n_ref_ - 1, 0])
    finally:
        for row in models:
            for model in row:
                model.release()
    return MemorySolution(
        value=value,
        values=values,
        q=q_table,
        actions=actions,
        grid=grid,
        rule_grid=first.grid,
        catalog=catalog,
        rules=rules,
        horizon_weeks=H,
        solve_seconds=time.perf_counter() - t0,
    )


class MemoryDPPolicy(Policy):
    """The augmented-state DP's policy: the best allowed action of the Q values
    interpolated at each slot's reference price and fatigue (one solved SKU)."""

    name = "augmented_dp"
    requires_context = True

    def __init__(self, solution: MemorySolution) -> None:
        self.solution = solution

    def act(self, observations, masks, context=None):
        ctx = self._need_context(context)
        solved = str(self.solution.catalog.sku[0])
        if np.any(np.asarray(ctx.catalog.sku).astype(str) != solved):
            raise PolicyError(
                f"policy {self.name!r} plays the one SKU it was solved for, {solved!r}"
            )
        q = self.solution.q_at(ctx)
        return np.argmax(np.where(masks, q, -np.inf), axis=1).astype(np.int64)


class MemoryBlindDP(Policy):
    """The exact DP re-solved every week at the current reference price, fatigue ignored.

    What a team without a memory model would run: each week, for each slot, its SKU is
    frozen at today's reference price (rounded to :data:`REF_ROUND`), fatigue set to 0, and
    the exact DP (:func:`agents.dp.solve`) of the weeks left from the current calendar week
    gives the action at the slot's decision state. Solves are cached.

    Parameters
    ----------
    max_cached : int
        Solutions kept (least recently used are dropped).
    """

    name = "dp_blind"
    requires_context = True

    def __init__(self, max_cached: int = 512) -> None:
        self.max_cached = max_cached
        self._cache: OrderedDict[tuple, DPSolution] = OrderedDict()

    def reset(self, context: PolicyContext | None = None) -> None:
        self._cache.clear()

    def _solution(self, catalog: Catalog, rules: RulesConfig, key: tuple) -> DPSolution:
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        _, ref, weeks_left, week, stock = key
        one = frozen_memory_catalog(catalog, ref, 0.0).replace(
            start_week=week, initial_stock=float(stock)
        )
        sol = self._cache[key] = solve(one, rules, weeks_left)
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return sol

    def act(self, observations, masks, context=None):
        ctx = self._need_context(context)
        dec, market = ctx.decision, ctx.market
        ref = np.round(np.asarray(market.ref_price, float) / REF_ROUND) * REF_ROUND
        weeks_left = np.asarray(dec.weeks_left, np.int64)
        week = np.asarray(market.week, np.int64)
        init = np.rint(np.asarray(dec.initial_stock, float)).astype(np.int64)
        sku = np.unique(np.asarray(ctx.catalog.sku).astype(str), return_inverse=True)[1]
        keys = np.stack([sku, ref, weeks_left, week, init], axis=1)
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        actions = np.empty(ctx.n_slots, np.int64)
        for g, (_sku, r, w, wk, st) in enumerate(uniq):
            rows = np.flatnonzero(inv.ravel() == g)
            key = (str(ctx.catalog.sku[rows[0]]), round(float(r), 6), int(w), int(wk), int(st))
            sol = self._solution(ctx.catalog.take([int(rows[0])]), ctx.rules, key)
            actions[rows] = sol.policy(dec.take(rows))
        return _checked(actions, np.asarray(masks, bool))


def _checked(actions: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``actions``, checked against ``masks`` (the DP of the same rules never picks a masked
    action; a mismatch is a bug, reported instead of played)."""
    ok = masks[np.arange(actions.size), actions]
    if not ok.all():
        raise PolicyError(f"memory-blind DP chose {int((~ok).sum())} masked action(s)")
    return actions
