"""deadstock train / evaluate / compare end to end on a tiny budget."""

from __future__ import annotations

import json

import pytest

from app.cli.main import main
from experiments.policy_model import CHAMPION_ALIAS, REGISTERED_NAME

TINY_TOML = """
profiles = ["none"]
suite = "smoke"
curve_every = 2048
curve_episodes = 20
eval_episodes = 40
experiment = "tests-agents-cli"
[ppo]
total_timesteps = 4096
n_envs = 64
n_steps = 16
batch_size = 256
n_epochs = 1
net_arch = [16]
n_catalog_skus = 50
checkpoint_every = 2048
"""


@pytest.mark.slow
def test_train_evaluate_compare(tmp_path, capsys):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY_TOML)
    out = tmp_path / "out"
    train = ["train", "--config", str(cfg), "--seed", "2", "--out", str(out)]
    assert main([*train, "--keep-snapshots", "--members", "2"]) == 0
    assert (out / "none" / "model.zip").is_file()
    # the second ensemble member trained from a seed of its own, beside the run's network
    second = out / "none" / "members" / "m1" / "model.zip"
    assert second.read_bytes() != (out / "none" / "model.zip").read_bytes()
    # every checkpoint was kept (2,048 and 4,096 steps; the last is the final model)
    assert len(list((out / "none" / "snapshots").glob("model_*.zip"))) == 2
    assert (out / "figures" / "learning_curve.png").is_file()
    assert (out / "figures" / "policy_map_none-base.png").is_file()
    printed = capsys.readouterr().out
    assert "ppo" in printed and "fluid" in printed and "ppo_ens" in printed

    rows_path = tmp_path / "rows.json"
    code = main(
        [
            "evaluate",
            "--agents",
            "ppo,dp,fluid",
            "--model",
            str(out),
            "--model",
            f"models:/{REGISTERED_NAME}@{CHAMPION_ALIAS}",
            "--suite",
            "smoke",
            "--episodes",
            "30",
            "--out",
            str(rows_path),
            "--experiment",
            "tests-agents-cli",
        ]
    )
    assert code == 0
    rows = json.loads(rows_path.read_text())
    keys = {
        "agent",
        "scenario",
        "profit_mean",
        "profit_ci",
        "pct_of_dp",
        "pct_of_dp_ci",
        "sell_through",
        "leftover_units",
        "margin_given_away",
        "violations",
    }
    assert keys <= set(rows[0])
    # only the profile the model covers is evaluated; both PPO sources are the same policy
    assert {r["scenario"] for r in rows} == {"none-base"}
    ppo = {r["agent"]: r for r in rows if r["agent"].startswith("ppo")}
    # the folder's kept snapshots add ppo_snap (the guard choosing among them), its ensemble
    # members ppo_ens; the MLflow model has neither
    assert set(ppo) == {"ppo/0", "ppo_snap/0", "ppo_ens/0", "ppo/1"}
    assert ppo["ppo/0"]["profit_mean"] == ppo["ppo/1"]["profit_mean"]
    assert all(r["violations"] == 0 for r in rows)
    capsys.readouterr()

    plot = tmp_path / "cmp.png"
    assert main(["compare", "--experiment", "tests-agents-cli", "--plot", str(plot)]) == 0
    table = capsys.readouterr().out
    assert "ppo" in table and "fluid" in table and "dp" in table
    assert plot.is_file()

    # resuming a finished run trains no further and keeps the step count
    assert main(train) == 0
    state = json.loads((out / "none" / "state.json").read_text())
    assert state["num_timesteps"] >= 4096


def test_bad_config_is_a_clean_error(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[ppo]\nlearning_rate = -1\n")
    assert main(["train", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "ppo.learning_rate" in err and "Traceback" not in err
    assert main(["train", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["evaluate", "--agents", "ppo"]) == 2
    assert "--model" in capsys.readouterr().err


def test_list_suites_and_every_agent_of_the_learning_suite(tmp_path, capsys):
    assert main(["evaluate", "--list-suites"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed][:4] == [
        "standard",
        "smoke",
        "learning",
        "learning-smoke",
    ]
    out = tmp_path / "rows.json"
    args = ["evaluate", "--suite", "learning-smoke", "--episodes", "12", "--no-track"]
    assert main([*args, "--agents", "all", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    agents = {r["agent"] for r in rows}
    assert agents == {
        "oracle", "dp_ce", "dp_resolve", "thompson", "qmdp", "lookahead", "prior", "fluid", "none",
        "ladder", "cover", "myopic",
    }  # fmt: skip
    for r in rows:
        assert r["reference"] == "oracle" and r["suite_version"] == "learning-v1"
        assert {"pct_of_reference", "pct_of_reference_ci", "profit_mean", "violations"} <= set(r)
    printed = capsys.readouterr().out
    assert "% of the oracle" in printed
    # an agent of another market is refused by name
    assert main([*args, "--agents", "dp"]) == 2
    assert "learning-smoke" in capsys.readouterr().err


@pytest.mark.slow
def test_train_and_evaluate_in_the_learning_market(tmp_path, capsys):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        TINY_TOML.replace('suite = "smoke"', 'suite = "learning-smoke"').replace(
            "[ppo]", "[timesteps]\nlearning-none = 4096\n[ppo]"
        )
    )
    out = tmp_path / "out"
    assert main(["train", "--config", str(cfg), "--seed", "1", "--out", str(out)]) == 0
    assert (out / "learning-none" / "model.zip").is_file()
    state = json.loads((out / "learning-none" / "state.json").read_text())
    assert state["config"]["belief_grid"] == 9
    rows_path = tmp_path / "rows.json"
    code = main(
        [
            "evaluate", "--suite", "learning-smoke", "--agents", "ppo,oracle,prior",
            "--model", str(out), "--episodes", "16", "--no-track", "--out", str(rows_path),
        ]
    )  # fmt: skip
    assert code == 0
    rows = json.loads(rows_path.read_text())
    assert {r["agent"] for r in rows} == {"ppo", "oracle", "prior"}
    assert {r["scenario"] for r in rows} == {"learn-none-base"}
    ppo = next(r for r in rows if r["agent"] == "ppo")
    assert ppo["violations"] == 0 and ppo["gain_vs_prior_pct"] is not None
