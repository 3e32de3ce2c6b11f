"""What a policy may know about the SKU slots it acts for, beyond their observations.

The batched env hands a :class:`PolicyContext` out (``BatchedMarkdownEnv.policy_context()``);
rollouts, the DP's state grid and the served model build one the same way. Heuristics, the
DP and the PPO features read it (:mod:`agents`); it lives here because ``agents`` imports
``envs``, never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from envs.belief import BeliefState
from envs.config import DecisionState, RulesConfig
from simulator.demand import Catalog
from simulator.market import MarketState


@dataclass
class PolicyContext:
    """The slots' structured state, for policies that read more than observations.

    Arrays may be the env's own: read, do not modify.

    Attributes
    ----------
    catalog : Catalog
        Parameters of the SKUs currently in the slots (one row per slot, ``n_skus == n``).
    decision : DecisionState
        The rules' state per slot (weeks left, stock, current depth, ...).
    market : MarketState
        The market's state per slot (stock, calendar week, reference price, fatigue).
    rules : RulesConfig
        The business rules in force (the action grid and the switches).
    horizon_weeks : int or ndarray of int of shape (n,)
        Planned weeks from the start of each slot's episode to its exit week.
    episode_start : ndarray of bool of shape (n,) or None
        True for slots whose episode just started (a new SKU was drawn); ``None`` when
        unknown. Policies that cache per SKU may use it; they must not rely on it.
    belief : BeliefState or None
        In the learning market (:mod:`envs.learning`): the posterior over each slot's unknown
        demand parameters. There ``catalog`` holds the posterior-mean parameters, never the
        truth. ``None`` when the parameters are known.
    truth : ndarray of int of shape (n,) or None
        In the learning market, each slot's true grid point; only filled for the oracle
        (``LearningMarkdownEnv.reveal_truth``), ``None`` otherwise.
    """

    catalog: Catalog
    decision: DecisionState
    market: MarketState
    rules: RulesConfig
    horizon_weeks: int | np.ndarray
    episode_start: np.ndarray | None = None
    belief: BeliefState | None = None
    truth: np.ndarray | None = None

    @property
    def n_slots(self) -> int:
        return self.catalog.n_skus

    def take(self, rows: np.ndarray) -> PolicyContext:
        """The context of slots ``rows`` (an index array), as new arrays."""
        rows = np.asarray(rows, dtype=np.int64)
        horizon = self.horizon_weeks
        return PolicyContext(
            catalog=self.catalog.take(rows),
            decision=self.decision.take(rows),
            market=self.market.take(rows),
            rules=self.rules,
            horizon_weeks=horizon if np.ndim(horizon) == 0 else np.asarray(horizon)[rows],
            episode_start=None if self.episode_start is None else self.episode_start[rows],
            belief=None if self.belief is None else self.belief.take(rows),
            truth=None if self.truth is None else self.truth[rows],
        )

    def horizons(self) -> np.ndarray:
        """Each slot's horizon in weeks, shape (n,)."""
        return np.broadcast_to(np.asarray(self.horizon_weeks, dtype=np.int64), (self.n_slots,))

    def is_one_sku(self) -> bool:
        """True when every slot holds the same SKU in the same calendar week: the catalog's
        rows are one row broadcast (as on the DP's state grid), so per-SKU work is done once."""
        cat = self.catalog
        same_row = all(
            getattr(cat, f.name).strides[0] == 0 for f in fields(cat) if getattr(cat, f.name).ndim
        )
        week = np.asarray(self.market.week)
        return same_row and bool(np.all(week == week[0]))
