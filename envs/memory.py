"""Demand with memory: the batched markdown env with the SKU's memory law in the observation.

The market (:mod:`simulator.market`) already carries reference-price memory and promotion
fatigue, and the standard observation already reads their current state (``ref_price``,
``fatigue``: :mod:`envs.observation`). What a policy serving many SKUs lacks is how strongly
each SKU remembers. :class:`MemoryMarkdownEnv` appends :data:`MEMORY_FIELDS` to every
observation (the standard fields and their order are unchanged, so models of the standard
suite are untouched); the ``memory`` suites evaluate in it and PPO trains in it
(``PPOConfig.demand_memory``).

Everything else (rules as masks, rewards, evaluation mode with common random numbers) is the
batched env's.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from envs.batched import BatchedMarkdownEnv
from envs.markdown import EnvConfig
from envs.observation import OBS_HIGH, OBS_LOW
from simulator.demand import Catalog

SENSITIVITY_SCALE = 4.0
"""``mem_sensitivity`` = reference-price sensitivity / this."""

MEMORY_FIELDS: tuple[tuple[str, float, float, str], ...] = (
    ("mem_sensitivity", 0.0, 1.0, f"reference-price sensitivity / {SENSITIVITY_SCALE:g}"),
    ("mem_weight", 0.0, 1.0, "share of the reference price carried to next week"),
    ("mem_fatigue_rate", 0.0, 1.0, "fatigue added per discounted week"),
    ("mem_fatigue_decay", 0.0, 1.0, "share of fatigue carried to next week"),
    ("mem_log_lift", -3.0, 1.0, "log demand multiplier at list price from memory today"),
)
"""Fields appended to the standard observation: the SKU's memory law and what it does to
demand at list price this week, ``gamma log R + log(1 - F)`` (0 = no memory effect)."""
N_MEMORY = len(MEMORY_FIELDS)
MEMORY_LOW = np.array([f[1] for f in MEMORY_FIELDS], dtype=np.float32)
MEMORY_HIGH = np.array([f[2] for f in MEMORY_FIELDS], dtype=np.float32)


def memory_observation_space() -> spaces.Box:
    """The memory env's observation space: the standard fields, then :data:`MEMORY_FIELDS`."""
    low = np.concatenate([OBS_LOW, MEMORY_LOW]).astype(np.float32)
    high = np.concatenate([OBS_HIGH, MEMORY_HIGH]).astype(np.float32)
    return spaces.Box(low, high, dtype=np.float32)


def memory_features(catalog: Catalog, ref_price: np.ndarray, fatigue: np.ndarray) -> np.ndarray:
    """The :data:`MEMORY_FIELDS` columns (clipped, float32) of slots with ``catalog`` rows and
    the given reference prices and fatigue levels."""
    gamma = np.asarray(catalog.ref_price_sensitivity, float)
    fat = np.where(np.asarray(catalog.fatigue_rate) > 0, np.asarray(fatigue, float), 0.0)
    lift = gamma * np.log(np.asarray(ref_price, float)) + np.log1p(-fat)
    cols = (
        gamma / SENSITIVITY_SCALE,
        catalog.ref_price_memory,
        catalog.fatigue_rate,
        catalog.fatigue_decay,
        lift,
    )
    out = np.stack([np.asarray(c, float) for c in cols], axis=1)
    return np.clip(out, MEMORY_LOW, MEMORY_HIGH).astype(np.float32)


class MemoryMarkdownEnv(BatchedMarkdownEnv):
    """The batched markdown env whose observation also carries :data:`MEMORY_FIELDS`.

    Parameters are those of :class:`~envs.batched.BatchedMarkdownEnv`; the catalog's
    ``ref_price_sensitivity``, ``ref_price_memory``, ``fatigue_rate`` and ``fatigue_decay``
    drive the market (they may be 0: the features then read 0).
    """

    def __init__(
        self,
        config: EnvConfig | None = None,
        n_slots: int | None = None,
        *,
        seed: int | None = None,
        fixed_skus: bool = False,
        record_episodes: bool | None = None,
    ) -> None:
        super().__init__(
            config, n_slots, seed=seed, fixed_skus=fixed_skus, record_episodes=record_episodes
        )
        self.observation_space = memory_observation_space()
        # the first observation carries the memory fields: never read the base table alone
        self._start_table = None

    def _observe(self, slots: np.ndarray | None = None) -> np.ndarray:
        obs = super()._observe(slots)
        rows = np.arange(self.n_slots) if slots is None else slots
        cat = self._catalog if slots is None else self._catalog.take(rows)
        extra = memory_features(cat, self._market.ref_price[rows], self._market.fatigue[rows])
        return np.concatenate([obs, extra], axis=1)
