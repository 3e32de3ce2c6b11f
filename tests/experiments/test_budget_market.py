"""The budget suite and market: registry, categories, evaluation from the command line."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from agents.lagrangian import CategoryDPPolicy, solve_category, solve_weekly
from agents.ppo import PPOConfig
from app.cli.main import main
from experiments.budget_market import category, category_env
from experiments.suite import (
    BUDGET_STOCK,
    BUDGET_SUITE_VERSION,
    CategoryScenario,
    catalog_fn_for,
    get_spec,
    get_suite,
    policy_keys,
)
from experiments.train import BUDGET_PPO, PROFILE_TIMESTEPS, TrainConfig, ppo_for_profile
from ingest.errors import ConfigError


def test_budget_suite_is_registered_with_binding_categories() -> None:
    spec = get_spec("budget")
    assert spec.version == BUDGET_SUITE_VERSION == "budget-v1"
    assert spec.market == "budget" and spec.reference == "lagrangian_bound"
    assert len(spec.scenarios) >= 5
    for s in spec.scenarios:
        cat = category(s)
        n = len(cat.members)
        assert 3 <= n <= 5 and 1 <= cat.max_promoted < n
        catalog = cat.catalog()
        assert catalog.n_skus == n
        assert list(catalog.sku) == [m.name for m in cat.members]
        # every member is overstocked at list price: each wants promotion weeks
        assert all(m.cover < 1 for m in cat.members)
    assert get_spec("budget-smoke").scenarios == spec.scenarios[:1]


def test_category_scenarios_refuse_bad_definitions() -> None:
    good = get_suite("budget")[0]
    assert isinstance(good, CategoryScenario)
    with pytest.raises(ConfigError, match="max_promoted"):
        replace(good, max_promoted=len(good.members))
    with pytest.raises(ConfigError, match=">= 2 members"):
        replace(good, members=good.members[:1])
    other = replace(good.members[1], horizon_weeks=good.horizon_weeks + 1)
    with pytest.raises(ConfigError, match="differ in profile or horizon"):
        replace(good, members=(good.members[0], other))
    with pytest.raises(ConfigError, match="single SKU"):
        category(get_suite("standard")[0])


@pytest.mark.slow
def test_evaluate_every_agent_of_the_budget_suite(tmp_path, capsys) -> None:
    assert main(["evaluate", "--list-suites"]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "lagrangian_bound" in listed["budget"] and "budget-v1" in listed["budget"]
    out = tmp_path / "rows.json"
    args = ["evaluate", "--suite", "budget-smoke", "--episodes", "150", "--no-track"]
    assert main([*args, "--agents", "all", "--out", str(out)]) == 0
    rows = {r["agent"]: r for r in json.loads(out.read_text())}
    assert set(rows) == {
        "lagrangian_bound", "lagrangian", "lagrangian_weekly", "greedy", "prior", "fluid",
        "none", "ladder", "cover", "myopic",
    }  # fmt: skip
    for r in rows.values():
        assert r["reference"] == "lagrangian_bound" and r["suite_version"] == "budget-v1"
        assert r["violations"] == 0  # every plan respects the limit on every path
        # nothing beats the bound beyond noise
        assert r["pct_of_reference"] <= 100.0 + 3 * (r["pct_of_reference_ci"] or 0.0)
        assert r["pct_of_dp"] is None  # the bound is not a DP
    assert rows["lagrangian_bound"]["pct_of_reference"] == 100.0
    # the priced plan beats greedy allocation and the repaired heuristics by far more than
    # the noise on this category (2,000 paths: 97.9 % against 92.1 % and below)
    lag = rows["lagrangian"]
    for other in ("greedy", "fluid", "myopic", "none"):
        assert (
            lag["pct_of_reference"] > rows[other]["pct_of_reference"] + lag["pct_of_reference_ci"]
        )
    assert "% of the lagrangian_bound" in capsys.readouterr().out
    # an agent of another market is refused by name
    assert main([*args, "--agents", "dp"]) == 2


def test_weekly_prices_beat_one_multiplier_where_late_slots_are_scarce() -> None:
    """On the salvage category the weekly multipliers rise in the last weeks (a slot then
    clears stock that would otherwise be salvaged), and pricing them so beats the single
    multiplier's plan on the same paths (``benchmarks/bench_budget.py``: +2.5 of 165)."""
    scenario = next(s for s in get_suite("budget") if s.name == "cat4-k1-salv")
    cat = category(scenario)
    catalog = cat.catalog()
    sol = solve_category(catalog, cat.rules, cat.horizon_weeks, cat.max_promoted)
    weekly = solve_weekly(catalog, sol, iterations=20)
    assert weekly.bound <= sol.dual_value
    assert weekly.multipliers[-1] > weekly.multipliers[0]  # a late slot is dearer
    totals = {}
    for mode in ("lagrangian", "weekly"):
        env = category_env(scenario, n_paths=400, seed=11)
        res = env.play(CategoryDPPolicy(sol, mode))
        assert res.totals["budget_violations"].sum() == 0
        totals[mode] = res.totals["objective"].to_numpy()
    d = totals["weekly"] - totals["lagrangian"]
    assert d.mean() > 3 * d.std(ddof=1) / np.sqrt(d.size)


BUDGET_TOML = """
suite = "budget-smoke"
curve_every = 1024
curve_episodes = 20
eval_episodes = 40
compare_with = ["lagrangian", "greedy"]
experiment = "tests-budget-cli"
[ppo]
total_timesteps = 2048
n_envs = 32
n_steps = 16
batch_size = 256
n_epochs = 1
net_arch = [16]
n_catalog_skus = 50
budget_pool = 4
checkpoint_every = 0
"""


@pytest.mark.slow
def test_train_then_evaluate_ppo_on_the_budget_suite(tmp_path, capsys) -> None:
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(BUDGET_TOML)
    out = tmp_path / "out"
    # training in the budget market is no longer refused
    assert main(["train", "--config", str(cfg), "--seed", "1", "--out", str(out)]) == 0
    assert (out / "budget-none" / "model.zip").is_file()
    assert (out / "figures" / "learning_curve.png").is_file()
    curve = pd.read_csv(out / "curve.csv")
    assert (curve["profile"] == "budget-none").all() and len(curve) >= 2
    assert "% of reference (lagrangian_bound)" in capsys.readouterr().err
    rows_path = tmp_path / "rows.json"
    args = ["evaluate", "--suite", "budget-smoke", "--episodes", "60", "--no-track"]
    assert main([*args, "--agents", "all", "--model", str(out), "--out", str(rows_path)]) == 0
    rows = {r["agent"]: r for r in json.loads(rows_path.read_text())}
    assert {"ppo", "lagrangian", "greedy", "lagrangian_bound"} <= set(rows)
    ppo = rows["ppo"]
    assert ppo["reference"] == "lagrangian_bound" and ppo["violations"] == 0
    assert ppo["pct_of_reference_ci"] > 0  # a CI of its own per-path totals
    assert 0 < ppo["pct_of_reference"] <= 100.0 + 3 * ppo["pct_of_reference_ci"]
    # one saved model (the profile read from its folder) plays as well
    model = str(out / "budget-none" / "model.zip")
    assert main([*args, "--agents", "ppo", "--model", model, "--out", str(rows_path)]) == 0
    again = {r["agent"]: r for r in json.loads(rows_path.read_text())}
    assert again["ppo"]["pct_of_reference"] == ppo["pct_of_reference"]  # same paths, same plan


def test_budget_training_config_and_catalog() -> None:
    ppo = ppo_for_profile(TrainConfig(suite="budget"), "budget-coupons")
    assert ppo.shared_budget and ppo.horizon_range == (12, 12)
    assert ppo.budget_prior == "lagrangian_weekly" and ppo.fluid_prior == BUDGET_PPO["fluid_prior"]
    assert ppo.n_steps == 48 and ppo.ent_coef == 0.0
    # a value set in [ppo] wins over the budget market's own default
    mine = TrainConfig(suite="budget", ppo=PPOConfig(fluid_prior=8.5, budget_prior="fluid"))
    ppo = ppo_for_profile(mine, "budget-none")
    assert (ppo.fluid_prior, ppo.budget_prior) == (8.5, "fluid")
    assert ppo.learning_rate == BUDGET_PPO["learning_rate"]
    # a setting given explicitly is kept even where it equals the general default
    general = PPOConfig().learning_rate
    kept = TrainConfig(
        suite="budget", ppo=PPOConfig(learning_rate=general), ppo_given=("learning_rate",)
    )
    assert ppo_for_profile(kept, "budget-none").learning_rate == general
    assert ppo_for_profile(kept, "budget-none").ent_coef == BUDGET_PPO["ent_coef"]
    with pytest.raises(ConfigError, match="ppo_given.*'lr'.*not PPO settings"):
        TrainConfig(suite="budget", ppo_given=("lr",))
    assert all(k in PROFILE_TIMESTEPS for k in policy_keys() if k.startswith("budget-"))
    cat = catalog_fn_for(get_spec("budget"), "coupons")(300, np.random.default_rng(2))
    assert BUDGET_STOCK[0] <= cat.initial_stock.min() <= cat.initial_stock.max() <= BUDGET_STOCK[1]
    assert cat.coupon_coef.max() > 0  # the coupon profile's SKUs respond to coupons


def test_a_train_file_keeps_its_ppo_settings_in_the_budget_market(tmp_path) -> None:
    from app.config import load_config

    general = PPOConfig()
    path = tmp_path / "train.toml"
    path.write_text(
        f'suite = "budget"\n[ppo]\nlearning_rate = {general.learning_rate}\n'
        f"ent_coef = {general.ent_coef}\n"
    )
    config = load_config(TrainConfig, path)
    assert set(config.ppo_given) == {"learning_rate", "ent_coef"}
    ppo = ppo_for_profile(config, "budget-coupons")
    assert (ppo.learning_rate, ppo.ent_coef) == (general.learning_rate, general.ent_coef)
    assert ppo.fluid_prior == BUDGET_PPO["fluid_prior"]  # the file left this one
    path.write_text('suite = "budget"\nppo_given = ["ent_coef"]\n')
    with pytest.raises(ConfigError, match=r"train\.toml: train\.ppo_given: set by the config"):
        load_config(TrainConfig, path)
