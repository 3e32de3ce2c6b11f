"""``deadstock sweep``: the sweep file's checks, the best trial as a train config, and a tiny
real sweep on the session's local Ray (two trials, a few thousand steps) tracked in MLflow."""

from __future__ import annotations

import math

import mlflow
import pandas as pd
import pytest

from app.config import load_config
from experiments.sweep import COMPLETED, FAILED, STATUS_TAG, STOPPED, best_trial, markdown_table
from experiments.sweep_config import SweepConfig, train_config_toml
from experiments.train import TrainConfig
from ingest.errors import ConfigError

TINY = """
num_samples = 2
timesteps_per_trial = 4096
eval_episodes = 8
experiment = "{experiment}"
[asha]
max_t = 2
grace_period = 1
[ppo]
n_envs = 64
n_steps = 16
batch_size = 512
n_catalog_skus = 100
net_arch = [16, 16]
[space]
learning_rate = {{ loguniform = [1e-4, 3e-3] }}
n_epochs = {{ randint = [1, 3] }}
net_arch = {{ choice = [[16, 16], [32, 32]] }}
"""


def _load(tmp_path, text: str) -> SweepConfig:
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return load_config(SweepConfig, path)


def test_the_example_sweep_file_loads():
    config = load_config(SweepConfig, "examples/sweep_ppo.toml")
    assert config.target == "ppo" and config.num_samples == 6
    assert set(config.space) == {"learning_rate", "ent_coef", "n_epochs", "net_arch"}
    assert config.chunk_steps == 32_768  # whole rollouts of 256 x 16


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('target = "bandit"\n[space]\nn_epochs = { randint = [1, 3] }', "target = 'bandit'"),
        ('mode = "min"\n[space]\nn_epochs = { randint = [1, 3] }', "expected mode = 'max'"),
        ('data = "x"\n[space]\nn_epochs = { randint = [1, 3] }', "sweep data: not a setting"),
        ("[space]\nlearning_rate = { lognormal = [1e-4, 1e-3] }", "unknown distribution"),
        ("[space]\nn_epochs = { uniform = [1, 4] }", "n_epochs is not a real number"),
        ("[space]\nlearning_rate = { uniform = [0.1, 0.01] }", "expected low < high"),
        ("[space]\nlearning_rate = { loguniform = [0.0, 0.01] }", "0 < low < high"),
        ("[space]\nn_epochs = { randint = [1.5, 3] }", "expected integers"),
        ("[space]\nlearing_rate = { uniform = [0.1, 0.2] }", "learing_rate: unknown PPO"),
        ("[space]\nseed = { randint = [0, 3] }", "seed: cannot be searched"),
        ("[space]\nn_envs = { choice = [1024, 0] }", "value 0 is refused by PPO"),
        ("[space]\nlearning_rate = { uniform = [0.1, 0.2], choice = [0.1] }", "one distribution"),
        ("[ppo]\nseed = 3\n[space]\nn_epochs = { randint = [1, 3] }", "[ppo] seed"),
        ("[space]", "[space] is empty"),
        ('metric = "reward"\n[space]\nn_epochs = { randint = [1, 3] }', "metric = 'reward'"),
        ('profile = "coupons"\n[space]\nn_epochs = { randint = [1, 3] }', "profile = 'coupons'"),
        ("[asha]\ngrace_period = 9\n[space]\nn_epochs = { randint = [1, 3] }", "grace_period"),
        (
            "timesteps_per_trial = 1000\n[space]\nn_epochs = { randint = [1, 3] }",
            "shorter than one PPO rollout",
        ),
    ],
)
def test_a_bad_sweep_file_names_the_key_and_what_is_expected(text, expected, tmp_path):
    if "profile" in text:
        text = 'suite = "learning-smoke"\n' + text  # a suite without a coupons scenario
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert expected in str(err.value)


def test_the_best_trial_is_a_config_that_train_accepts(tmp_path):
    config = _load(tmp_path, TINY.format(experiment="x"))
    params = {"learning_rate": 7e-4, "n_epochs": 2, "net_arch": (32, 32)}
    path = tmp_path / "best.toml"
    path.write_text(train_config_toml(config, params, 98.5))
    train = load_config(TrainConfig, path)
    assert train.suite == "smoke" and train.profiles == ("none",)
    assert train.timesteps == {}  # the file's one budget holds for every profile
    ppo = train.ppo
    assert ppo.learning_rate == 7e-4 and ppo.n_epochs == 2 and ppo.net_arch == (32, 32)
    assert ppo.total_timesteps == 4096 and ppo.seed == config.seed
    assert ppo.n_envs == 64 and ppo.batch_size == 512  # the sweep's fixed settings


def test_the_best_trial_ran_its_whole_budget_and_none_when_all_failed(tmp_path):
    config = _load(tmp_path, TINY.format(experiment="x"))
    table = pd.DataFrame(
        {
            "trial": ["a", "b", "c"],
            "status": [STOPPED, COMPLETED, FAILED],
            "pct_of_dp_mean": [99.9, 97.0, math.nan],
        }
    )
    assert best_trial(table, config)["trial"] == "b"  # a stopped trial never trained fully
    assert best_trial(table.iloc[[2]], config) is None
    text = markdown_table(table)
    assert text.splitlines()[0] == "| trial | status | pct_of_dp_mean |"
    assert "| c | failed |  |" in text


def test_the_trial_table_shows_errors_only_when_a_trial_failed(tmp_path):
    from experiments.sweep import _Trial, trial_table

    config = _load(tmp_path, TINY.format(experiment="x"))
    done = _Trial("trial_000", "r0", {"n_epochs": 2}, [{"pct_of_dp_mean": 97.0}], COMPLETED)
    assert "error" not in trial_table([done], config).columns
    broken = _Trial("trial_001", "r1", {"n_epochs": 1}, [], FAILED, "ValueError: a | b")
    table = trial_table([done, broken], config)
    assert list(table["error"]) == ["", "ValueError: a | b"]
    assert list(table.columns[-2:]) == ["error", "run_id"]
    text = markdown_table(table.drop(columns=["run_id"]))
    assert text.splitlines()[-1].endswith("| ValueError: a \\| b |")  # the row stays one row


@pytest.mark.slow
def test_a_tiny_sweep_logs_its_trials_under_one_parent_and_is_seeded(ray_local, tmp_path):
    from experiments.sweep import BEST_CONFIG, TRIALS_CSV, TRIALS_MD, run_sweep

    config = _load(tmp_path, TINY.format(experiment="sweep-test"))
    first = run_sweep(config, tmp_path / "a")
    table = first.trials
    assert len(table) == 2 and set(table["status"]) <= {COMPLETED, STOPPED}
    assert (table["reports"] >= 1).all() and table["pct_of_dp_mean"].notna().all()
    assert (tmp_path / "a" / TRIALS_CSV).exists() and (tmp_path / "a" / TRIALS_MD).exists()
    assert first.best_config == tmp_path / "a" / BEST_CONFIG
    best = load_config(TrainConfig, first.best_config)
    assert best.ppo.learning_rate == pytest.approx(
        float(table.loc[table["trial"] == first.best["trial"], "learning_rate"].iloc[0])
    )
    experiment = mlflow.get_experiment_by_name("sweep-test")
    runs = mlflow.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{first.parent_run_id}'",
    )
    assert sorted(runs["tags.mlflow.runName"]) == ["trial_000", "trial_001"]
    assert set(runs["status"]) == {"FINISHED"}
    assert set(runs[f"tags.{STATUS_TAG}"]) == set(table["status"])
    assert runs["metrics.pct_of_dp_mean"].notna().all()
    assert set(runs["params.learning_rate"]) == {str(v) for v in table["learning_rate"]}
    parent = mlflow.get_run(first.parent_run_id)
    assert parent.data.metrics["best/pct_of_dp_mean"] == pytest.approx(first.best["pct_of_dp_mean"])
    # same file, same trials and scores
    again = run_sweep(config, tmp_path / "b")
    cols = [c for c in table.columns if c != "run_id"]
    pd.testing.assert_frame_equal(table[cols], again.trials[cols])
