"""The budget market's PPO plumbing: the sequential policy keeps every path within the limit,
the training config refuses impossible categories and builds the sequential env."""

from __future__ import annotations

import numpy as np
import pytest

from agents.budget_ppo import SequentialBudgetPolicy
from agents.policy import RandomMaskedPolicy
from agents.ppo import FluidHint, PPOConfig, make_training_env
from envs.budget import N_BUDGET, CategoryEnv
from envs.budget_seq import SequentialCategoryEnv
from envs.observation import OBS_DIM
from experiments.suite import RULE_PROFILES, budget_training_catalog, get_suite
from ingest.errors import ConfigError


def test_a_random_policy_played_sequentially_never_breaks_the_limit() -> None:
    scenario = get_suite("budget")[4]  # 5 SKUs, K = 2, coupons
    env = CategoryEnv(scenario.catalog(), scenario.rules, scenario.horizon_weeks,
                      max_promoted=2, n_paths=40, seed=1)  # fmt: skip
    res = env.play(SequentialBudgetPolicy(RandomMaskedPolicy(3), 5, 2))
    assert (res.totals["budget_violations"] == 0).all()
    assert res.promoted.max() == 2  # random promotions fill the slots, never more


def test_bad_budget_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="budget_slots"):
        PPOConfig(shared_budget=True, budget_skus=3, budget_slots=(1, 3))
    with pytest.raises(ConfigError, match="shared_budget"):
        PPOConfig(shared_budget=True, demand_memory=True)
    with pytest.raises(ConfigError, match="max_promoted"):
        SequentialBudgetPolicy(RandomMaskedPolicy(0), 3, 3)


def test_the_training_env_is_the_sequential_one_with_the_fluid_hint() -> None:
    config = PPOConfig(
        shared_budget=True, n_envs=8, batch_size=64, horizon_range=(6, 6), budget_skus=3
    )
    rules = RULE_PROFILES["none"]
    env = make_training_env(config, rules, budget_training_catalog(30, np.random.default_rng(0)))
    assert isinstance(env, FluidHint) and isinstance(env.venv, SequentialCategoryEnv)
    assert env.venv.inner.config.horizon_weeks == 6 and env.num_envs == 8
    obs = env.reset()
    assert obs.shape[0] == 8 and obs.shape[1] > OBS_DIM + N_BUDGET  # the hint after the slots
    env.close()
