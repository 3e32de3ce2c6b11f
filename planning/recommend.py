"""The main job's recommendation: every candidate planner's plan, the per-SKU choice, and
what re-planning every week is worth.

:func:`recommend` is what the run's evaluate stage calls:

1. finds the SKUs with no demand at any allowed price, then plans every candidate: the learned policy (PPO), the heuristics, doing nothing, and the
   exact DP on the SKUs whose fitted market it solves exactly (:func:`planning.from_policy.
   dp_plan`). SKUs with no demand at any allowed price get no markdown in every plan, and only
   doing nothing is a candidate for them;
2. chooses each SKU's plan on the selection paths and reports it on the evaluation paths
   (:func:`planning.selection.choose`; the DP is the default planner);
3. plays the DP's closed loop (re-planning every week on the stock left) on the evaluation
   paths and compares it with the DP's exported plan (:mod:`planning.closed_loop`).

When the outcomes are simulated with parameters drawn from the fit's uncertainty (the
default), QMDP (:mod:`agents.learning`) is a candidate too: its plan is hedged against the
elasticity and demand level the fit is unsure of (:func:`planning.from_policy.qmdp_plan`, on
a small prior grid per SKU). The other learning planners (re-solve on the posterior,
Thompson sampling, the lookahead) are not: their value is in re-planning as sales come in,
which a fixed 12-week export does not carry, and their certainty-equivalent plan is the
DP's plan on the fitted estimate, which *is* a candidate (``dp``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.policy import Policy
from envs.config import RulesConfig
from ingest.progress import progress
from planning.closed_loop import ReplanningValue, replanning_value, simulate_policy
from planning.diagnostics import deepest_allowed_schedule, sells_nothing, without_markdown
from planning.from_policy import QMDP_NAME, DPPlan, SolvedDP, dp_plan, plan_of, qmdp_plan
from planning.outcomes import (
    SimulateFn,
    SimulationSettings,
    paired_ci,
    simulate_schedule,
)
from planning.schedule import Schedule, rounded_depths
from planning.selection import Candidates, Choice, choose, selection_seed
from simulator.demand import Catalog

log = logging.getLogger(__name__)

NONE_NAME = "no_markdown"
"""The reference plan: doing nothing (full price every week)."""

DP_NAME = "dp"


@dataclass
class Recommendation:
    """What :func:`recommend` found.

    Attributes
    ----------
    choice : Choice
        The per-SKU choice and every plan's outcomes on the evaluation paths.
    closed_loop : dict of str to float
        Each planner's closed-loop mean objective while finding its typical plan.
    dp_exact : ndarray of bool of shape (n_skus,)
        SKUs whose fitted market the DP solved exactly.
    no_demand : ndarray of bool of shape (n_skus,)
        SKUs with no demand at any allowed price (no markdown in any plan).
    dp_reasons : dict of str to str
        Why the DP left a SKU out (by SKU id).
    replanning : ReplanningValue or None
        The DP's closed loop against its exported plan (None when the DP solved no SKU).
    learned : str
        The learned policy's name.
    """

    choice: Choice
    closed_loop: dict[str, float]
    dp_exact: np.ndarray
    no_demand: np.ndarray
    dp_reasons: dict[str, str] = field(default_factory=dict)
    replanning: ReplanningValue | None = None
    learned: str = "ppo"

    def metrics(self) -> dict[str, float]:
        """The choice's and the re-planning's metrics, and the DP's coverage."""
        out = self.choice.metrics()
        out["recommend/n_dp_exact"] = float(self.dp_exact.sum())
        if self.replanning is not None:
            out.update(self.replanning.metrics())
        return out

    def describe(self, currency: str = "") -> list[str]:
        lines = self.choice.describe(currency)
        out = self.choice.outcomes
        best_gain = paired_ci(out[self.choice.best_single], out[NONE_NAME], "profit")[0]
        if best_gain > 0:
            share = self.choice.gain_vs_best_single[0] / best_gain
            lines[-1] += f" ({share:+.1%} of that planner's gain over doing nothing)"
        if self.replanning is not None:
            lines.append(self.replanning.describe(currency))
        n_out = len(self.dp_exact) - int(self.dp_exact.sum())
        if n_out:
            lines.append(
                f"the DP is not a candidate for {n_out:,} SKU(s) whose fitted market it cannot "
                f"solve exactly (e.g. {next(iter(self.dp_reasons.values()), '')})"
            )
        return lines


@dataclass
class CandidatePlans:
    """Every candidate planner's plan for a set of SKUs, before the no-demand SKUs are set to
    doing nothing (what :func:`plan_candidates` makes; :func:`join_candidates` joins blocks).

    Attributes
    ----------
    plans : dict of str to Schedule
        The learned policy's, the DP's, doing nothing's and each heuristic's plan.
    closed_loop : dict of str to float
        Each planner's closed-loop mean objective (total over the SKUs).
    dp : DPPlan
        The exact DP's plan, where it is exact, and its policy.
    partial : dict of str to ndarray of bool
        Planners other than the DP whose plan is their own only on some SKUs (QMDP, where
        the DP solves the SKU's prior grid): the mask of those SKUs.
    """

    plans: dict[str, Schedule]
    closed_loop: dict[str, float]
    dp: DPPlan
    partial: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_skus(self) -> int:
        return len(self.dp.exact)


def plan_candidates(
    catalog: Catalog,
    learned: Policy,
    heuristics: Sequence[Policy],
    rules: RulesConfig,
    horizon: int,
    *,
    seed: int,
    qmdp_grid: int = 0,
) -> CandidatePlans:
    """Every candidate's typical plan for ``catalog`` (the policies' closed-loop episodes
    drawn with ``seed``): the learned policy, the exact DP, doing nothing, each heuristic,
    and with ``qmdp_grid`` (points per axis of the prior grid; 0 = off) QMDP's plan hedged
    against the fit's uncertainty (:func:`planning.from_policy.qmdp_plan`)."""
    plans: dict[str, Schedule] = {}
    closed: dict[str, float] = {}
    plans[learned.name], closed[learned.name] = plan_of(learned, catalog, rules, horizon, seed=seed)
    dp = dp_plan(catalog, rules, horizon, seed=seed)
    plans[DP_NAME], closed[DP_NAME] = dp.schedule, dp.closed_loop
    partial: dict[str, np.ndarray] = {}
    if qmdp_grid:
        qmdp = qmdp_plan(catalog, rules, horizon, seed=seed, grid_points=qmdp_grid)
        plans[QMDP_NAME], closed[QMDP_NAME] = qmdp.schedule, qmdp.closed_loop
        partial[QMDP_NAME] = qmdp.exact
    plans[NONE_NAME] = Schedule.constant(catalog.sku, horizon, 0.0, NONE_NAME)
    for heur in progress(list(heuristics), desc="evaluate: planning", unit="policy"):
        plans[heur.name], closed[heur.name] = plan_of(heur, catalog, rules, horizon, seed=seed)
    return CandidatePlans(plans, closed, dp, partial)


def join_candidates(parts: Sequence[CandidatePlans]) -> CandidatePlans:
    """The plans of consecutive blocks of SKUs as one (blocks in catalog order): schedules
    and DP coverage are concatenated, closed-loop objectives (totals) added."""
    if not parts:
        raise ValueError("no blocks to join")
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    plans = {
        name: Schedule(
            sku=np.concatenate([np.asarray(p.plans[name].sku, dtype=object) for p in parts]),
            discount=np.concatenate([p.plans[name].discount for p in parts]),
            coupon=np.concatenate([p.plans[name].coupon for p in parts]),
            name=first.plans[name].name,
        )
        for name in first.plans
    }
    closed = {name: float(sum(p.closed_loop[name] for p in parts)) for name in first.closed_loop}
    solutions: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    for p in parts:
        solutions.update(p.dp.policy.solutions)
        reasons.update(p.dp.reasons)
    dp = DPPlan(
        schedule=plans[DP_NAME],
        exact=np.concatenate([p.dp.exact for p in parts]),
        reasons=reasons,
        policy=SolvedDP(solutions),
        closed_loop=float(sum(p.dp.closed_loop for p in parts)),
    )
    partial = {name: np.concatenate([p.partial[name] for p in parts]) for name in first.partial}
    return CandidatePlans(plans, closed, dp, partial)


def recommend(
    catalog: Catalog,
    learned: Policy,
    heuristics: Sequence[Policy],
    rules: RulesConfig,
    horizon: int,
    *,
    plan_seed: int,
    settings: SimulationSettings,
    no_demand: np.ndarray | None = None,
    per_sku: bool = True,
    candidates: CandidatePlans | None = None,
    simulate: SimulateFn | None = None,
) -> Recommendation:
    """Plan every candidate, choose per SKU, and measure weekly re-planning (module docstring).

    Parameters
    ----------
    catalog : Catalog
        The at-risk SKUs with their fitted parameters.
    learned : Policy
        The learned policy (PPO).
    heuristics : sequence of Policy
        The heuristic baselines (neither the DP nor doing nothing).
    rules : RulesConfig
    horizon : int
        Plan weeks, the last being the exit week.
    plan_seed : int
        Seed of the closed-loop episodes each policy's typical plan is read from.
    settings : SimulationSettings
        Episodes, parameter draws, CI level, and the run's seed: the evaluation paths are
        those of :func:`planning.outcomes.simulation_seed`, the selection paths those of
        :func:`planning.selection.selection_seed`.
    no_demand : ndarray of bool of shape (n_skus,), optional
        SKUs with no demand at any allowed price (no markdown in any plan). By default the
        SKUs that sell nothing in any episode at the deepest allowed price, on the evaluation
        paths (:func:`planning.diagnostics.sells_nothing`).
    per_sku : bool
        Choose per SKU among every candidate; False recommends the learned policy's plan for
        every SKU (the other plans stay as comparisons).
    candidates : CandidatePlans, optional
        Every candidate's plan, made already (for instance block by block elsewhere, see
        :func:`plan_candidates` and :func:`join_candidates`); by default
        :func:`plan_candidates` of the whole catalog with ``plan_seed``.
    simulate : callable
        Simulates the plans for the choice (default
        :func:`planning.outcomes.simulate_schedules`, or a block-by-block equivalent, see
        :func:`planning.selection.choose`).

    Returns
    -------
    Recommendation
    """
    if no_demand is None:
        probe = deepest_allowed_schedule(catalog, rules, horizon)
        no_demand = sells_nothing(
            simulate_schedule(
                catalog,
                probe,
                n_episodes=settings.n_episodes,
                seed=settings.simulation_seed,
                ci_level=settings.ci_level,
                draw_parameters=settings.draw_parameters,
            )
        )
    no_demand = np.asarray(no_demand, dtype=bool)
    if candidates is None:
        candidates = plan_candidates(catalog, learned, heuristics, rules, horizon, seed=plan_seed)
    if candidates.n_skus != catalog.n_skus:
        raise ValueError(f"plans for {candidates.n_skus} SKUs, catalog of {catalog.n_skus}")
    dp = candidates.dp
    closed = dict(candidates.closed_loop)
    plans = {k: rounded_depths(without_markdown(s, no_demand)) for k, s in candidates.plans.items()}
    selling = ~no_demand
    own = {DP_NAME: dp.exact, **candidates.partial}
    if per_sku:
        available = {k: selling for k in plans if k != NONE_NAME}
        available.update({k: mask & selling for k, mask in own.items()})
    else:
        available = {k: np.zeros(catalog.n_skus, dtype=bool) for k in plans}
        available[learned.name] = np.ones(catalog.n_skus, dtype=bool)
    # The DP's (and QMDP's) plan is its own only where it solved the SKU; every other
    # planner's is its own everywhere (on no-demand SKUs every plan is doing nothing).
    complete = [k for k in plans if k not in own or own[k].all()]
    choice = choose(
        catalog,
        Candidates(plans, available, default=DP_NAME if per_sku else None, complete=complete),
        n_episodes=settings.n_episodes,
        selection_seed=selection_seed(settings.seed),
        evaluation_seed=settings.simulation_seed,
        draw_parameters=settings.draw_parameters,
        ci_level=settings.ci_level,
        simulate=simulate,
    )
    replan = None
    idx = np.flatnonzero(dp.exact & selling)
    if idx.size:
        log.info("evaluate: the DP's closed loop on %d SKU(s), evaluation paths", idx.size)
        closed_profit = simulate_policy(
            catalog.take(idx),
            dp.policy,
            rules,
            horizon,
            n_episodes=settings.n_episodes,
            seed=settings.simulation_seed,
            draw_parameters=settings.draw_parameters,
        )
        out = choice.outcomes
        replan = replanning_value(
            DP_NAME,
            closed_profit,
            out[DP_NAME].totals["profit"][idx],
            out[NONE_NAME].totals["profit"][idx],
            settings.ci_level,
        )
    return Recommendation(choice, closed, dp.exact, no_demand, dp.reasons, replan, learned.name)
