"""The single-SKU env: Gymnasium's checker, determinism, reward bookkeeping, configuration."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.config import RulesConfig
from envs.markdown import DEFAULT_SKU, EnvConfig, MarkdownEnv
from ingest.errors import ConfigError, DeadstockError
from simulator.demand import Catalog

REGISTERED = sorted(i for i in gym.registry if i.startswith("DeadStock/"))


def test_every_package_env_is_registered() -> None:
    assert set(envs.ENV_IDS) <= set(REGISTERED)


@pytest.mark.parametrize("env_id", REGISTERED)
def test_check_env(env_id: str) -> None:
    env = gym.make(env_id)
    assert env.spec is not None and env.spec.max_episode_steps == 12
    check_env(env.unwrapped, skip_render_check=True)


def _play(env: gym.Env, seed: int, policy_seed: int = 0) -> list[tuple]:
    rng = np.random.default_rng(policy_seed)
    obs, info = env.reset(seed=seed)
    trace = [(obs.tobytes(),)]
    for _ in range(40):
        allowed = np.flatnonzero(info["action_mask"])
        obs, reward, terminated, truncated, info = env.step(int(rng.choice(allowed)))
        trace.append((obs.tobytes(), reward, terminated, truncated, info["units_sold"]))
        if terminated or truncated:
            obs, info = env.reset()
    return trace


@pytest.mark.parametrize("env_id", REGISTERED)
def test_same_seed_same_episodes(env_id: str, catalog: Catalog) -> None:
    config = EnvConfig(catalog=catalog, draw_parameters=True, horizon_range=(3, 8))
    # the rules env has its own config; the learning env draws parameters itself
    own = (envs.MARKDOWN_RULES_ID, envs.MARKDOWN_LEARNING_ID)
    kwargs = {} if env_id in own else {"config": config}
    a, b = gym.make(env_id, **kwargs), gym.make(env_id, **kwargs)
    assert _play(a, seed=3) == _play(b, seed=3)
    assert _play(a, seed=3) != _play(b, seed=4)


def test_rewards_are_profit_over_stock_value_and_terms_add_up() -> None:
    rules = RulesConfig(coupon_levels=(0.0, 0.1), sell_through_target=0.9)
    params = dict(DEFAULT_SKU, dispersion=0.5, return_rate=0.1, coupon_coef=2.0)
    env = MarkdownEnv(EnvConfig(rules=rules, sku_params=params, horizon_weeks=6))
    obs, info = env.reset(seed=1)
    scale = params["initial_stock"] * params["list_price"]
    assert info["reward_scale"] == scale
    total_reward, total_objective, weeks = 0.0, 0.0, 0
    terminated = False
    while not terminated:
        obs, reward, terminated, truncated, info = env.step(3)  # 10 % off + coupon
        weeks += 1
        assert not truncated
        rebuilt = (
            info["revenue"]
            - info["coupon_cost"]
            - info["refunds"]
            - info["cogs"]
            - info["holding_cost"]
            + info["salvage"]
            - info["writeoff"]
        )
        assert info["profit"] == pytest.approx(rebuilt)
        assert info["objective"] == pytest.approx(info["profit"] - info["exit_penalty"])
        assert reward == pytest.approx(info["objective"] / scale)
        assert info["margin_given_away"] == pytest.approx(
            info["units_sold"] * params["list_price"] * 0.2
        )
        total_reward += reward
        total_objective += info["objective"]
    assert total_reward == pytest.approx(total_objective / scale)
    if info["stock_left"] > 0:  # played to the exit week: leftover salvaged and written off
        assert weeks == 6 and info["writeoff"] == pytest.approx(info["stock_left"] * 5.0)
    with pytest.raises(DeadstockError, match="reset"):
        env.step(0)


def test_penalty_charged_when_short_of_target() -> None:
    rules = RulesConfig(sell_through_target=1.0, sell_through_penalty_per_unit=0.5)
    env = MarkdownEnv(EnvConfig(rules=rules, horizon_weeks=1))
    env.reset(seed=0)
    _, _, terminated, _, info = env.step(0)
    assert terminated
    expected = info["stock_left"] * 0.5 * DEFAULT_SKU["list_price"]
    assert info["exit_penalty"] == pytest.approx(expected) and expected > 0


def test_reset_options_and_catalog_source(catalog: Catalog) -> None:
    env = MarkdownEnv(EnvConfig(catalog=catalog, horizon_weeks=4))
    _, info = env.reset(seed=0, options={"sku_index": 5, "horizon_weeks": 2})
    assert info["sku"] == catalog.sku[5] and info["horizon_weeks"] == 2
    seen = {env.reset(seed=s)[1]["sku"] for s in range(30)}
    assert len(seen) > 5  # SKUs are drawn from the catalog
    with pytest.raises(ConfigError, match="sku_index"):
        env.reset(options={"sku_index": 99})


def test_make_env_sets_time_limit_from_horizon() -> None:
    env = envs.make_env(EnvConfig(horizon_range=(4, 20)))
    assert env.spec is not None and env.spec.max_episode_steps == 20
    assert isinstance(env.unwrapped, MarkdownEnv)
    env2 = gym.make(envs.MARKDOWN_ID, horizon_weeks=5)
    assert env2.unwrapped.config.horizon_weeks == 5  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"horizon_weeks": 0}, "horizon_weeks"),
        ({"horizon_range": (5, 2)}, "horizon_range"),
        ({"invalid_action": "ignore"}, "invalid_action"),
        ({"sku_params": {"elasticity": 1.0}}, "elasticity"),
        ({"sku_params": {"colour": 1.0}}, "colour"),
        ({"catalog": Catalog.build(n_skus=1), "sku_params": {}}, "either"),
    ],
)
def test_bad_config_names_the_field(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        EnvConfig(**kwargs)


def test_out_of_space_action_is_refused() -> None:
    env = MarkdownEnv()
    env.reset(seed=0)
    with pytest.raises(DeadstockError, match="action space"):
        env.step(99)


def test_render_ansi() -> None:
    env = MarkdownEnv(render_mode="ansi")
    env.reset(seed=0)
    assert "weeks left" in (env.render() or "")
