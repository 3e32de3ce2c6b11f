"""The shared promotion limit as a sequence of per-SKU decisions: the env PPO trains in.

A category's SKUs cannot decide the week's promotions independently (together they may
hold at most ``K`` of the slots), and a policy for the joint action of ``N`` SKUs would have
``n_actions ** N`` outputs. So the week is split into ``N`` steps: the SKUs of a category
decide one after the other, most overstocked first (:func:`envs.budget.decision_order`), each
seeing its own standard observation plus the slots left and where it stands in the week
(:data:`envs.budget.BUDGET_FIELDS`); the mask forbids a promotion once no slot is left
(:func:`envs.budget.budget_mask`), so no plan can exceed the limit. When the last SKU has
decided, the market plays the week for all of them.

:func:`allocate` is that week for any per-SKU decision rule over all paths at once (used by
the evaluation policy, :class:`agents.budget_ppo.SequentialBudgetPolicy`);
:class:`SequentialCategoryEnv` is the same loop as a stable-baselines3 ``VecEnv`` for
training: one sub-env per category copy, all copies in lockstep (same position in the week,
same horizon), the SKUs drawn from a catalog at every episode start and the limit ``K``
drawn per copy. The reward of a category's week is its profit over its stock value (the
SKUs' normalized rewards weighted by their stock value, so a slot goes where the money is),
paid at the step that plays the week; the other steps pay 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from envs.batched import BatchedMarkdownEnv, InProcessVecEnv
from envs.budget import (
    BUDGET_HIGH,
    BUDGET_LOW,
    OFF_ACTION,
    SlotPrior,
    advantage_order,
    budget_features,
    budget_mask,
    check_budget_rules,
    decision_order,
    list_price_cover,
    need_after,
    prior_bounds,
    promo_actions,
    rival_features,
    scaled_advantages,
)
from envs.context import PolicyContext
from envs.core import reward_scale
from envs.markdown import EnvConfig
from ingest.errors import ConfigError
from simulator.demand import Catalog

Decide = Callable[[np.ndarray, np.ndarray, PolicyContext], np.ndarray]
"""``decide(observations, masks, context) -> actions`` for the SKUs deciding at one step."""


def _cover(ctx: PolicyContext, n_paths: int, n_skus: int) -> np.ndarray:
    return list_price_cover(ctx.catalog, ctx.decision.stock, ctx.decision.weeks_left).reshape(
        n_paths, n_skus
    )


def allocate(
    decide: Decide,
    observations: np.ndarray,
    masks: np.ndarray,
    context: PolicyContext,
    *,
    n_skus: int,
    max_promoted: int,
    prior: SlotPrior | None = None,
) -> np.ndarray:
    """One week of sequential allocation over every path (slot ``p * n_skus + i``).

    The SKUs of each path decide most overstocked first; each sees its observation with
    :data:`~envs.budget.BUDGET_FIELDS` appended and the masks with the limit on top, so the
    returned joint actions never hold more than ``max_promoted`` promotions per path, and a
    sold-out SKU plays the no-promotion action.

    With a ``prior`` (its SKU ``i`` is the path's SKU ``i``), the SKUs decide in order of its
    advantages instead, and its regrets follow the budget fields.

    Returns
    -------
    ndarray of int of shape (n_paths * n_skus,)
    """
    obs = np.asarray(observations, dtype=np.float32)
    n = obs.shape[0]
    if n % n_skus:
        raise ConfigError(f"{n} slots is not a multiple of the category's {n_skus} SKUs")
    n_paths = n // n_skus
    promo = promo_actions(context.rules)
    cover = _cover(context, n_paths, n_skus)
    sku = np.arange(n) % n_skus
    if prior is None:
        order = decision_order(cover)
    else:
        adv = prior.advantages(sku, context)
        order = advantage_order(adv.reshape(n_paths, n_skus))
        scaled = scaled_advantages(adv, context, prior.scale).reshape(n_paths, n_skus)
    remaining = np.full(n_paths, max_promoted, dtype=np.int64)
    k = np.full(n_paths, max_promoted, dtype=np.int64)
    out = np.full(n, OFF_ACTION, dtype=np.int64)
    base = np.arange(n_paths) * n_skus
    for j in range(n_skus):
        rows = base + order[:, j]
        feats = budget_features(remaining, k, n_skus, j, need_after(cover, order, j))
        m = budget_mask(masks[rows], promo, remaining, context.decision.stock[rows])
        ctx = context.take(rows)
        parts = [obs[rows], feats]
        if prior is not None:
            parts += [prior.regrets(sku[rows], ctx, m), rival_features(scaled, order, j)]
        a = np.asarray(decide(np.concatenate(parts, axis=1), m, ctx))
        a = a.astype(np.int64).reshape(-1)
        a = np.where(m[np.arange(n_paths), a], a, OFF_ACTION)  # a rule that ignores its mask
        out[rows] = a
        remaining -= promo[a]
    return out


@dataclass
class CategoryPool:
    """Training categories solved in advance, for a :class:`SequentialCategoryEnv` whose SKUs
    read a :class:`~envs.budget.SlotPrior` (the category's relaxation must be solved to
    price its slots, too slow to do at every episode start).

    Attributes
    ----------
    catalog : Catalog
        ``n_categories * n_skus`` SKUs; category ``g`` holds rows ``g * n_skus ..
        (g + 1) * n_skus - 1``.
    max_promoted : ndarray of int of shape (n_categories,)
        Each category's limit ``K``.
    prior : SlotPrior
        Its SKU ``i`` is the catalog's row ``i``.
    """

    catalog: Catalog
    max_promoted: np.ndarray
    prior: SlotPrior

    @property
    def n_categories(self) -> int:
        return int(np.asarray(self.max_promoted).size)

    @property
    def n_skus(self) -> int:
        return self.catalog.n_skus // max(self.n_categories, 1)


class SequentialCategoryEnv(InProcessVecEnv):
    """``n_categories`` copies of a category of ``n_skus`` SKUs deciding one SKU at a time.

    Parameters
    ----------
    config : EnvConfig
        Rules (must pass :func:`envs.budget.check_budget_rules`), the source catalog the SKUs
        are drawn from and the horizon (``horizon_range`` is ignored: a category's SKUs share
        one horizon, and the copies stay in lockstep). Sell-outs do not end an episode.
    n_categories : int
        Category copies (the VecEnv's sub-envs).
    n_skus : int
        SKUs per category (``>= 2``).
    max_promoted : tuple of int
        (lowest, highest) limit ``K``, drawn per copy at each episode start
        (``1 <= lowest <= highest < n_skus``).
    seed : int, optional
    pool : CategoryPool, optional
        Draw each episode's category (its SKUs and its ``K``) from these solved categories
        instead (``config.catalog``, ``n_skus`` and ``max_promoted`` then come from the pool);
        the SKUs decide in order of the pool's advantages and read its regrets.
    """

    def __init__(
        self,
        config: EnvConfig,
        n_categories: int,
        n_skus: int,
        *,
        max_promoted: tuple[int, int] = (1, 2),
        seed: int | None = None,
        pool: CategoryPool | None = None,
    ) -> None:
        check_budget_rules(config.rules)
        if pool is not None:
            k = np.asarray(pool.max_promoted, np.int64)
            n_skus = pool.n_skus
            if pool.n_categories < 1 or pool.catalog.n_skus != pool.n_categories * n_skus:
                raise ConfigError(
                    f"the pool has {pool.catalog.n_skus} SKUs for {pool.n_categories} "
                    f"categories; expected a whole number of SKUs per category"
                )
            max_promoted = (int(k.min()), int(k.max()))
            config = replace(config, catalog=pool.catalog)
        lo, hi = max_promoted
        if n_skus < 2 or not 1 <= lo <= hi < n_skus:
            raise ConfigError(
                f"n_skus = {n_skus}, max_promoted = {max_promoted}: expected n_skus >= 2 and "
                f"1 <= lowest <= highest < n_skus"
            )
        if n_categories < 1:
            raise ConfigError(f"n_categories = {n_categories}; expected >= 1")
        cfg = replace(config, end_on_sellout=False, horizon_range=None)
        self.inner = BatchedMarkdownEnv(cfg, n_slots=n_categories * n_skus, seed=seed)
        self.rules = cfg.rules
        self.n_skus, self.k_range = int(n_skus), (int(lo), int(hi))
        self.promo = promo_actions(self.rules)
        self.pool = pool
        inner_space = self.inner.observation_space
        low = np.concatenate([inner_space.low, BUDGET_LOW])  # type: ignore[attr-defined]
        high = np.concatenate([inner_space.high, BUDGET_HIGH])  # type: ignore[attr-defined]
        if pool is not None:
            p_low, p_high = prior_bounds(self.rules.n_actions)
            low, high = np.concatenate([low, p_low]), np.concatenate([high, p_high])
            self.inner.choose_index = self._choose_skus
        self.render_mode = None
        super().__init__(
            n_categories,
            spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32),
            self.inner.action_space,
        )
        self._k_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
        self._group = np.zeros(n_categories, dtype=np.int64)
        self._actions: np.ndarray | None = None
        self._started = False

    # ------------------------------------------------------------------ state
    def _choose_skus(self, slots: np.ndarray) -> np.ndarray:
        """Source rows of the slots starting an episode: one pool category per copy (the
        copies' slots always restart together)."""
        assert self.pool is not None
        copies = np.asarray(slots, np.int64) // self.n_skus
        starting = np.unique(copies)
        self._group[starting] = self._k_rng.integers(self.pool.n_categories, size=starting.size)
        return self._group[copies] * self.n_skus + np.asarray(slots, np.int64) % self.n_skus

    def _draw_k(self, copies: np.ndarray) -> np.ndarray:
        if self.pool is not None:
            return np.asarray(self.pool.max_promoted, np.int64)[self._group[copies]]
        lo, hi = self.k_range
        return self._k_rng.integers(lo, hi + 1, copies.size)

    def _start_week(self) -> None:
        c, n = self.num_envs, self.n_skus
        self._ctx = self.inner.policy_context()
        self._cover = _cover(self._ctx, c, n)
        if self.pool is None:
            self._order = decision_order(self._cover)
        else:
            adv = self.pool.prior.advantages(self.inner.sku_index, self._ctx)
            self._order = advantage_order(adv.reshape(c, n))
            self._scaled = scaled_advantages(adv, self._ctx, self.pool.prior.scale).reshape(c, n)
        self._position = 0
        self._remaining = self._k.copy()
        self._pending = np.full(c * n, OFF_ACTION, dtype=np.int64)

    def _rows(self) -> np.ndarray:
        return np.arange(self.num_envs) * self.n_skus + self._order[:, self._position]

    def _observe(self) -> np.ndarray:
        j = self._position
        feats = budget_features(
            self._remaining, self._k, self.n_skus, j, need_after(self._cover, self._order, j)
        )
        rows = self._rows()
        parts = [self._inner_obs[rows], feats]
        if self.pool is not None:
            regrets = self.pool.prior.regrets(
                self.inner.sku_index[rows], self._ctx.take(rows), self.action_masks()
            )
            parts += [regrets, rival_features(self._scaled, self._order, j)]
        return np.concatenate(parts, axis=1)

    @property
    def remaining(self) -> np.ndarray:
        """Slots left to each copy's SKU deciding now, shape ``(n_categories,)``."""
        return self._remaining.copy()

    @property
    def max_promoted(self) -> np.ndarray:
        """Each copy's limit ``K`` in its current episode, shape ``(n_categories,)``."""
        return self._k.copy()

    # ------------------------------------------------------------------ VecEnv
    def reset(self) -> np.ndarray:
        self._inner_obs = self.inner.reset()
        self._k = self._draw_k(np.arange(self.num_envs))
        self._episode_reward = np.zeros(self.num_envs)
        self._started = True
        self._start_week()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self._observe()

    def action_masks(self) -> np.ndarray:
        """Allowed actions of the SKU deciding now in each copy (rules and limit)."""
        rows = self._rows()
        return budget_mask(
            self.inner.action_masks()[rows],
            self.promo,
            self._remaining,
            self._ctx.decision.stock[rows],
        )

    def policy_context(self) -> PolicyContext:
        """The context of the SKUs deciding now (one row per copy)."""
        return self._ctx.take(self._rows())

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64).reshape(-1)

    def step_wait(self) -> VecEnvStepReturn:
        if not self._started or self._actions is None:
            raise ConfigError("call reset() before step()")
        a, self._actions = self._actions, None
        c, n = self.num_envs, self.n_skus
        allowed = self.action_masks()[np.arange(c), a]
        a = np.where(allowed, a, OFF_ACTION)  # MaskablePPO never picks a masked action
        self._pending[self._rows()] = a
        self._remaining -= self.promo[a]
        self._position += 1
        rewards = np.zeros(c, dtype=np.float32)
        dones: np.ndarray = np.zeros(c, dtype=bool)
        infos: list[dict[str, Any]] = [{} for _ in range(c)]
        if self._position < n:
            return self._observe(), rewards, dones, infos
        weight = reward_scale(self._ctx.catalog).reshape(c, n)
        self.inner.step_async(self._pending)
        self._inner_obs, r, done, _ = self.inner.step_wait()
        rewards = ((r.reshape(c, n) * weight).sum(axis=1) / weight.sum(axis=1)).astype(np.float32)
        self._episode_reward += rewards
        dones = np.asarray(np.asarray(done).reshape(c, n).all(axis=1), dtype=bool)
        if dones.any():
            self._k[dones] = self._draw_k(np.flatnonzero(dones))
        self._start_week()
        obs = self._observe()
        for i in np.flatnonzero(dones).tolist():
            infos[i] = {
                "terminal_observation": obs[i],
                "TimeLimit.truncated": False,
                "episode": {"r": float(self._episode_reward[i]), "l": int(self._steps_per_ep)},
            }
            self._episode_reward[i] = 0.0
        return obs, rewards, dones, infos

    @property
    def _steps_per_ep(self) -> int:
        return self.inner.config.horizon_weeks * self.n_skus

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        self.inner.close()

    def seed(self, seed: int | None = None) -> list[int | None]:
        return list(self.inner.seed(seed))
