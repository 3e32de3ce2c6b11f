"""Masked PPO: config validation, the fluid hint, a tiny run that learns, checkpoint resume."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from agents.baselines import NoMarkdown
from agents.ppo import (
    HINT_FIELDS,
    PPOConfig,
    PPOPolicy,
    hint_features,
    load_checkpoint_state,
    make_training_env,
    train_ppo,
)
from envs.observation import OBS_DIM, OBS_NAMES
from envs.rules import initial_decision_state
from experiments.evaluate import play
from experiments.suite import get_suite
from ingest.errors import ConfigError
from simulator.demand import Catalog

TINY = PPOConfig(
    total_timesteps=4096,
    n_envs=64,
    n_steps=16,
    batch_size=256,
    n_epochs=2,
    net_arch=(16,),
    n_catalog_skus=50,
    checkpoint_every=2048,
    seed=3,
)


def test_config_validation_names_the_field():
    with pytest.raises(ConfigError, match="ppo.batch_size"):
        replace(TINY, batch_size=10_000)
    with pytest.raises(ConfigError, match="ppo.gamma"):
        replace(TINY, gamma=0.0)
    with pytest.raises(ConfigError, match="ppo.device"):
        replace(TINY, device="tpu")
    with pytest.raises(ConfigError, match="unknown ppo setting"):
        PPOConfig.from_dict({"learning_rat": 1e-3})
    cfg = PPOConfig.from_dict({"net_arch": [8, 8], "seed": 4})
    assert cfg.net_arch == (8, 8) and cfg.seed == 4


def test_fluid_hint_is_the_closed_form_runout_price():
    cat = Catalog.build(
        n_skus=3,
        elasticity=[-2.0, -0.5, -2.0],
        holding_cost_per_unit_week=[0.0, 0.01, 0.0],
        dispersion=[0.0, 0.3, 0.0],
    )
    dec = initial_decision_state(cat, 11, _rules())
    obs = np.zeros((3, OBS_DIM), np.float32)
    obs[:, OBS_NAMES.index("elasticity")] = cat.elasticity / 4
    obs[:, OBS_NAMES.index("demand_cover")] = [0.5, 0.5, 2.0]
    h = hint_features(obs, cat, dec)
    assert h.shape == (3, len(HINT_FIELDS))
    # run-out price p = cover ** (1 / |e|): 0.5 ** 0.5; inelastic SKUs stay at list price;
    # a SKU that sells out at list price needs no discount.
    np.testing.assert_allclose(h[:, 0], [1 - 0.5**0.5, 0.0, 0.0], atol=1e-6)
    assert h[1, 2] == pytest.approx(0.01 * 10)
    assert h[1, 3] == pytest.approx(0.3)


def _rules():
    from envs.config import RulesConfig

    return RulesConfig()


def test_training_env_appends_hints_and_keeps_masks():
    cat = get_suite()[0].catalog()
    env = make_training_env(TINY, get_suite()[0].rules, cat)
    obs = env.reset()
    assert obs.shape == (TINY.n_envs, OBS_DIM + len(HINT_FIELDS))
    assert env.action_masks().shape == (TINY.n_envs, 8)
    plain = make_training_env(replace(TINY, fluid_hint=False), get_suite()[0].rules, cat)
    assert plain.reset().shape == (TINY.n_envs, OBS_DIM)


@pytest.mark.slow
def test_tiny_training_beats_no_markdown_on_an_easy_scenario():
    scenario = get_suite()[0]  # none-base: no markdown leaves ~40 % of the stock
    cfg = replace(
        TINY,
        total_timesteps=12_000,
        n_epochs=4,
        net_arch=(32,),
        learning_rate=3e-3,
        horizon_range=(scenario.horizon_weeks, scenario.horizon_weeks),
    )
    result = train_ppo(cfg, scenario.rules, scenario.catalog())
    ppo = play(PPOPolicy(result.model), scenario, n_episodes=300, seed=11)
    none = play(NoMarkdown(), scenario, n_episodes=300, seed=11)
    assert ppo["violations"].sum() == 0
    gain = ppo["objective"].to_numpy() - none["objective"].to_numpy()
    # paired (CRN) difference: clearly positive, not noise
    assert gain.mean() > 3 * gain.std(ddof=1) / np.sqrt(gain.size)
    assert ppo["objective"].mean() > 1.1 * none["objective"].mean()


def test_checkpoint_resume_continues_the_step_count(tmp_path):
    scenario = get_suite()[0]
    first = train_ppo(TINY, scenario.rules, scenario.catalog(), checkpoint_dir=tmp_path)
    state = load_checkpoint_state(tmp_path)
    assert state is not None and state["num_timesteps"] == first.num_timesteps >= 4096
    assert first.resumed_from == 0
    longer = replace(TINY, total_timesteps=8192)
    second = train_ppo(longer, scenario.rules, scenario.catalog(), checkpoint_dir=tmp_path)
    assert second.resumed_from == first.num_timesteps
    assert second.num_timesteps >= 8192
    assert load_checkpoint_state(tmp_path)["num_timesteps"] == second.num_timesteps
    # the saved model loads as a policy and acts within the masks
    policy = PPOPolicy.load(tmp_path)
    assert policy.requires_context
    totals = play(policy, scenario, n_episodes=20, seed=1)
    assert totals["violations"].sum() == 0
