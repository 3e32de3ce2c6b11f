"""The MLflow pyfunc policy: round trip equals the in-memory policy; bad input is refused."""

from __future__ import annotations

import gymnasium as gym
import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from sb3_contrib import MaskablePPO

from agents.ppo import PPOPolicy
from envs.observation import OBS_DIM, OBS_HIGH, OBS_LOW
from experiments import tracking
from experiments.policy_model import (
    CHAMPION_ALIAS,
    REGISTERED_NAME,
    PolicyModel,
    example_input,
    log_policy_model,
)
from experiments.suite import RULE_PROFILES
from ingest.errors import DataError


class _SpacesOnly(gym.Env):
    """Just the spaces, to build an (untrained, random-weight) MaskablePPO."""

    def __init__(self, n_actions: int) -> None:
        self.observation_space = gym.spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32)
        self.action_space = gym.spaces.Discrete(n_actions)

    def reset(self, *, seed=None, options=None):
        return np.zeros(OBS_DIM, np.float32), {}

    def step(self, action):
        return np.zeros(OBS_DIM, np.float32), 0.0, True, False, {}

    def action_masks(self):
        return np.ones(self.action_space.n, bool)


@pytest.fixture(scope="module")
def saved_policy(tmp_path_factory):
    torch.manual_seed(0)
    rules = RULE_PROFILES["all"]
    model = MaskablePPO(
        "MlpPolicy",
        _SpacesOnly(rules.n_actions),
        n_steps=8,
        batch_size=8,
        seed=3,
        policy_kwargs={"net_arch": [16]},
    )
    path = tmp_path_factory.mktemp("pol") / "all.zip"
    model.save(path)
    return path, rules


def _frame(rules, n=12):
    rng = np.random.default_rng(0)
    f = pd.concat([example_input(rules, "all", 3)] * (n // 3), ignore_index=True)
    f["weeks_left"] = rng.integers(1, 13, n)
    f["stock"] = rng.uniform(0, 200, n).round()
    f["depth_index"] = rng.integers(0, 3, n)
    f["weeks_since_change"] = rng.integers(1, 5, n)
    f["elasticity"] = rng.uniform(-4, -1, n)
    return f


def test_pyfunc_round_trip_matches_in_memory_policy(saved_policy):
    path, rules = saved_policy
    frame = _frame(rules)
    memory = PolicyModel.from_policies({"all": PPOPolicy.load(path)}, {"all": rules})
    expected = memory.predict(None, frame)
    with tracking.start_run("test__pyfunc", experiment="tests-pyfunc"):
        info = log_policy_model({"all": path}, {"all": rules}, example=frame.head(3))
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    got = loaded.predict(frame)
    np.testing.assert_array_equal(got["action"].to_numpy(), expected["action"].to_numpy())
    assert len(got) == len(frame)
    # registered with the champion alias, loadable by alias
    by_alias = mlflow.pyfunc.load_model(f"models:/{REGISTERED_NAME}@{CHAMPION_ALIAS}")
    np.testing.assert_array_equal(by_alias.predict(frame)["action"], expected["action"])
    assert loaded.metadata.signature is not None
    # actions obey the rules: depth never below the one in force (markdown-only)
    di, _ = rules.decode(got["action"].to_numpy())
    assert np.all(di >= frame["depth_index"].to_numpy())


def test_schedule_mode_is_seeded_and_runs_to_exit(saved_policy):
    path, rules = saved_policy
    model = PolicyModel.from_policies({"all": PPOPolicy.load(path)}, {"all": rules})
    frame = example_input(rules, "all", 2)
    a = model.predict(None, frame, params={"mode": "schedule", "seed": 5})
    b = model.predict(None, frame, params={"mode": "schedule", "seed": 5})
    pd.testing.assert_frame_equal(a, b)
    weeks = a.groupby("sku_row")["week_index"].max().to_numpy()
    np.testing.assert_array_equal(weeks + 1, frame["weeks_left"].to_numpy())
    assert (a["stock"] >= 0).all()


def test_bad_input_is_a_data_error(saved_policy):
    path, rules = saved_policy
    model = PolicyModel.from_policies({"all": PPOPolicy.load(path)}, {"all": rules})
    frame = example_input(rules, "all", 2)
    with pytest.raises(DataError, match="missing column"):
        model.predict(None, frame.drop(columns=["elasticity"]))
    with pytest.raises(DataError, match="profile"):
        model.predict(None, frame.assign(profile="nope"))
    with pytest.raises(DataError, match="weeks_left"):
        model.predict(None, frame.assign(weeks_left=0))
