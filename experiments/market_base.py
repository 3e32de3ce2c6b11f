"""The interface every evaluation market implements (:mod:`experiments.markets` registers
them): a module of its own so that a market class may live in its own module
(:mod:`experiments.budget_market`) without an import circle with the registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from agents.policy import Policy
from envs.batched import BatchedMarkdownEnv
from envs.markdown import EnvConfig
from experiments.suite import Scenario, SuiteSpec

PolicyFactory = Callable[[Scenario, Any], Policy]
"""Builds an agent's policy for one scenario, given the scenario's prepared solution (a
:class:`~agents.dp.DPSolution` in the standard market, a
:class:`~agents.learning.GridSolution` in the learning market, a
:class:`~agents.lagrangian.CategorySolution` in the budget market)."""


@dataclass
class Prepared:
    """A scenario ready for scoring: its reference and the reference policy's CRN totals.

    Attributes
    ----------
    index : int
        Position in the suite (it fixes the demand seed).
    scenario : Scenario
    solution : DPSolution, GridSolution or CategorySolution
        What the market solved for the reference.
    seed : int
        Demand seed of the scenario's paths.
    reference_totals : DataFrame
        The reference policy's per-path totals (one row per path; in the budget market the
        bound on every path, see :mod:`experiments.budget_market`).
    reference_value : float
        The reference's exact expected objective (``V*``, the oracle's prior-weighted
        ``sum_g prior_g V*_g``, or the Lagrangian dual value).
    market : str
        Key of :data:`experiments.markets.MARKETS` that plays the scenario.
    suite_version : str
    """

    index: int
    scenario: Scenario
    solution: Any
    seed: int
    reference_totals: pd.DataFrame
    reference_value: float
    market: str
    suite_version: str


class Market(ABC):
    """How the suites of one kind are played (see the module docstring)."""

    name: str = "market"
    reference: str = "dp"
    """What 100 % is (``SuiteSpec.reference``); also the agent label of the reference rows."""

    @abstractmethod
    def prepare(
        self, spec: SuiteSpec, index: int, scenario: Scenario, *, n_episodes: int, seed: int
    ) -> Prepared:
        """Solve the scenario's reference and play its policy on the CRN paths."""

    @abstractmethod
    def play(self, policy: Policy, prepared: Prepared, *, n_episodes: int) -> pd.DataFrame:
        """Play ``policy`` on the prepared scenario's CRN paths; one row per path."""

    @abstractmethod
    def agent_factories(self) -> dict[str, PolicyFactory]:
        """Every non-learned agent that applies, by command-line name (the reference
        excluded: its rows come with every evaluation)."""


def simple_factory(cls: Any, **kw: Any) -> PolicyFactory:
    """A factory for an agent that needs neither the scenario nor its solution."""
    return lambda scenario, solution: cls(**kw)


def crn_env(
    scenario: Scenario,
    n_episodes: int,
    seed: int,
    env_cls: type[BatchedMarkdownEnv] = BatchedMarkdownEnv,
) -> BatchedMarkdownEnv:
    """``scenario`` in evaluation mode: ``n_episodes`` common-random-number paths of its one
    SKU (slot ``i`` is path ``i``), invalid actions held."""
    return env_cls(
        EnvConfig(
            horizon_weeks=scenario.horizon_weeks,
            rules=scenario.rules,
            catalog=scenario.catalog(),
            invalid_action="hold",
        ),
        n_slots=n_episodes,
        seed=seed,
        fixed_skus=True,
    )


def evaluate_in(env: BatchedMarkdownEnv, policy: Policy) -> pd.DataFrame:
    """Play ``policy`` once on every slot of ``env`` and close it; one row per path
    (:data:`envs.batched.TOTAL_COLUMNS`)."""
    policy.reset(None)

    def act(obs: np.ndarray, masks: np.ndarray, ctx: Any) -> np.ndarray:
        return policy.act(obs, masks, ctx)

    totals = env.evaluate(act, episodes_per_slot=1)
    env.close()
    return totals
