"""The memory market: demand with reference-price memory and promotion fatigue.

The ``memory`` suites (:data:`experiments.suite.SUITE_SPECS`) are played here: each scenario
is one SKU whose demand remembers past prices (:mod:`simulator.market`), played in
:class:`envs.memory.MemoryMarkdownEnv` (the standard observation plus the SKU's memory law)
on common-random-number paths. The exact DP refuses such SKUs; 100 % is the augmented-state
DP (:mod:`agents.dp_memory`, ``reference = "augmented_dp"``) on the suite's
``(reference price, fatigue)`` grid. Its ``reference_value`` is its value on the grid, which
differs from its simulated value by the discretization error (a few tenths of a percent on
the suite's grid: ``docs/agents.md``, "Demand with memory").

=============  ====================================================================
agent          action each week
=============  ====================================================================
``dp_blind``   the exact DP re-solved at today's reference price, fatigue ignored
               (:class:`agents.dp_memory.MemoryBlindDP`)
``prior``      PPO's fluid prior alone (reads today's reference price and fatigue,
               holds them fixed: memory-blind)
``fluid``      the certainty-equivalent re-solve (idem)
``myopic``, ``cover``, ``ladder``, ``none``
               the heuristics of the standard market
=============  ====================================================================
"""

from __future__ import annotations

import pandas as pd

from agents import baselines as b
from agents.dp_memory import MemoryBlindDP, MemoryDPPolicy, solve_memory
from agents.policy import Policy
from envs.memory import MemoryMarkdownEnv
from experiments.market_base import (
    Market,
    PolicyFactory,
    Prepared,
    crn_env,
    evaluate_in,
    simple_factory,
)
from experiments.suite import Scenario, SuiteSpec


def play_memory(policy: Policy, scenario: Scenario, *, n_episodes: int, seed: int) -> pd.DataFrame:
    """Play ``policy`` on ``n_episodes`` CRN paths of a memory scenario; one row per path
    (:data:`envs.batched.TOTAL_COLUMNS`)."""
    return evaluate_in(crn_env(scenario, n_episodes, seed, MemoryMarkdownEnv), policy)


class MemoryMarket(Market):
    """Demand with memory; 100 % = the augmented-state DP (see the module docstring)."""

    name = "memory"
    reference = "augmented_dp"

    def prepare(
        self, spec: SuiteSpec, index: int, scenario: Scenario, *, n_episodes: int, seed: int
    ) -> Prepared:
        n_ref, n_fatigue = spec.memory_grid
        solution = solve_memory(
            scenario.catalog(),
            scenario.rules,
            scenario.horizon_weeks,
            n_ref=n_ref,
            n_fatigue=n_fatigue,
        )
        totals = play_memory(MemoryDPPolicy(solution), scenario, n_episodes=n_episodes, seed=seed)
        return Prepared(
            index, scenario, solution, seed, totals, float(solution.value), self.name, spec.version
        )

    def play(self, policy: Policy, prepared: Prepared, *, n_episodes: int) -> pd.DataFrame:
        return play_memory(policy, prepared.scenario, n_episodes=n_episodes, seed=prepared.seed)

    def agent_factories(self) -> dict[str, PolicyFactory]:
        return {
            "dp_blind": simple_factory(MemoryBlindDP),
            "prior": simple_factory(b.FluidPrior),
            "fluid": simple_factory(b.CertaintyEquivalent),
            "myopic": simple_factory(b.Myopic),
            "cover": simple_factory(b.WeeksOfCover, deepen_above=1.0),
            "ladder": simple_factory(b.LinearLadder, step=0.1, every_weeks=2),
            "none": simple_factory(b.NoMarkdown),
        }
