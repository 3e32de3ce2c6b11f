"""How each kind of suite is played: the evaluation markets.

A :class:`Market` knows, for the suites played in it (``SuiteSpec.market``):

- how to prepare a scenario: solve its reference (what 100 % is) and play the reference
  policy on the scenario's common-random-number paths (:meth:`Market.prepare`);
- how to play any policy on the same paths (:meth:`Market.play`);
- which agents apply, by command-line name (:meth:`Market.agent_factories`).

The evaluation loop (:func:`experiments.evaluate.evaluate_suite`) talks to this interface
only, so a new kind of suite (demand memory, a shared budget) is a new market class and one
entry in :data:`MARKETS`.

=============  ====================  ===========================================================
market         reference             agents
=============  ====================  ===========================================================
``standard``   ``dp``                ``none``, ``fixed``, ``fluid``, ``prior``, ``ladder``,
                                     ``cover``, ``myopic`` (and ``ppo``)
``learning``   ``oracle``            ``dp_ce``, ``dp_resolve``, ``thompson``, ``prior``,
                                     ``fluid``, ``myopic``, ``cover``, ``ladder``, ``none``
                                     (and ``ppo``)
``budget``     ``lagrangian_bound``  ``lagrangian``, ``lagrangian_weekly``, ``greedy`` and the
                                     heuristics repaired to the shared limit
                                     (:mod:`experiments.budget_market`)
``memory``     ``augmented_dp``      ``dp_blind``, ``prior``, ``fluid``, ``myopic``, ``cover``,
                                     ``ladder``, ``none`` (and ``ppo``)
                                     (:mod:`experiments.memory_market`)
=============  ====================  ===========================================================
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from agents import baselines as b
from agents.dp import DPSolution, solve
from agents.learning import GridDPPolicy, QMDPPolicy, solve_grid
from agents.learning_bound import LookaheadPolicy
from agents.policy import Policy
from envs.belief import BeliefGrid
from envs.learning import LearningMarkdownEnv
from envs.markdown import EnvConfig
from experiments.budget_market import BudgetMarket
from experiments.market_base import (
    Market,
    PolicyFactory,
    Prepared,
    crn_env,
    evaluate_in,
    simple_factory,
)
from experiments.memory_market import MemoryMarket
from experiments.suite import Scenario, SuiteSpec

__all__ = ["MARKETS", "Market", "PolicyFactory", "Prepared", "dp_policy_for", "market_for", "play"]


def _heuristics() -> dict[str, PolicyFactory]:
    """Heuristics that read only the context's catalog (in the learning market, the
    posterior-mean parameters)."""
    return {
        "none": simple_factory(b.NoMarkdown),
        "fluid": simple_factory(b.CertaintyEquivalent),
        "prior": simple_factory(b.FluidPrior),
        "ladder": simple_factory(b.LinearLadder, step=0.1, every_weeks=2),
        "cover": simple_factory(b.WeeksOfCover, deepen_above=1.0),
        "myopic": simple_factory(b.Myopic),
    }


# ---------------------------------------------------------------------------- standard
def play(policy: Policy, scenario: Scenario, *, n_episodes: int, seed: int) -> pd.DataFrame:
    """Play ``policy`` on a standard-market ``scenario`` for ``n_episodes`` CRN demand paths.

    Returns the env's per-episode totals (one row per episode, sorted by path), see
    :data:`envs.batched.TOTAL_COLUMNS`; ``objective`` is in currency.
    """
    return evaluate_in(crn_env(scenario, n_episodes, seed), policy)


def dp_policy_for(solution: DPSolution) -> Policy:
    """The DP's optimal policy as a :class:`Policy` (``agents.baselines.DPPolicy``)."""
    return b.DPPolicy.from_solution(solution)


class StandardMarket(Market):
    """Parameters known; 100 % = the exact DP (:func:`agents.dp.solve`)."""

    name = "standard"
    reference = "dp"

    def prepare(
        self, spec: SuiteSpec, index: int, scenario: Scenario, *, n_episodes: int, seed: int
    ) -> Prepared:
        solution = solve(scenario.catalog(), scenario.rules, scenario.horizon_weeks)
        totals = play(dp_policy_for(solution), scenario, n_episodes=n_episodes, seed=seed)
        return Prepared(
            index, scenario, solution, seed, totals, float(solution.value), self.name, spec.version
        )

    def play(self, policy: Policy, prepared: Prepared, *, n_episodes: int) -> pd.DataFrame:
        return play(policy, prepared.scenario, n_episodes=n_episodes, seed=prepared.seed)

    def agent_factories(self) -> dict[str, PolicyFactory]:
        return {**_heuristics(), "fixed": simple_factory(b.BestFixedDiscount)}


# ---------------------------------------------------------------------------- learning
class LearningMarket(Market):
    """Elasticity and demand level unknown (:mod:`envs.learning`); 100 % = the oracle, the
    DP that knows each episode's drawn truth (:mod:`agents.learning`)."""

    name = "learning"
    reference = "oracle"
    THOMPSON_SEED = 0
    """Seed of Thompson sampling's posterior draws (the truths and the demand are the CRN
    paths', shared by every agent)."""

    def env(self, prepared: Prepared, n_episodes: int) -> LearningMarkdownEnv:
        """The learning env in evaluation mode on the prepared scenario's paths."""
        s = prepared.scenario
        return LearningMarkdownEnv(
            EnvConfig(
                horizon_weeks=s.horizon_weeks,
                rules=s.rules,
                catalog=s.catalog(),
                invalid_action="hold",
            ),
            n_slots=n_episodes,
            seed=prepared.seed,
            fixed_skus=True,
            grid=prepared.solution.grid,
        )

    def prepare(
        self, spec: SuiteSpec, index: int, scenario: Scenario, *, n_episodes: int, seed: int
    ) -> Prepared:
        solution = solve_grid(
            scenario.catalog(), scenario.rules, scenario.horizon_weeks, BeliefGrid(spec.belief_grid)
        )
        prepared = Prepared(
            index,
            scenario,
            solution,
            seed,
            pd.DataFrame(),
            solution.oracle_value,
            self.name,
            spec.version,
        )
        prepared.reference_totals = self.play(
            GridDPPolicy(solution, "oracle"), prepared, n_episodes=n_episodes
        )
        return prepared

    def play(self, policy: Policy, prepared: Prepared, *, n_episodes: int) -> pd.DataFrame:
        env = self.env(prepared, n_episodes)
        env.reveal_truth = bool(getattr(policy, "needs_truth", False))
        return evaluate_in(env, policy)

    def agent_factories(self) -> dict[str, PolicyFactory]:
        def grid(mode: Any) -> PolicyFactory:
            return lambda scenario, solution: GridDPPolicy(solution, mode, seed=self.THOMPSON_SEED)

        return {
            "dp_ce": grid("prior_mean"),
            "dp_resolve": grid("posterior_mean"),
            "thompson": grid("thompson"),
            "qmdp": lambda scenario, solution: QMDPPolicy(solution),
            "lookahead": lambda scenario, solution: LookaheadPolicy(solution),
            **_heuristics(),
        }


MARKETS: dict[str, Market] = {
    m.name: m for m in (StandardMarket(), LearningMarket(), BudgetMarket(), MemoryMarket())
}
"""Every evaluation market by ``SuiteSpec.market``."""


def market_for(spec: SuiteSpec) -> Market:
    """The market that plays ``spec``'s scenarios."""
    return MARKETS[spec.market]
