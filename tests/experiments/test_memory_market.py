"""The memory suite and market: registered, scored against the augmented-state DP on common
random numbers, every applicable agent played, memory training catalogs in range."""

from __future__ import annotations

import numpy as np
import pytest

from agents.ppo import PPOConfig
from experiments.evaluate import (
    EvalConfig,
    baseline_factories,
    evaluate_suite,
    reference_agent,
    select_agents,
    suite_lines,
)
from experiments.suite import (
    FATIGUE_RATE,
    MEMORY_SENSITIVITY,
    MEMORY_SUITE_VERSION,
    MEMORY_WEIGHT,
    catalog_fn_for,
    get_spec,
    policy_keys,
)
from experiments.train import MEMORY_PPO, PROFILE_TIMESTEPS, TrainConfig, ppo_for_profile
from ingest.errors import ConfigError


def test_memory_suite_is_registered_with_memory_that_matters():
    spec = get_spec("memory")
    assert spec.version == MEMORY_SUITE_VERSION and spec.reference == "augmented_dp"
    assert reference_agent("memory") == "augmented_dp"
    assert any(line.startswith("memory ") for line in suite_lines())
    for s in spec.scenarios:
        cat = s.catalog()
        assert cat.ref_price_sensitivity[0] >= 0.5 and 0.5 <= cat.ref_price_memory[0] < 1
    assert any(s.fatigue_rate >= 0.08 for s in spec.scenarios)
    assert any(s.fatigue_rate == 0 for s in spec.scenarios)  # reference price alone
    keys = policy_keys()
    assert {"memory-none", "memory-coupons", "memory-markdown"} <= set(keys)
    # every memory policy has a step budget
    assert all(k in PROFILE_TIMESTEPS for k in keys if k.startswith("memory-"))
    assert ppo_for_profile(TrainConfig(suite="memory"), "memory-none").demand_memory


def test_memory_market_has_its_own_ppo_defaults_that_a_given_setting_keeps():
    general = PPOConfig()
    assert MEMORY_PPO["n_epochs"] != general.n_epochs
    ppo = ppo_for_profile(TrainConfig(suite="memory"), "memory-coupons")
    assert ppo.n_epochs == MEMORY_PPO["n_epochs"]
    assert ppo.total_timesteps == PROFILE_TIMESTEPS["memory-coupons"]
    # the other markets keep the general default
    assert ppo_for_profile(TrainConfig(suite="standard"), "none").n_epochs == general.n_epochs
    assert (
        ppo_for_profile(TrainConfig(suite="learning"), "learning-none").n_epochs == general.n_epochs
    )
    # a value set in [ppo], or given explicitly at the general default, wins
    mine = TrainConfig(suite="memory", ppo=PPOConfig(n_epochs=3))
    assert ppo_for_profile(mine, "memory-none").n_epochs == 3
    kept = TrainConfig(suite="memory", ppo=PPOConfig(n_epochs=2), ppo_given=("n_epochs",))
    assert ppo_for_profile(kept, "memory-none").n_epochs == 2


def test_memory_agents_and_bad_names():
    agents = select_agents(["all"], "memory")
    assert {"dp_blind", "prior", "fluid", "augmented_dp", "ppo"} <= set(agents)
    assert "dp_blind" not in baseline_factories("standard")
    with pytest.raises(ConfigError, match="dp_blind"):
        select_agents(["dp_blind"], "standard")


def test_memory_training_catalog_is_in_range():
    cat = catalog_fn_for(get_spec("memory"), "markdown")(400, np.random.default_rng(3))
    assert MEMORY_SENSITIVITY[0] <= cat.ref_price_sensitivity.min()
    assert cat.ref_price_sensitivity.max() <= MEMORY_SENSITIVITY[1]
    assert MEMORY_WEIGHT[0] <= cat.ref_price_memory.min() <= cat.ref_price_memory.max() <= 0.9
    tired = cat.fatigue_rate > 0
    assert 0.5 < tired.mean() < 0.9 and cat.fatigue_rate.max() <= FATIGUE_RATE[1]


def test_memory_evaluation_scores_against_the_augmented_dp():
    config = EvalConfig(suite="memory-smoke", n_episodes=300, seed=5)
    base = baseline_factories("memory")
    agents = {k: base[k] for k in ("prior", "dp_blind", "none")}
    rows = evaluate_suite(config, agents, progress=False)
    assert set(rows["agent"]) == {"augmented_dp", "prior", "dp_blind", "none"}
    assert (rows["reference"] == "augmented_dp").all()
    assert rows["pct_of_dp"].isna().all()  # the reference is not an exact DP
    ref = rows[rows["agent"] == "augmented_dp"]
    np.testing.assert_allclose(ref["pct_of_reference"], 100.0)
    np.testing.assert_allclose(ref["profit_mean"], ref["reference_value"], rtol=0.02)
    assert (rows["violations"] == 0).all()
    # memory-blind planners leave value on the table, beyond the paired CI
    blind = rows[rows["agent"].isin(["dp_blind", "prior"])]
    assert (blind["pct_of_reference"] + blind["pct_of_reference_ci"] < 100.0).all()
