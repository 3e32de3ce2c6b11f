"""The optimum under a shared promotion limit: an exact DP over a category's joint stock.

The Lagrangian relaxation (:mod:`agents.lagrangian`) gives an upper bound and feasible plans;
this module computes the value in between that both approximate, for categories small
enough: the DP whose state is every SKU's stock at once, ``V_w(s_1, .., s_N)``, and whose
action is one action per SKU with at most ``K`` of them promotions,

    V_w(s) = max_{a : promos(a) <= K}  sum_i r_i(s_i, a_i) + E[ V_{w-1}(s_1 - D_1, .., s_N - D_N) ].

SKUs' demands are independent given the actions, so the expectation is one stock transition
per SKU applied along its own axis of the value array; the joint actions are walked SKU by
SKU, so the transitions applied for a prefix of actions are shared by every completion of it
(the cost is about ``(n_a + n_a^2 + ..)`` matrix products per week with ``K = 1`` far fewer,
each ``n_i`` times the joint state count). Every SKU's reward, transitions and exit value come
from the single-SKU DP's own model (:class:`agents.dp.BellmanModel`), so with a limit that
never binds (``K >= N``) the value is exactly the sum of the SKUs' DP values.

Memory and time grow with the product of the SKUs' stock levels: a 3-SKU category of 100-150
units each (about 2 million joint states) takes seconds to a minute; 4 SKUs of that size
(hundreds of millions of states) are refused (:data:`MAX_JOINT_STATES`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from agents.dp import BellmanModel
from agents.policy import Policy
from envs.budget import promo_actions
from envs.config import RulesConfig
from envs.context import PolicyContext
from envs.rules import active_rules
from ingest.errors import ConfigError
from simulator.demand import Catalog

log = logging.getLogger(__name__)

MAX_JOINT_STATES = 20_000_000
"""Largest joint stock grid (product of the SKUs' stock levels) :func:`joint_optimum` solves."""


def _transitions(model: BellmanModel, t: int) -> np.ndarray:
    """Stock transition matrices of one SKU in week ``t``, shape ``(n_a, n_s, n_s)``:
    ``T[a, s, s']`` = P(next stock ``s'`` | stock ``s``, action ``a``), from the model's demand
    pmf (``P(D = k)``) and its tail (``P(D > s)``, all sold)."""
    pmf, sf = model.pmf[t], model.sf[t]  # (n_a, K + 1), (n_a, n_s)
    n_a, n_k = pmf.shape
    n_s = sf.shape[1]
    T = np.zeros((n_a, n_s, n_s))
    s = np.arange(n_s)
    for k in range(min(n_k, n_s)):
        rows = s[k:]
        T[:, rows, rows - k] += pmf[:, k, None]
    T[:, :, 0] += sf
    return T


def _apply(T: np.ndarray, values: np.ndarray, axis: int) -> np.ndarray:
    """``values`` with SKU ``axis``'s next stock replaced by its current stock:
    ``out[.., s, ..] = sum_s' T[s, s'] values[.., s', ..]``."""
    moved = np.moveaxis(values, axis, 0)
    out = (T @ moved.reshape(moved.shape[0], -1)).reshape(moved.shape)
    return np.moveaxis(out, 0, axis)


@dataclass
class JointSolution:
    """The joint DP solved: its value and its policy.

    Attributes
    ----------
    value : float
        ``V_H`` at the initial stock.
    joint_actions : ndarray of shape (n_joint, n_skus)
        The feasible joint actions (at most ``max_promoted`` promotions).
    choice : ndarray of shape (horizon + 1, *stock levels)
        Index into ``joint_actions`` of the best one at every weeks-left and joint stock
        (row 0 unused); empty when solved without ``keep_policy``.
    max_promoted, horizon_weeks : int
    """

    value: float
    joint_actions: np.ndarray
    choice: np.ndarray
    max_promoted: int
    horizon_weeks: int


def joint_optimum(
    catalog: Catalog,
    rules: RulesConfig,
    horizon_weeks: int,
    max_promoted: int,
    *,
    max_states: int = MAX_JOINT_STATES,
) -> float:
    """The optimum expected objective of a category under the limit (at most
    ``max_promoted`` SKUs on promotion in any week), from its initial stock
    (:func:`solve_joint`'s value, without keeping the policy).

    Parameters
    ----------
    catalog : Catalog
        The category's SKUs (each DP-exact, :func:`agents.dp.check_exact`).
    rules : RulesConfig
        Per-SKU rules without rule state or masks (the budget market's profiles).
    horizon_weeks, max_promoted : int
    max_states : int
        Refuse a joint stock grid larger than this.

    Returns
    -------
    float
        ``V_H`` at the initial stock: no policy that respects the limit on every path does
        better in expectation, and the Lagrangian dual value is at least this.

    Raises
    ------
    ConfigError
        For active rules, ``max_promoted < 1`` or a grid over ``max_states``.
    """
    return solve_joint(
        catalog, rules, horizon_weeks, max_promoted, max_states=max_states, keep_policy=False
    ).value


def solve_joint(
    catalog: Catalog,
    rules: RulesConfig,
    horizon_weeks: int,
    max_promoted: int,
    *,
    max_states: int = MAX_JOINT_STATES,
    keep_policy: bool = True,
) -> JointSolution:
    """The joint DP (module docstring): its value and, with ``keep_policy``, the best joint
    action at every state (``(horizon + 1) x`` joint states of int32 indices; the policy
    :class:`JointDPPolicy` plays). Parameters and errors as :func:`joint_optimum`."""
    if max_promoted < 1:
        raise ConfigError(f"max_promoted = {max_promoted}; expected >= 1")
    if active_rules(rules):
        raise ConfigError(
            f"joint_optimum solves rules without masks or rule state; {active_rules(rules)} are on"
        )
    sizes = joint_states(catalog)
    n_states = int(np.prod(sizes, dtype=np.int64))
    if n_states > max_states:
        raise ConfigError(
            f"joint stock grid of {n_states:,} states ({' x '.join(map(str, sizes))} stock "
            f"levels) > {max_states:,}: the exact optimum is out of reach for this category"
        )
    t0 = time.perf_counter()
    promo = promo_actions(rules)
    H, n = int(horizon_weeks), catalog.n_skus
    models = [
        BellmanModel(catalog.take([i]), rules, H, display=None, mailer=None, track_depth=False)
        for i in range(n)
    ]
    joint = _joint_actions(promo, n, max_promoted)
    index = {tuple(int(a) for a in row): j for j, row in enumerate(joint)}
    choice = np.zeros((H + 1, *sizes) if keep_policy else (0,), np.int32)
    try:
        value = np.zeros(sizes)
        for i, m in enumerate(models):  # the exit: salvage minus cost, less any penalty
            value += _along(m.terminal, i, n)
        for w in range(1, H + 1):
            t = H - w
            trans = [_transitions(m, t) for m in models]
            rewards = [m.reward[t] for m in models]  # (n_a, n_s) each
            kept = (choice[w], index) if keep_policy else None
            value = _best(value, trans, rewards, promo, max_promoted, kept)
            log.debug("joint DP: %d weeks left solved", w)
    finally:
        for m in models:
            m.release()
    start = tuple(s - 1 for s in sizes)
    log.info(
        "joint DP: %d SKUs, K=%d, %s joint states, %d weeks: optimum %.4f (%.1f s)",
        n,
        max_promoted,
        f"{n_states:,}",
        H,
        float(value[start]),
        time.perf_counter() - t0,
    )
    return JointSolution(
        value=float(value[start]),
        joint_actions=joint,
        choice=choice,
        max_promoted=int(max_promoted),
        horizon_weeks=H,
    )


def joint_states(catalog: Catalog) -> tuple[int, ...]:
    """Stock levels of each SKU of a category (0 .. initial stock): the joint DP's grid shape."""
    return tuple(int(round(float(s))) + 1 for s in catalog.initial_stock)


def _joint_actions(promo: np.ndarray, n: int, k: int) -> np.ndarray:
    """The feasible joint actions (at most ``k`` promotions), one row each."""
    out: list[tuple[int, ...]] = []

    def walk(prefix: tuple[int, ...], used: int) -> None:
        if len(prefix) == n:
            out.append(prefix)
            return
        for a in range(promo.size):
            if used + int(promo[a]) <= k:
                walk((*prefix, a), used + int(promo[a]))

    walk((), 0)
    return np.asarray(out, np.int64)


def _along(vector: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """``vector`` shaped to broadcast along ``axis`` of an ``ndim``-dimensional array."""
    shape = [1] * ndim
    shape[axis] = vector.shape[0]
    return vector.reshape(shape)


def _best(
    v_next: np.ndarray,
    trans: list[np.ndarray],
    rewards: list[np.ndarray],
    promo: np.ndarray,
    k: int,
    kept: tuple[np.ndarray, dict[tuple[int, ...], int]] | None = None,
) -> np.ndarray:
    """One Bellman step of the joint DP: the best feasible joint action's value at every joint
    state. With ``kept = (choice, index)``, the best joint action's row in
    :func:`_joint_actions` (``index[actions]``) is written to ``choice`` (ties keep the first
    met).

    The joint actions are walked SKU by SKU (depth first): after SKU ``i``'s action its axis
    holds the current stock, and the completions of that prefix share the work done."""
    n = len(trans)
    best = np.full(v_next.shape, -np.inf)

    def walk(prefix: tuple[int, ...], partial: np.ndarray, used: int) -> None:
        i = len(prefix)
        if i == n:
            if kept is not None:
                choice, index = kept
                choice[partial > best] = index[prefix]
            np.maximum(best, partial, out=best)
            return
        for a in range(promo.size):
            if used + int(promo[a]) > k:
                continue
            nxt = _apply(trans[i][a], partial, i)
            nxt += _along(rewards[i][a], i, n)
            walk((*prefix, a), nxt, used + int(promo[a]))

    walk((), v_next, 0)
    return best


class JointDPPolicy(Policy):
    """The joint DP's optimal policy on :class:`envs.budget.CategoryEnv` (slot ``p * n_skus
    + i`` is SKU ``i`` of path ``p``): each week, every path's best joint action at its joint
    stock. It respects the limit by construction.

    Parameters
    ----------
    solution : JointSolution
        Solved with ``keep_policy=True``.
    """

    requires_context = True
    name = "optimum"

    def __init__(self, solution: JointSolution) -> None:
        if solution.choice.shape[0] != solution.horizon_weeks + 1:
            raise ConfigError("JointDPPolicy needs a joint DP solved with keep_policy=True")
        self.solution = solution
        self.n_skus = int(solution.joint_actions.shape[1])

    def act(
        self,
        observations: np.ndarray,
        masks: np.ndarray,
        context: PolicyContext | None = None,
    ) -> np.ndarray:
        ctx = self._need_context(context)
        dec = ctx.decision
        stock = np.rint(np.asarray(dec.stock, float)).astype(np.int64).reshape(-1, self.n_skus)
        w = int(np.asarray(dec.weeks_left).reshape(-1)[0])
        if not 1 <= w <= self.solution.horizon_weeks:
            raise ConfigError(
                f"weeks left = {w}; the joint DP was solved for 1..{self.solution.horizon_weeks}"
            )
        index = self.solution.choice[w][tuple(stock.T)]
        return self.solution.joint_actions[index].reshape(-1)
