"""A per-SKU policy made to allocate a category's promotion slots one SKU at a time.

:class:`SequentialBudgetPolicy` plays a policy trained in
:class:`envs.budget_seq.SequentialCategoryEnv` (masked PPO that sees the slots left) on the
budget market's category env: each week the SKUs of every path decide most overstocked
first, each with the slots left in its observation and a mask that forbids a promotion
once none is left (:func:`envs.budget_seq.allocate`), so its plans never exceed the limit.
"""

from __future__ import annotations

import numpy as np

from agents.policy import Policy
from envs.budget_seq import allocate
from envs.context import PolicyContext
from ingest.errors import ConfigError


class SequentialBudgetPolicy(Policy):
    """``base`` deciding the SKUs of each path in turn under a weekly limit.

    Parameters
    ----------
    base : Policy
        Reads the standard observation plus :data:`envs.budget.BUDGET_FIELDS` (a PPO policy
        trained with ``PPOConfig.shared_budget``).
    n_skus : int
        SKUs per path (slot ``p * n_skus + i`` is SKU ``i`` of path ``p``).
    max_promoted : int
        The limit ``K``.
    """

    requires_context = True

    def __init__(self, base: Policy, n_skus: int, max_promoted: int) -> None:
        if not 1 <= max_promoted < n_skus:
            raise ConfigError(
                f"max_promoted = {max_promoted}; expected 1..{n_skus - 1} for {n_skus} SKUs"
            )
        self.base, self.n_skus, self.max_promoted = base, int(n_skus), int(max_promoted)
        self.name = base.name

    def reset(self, context: PolicyContext | None = None) -> None:
        self.base.reset(context)

    def act(
        self,
        observations: np.ndarray,
        masks: np.ndarray,
        context: PolicyContext | None = None,
    ) -> np.ndarray:
        ctx = self._need_context(context)
        return allocate(
            self.base.act,
            observations,
            np.asarray(masks, dtype=bool),
            ctx,
            n_skus=self.n_skus,
            max_promoted=self.max_promoted,
        )
