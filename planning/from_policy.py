"""From a closed-loop policy to a fixed weekly plan.

The policy (PPO or a heuristic) is closed-loop: it reacts to the stock it sees. A price system
executes a fixed weekly plan, so the exported schedule is the policy's *typical* plan: it is
played for :data:`PLAN_EPISODES` simulated episodes and each week takes the lower median of the
depths it chose (a median of non-decreasing paths is non-decreasing, and lies on the ladder).
That plan is replayed once through :func:`agents.rollout.rollout` as a fixed-plan policy that
snaps each week to the nearest allowed action, so the exported plan obeys every rule. Its
expected outcomes are then simulated open-loop (:func:`planning.outcomes.simulate_schedule`).

:func:`dp_plan` does the same for the exact DP, on the SKUs whose market it solves exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from agents.dp import DPSolution
from agents.policy import Policy, nearest_allowed
from envs.config import RulesConfig
from envs.context import PolicyContext
from ingest.errors import ConfigError
from ingest.progress import progress
from planning.schedule import Schedule
from simulator.demand import Catalog

if TYPE_CHECKING:
    from agents.learning import GridSolution

log = logging.getLogger(__name__)

PLAN_EPISODES = 64
"""Closed-loop episodes a policy is played for to find its typical plan."""


class FixedPlanPolicy(Policy):
    """Plays a fixed weekly plan, snapping each week to the nearest allowed action."""

    requires_context = True

    def __init__(self, discount: np.ndarray, coupon: np.ndarray, rules: RulesConfig, name: str):
        self.discount = np.asarray(discount, dtype=float)
        self.coupon = np.asarray(coupon, dtype=float)
        self.rules = rules
        self.name = name

    def act(
        self, observations: np.ndarray, masks: np.ndarray, context: PolicyContext | None = None
    ) -> np.ndarray:
        ctx = self._need_context(context)
        h = self.discount.shape[1]
        t = np.clip(ctx.horizon_weeks - ctx.decision.weeks_left, 0, h - 1)
        rows = np.arange(len(t)) % self.discount.shape[0]
        ladder = np.asarray(self.rules.discount_levels)
        coupons = np.asarray(self.rules.coupon_levels)
        di = np.abs(ladder[None, :] - self.discount[rows, t][:, None]).argmin(axis=1)
        ci = np.abs(coupons[None, :] - self.coupon[rows, t][:, None]).argmin(axis=1)
        return nearest_allowed(self.rules, masks, di, ci)


def plan_of(
    policy: Policy,
    catalog: Catalog,
    rules: RulesConfig,
    horizon: int,
    *,
    seed: int,
    n_episodes: int = PLAN_EPISODES,
) -> tuple[Schedule, float]:
    """The policy's typical fixed plan (see the module docstring) and its closed-loop mean
    objective over ``n_episodes`` (total over SKUs)."""
    from agents.rollout import rollout

    res = rollout(policy, catalog, rules, horizon, n_episodes=n_episodes, seed=seed)
    closed_loop = float(res.objective.sum(axis=1).mean())
    d, c = typical_plan(res.schedule["discount"], res.schedule["coupon"], catalog, rules,
                        horizon, seed=seed, name=policy.name)  # fmt: skip
    sched = Schedule(
        sku=np.asarray(catalog.sku, dtype=object), discount=d, coupon=c, name=policy.name
    )
    return sched, closed_loop


def typical_plan(
    discount: np.ndarray,
    coupon: np.ndarray,
    catalog: Catalog,
    rules: RulesConfig,
    horizon: int,
    *,
    seed: int,
    name: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The typical fixed plan of closed-loop episodes: each week's lower median depth over the
    episodes (``discount`` and ``coupon`` of shape ``(n_episodes, n_skus, horizon)``),
    replayed through the rules' masks; returns the plan's discounts and coupons, shape
    ``(n_skus, horizon)``."""
    from agents.rollout import rollout

    d = np.quantile(discount, 0.5, axis=0, method="lower")
    c = np.quantile(coupon, 0.5, axis=0, method="lower")
    if np.shape(discount)[0] > 1:
        # A median plan need not obey the path-dependent rules; replay it through the masks.
        # (One episode's path is already a plan the rules allowed.)
        fixed = FixedPlanPolicy(d, c, rules, name)
        snapped = rollout(fixed, catalog, rules, horizon, n_episodes=1, seed=seed)
        d, c = snapped.schedule["discount"][0], snapped.schedule["coupon"][0]
    return d, c


class SolvedDP(Policy):
    """The exact DP's policy from solutions at hand, one per SKU id: a table lookup per slot.

    :class:`~agents.baselines.DPPolicy` finds each slot's problem anew every week (it may be
    any SKU); here the SKUs are known and solved, so a week of many thousand slots costs one
    grouping by SKU id and one lookup per SKU.

    Parameters
    ----------
    solutions : mapping of str to DPSolution
        The solved DP of every SKU id the policy will see, each for its plan's start.
    """

    name = "dp"
    requires_context = True

    def __init__(self, solutions: Mapping[str, DPSolution]) -> None:
        self.solutions = dict(solutions)

    def act(
        self, observations: np.ndarray, masks: np.ndarray, context: PolicyContext | None = None
    ) -> np.ndarray:
        ctx = self._need_context(context)
        sku = np.asarray(ctx.catalog.sku).astype(str)
        names, inverse, counts = np.unique(sku, return_inverse=True, return_counts=True)
        order = np.argsort(inverse.ravel(), kind="stable")
        actions = np.empty(ctx.n_slots, np.int64)
        for name, slots in zip(names, np.split(order, np.cumsum(counts)[:-1]), strict=True):
            if name not in self.solutions:
                raise ConfigError(f"sku {name!r}: no DP solution at hand (solved: "
                                  f"{len(self.solutions)} SKUs)")  # fmt: skip
            actions[slots] = self.solutions[name].policy(ctx.decision.take(slots))
        return actions


@dataclass
class DPPlan:
    """The exact DP's plan where the market is DP-exact (see :func:`dp_plan`).

    Attributes
    ----------
    schedule : Schedule
        The DP's typical plan for every DP-exact SKU; no markdown elsewhere (not a DP plan:
        ``exact`` says where it is one).
    exact : ndarray of bool of shape (n_skus,)
        SKUs the DP solved exactly.
    reasons : dict of str to str
        Why the DP did not solve a SKU (by SKU id).
    policy : SolvedDP
        The DP's policy for every exact SKU (to play its closed loop).
    closed_loop : float
        Closed-loop mean objective over the exact SKUs (as :func:`plan_of` gives).
    """

    schedule: Schedule
    exact: np.ndarray
    reasons: dict[str, str]
    policy: SolvedDP
    closed_loop: float


def dp_plan(catalog: Catalog, rules: RulesConfig, horizon: int, *, seed: int) -> DPPlan:
    """The exact DP's typical fixed plan (:func:`plan_of`) for every SKU it solves exactly.

    A SKU is left out, with the DP's own reason, where its market is not DP-exact (reference
    price memory, promotion fatigue, a fractional stock: :class:`~agents.dp.DPNotExactError`)
    or its state grid is too large (:class:`~ingest.errors.ConfigError`): the DP never
    approximates.
    """
    from agents.dp import DPNotExactError, solve

    n = catalog.n_skus
    solutions: dict[str, DPSolution] = {}
    exact = np.zeros(n, dtype=bool)
    reasons: dict[str, str] = {}
    for i in progress(range(n), desc="evaluate: DP solves", unit="SKU"):
        sku = str(catalog.sku[i])
        try:
            solutions[sku] = solve(catalog.take([i]), rules, horizon)
        except (DPNotExactError, ConfigError) as err:
            reasons[sku] = str(err)
        else:
            exact[i] = True
    policy = SolvedDP(solutions)
    disc = np.zeros((n, horizon))
    coup = np.zeros((n, horizon))
    closed = 0.0
    if exact.any():
        idx = np.flatnonzero(exact)
        sub, closed = plan_of(policy, catalog.take(idx), rules, horizon, seed=seed)
        disc[idx], coup[idx] = sub.discount, sub.coupon
    if reasons:
        log.info("DP: %d of %d SKU(s) are not DP-exact, e.g. %s", len(reasons), n,
                 next(iter(reasons.values())))  # fmt: skip
    sched = Schedule(sku=np.asarray(catalog.sku, dtype=object), discount=disc, coupon=coup,
                     name=policy.name)  # fmt: skip
    return DPPlan(sched, exact, reasons, policy, closed)


QMDP_NAME = "qmdp"
"""The learning candidate: QMDP over each SKU's prior grid (:func:`qmdp_plan`)."""


@dataclass
class LearningPlan:
    """QMDP's plan where every point of a SKU's prior grid is DP-exact (see :func:`qmdp_plan`).

    Attributes
    ----------
    schedule : Schedule
        QMDP's typical plan for every planned SKU; no markdown elsewhere (not a QMDP plan:
        ``exact`` says where it is one).
    exact : ndarray of bool of shape (n_skus,)
        SKUs planned (the DP solved every grid point exactly).
    closed_loop : float
        Closed-loop mean objective over the planned SKUs, truth drawn from the prior grid.
    grid_points : int
        Points per axis of the prior grid.
    """

    schedule: Schedule
    exact: np.ndarray
    closed_loop: float
    grid_points: int


def _qmdp_episodes(
    solution: GridSolution,
    one: Catalog,
    rules: RulesConfig,
    horizon: int,
    *,
    seed: int,
    n_episodes: int,
) -> tuple[np.ndarray, np.ndarray, float]:
    """QMDP's closed loop on ``n_episodes`` episodes of the learning env around one SKU's
    estimate: each episode's depths (a sold-out episode keeps its last depth) and the mean
    objective of the first episode of every slot."""
    from agents.learning import QMDPPolicy
    from envs.learning import LearningMarkdownEnv
    from envs.markdown import EnvConfig

    env = LearningMarkdownEnv(
        EnvConfig(horizon_weeks=horizon, rules=rules, catalog=one, invalid_action="hold"),
        n_slots=n_episodes,
        seed=seed,
        fixed_skus=True,
        grid=solution.grid,
    )
    policy = QMDPPolicy(solution)
    obs = np.asarray(env.reset())
    alive = np.ones(n_episodes, dtype=bool)
    disc = np.zeros((n_episodes, horizon))
    coup = np.zeros((n_episodes, horizon))
    for t in range(horizon):
        actions = policy.act(obs, env.action_masks(), env.policy_context())
        d, c = rules.depths(actions)
        prev = max(t - 1, 0)
        disc[:, t] = np.where(alive, d, disc[:, prev])
        coup[:, t] = np.where(alive, c, coup[:, prev])
        step = env.step(actions)
        obs, done = np.asarray(step[0]), np.asarray(step[2], dtype=bool)
        alive &= ~done
    totals = env.episode_totals()
    env.close()
    first = totals[totals["episode"] == 0]
    return disc, coup, float(first["objective"].mean())


def qmdp_plan(
    catalog: Catalog,
    rules: RulesConfig,
    horizon: int,
    *,
    seed: int,
    grid_points: int,
    n_episodes: int = PLAN_EPISODES,
) -> LearningPlan:
    """QMDP's typical fixed plan for every SKU whose prior grid the DP solves exactly.

    The demand parameters are known only up to the fit's uncertainty: QMDP
    (:class:`agents.learning.QMDPPolicy`) solves the DP at every point of a
    ``grid_points x grid_points`` prior grid around the SKU's estimate (elasticity and
    log-level, the fit's standard errors) and each week takes the action with the best
    posterior-weighted Q-value, the posterior updated from the sales. Its closed loop is
    played for ``n_episodes`` episodes of the learning env (each drawing its truth from the
    prior), each week's lower median depth taken over the episodes (a sold-out episode keeps
    its last depth) and the plan replayed through the rules' masks, as :func:`plan_of` does.
    A plan hedged against the parameters the fit is unsure of; a SKU whose grid is not
    DP-exact is left out, with no markdown in its row.
    """
    from agents.dp import DPNotExactError
    from agents.learning import solve_grid
    from envs.belief import BeliefGrid
    from planning.random_keys import sku_keys

    n = catalog.n_skus
    grid = BeliefGrid(grid_points)
    keys = sku_keys(catalog.sku)
    disc = np.zeros((n, horizon))
    coup = np.zeros((n, horizon))
    exact = np.zeros(n, dtype=bool)
    closed: list[float] = []
    for i in progress(range(n), desc="evaluate: QMDP plans", unit="SKU"):
        one = catalog.take([i])
        se = (float(one.elasticity_se[0]), float(one.base_demand_se[0]))
        if not all(np.isfinite(v) and v >= 0 for v in se):
            log.debug("QMDP: sku %r left out: standard errors %s", str(catalog.sku[i]), se)
            continue
        try:
            solution = solve_grid(one, rules, horizon, grid)
            solution.q_tables  # noqa: B018 (built here, inside the DP's error handling)
        except (DPNotExactError, ConfigError) as err:
            log.debug("QMDP: sku %r left out: %s", str(catalog.sku[i]), err)
            continue
        sku_seed = int(np.random.SeedSequence([int(seed), int(keys[i])]).generate_state(1)[0])
        d_all, c_all, objective = _qmdp_episodes(
            solution, one, rules, horizon, seed=sku_seed, n_episodes=n_episodes
        )
        d, c = typical_plan(d_all[:, None, :], c_all[:, None, :], one, rules, horizon,
                            seed=sku_seed, name=QMDP_NAME)  # fmt: skip
        disc[i], coup[i] = d[0], c[0]
        exact[i] = True
        closed.append(objective)
    left_out = n - int(exact.sum())
    if left_out:
        log.info("QMDP: %d of %d SKU(s) have a prior grid the DP cannot solve exactly",
                 left_out, n)  # fmt: skip
    sched = Schedule(sku=np.asarray(catalog.sku, dtype=object), discount=disc, coupon=coup,
                     name=QMDP_NAME)  # fmt: skip
    return LearningPlan(sched, exact, float(np.sum(closed)), int(grid_points))
