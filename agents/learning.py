"""Planners for the learning market: the exact DP of every grid point, and policies on it.

In the learning market (:mod:`envs.learning`) a SKU's true elasticity and demand level are
one point of a discrete prior grid (:class:`envs.belief.BeliefGrid`). Given the point, the
market is the standard one and :func:`agents.dp.solve` is exact, so :func:`solve_grid`
solves the DP once per grid point and every planner below is a table lookup at the current
state (weeks left, stock, rule state):

=================  ==================================================================
name               action each week
=================  ==================================================================
``oracle``         the DP of the true grid point (knows the truth: the upper bound,
                   per draw; its expected value is ``sum_g prior_g V*_g``)
``dp_ce``          certainty equivalent: the DP of the grid point nearest the prior mean
                   (the estimate), solved once and never updated
``dp_resolve``     the DP of the grid point nearest the posterior mean, re-chosen every
                   week (the DP re-solved on the posterior mean)
``thompson``       the DP of one grid point drawn from the posterior every week
                   (Thompson sampling)
``qmdp``           the action with the highest posterior mean of the grid points' optimal
                   Q-values, ``sum_g posterior_g Q*_g(state, a)`` (QMDP: Littman, Cassandra
                   and Kaelbling, 1995): every point's DP weighed by its posterior, instead
                   of one point's table (:class:`QMDPPolicy`)
=================  ==================================================================

Every table entry is allowed by the rules' masks (the DP's own guarantee), and the rule
state the masks read does not depend on the parameters, so switching tables between weeks
never picks a forbidden action.

QMDP acts as if the truth were revealed right after this week: it values each action by
the posterior's expectation of the exact DPs' Q-values, which is the best a policy can do
when it learns nothing more (it never buys information on purpose). It needs every grid
point's Q-table (:attr:`GridSolution.q_tables`, built on first use).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from agents.dp import DPSolution, RuleGrid, solve
from agents.policy import Policy, PolicyError, check_actions
from envs.belief import BeliefGrid, BeliefState
from envs.config import RulesConfig
from envs.context import PolicyContext
from ingest.errors import ConfigError
from simulator.demand import Catalog

Mode = Literal["oracle", "prior_mean", "posterior_mean", "thompson"]
MODES: tuple[str, ...] = ("oracle", "prior_mean", "posterior_mean", "thompson")


@dataclass
class GridSolution:
    """The exact DP of one SKU at every point of its prior grid.

    Attributes
    ----------
    grid : BeliefGrid
    catalog : Catalog
        The one-SKU catalog (the estimate and its standard errors).
    rules : RulesConfig
    horizon_weeks : int
    points_e, points_l : ndarray of shape (G,)
        Elasticity and log level offset of each grid point.
    values0 : ndarray of shape (G,)
        Each point's optimal expected objective from the plan's first state.
    actions : ndarray of int16 of shape (G, horizon_weeks + 1, n_units + 1, n_rule_states)
        Each point's optimal action table.
    rule_grid : RuleGrid
        How a decision state maps to a rule-state index (the same for every point).
    solve_seconds : float
    """

    grid: BeliefGrid
    catalog: Catalog
    rules: RulesConfig
    horizon_weeks: int
    points_e: np.ndarray
    points_l: np.ndarray
    values0: np.ndarray
    actions: np.ndarray
    rule_grid: RuleGrid
    solve_seconds: float

    @property
    def oracle_value(self) -> float:
        """Expected objective of the oracle: ``sum_g prior_g V*_g`` (exact)."""
        return float(self.grid.prior @ self.values0)

    @cached_property
    def q_tables(self) -> np.ndarray:
        """Every grid point's optimal Q-values, ``q[g, w, s, r, a]`` (float32, shape
        ``(G, horizon_weeks + 1, n_units + 1, n_rule_states, n_actions)``; 0 where the rules
        mask ``a``, ``q[:, 0]`` unused), from the grid DPs re-solved with ``keep_q=True`` on
        first use."""
        solved: dict[tuple[float, float], np.ndarray] = {}
        tables = []
        for g in range(self.grid.n_points):
            key = (float(self.points_e[g]), float(self.points_l[g]))
            if key not in solved:
                q = solve(self.point_catalog(g), self.rules, self.horizon_weeks, keep_q=True).q
                assert q is not None  # keep_q=True
                solved[key] = np.where(np.isfinite(q), q, 0.0).astype(np.float32)
            tables.append(solved[key])
        return np.stack(tables)

    @property
    def center(self) -> int:
        """The grid point nearest the prior mean."""
        return self.grid.center

    def point_catalog(self, g: int) -> Catalog:
        """The SKU with grid point ``g``'s parameters (what the market plays when it is
        the truth)."""
        return self.catalog.replace(
            elasticity=float(self.points_e[g]),
            base_demand=float(self.catalog.base_demand[0] * np.exp(self.points_l[g])),
        )

    def lookup(self, points: np.ndarray, ctx: PolicyContext) -> np.ndarray:
        """The table action of grid point ``points[i]`` at slot ``i``'s decision state."""
        w, s, r = self.state_index(ctx)
        return self.actions[np.asarray(points, np.int64), w, s, r].astype(np.int64)

    def posterior(self, ctx: PolicyContext, policy: str) -> BeliefState:
        """The env's posterior in ``ctx``, checked to be over this solution's grid; a
        :class:`~agents.policy.PolicyError` naming ``policy`` when it is missing or another."""
        belief = ctx.belief
        if belief is None:
            raise PolicyError(f"policy {policy!r} reads the posterior: play it in the learning env")
        if belief.grid.n_points != self.grid.n_points:
            raise PolicyError(
                f"policy {policy!r} was solved on {self.grid.n_points} grid points; the env's "
                f"posterior has {belief.grid.n_points}"
            )
        return belief

    def state_index(self, ctx: PolicyContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Table indices (weeks left, stock, rule state) of every slot's decision state."""
        dec = ctx.decision
        w = np.asarray(dec.weeks_left, np.int64)
        s = np.rint(np.asarray(dec.stock, float)).astype(np.int64)
        top = self.actions.shape[2] - 1
        if np.any(w < 1) or np.any(w > self.horizon_weeks) or np.any((s < 0) | (s > top)):
            raise ConfigError(
                f"decision state off the grid DP: weeks_left in [{w.min()}, {w.max()}], stock "
                f"in [{s.min()}, {s.max()}] (solved for {self.horizon_weeks} weeks and "
                f"0..{top} units)"
            )
        r = self.rule_grid.index(dec.depth_index, dec.weeks_since_change, dec.coupon_weeks_left)
        return w, s, r


def solve_grid(
    catalog: Catalog, rules: RulesConfig, horizon_weeks: int, grid: BeliefGrid
) -> GridSolution:
    """Solve the DP of a one-SKU catalog at every point of its prior grid.

    Parameters
    ----------
    catalog : Catalog
        One SKU: ``elasticity`` and ``base_demand`` are the estimates, ``elasticity_se`` and
        ``base_demand_se`` the prior's standard deviations (as the learning env reads them).
    rules, horizon_weeks
        As for :func:`agents.dp.solve`.
    grid : BeliefGrid

    Returns
    -------
    GridSolution
    """
    t0 = time.perf_counter()
    pe, pl = grid.points(catalog.elasticity, catalog.elasticity_se, catalog.base_demand_se)
    pe, pl = pe[0], pl[0]
    base = float(catalog.base_demand[0])
    tables: list[np.ndarray] = []
    values = np.empty(grid.n_points)
    solved: dict[tuple[float, float], DPSolution] = {}
    sol: DPSolution | None = None
    for g in range(grid.n_points):
        key = (float(pe[g]), float(pl[g]))
        if key not in solved:  # capped elasticities and zero errors repeat points
            one = catalog.replace(elasticity=key[0], base_demand=base * np.exp(key[1]))
            solved[key] = solve(one, rules, horizon_weeks)
        sol = solved[key]
        values[g] = sol.value
        tables.append(sol.actions)
    assert sol is not None  # a grid has at least one point
    return GridSolution(
        grid=grid,
        catalog=catalog,
        rules=rules,
        horizon_weeks=int(horizon_weeks),
        points_e=pe,
        points_l=pl,
        values0=values,
        actions=np.stack(tables),
        rule_grid=sol.grid,
        solve_seconds=time.perf_counter() - t0,
    )


class GridDPPolicy(Policy):
    """Plays the DP table of one grid point per slot and week (see the module docstring).

    Parameters
    ----------
    solution : GridSolution
        The grid DP of the SKU every slot plays (one SKU per evaluation scenario).
    mode : {"oracle", "prior_mean", "posterior_mean", "thompson"}
        Which grid point's table to follow.
    seed : int
        Seed of Thompson sampling's draws (other modes draw nothing).
    """

    requires_context = True
    NAMES = {
        "oracle": "oracle",
        "prior_mean": "dp_ce",
        "posterior_mean": "dp_resolve",
        "thompson": "thompson",
    }

    def __init__(self, solution: GridSolution, mode: Mode, seed: int = 0) -> None:
        if mode not in MODES:
            raise ConfigError(f"GridDPPolicy mode {mode!r}; expected one of {MODES}")
        self.solution = solution
        self.mode = mode
        self.seed = seed
        self.name = self.NAMES[mode]
        self.needs_truth = mode == "oracle"
        self._rng = np.random.default_rng(seed)

    def reset(self, context: PolicyContext | None = None) -> None:
        self._rng = np.random.default_rng(self.seed)

    def act(self, observations, masks, context=None):
        ctx = self._need_context(context)
        n = ctx.n_slots
        if self.mode == "prior_mean":
            points = np.full(n, self.solution.center)
        elif self.mode == "oracle":
            if ctx.truth is None:
                raise PolicyError(
                    "the oracle needs the true grid point: play it in the learning env with "
                    "reveal_truth set (experiments' learning market does)"
                )
            points = ctx.truth
        else:
            belief = self.solution.posterior(ctx, self.name)
            if self.mode == "posterior_mean":
                points = belief.nearest_to_mean()
            else:
                points = belief.sample(self._rng.random(n))
        actions = self.solution.lookup(points, ctx)
        check_actions(actions, masks, policy=self.name)
        return actions


class QMDPPolicy(Policy):
    """Plays ``argmax_a sum_g posterior_g Q*_g(state, a)`` over the allowed actions (QMDP; see
    the module docstring): ties go to the first action, as in the DP.

    Parameters
    ----------
    solution : GridSolution
        The grid DP of the SKU every slot plays (its :attr:`GridSolution.q_tables` are built
        on the first call if they are not yet).
    """

    requires_context = True
    name = "qmdp"

    def __init__(self, solution: GridSolution) -> None:
        self.solution = solution

    def act(self, observations, masks, context=None):
        ctx = self._need_context(context)
        belief = self.solution.posterior(ctx, self.name)
        q = self.solution.q_tables
        w, s, r = self.solution.state_index(ctx)
        value = np.einsum("ng,gna->na", belief.weights(), q[:, w, s, r, :], dtype=float)
        allowed = np.asarray(masks, bool)
        actions = np.argmax(np.where(allowed, value, -np.inf), axis=1).astype(np.int64)
        check_actions(actions, masks, policy=self.name)
        return actions
