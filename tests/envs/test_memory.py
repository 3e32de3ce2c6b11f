"""The memory env: the standard observation unchanged, the SKU's memory law appended, and the
market's reference price and fatigue moving as the simulator says."""

from __future__ import annotations

import numpy as np

from envs.batched import BatchedMarkdownEnv
from envs.config import RulesConfig
from envs.markdown import EnvConfig
from envs.memory import (
    MEMORY_FIELDS,
    SENSITIVITY_SCALE,
    MemoryMarkdownEnv,
    memory_observation_space,
)
from envs.observation import OBS_DIM, OBS_NAMES
from simulator.demand import Catalog

RULES = RulesConfig(discount_levels=(0.0, 0.2, 0.4))


def _config() -> EnvConfig:
    cat = Catalog.build(
        n_skus=1,
        base_demand=5.0,
        elasticity=-2.0,
        unit_cost=0.4,
        initial_stock=50.0,
        ref_price_sensitivity=2.0,
        ref_price_memory=0.7,
        fatigue_rate=0.1,
        fatigue_decay=0.5,
    )
    return EnvConfig(horizon_weeks=6, rules=RULES, catalog=cat)


def test_memory_fields_follow_the_standard_observation():
    mem = MemoryMarkdownEnv(_config(), n_slots=4, seed=1, fixed_skus=True)
    std = BatchedMarkdownEnv(_config(), n_slots=4, seed=1, fixed_skus=True)
    obs_m, obs_s = mem.reset(), std.reset()
    assert std.observation_space.shape == (OBS_DIM,)
    assert mem.observation_space.shape == (OBS_DIM + len(MEMORY_FIELDS),)
    assert memory_observation_space().shape == mem.observation_space.shape
    np.testing.assert_array_equal(obs_m[:, :OBS_DIM], obs_s)
    np.testing.assert_allclose(obs_m[0, OBS_DIM:], [2.0 / SENSITIVITY_SCALE, 0.7, 0.1, 0.5, 0.0])
    # a 40 % discount: the reference price falls to 0.7 + 0.3 * 0.6, fatigue rises to 0.1
    actions = np.full(4, 2)
    obs_m, *_ = mem.step(actions)
    obs_s, *_ = std.step(actions)
    np.testing.assert_array_equal(obs_m[:, :OBS_DIM], obs_s)
    ref = 0.7 + 0.3 * 0.6
    assert obs_m[0, OBS_NAMES.index("ref_price")] == np.float32(ref)
    assert obs_m[0, OBS_NAMES.index("fatigue")] == np.float32(0.1)
    np.testing.assert_allclose(obs_m[0, -1], 2.0 * np.log(ref) + np.log(0.9), rtol=1e-6)
