"""Train config files and training catalogs: parsed or refused with a clear message."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.suite import training_catalog
from experiments.train import (
    PROFILE_TIMESTEPS,
    TrainConfig,
    load_config,
    ppo_for_profile,
)
from ingest.errors import ConfigError, DataError
from simulator.demand import read_catalog


def test_toml_config_with_seed_override(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        'profiles = ["none", "all"]\ncurve_every = 0\n[ppo]\nseed = 1\nnet_arch = [64, 64]\n'
    )
    cfg = load_config(path, seed=9)
    assert cfg.profiles == ("none", "all") and cfg.curve_every == 0
    assert cfg.ppo.seed == 9 and cfg.ppo.net_arch == (64, 64)
    assert load_config(None).ppo.seed == 0


def test_steps_per_profile(tmp_path):
    default = load_config(None)
    assert default.timesteps == PROFILE_TIMESTEPS
    assert ppo_for_profile(default, "all").total_timesteps == PROFILE_TIMESTEPS["all"]
    path = tmp_path / "c.toml"
    path.write_text("[timesteps]\nall = 123\n")
    cfg = load_config(path)
    assert ppo_for_profile(cfg, "all").total_timesteps == 123
    assert ppo_for_profile(cfg, "none").total_timesteps == PROFILE_TIMESTEPS["none"]
    # one budget in [ppo] and no [timesteps]: that budget for every profile
    path.write_text("[ppo]\ntotal_timesteps = 4096\n")
    cfg = load_config(path)
    assert {ppo_for_profile(cfg, p).total_timesteps for p in PROFILE_TIMESTEPS} == {4096}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("profiles = ['nope']", "train.profiles"),
        ("colour = 1", "unknown setting"),
        ("[ppo]\nn_epoch = 2", "unknown ppo setting"),
        ("compare_with = ['oracle']", "unknown baseline"),
        ("profiles = [", "not valid TOML"),
        ("[timesteps]\nmarkdwn = 10", "train.timesteps"),
        ("[timesteps]\nall = -1", "train.timesteps"),
        ("timesteps = 5", "must be a table"),
    ],
)
def test_bad_config_files(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_training_catalog_file_round_trip(tmp_path):
    cat = training_catalog(20, np.random.default_rng(0), profile="none")
    path = tmp_path / "cat.parquet"
    cat.to_frame().to_parquet(path)
    back = read_catalog(path)
    np.testing.assert_allclose(back.elasticity, cat.elasticity)
    with pytest.raises(DataError, match="not found"):
        read_catalog(tmp_path / "missing.parquet")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataError, match="expected a .parquet or .csv"):
        read_catalog(tmp_path / "x.json")
    assert TrainConfig(catalog=str(path)).catalog == str(path)
