"""One interface for every pricing policy: PPO, the heuristic baselines and the exact DP.

A :class:`Policy` maps a batch of observations and action masks to flat action indices
(``a = depth_index * n_coupons + coupon_index``, see :class:`envs.config.RulesConfig`).
Learned policies read the observations; heuristics and the DP read the structured
:class:`~envs.context.PolicyContext` that the batched env exposes (``policy_context()``):
the slot catalog, the rules' decision state and the market state. Every policy must pick only allowed actions;
:func:`check_actions` verifies that, and :func:`nearest_allowed` snaps a wished-for depth to
the allowed ladder.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from envs.config import RulesConfig
from envs.context import PolicyContext
from ingest.errors import ConfigError, DeadstockError


class PolicyError(DeadstockError):
    """A policy was used in a way it does not support (for example, without a context)."""


class Policy(ABC):
    """A pricing policy over a batch of SKU slots.

    Subclasses implement :meth:`act`. ``name`` identifies the policy in tables, MLflow tags
    and exports. ``requires_context`` is True for policies that need a
    :class:`PolicyContext` (heuristics, DP); those raise :class:`PolicyError` without one.
    """

    name: str = "policy"
    requires_context: bool = False

    def reset(self, context: PolicyContext | None = None) -> None:  # noqa: B027
        """Hook called at the start of a rollout (before the first :meth:`act`).

        The default does nothing; stateful policies clear their per-episode state here.
        """

    @abstractmethod
    def act(
        self,
        observations: np.ndarray,
        masks: np.ndarray,
        context: PolicyContext | None = None,
    ) -> np.ndarray:
        """Choose one action per slot.

        Parameters
        ----------
        observations : ndarray of shape (n, obs_dim)
            The env's observations.
        masks : ndarray of bool of shape (n, n_actions)
            Allowed actions per slot (True = allowed). At least one is allowed per row.
        context : PolicyContext or None
            Structured state of the slots; required when ``requires_context``.

        Returns
        -------
        actions : ndarray of int of shape (n,)
            Flat action indices, each allowed by ``masks``.
        """

    def _need_context(self, context: PolicyContext | None) -> PolicyContext:
        if context is None:
            raise PolicyError(
                f"policy {self.name!r} needs a PolicyContext (pass env.policy_context() to "
                f"act, or play it with agents.rollout.rollout)"
            )
        return context

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def check_actions(actions: np.ndarray, masks: np.ndarray, *, policy: str = "policy") -> None:
    """Raise :class:`PolicyError` if any action is out of range or masked out.

    Parameters
    ----------
    actions : array-like of int of shape (n,)
    masks : ndarray of bool of shape (n, n_actions)
    policy : str
        Name used in the message.
    """
    a = np.asarray(actions)
    m = np.asarray(masks, dtype=bool)
    if a.shape != (m.shape[0],):
        raise PolicyError(f"policy {policy!r} returned shape {a.shape}; expected ({m.shape[0]},)")
    if np.any((a < 0) | (a >= m.shape[1])):
        raise PolicyError(f"policy {policy!r} returned an action outside [0, {m.shape[1]})")
    ok = m[np.arange(a.size), a]
    if not np.all(ok):
        i = int(np.flatnonzero(~ok)[0])
        raise PolicyError(
            f"policy {policy!r} chose masked action {int(a[i])} in slot {i} "
            f"({int((~ok).sum())} slot(s) affected)"
        )


def nearest_allowed(
    rules: RulesConfig,
    masks: np.ndarray,
    depth_index: np.ndarray,
    coupon_index: np.ndarray | int = 0,
) -> np.ndarray:
    """Snap wished-for (depth, coupon) indices to the nearest allowed flat action.

    Distance is ``|depth - wished depth|`` on the ladder (ties go to the shallower depth),
    then ``|coupon - wished coupon|``. Rows of ``masks`` must allow at least one action.

    Parameters
    ----------
    rules : RulesConfig
    masks : ndarray of bool of shape (n, n_actions)
    depth_index : array-like of int of shape (n,)
    coupon_index : array-like of int of shape (n,) or int

    Returns
    -------
    actions : ndarray of int of shape (n,)
    """
    m = np.asarray(masks, dtype=bool)
    n = m.shape[0]
    if m.shape[1] != rules.n_actions:
        raise ConfigError(f"masks have {m.shape[1]} actions; the rules' grid has {rules.n_actions}")
    if not np.all(m.any(axis=1)):
        raise PolicyError("a mask row allows no action; the rules leave nothing to choose")
    di = np.broadcast_to(np.asarray(depth_index, dtype=np.int64), (n,))
    ci = np.broadcast_to(np.asarray(coupon_index, dtype=np.int64), (n,))
    grid_d, grid_c = rules.decode(np.arange(rules.n_actions))
    # Lexicographic cost: depth distance dominates, then shallower, then coupon distance.
    big = 4 * (rules.n_coupons + 1)
    cost = (
        np.abs(grid_d[None, :] - di[:, None]) * 2 * big
        + (grid_d[None, :] > di[:, None]) * big
        + np.abs(grid_c[None, :] - ci[:, None])
    )
    cost = np.where(m, cost, np.iinfo(np.int64).max)
    return np.argmin(cost, axis=1).astype(np.int64)


class RandomMaskedPolicy(Policy):
    """Uniformly random among allowed actions; the reference for "a policy that knows nothing".

    Parameters
    ----------
    seed : int or numpy.random.Generator or None
        Source of randomness (re-seeded by :meth:`reset` only if ``seed`` is an int).
    """

    name = "random"

    def __init__(self, seed: int | np.random.Generator | None = 0) -> None:
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def reset(self, context: PolicyContext | None = None) -> None:
        if isinstance(self.seed, int):
            self._rng = np.random.default_rng(self.seed)

    def act(
        self,
        observations: np.ndarray,
        masks: np.ndarray,
        context: PolicyContext | None = None,
    ) -> np.ndarray:
        m = np.asarray(masks, dtype=bool)
        # Random priority per action; masked ones can never win.
        keys = np.where(m, self._rng.random(m.shape), -1.0)
        return np.argmax(keys, axis=1).astype(np.int64)
