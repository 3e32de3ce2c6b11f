"""The one config loader: layers and their precedence, the quick preset, strict types, unknown
keys with a suggestion, and the train file's shorthands."""

from __future__ import annotations

from dataclasses import fields

import pytest

from agents.ppo import PPOConfig
from app.config import field_default, load_config, read_toml
from app.demand import DemandFitConfig, SimulateConfig
from app.pipeline_config import DEFAULT_PPO, DEFAULT_RULES, QUICK_PRESET, PipelineConfig
from envs.config import RulesConfig
from experiments.evaluate import EvalConfig
from experiments.train import PROFILE_TIMESTEPS, TrainConfig, ppo_for_profile
from ingest.errors import ConfigError
from planning.whatif import WhatIfConfig
from risk_model.backtest import BacktestConfig, RiskModelSetup
from risk_model.models import XGBoostParams
from risk_model.scoring import RiskConfig
from simulator.stock import StockAssumptions


def _toml(tmp_path, text: str, name: str = "plan.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_load_without_a_file():
    cfg = load_config(PipelineConfig)
    assert cfg == PipelineConfig()
    assert cfg.rules == DEFAULT_RULES and cfg.ppo == DEFAULT_PPO
    assert cfg.fit.stock == StockAssumptions()
    # The run's risk default leaves out the retailer's own markdowns (no circular score).
    assert cfg.risk.features.price_change_features is False


def test_a_partial_section_keeps_the_runs_own_defaults(tmp_path):
    path = _toml(tmp_path, "[rules]\nmax_discount = 0.5\n[ppo]\nlearning_rate = 0.002\n")
    cfg = load_config(PipelineConfig, path)
    # Built on DEFAULT_RULES / DEFAULT_PPO, not on RulesConfig() / PPOConfig().
    assert cfg.rules.discount_levels == DEFAULT_RULES.discount_levels
    assert cfg.rules.markdown_only and cfg.rules.max_discount == 0.5
    assert cfg.ppo.total_timesteps == DEFAULT_PPO.total_timesteps
    assert cfg.ppo.learning_rate == 0.002


def test_precedence_defaults_preset_file_flags(tmp_path):
    quick = load_config(PipelineConfig, quick=True)
    assert quick.quick
    for dotted, value in QUICK_PRESET.items():
        assert field_default(PipelineConfig, dotted) != value, dotted  # the preset changes it
        obj = quick
        for part in dotted.split("."):
            obj = getattr(obj, part)
        assert obj == value, dotted
    path = _toml(tmp_path, "[evaluation]\nn_episodes = 40\n[selection]\nmax_skus = 7\n")
    cfg = load_config(
        PipelineConfig, path, quick=True, overrides={"selection.max_skus": 3, "seed": None}
    )
    assert cfg.evaluation.n_episodes == 40  # file over preset
    assert cfg.selection.max_skus == 3  # flag over file
    assert cfg.seed == 0  # None = flag not given
    assert cfg.ppo.total_timesteps == QUICK_PRESET["ppo.total_timesteps"]  # preset kept
    # quick = true in the file asks for the preset too
    assert load_config(PipelineConfig, _toml(tmp_path, "quick = true\n", "q.toml")).risk.models == (
        "lr",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("horizon_weeks = 6.5", "plan.toml horizon_weeks = 6.5: expected an integer"),
        ('horizon_weeks = "twelve"', 'plan.toml horizon_weeks = "twelve": expected an integer'),
        ("seed = true", "plan.toml seed = true: expected an integer"),
        ("[evaluation]\nn_episodes = 40.5", "plan.toml [evaluation] n_episodes = 40.5"),
        ("[fit.stock]\nvelocity_weeks = 6.5", "plan.toml [fit.stock] velocity_weeks = 6.5"),
        ('[selection]\ntiers = "high"', "expected a list of strings"),
        ("[rules]\ndiscount_levels = [0.0, 'x']", "[rules] discount_levels[1]"),
        ('[risk.label]\nkind = "nope"', '[risk.label] kind = "nope": expected one of'),
        ("fit = 3", "plan.toml fit = 3: expected a table [fit]"),
        ("horizon_weeks = 60", "plan.toml: horizon_weeks = 60: expected 2..52"),
        ("[fit.stock]\nsalvage_share = 2.0", "[fit.stock]: stock.salvage_share = 2.0"),
        ("[rules]\ndiscount_levels = [0.1]", "[rules]: rules.discount_levels"),
        ('[risk]\nmodels = ["svm"]', "[risk]: RiskStageConfig.models"),
        ("[evaluation]\nqmdp_grid = 11", "evaluation.qmdp_grid = 11: expected 0 (off) to 9"),
    ],
)
def test_bad_values_name_the_file_key_value_and_expectation(tmp_path, text, expected):
    with pytest.raises(ConfigError) as err:
        load_config(PipelineConfig, _toml(tmp_path, text))
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("horizn_weeks = 3", "plan.toml horizn_weeks: unknown key; did you mean 'horizon_weeks'?"),
        ("[fitt]\nn_harmonics = 1", "plan.toml fitt: unknown key; did you mean 'fit'?"),
        ("[fit.stock]\nvelocty_weeks = 3", "did you mean 'velocity_weeks'?"),
        # a key in the wrong table: the loader names its table
        (
            "[fit]\nvelocity_weeks = 3",
            "[fit] velocity_weeks: unknown key; did you mean [fit.stock]",
        ),
        ("[ppo]\nn_epoch = 2", "[ppo] n_epoch: unknown key; did you mean 'n_epochs'?"),
        ("zzz = 1", "plan.toml zzz: unknown key; expected one of data, out_dir"),
        # keys the run sets itself, and keys that moved, are refused with the reason
        ("[ppo]\nseed = 3", "plan.toml [ppo] seed: the policy stage's seed is spawned"),
        ("[risk]\nseed = 3", "plan.toml [risk] seed: the risk stage's seed"),
        ("quick_max_skus = 12", "--quick applies the quick preset"),
        ("[evaluation]\nquick_n_episodes = 40.5", "[evaluation] quick_n_episodes: --quick"),
        ("[stock]\nsalvage_rate = 0.1", "now [fit.stock]"),
    ],
)
def test_unknown_keys_are_refused_with_the_nearest_name(tmp_path, text, expected):
    with pytest.raises(ConfigError) as err:
        load_config(PipelineConfig, _toml(tmp_path, text))
    assert expected in str(err.value)


def test_files_that_cannot_be_read(tmp_path):
    with pytest.raises(ConfigError, match="is a folder; expected a TOML file"):
        read_toml(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(PipelineConfig, tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(PipelineConfig, _toml(tmp_path, "x = ["))
    (tmp_path / "latin.toml").write_bytes("data = 'caf\xe9'".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(PipelineConfig, tmp_path / "latin.toml")


def test_overrides_are_checked_like_file_values():
    with pytest.raises(ConfigError, match='command line: evaluation.n_episodes = "x"'):
        load_config(PipelineConfig, overrides={"evaluation.n_episodes": "x"})
    with pytest.raises(ConfigError, match="command line: seed = -1: expected >= 0"):
        load_config(PipelineConfig, overrides={"seed": -1})
    with pytest.raises(ConfigError, match="catalog is missing: expected a string"):
        load_config(SimulateConfig)


def test_every_command_config_loads_through_the_one_loader(tmp_path):
    """run, train, demand fit, evaluate, simulate, what-if, risk backtest/train, rules."""
    assert load_config(TrainConfig).ppo == PPOConfig()
    assert load_config(DemandFitConfig, overrides={"fit.n_harmonics": 1}).fit.n_harmonics == 1
    assert load_config(EvalConfig, overrides={"suite": "smoke"}).suite == "smoke"
    sim = load_config(SimulateConfig, overrides={"catalog": "c.parquet", "skus": ("a",)})
    assert sim.skus == ("a",)
    assert load_config(WhatIfConfig, overrides={"sku": "a"}).sku == "a"
    bt = load_config(BacktestConfig, overrides={"models": ("lr",), "label.horizon_weeks": 10})
    assert bt.models == ("lr",) and bt.label.horizon_weeks == 10
    assert load_config(RiskConfig, overrides={"n_drivers": 2}).n_drivers == 2
    rules = _toml(tmp_path, "[rules]\ndiscount_levels = [0.0, 0.5]\n[ppo]\nn_epochs = 1\n")
    assert load_config(RulesConfig, rules, section="rules").discount_levels == (0.0, 0.5)


def test_backtest_and_risk_configs_share_one_setup():
    shared = {f.name for f in fields(RiskModelSetup)}
    assert len(shared) == 12  # with the hyperparameters lr, rf, xgb
    assert shared <= {f.name for f in fields(BacktestConfig)}
    assert shared <= {f.name for f in fields(RiskConfig)}
    risk = RiskConfig(
        models=("lr",), train_offsets=(0, 2), val_share=0.3, seed=5, xgb=XGBoostParams(gamma=1.0)
    )
    bt = BacktestConfig(**risk.setup(), train_cutoff=10, test_cutoff=30)
    assert bt.setup() == risk.setup()
    with pytest.raises(ConfigError, match="RiskConfig.val_share"):
        RiskConfig(val_share=1.5)
    with pytest.raises(ConfigError, match="BacktestConfig.models"):
        BacktestConfig(models=("svm",))


# ---------------------------------------------------------------------- train config files
def test_train_file_with_seed_override(tmp_path):
    path = _toml(
        tmp_path,
        'profiles = ["none", "all"]\ncurve_every = 0\n[ppo]\nseed = 1\nnet_arch = [64, 64]\n',
    )
    cfg = load_config(TrainConfig, path, overrides={"ppo.seed": 9})
    assert cfg.profiles == ("none", "all") and cfg.curve_every == 0
    assert cfg.ppo.seed == 9 and cfg.ppo.net_arch == (64, 64)
    assert load_config(TrainConfig).ppo.seed == 0


def test_train_file_steps_per_profile(tmp_path):
    default = load_config(TrainConfig)
    assert default.timesteps == PROFILE_TIMESTEPS
    assert ppo_for_profile(default, "all").total_timesteps == PROFILE_TIMESTEPS["all"]
    cfg = load_config(TrainConfig, _toml(tmp_path, "[timesteps]\nall = 123\n"))
    assert ppo_for_profile(cfg, "all").total_timesteps == 123
    assert ppo_for_profile(cfg, "none").total_timesteps == PROFILE_TIMESTEPS["none"]
    # one budget in [ppo] and no [timesteps]: that budget for every profile
    cfg = load_config(TrainConfig, _toml(tmp_path, "[ppo]\ntotal_timesteps = 4096\n"))
    assert {ppo_for_profile(cfg, p).total_timesteps for p in PROFILE_TIMESTEPS} == {4096}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("profiles = ['nope']", "train.profiles"),
        ("colour = 1", "colour: unknown key"),
        ("[ppo]\nn_epoch = 2", "did you mean 'n_epochs'"),
        ("compare_with = ['oracle']", "unknown baseline"),
        ("profiles = [", "not valid TOML"),
        ("[timesteps]\nmarkdwn = 10", "train.timesteps"),
        ("[timesteps]\nall = -1", "train.timesteps"),
        ("timesteps = 5", "timesteps = 5: expected a table of integers"),
        ("[ppo]\nbatch_size = 100000", "ppo.batch_size"),
        ("members = 0", r"train.members = 0: expected a whole number of networks >= 1"),
        ("members = 1.5", r"bad.toml members = 1.5: expected an integer"),
        ("suite = 'budget'\nmembers = 2", "the budget market guards each category"),
    ],
)
def test_bad_train_files(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        load_config(TrainConfig, _toml(tmp_path, text, "bad.toml"))
