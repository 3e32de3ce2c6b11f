"""The budget market: categories of SKUs under a shared weekly promotion limit.

A scenario is an :class:`~experiments.suite.CategoryScenario` (``N`` SKUs, at most ``K`` on
promotion per week, :mod:`envs.budget`). Its reference is the Lagrangian dual value
(``reference = "lagrangian_bound"``, :func:`agents.lagrangian.solve_category`): an upper
bound on what any policy that respects the limit can earn, not a policy. So the reference
rows hold that bound on every path, and ``pct_of_reference = 100 mean(x) / bound`` with the
CI of the agent's own per-path totals (there is no reference policy to pair with; agents
are still compared on the same CRN paths, see ``benchmarks/bench_budget.py``).

Every row's ``violations`` is the env's count of masked actions plus its count of promotions
beyond the limit (``budget_violations``): a policy that breaks the limit shows it.

Agents: ``lagrangian`` (the per-SKU DPs at the dual multiplier, repaired by advantage),
``lagrangian_weekly`` (the same with one multiplier per week, :func:`agents.lagrangian.solve_weekly`),
``greedy`` (the unconstrained per-SKU DPs, slots to the largest advantages) and the
heuristics of the standard market with a feasibility repair (the deepest proposed
promotions keep the slots).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from agents import baselines as b
from agents.lagrangian import (
    CategoryDPPolicy,
    CategorySolution,
    RepairedPolicy,
    solve_category,
    solve_weekly,
)
from agents.policy import Policy
from envs.budget import CategoryEnv
from experiments.market_base import Market, PolicyFactory, Prepared
from experiments.suite import CategoryScenario, Scenario, SuiteSpec
from ingest.errors import ConfigError

_HEURISTICS: dict[str, tuple[type[Policy], dict[str, Any]]] = {
    "none": (b.NoMarkdown, {}),
    "fluid": (b.CertaintyEquivalent, {}),
    "prior": (b.FluidPrior, {}),
    "ladder": (b.LinearLadder, {"step": 0.1, "every_weeks": 2}),
    "cover": (b.WeeksOfCover, {"deepen_above": 1.0}),
    "myopic": (b.Myopic, {}),
}
"""The standard market's heuristics, by CLI name (each played with :class:`RepairedPolicy`)."""


def category(scenario: Scenario) -> CategoryScenario:
    """``scenario`` as a category, or a :class:`ConfigError` naming it."""
    if not isinstance(scenario, CategoryScenario):
        raise ConfigError(
            f"scenario {scenario.name!r} is a single SKU; the budget market plays categories "
            f"(experiments.suite.CategoryScenario)"
        )
    return scenario


def category_env(scenario: Scenario, *, n_paths: int, seed: int) -> CategoryEnv:
    """The category env of a budget scenario on ``n_paths`` CRN paths."""
    cat = category(scenario)
    return CategoryEnv(
        cat.catalog(),
        cat.rules,
        cat.horizon_weeks,
        max_promoted=cat.max_promoted,
        n_paths=n_paths,
        seed=seed,
    )


def bound_totals(value: float, n_paths: int) -> pd.DataFrame:
    """The reference rows' per-path totals: the bound on every path (it is not a policy:
    its sales and stock columns are undefined)."""
    nan = np.full(n_paths, np.nan)
    return pd.DataFrame(
        {
            "objective": np.full(n_paths, float(value)),
            "sell_through": nan,
            "leftover_units": nan,
            "margin_given_away": nan,
            "revenue": nan,
            "coupon_cost": nan,
            "violations": np.zeros(n_paths, np.int64),
        }
    )


class BudgetMarket(Market):
    """Categories under a weekly promotion limit; 100 % = the Lagrangian dual value."""

    name = "budget"
    reference = "lagrangian_bound"

    def prepare(
        self, spec: SuiteSpec, index: int, scenario: Scenario, *, n_episodes: int, seed: int
    ) -> Prepared:
        cat = category(scenario)
        solution = solve_category(cat.catalog(), cat.rules, cat.horizon_weeks, cat.max_promoted)
        return Prepared(
            index,
            cat,
            solution,
            seed,
            bound_totals(solution.dual_value, n_episodes),
            solution.dual_value,
            self.name,
            spec.version,
        )

    def play(self, policy: Policy, prepared: Prepared, *, n_episodes: int) -> pd.DataFrame:
        env = category_env(prepared.scenario, n_paths=n_episodes, seed=prepared.seed)
        totals = env.play(policy).totals
        totals["violations"] = totals["violations"] + totals["budget_violations"]
        return totals

    def agent_factories(self) -> dict[str, PolicyFactory]:
        def dp(mode: str) -> PolicyFactory:
            def build(scenario: Scenario, solution: CategorySolution) -> Policy:
                if mode == "weekly":  # solved once per category, kept on the solution
                    solve_weekly(category(scenario).catalog(), solution)
                return CategoryDPPolicy(solution, mode)

            return build

        def repaired(cls: type[Policy], kw: dict[str, Any]) -> PolicyFactory:
            def build(scenario: Scenario, solution: Any) -> Policy:
                cat = category(scenario)
                return RepairedPolicy(cls(**kw), cat.rules, len(cat.members), cat.max_promoted)

            return build

        out: dict[str, PolicyFactory] = {
            "lagrangian": dp("lagrangian"),
            "lagrangian_weekly": dp("weekly"),
            "greedy": dp("greedy"),
        }
        out.update({k: repaired(cls, kw) for k, (cls, kw) in _HEURISTICS.items()})
        return out
