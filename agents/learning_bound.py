"""How well can any policy that learns do? Upper bounds by revealing the truth late.

In the learning market (:mod:`envs.learning`) the oracle (:mod:`agents.learning`) knows each
episode's true grid point from the first week; its value ``sum_g prior_g V*_g`` bounds every
policy, but loosely: no policy that must learn from sales can reach it. The best such policy,
the Bayes-optimal one, solves a DP over beliefs, whose state (the posterior over the grid)
is too large to enumerate for the suite's horizons.

Information relaxation gives bounds in between. Let a policy see the sales of the first
``k`` weeks as the market plays them, and then be told the truth: from week ``k + 1`` on it
plays the true grid point's exact DP. It is at least as well informed as any policy that
learns, at every week, so its optimal value

    U_k = max over the first k weeks' (history-dependent) actions of
          E[ rewards of weeks 1..k + V*_g(state after week k) ]

bounds the Bayes-optimal value from above. ``U_0`` is the oracle's value, ``U_k`` falls as
``k`` grows, and ``U_H`` (never told within the horizon) *is* the Bayes-optimal value.
:func:`revelation_bound` computes ``U_k`` exactly by a search over the first ``k`` weeks'
belief tree: each node carries the joint weights ``pi_g = P(g, sales so far)``, its value is
the best action's ``sum_g pi_g R_g(a)`` plus its children's values, one child per units-sold
outcome, and at depth ``k`` a node is worth ``sum_g pi_g V*_g``.

The tree's width is the number of units-sold outcomes per week (up to the stock), so depths
beyond 3 are slow. A child whose probability is below ``prune`` of its parent's is told
the truth at once: it is then worth ``sum_g pi_g V*_g``, at least what the deeper search
would find (more information never lowers the optimum), so pruning keeps ``U_k`` an upper
bound; the pruned probability mass is reported.

The bound's search is also a planner: each week, :class:`LookaheadPolicy` plays the action
of ``U_2``'s root at the slot's state and posterior, i.e. it values this week's sales as
information for next week's decision (QMDP, :class:`agents.learning.QMDPPolicy`, is the
policy form of ``U_1``, which values none). It uses only the posterior, so it is a policy
that learns, below every bound.

Everything comes from the exact DP of each grid point (:func:`agents.dp.solve` with
``keep_q=True``, and the demand pmf, expected rewards and rule transitions of its
:class:`agents.dp.BellmanModel`): the same numbers the oracle plays.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from agents.dp import BellmanModel, solve, start_rule_state
from agents.learning import GridSolution
from agents.policy import Policy, check_actions
from ingest.errors import ConfigError

logger = logging.getLogger(__name__)

PRUNE = 1e-9
"""Children below this share of their parent's probability are told the truth at once
(keeps the bound valid; the pruned mass is reported)."""

MAX_DEPTH = 6
"""Deepest search :func:`revelation_bound` accepts (the tree grows by the stock per week)."""


@dataclass(frozen=True)
class RevelationBound:
    """``U_k`` for one SKU's prior grid.

    Attributes
    ----------
    depth : int
        ``k``: the weeks played before the truth is told (capped at the horizon).
    value : float
        ``U_k``, an upper bound on the expected objective of every policy that learns.
    oracle_value : float
        ``U_0 = sum_g prior_g V*_g``.
    pruned_mass : float
        Probability of the histories told the truth early because they were too unlikely
        (see :data:`PRUNE`), summed over every action the search tried at each node: at least
        that probability under the bound's own choices, and possibly above 1 with a coarse
        ``prune``.
    nodes : int
        Belief-tree nodes searched.
    seconds : float
    """

    depth: int
    value: float
    oracle_value: float
    pruned_mass: float
    nodes: int
    seconds: float

    @property
    def pct_of_oracle(self) -> float:
        """``100 U_k / U_0``."""
        return 100.0 * self.value / self.oracle_value


class _Tables:
    """Per grid point, the first ``depth`` weeks' sales law, rewards and Q-values, and the
    optimal values ``depth`` weeks on (all indexed by step ``t`` from the first week)."""

    def __init__(self, solution: GridSolution, depth: int) -> None:
        rules, H = solution.rules, solution.horizon_weeks
        G = solution.grid.n_points
        self.depth = depth
        pmf, sf, reward, q, v = [], [], [], [], []
        self.next_r = np.empty(0, np.int64)
        self.r0 = 0
        for g in range(G):
            one = solution.point_catalog(g)
            model = BellmanModel(one, rules, H, display=None, mailer=None, track_depth=False)
            try:
                pmf.append(np.array(model.pmf[:depth]))
                sf.append(np.array(model.sf[:depth]))
                reward.append(np.array(model.reward[:depth]))
                if g == 0:
                    self.next_r = np.array(model.next_r, np.int64)
                    self.r0 = start_rule_state(model)
                    self.n_units = model.n_units
            finally:
                model.release()
            sol = solve(one, rules, H, keep_q=True)
            assert sol.q is not None
            q.append(sol.q[H - np.arange(depth)])  # (depth, n_s, n_r, n_a)
            v.append(sol.values[H - np.arange(depth + 1)])  # (depth + 1, n_s, n_r)
        width = max(p.shape[2] for p in pmf)
        self.pmf = np.zeros((G, depth, pmf[0].shape[1], width))
        for g, p in enumerate(pmf):
            self.pmf[g, :, :, : p.shape[2]] = p
        self.sf = np.stack(sf)  # (G, depth, n_a, n_s): P(D > s)
        self.reward = np.stack(reward)  # (G, depth, n_a, n_s)
        q_all = np.stack(q)  # (G, depth, n_s, n_r, n_a), -inf where the rules mask
        self.mask = np.isfinite(q_all[0])
        if not np.all(np.isfinite(q_all) == self.mask[None]):
            raise ConfigError("the rules' masks differ between grid points; expected the same")
        self.q = np.where(self.mask[None], q_all, 0.0)
        self.v = np.stack(v)  # (G, depth + 1, n_s, n_r)

    def sales(self, t: int, a: int, s: int) -> np.ndarray:
        """``P_g(units sold = y)`` for ``y = 0..s``, shape ``(G, s + 1)``."""
        G = self.pmf.shape[0]
        out = np.zeros((G, s + 1))
        if s == 0:
            out[:, 0] = 1.0
            return out
        k = min(s, self.pmf.shape[3])
        out[:, :k] = self.pmf[:, t, a, :k]
        out[:, s] = self.sf[:, t, a, s - 1]  # sold out: P(D >= s)
        return out


class _Search:
    def __init__(self, tables: _Tables, prune: float) -> None:
        self.tb = tables
        self.prune = prune
        self.pruned = 0.0
        self.nodes = 0

    def leaf(self, t: int, s: np.ndarray, r: int, pi: np.ndarray) -> np.ndarray:
        """Told the truth before step ``t``: ``sum_g pi[g, i] V*_g(t, s[i], r)``."""
        return np.einsum("gi,gi->i", pi, self.tb.v[:, t, s, r])

    def node(self, t: int, s: int, r: int, pi: np.ndarray, d: int) -> float:
        """Best value at step ``t`` (stock ``s``, rule state ``r``, joint weights ``pi``)
        with ``d`` more weeks to play before the truth is told."""
        self.nodes += 1
        tb = self.tb
        if d == 0:
            return float(self.leaf(t, np.array([s]), r, pi[:, None])[0])
        allowed = np.flatnonzero(tb.mask[t, s, r])
        if d == 1:
            return float(np.max(pi @ tb.q[:, t, s, r, allowed]))
        best = -np.inf
        for a in allowed:
            week = _week(tb, t, s, r, pi, int(a), self.prune)
            self.pruned += week.pruned
            value = week.value
            if d == 2:  # the last level at once: best action of every child
                self.nodes += week.ys.size
                value += week.children_qmdp(tb)
            else:
                for y in week.ys:
                    value += self.node(t + 1, int(week.stock[y]), week.r2, week.joint[:, y], d - 1)
            best = max(best, value)
        return best


@dataclass
class _Week:
    """One action's week at a belief node: its expected reward plus the pruned children's
    value (``value``), and the kept children (units sold ``ys``) to search further."""

    t: int
    value: float
    pruned: float
    joint: np.ndarray  # (G, s + 1): P(g, history, units sold = y)
    stock: np.ndarray  # (s + 1,): stock after selling y
    ys: np.ndarray
    r2: int

    def children_qmdp(self, tb: _Tables) -> float:
        """The kept children's values with one week left to play before the truth: each
        child's best action on its posterior-weighted Q."""
        t, ys, stock = self.t, self.ys, self.stock
        q = np.einsum("gy,gya->ya", self.joint[:, ys], tb.q[:, t + 1, stock[ys], self.r2, :])
        q = np.where(tb.mask[t + 1, stock[ys], self.r2, :], q, -np.inf)
        return float(q.max(axis=1).sum())


def _week(tb: _Tables, t: int, s: int, r: int, pi: np.ndarray, a: int, prune: float) -> _Week:
    """Action ``a`` at step ``t`` (stock ``s``, rule state ``r``, joint weights ``pi``)."""
    joint = pi[:, None] * tb.sales(t, a, s)  # (G, s + 1)
    mass = joint.sum(axis=0)
    value = float(pi @ tb.reward[:, t, a, s])
    r2 = int(tb.next_r[r, a])
    stock = s - np.arange(s + 1)
    keep = mass > prune * float(pi.sum())
    pruned = 0.0
    if np.any(~keep):  # told the truth at once: sum_g pi V*_g at the next step
        pruned = float(mass[~keep].sum())
        value += float(np.einsum("gi,gi->", joint[:, ~keep], tb.v[:, t + 1, stock[~keep], r2]))
    return _Week(t, value, pruned, joint, stock, np.flatnonzero(keep), r2)


def revelation_bound(
    solution: GridSolution, depth: int, *, prune: float = PRUNE
) -> RevelationBound:
    """``U_k``: the best expected objective of a policy told the truth after ``k`` weeks.

    Parameters
    ----------
    solution : GridSolution
        The SKU's grid DP (:func:`agents.learning.solve_grid`).
    depth : int
        ``k``, weeks played on the belief before the truth is told; 0 gives the oracle's
        value, the horizon or more the Bayes-optimal value. At most :data:`MAX_DEPTH`.
    prune : float
        See :data:`PRUNE` (0 searches every child).

    Returns
    -------
    RevelationBound
    """
    if int(depth) != depth or not 0 <= depth <= MAX_DEPTH:
        raise ConfigError(f"revelation depth = {depth!r}: expected an integer in 0..{MAX_DEPTH}")
    if not 0.0 <= prune < 1.0:
        raise ConfigError(f"prune = {prune!r}: expected a share in [0, 1)")
    t0 = time.perf_counter()
    d = min(int(depth), solution.horizon_weeks)
    oracle = solution.oracle_value
    if d == 0:
        return RevelationBound(0, oracle, oracle, 0.0, 1, time.perf_counter() - t0)
    tables = _Tables(solution, d)
    search = _Search(tables, prune)
    value = search.node(0, tables.n_units, tables.r0, solution.grid.prior.copy(), d)
    seconds = time.perf_counter() - t0
    logger.info(
        "revelation bound depth %d: %.4f (%.2f %% of the oracle), %d nodes, %.1f s",
        d,
        value,
        100.0 * value / oracle,
        search.nodes,
        seconds,
    )
    return RevelationBound(d, value, oracle, search.pruned, search.nodes, seconds)


class LookaheadPolicy(Policy):
    """Each week, the action of ``U_2``'s root at the slot's state and posterior: this week's
    expected reward plus, for every units-sold outcome, the best posterior-weighted Q of the
    belief that outcome leads to (QMDP with one week of lookahead). In the last week, or with
    nothing left, it is QMDP. Ties go to the first action, as in the DP.

    Parameters
    ----------
    solution : GridSolution
        The grid DP of the SKU every slot plays.
    prune : float
        Outcomes below this share of the slot's probability are valued as if told the truth
        (see :data:`PRUNE`).
    """

    requires_context = True
    name = "lookahead"

    def __init__(self, solution: GridSolution, prune: float = PRUNE) -> None:
        self.solution = solution
        self.prune = prune
        self._tables: _Tables | None = None
        self._memo: dict[tuple[int, int, int, bytes], int] = {}

    def reset(self, context=None) -> None:
        self._memo = {}

    def act(self, observations, masks, context=None):
        ctx = self._need_context(context)
        belief = self.solution.posterior(ctx, self.name)
        if self._tables is None:
            self._tables = _Tables(self.solution, self.solution.horizon_weeks)
        tb, H = self._tables, self.solution.horizon_weeks
        w, s, r = self.solution.state_index(ctx)
        weights = belief.weights()
        allowed_all = np.asarray(masks, bool)
        actions = np.empty(w.shape[0], np.int64)
        for i in range(w.shape[0]):
            t, si, ri, pi = H - int(w[i]), int(s[i]), int(r[i]), weights[i]
            key = (t, si, ri, pi.tobytes())
            if key in self._memo:  # slots at one state with one posterior (the first week)
                actions[i] = self._memo[key]
                continue
            allowed = np.flatnonzero(allowed_all[i])
            if t == H - 1 or si == 0:
                values = pi @ tb.q[:, t, si, ri, allowed]
            else:
                values = np.empty(allowed.size)
                for j, a in enumerate(allowed):
                    week = _week(tb, t, si, ri, pi, int(a), self.prune)
                    values[j] = week.value + week.children_qmdp(tb)
            actions[i] = self._memo[key] = int(allowed[int(np.argmax(values))])
        check_actions(actions, masks, policy=self.name)
        return actions
