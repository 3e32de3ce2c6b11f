"""Suite evaluation: common random numbers make it deterministic and paired; aggregations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.evaluate import (
    ROW_COLUMNS,
    EvalConfig,
    baseline_factories,
    evaluate_suite,
    json_rows,
    leaderboard,
    per_scenario_across_seeds,
    seed_summary,
    select_agents,
)
from ingest.errors import ConfigError


@pytest.fixture(scope="module")
def two_runs():
    cfg = EvalConfig(suite="smoke", n_episodes=150, scenarios=("none-base", "md-base"))
    base = baseline_factories()
    agents = {"none": base["none"], "fluid": base["fluid"]}
    return (
        evaluate_suite(cfg, agents, progress=False),
        evaluate_suite(cfg, agents, progress=False),
    )


def test_crn_evaluation_is_deterministic(two_runs):
    a, b = two_runs
    assert list(a.columns) == list(ROW_COLUMNS)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 2 * 3  # dp + two agents on two scenarios


def test_rows_are_consistent_with_the_dp(two_runs):
    rows = two_runs[0]
    dp = rows[rows["agent"] == "dp"]
    np.testing.assert_allclose(dp["pct_of_dp"], 100.0)
    assert (rows["violations"] == 0).all()
    fluid = rows[rows["agent"] == "fluid"]
    none = rows[rows["agent"] == "none"]
    # the DP is the optimum: nothing beats it beyond the paired CI
    assert (fluid["pct_of_dp"] <= 100.0 + 3 * fluid["pct_of_dp_ci"]).all()
    assert (none["pct_of_dp"] < fluid["pct_of_dp"].to_numpy()).all()
    # no markdown leaves stock: lower sell-through than the fluid price
    assert (none["sell_through"].to_numpy() < fluid["sell_through"].to_numpy()).all()
    # paired CI of the % (CRN) is far tighter than the CI of the profit itself
    rel_profit_ci = 100 * none["profit_ci"] / none["dp_value"]
    assert (none["pct_of_dp_ci"] < rel_profit_ci).all()


def test_another_seed_gives_other_paths():
    base = baseline_factories()
    a = evaluate_suite(
        EvalConfig(n_episodes=50, scenarios=("none-base",), seed=1),
        {"none": base["none"]},
        progress=False,
    )
    b = evaluate_suite(
        EvalConfig(n_episodes=50, scenarios=("none-base",), seed=2),
        {"none": base["none"]},
        progress=False,
    )
    assert a["profit_mean"].iloc[1] != b["profit_mean"].iloc[1]


def _fake_rows():
    rows = []
    for seed, shift in ((0, 0.0), (1, 0.5), (2, -0.5)):
        for scen, pct in (("a", 99.0), ("b", 98.0), ("c", 100.0)):
            rows.append(
                {
                    "agent": f"ppo/{seed}",
                    "seed": seed,
                    "scenario": scen,
                    "pct_of_dp": pct + shift,
                    "sell_through": 0.9,
                    "violations": 0,
                }
            )
    for scen, pct in (("a", 97.0), ("b", 96.0), ("c", 99.0)):
        rows.append(
            {
                "agent": "fluid",
                "seed": None,
                "scenario": scen,
                "pct_of_dp": pct,
                "sell_through": 0.9,
                "violations": 0,
            }
        )
    return pd.DataFrame(rows)


def test_leaderboard_and_seed_summary():
    rows = _fake_rows()
    board = leaderboard(rows)
    assert board["agent"].iloc[0] == "ppo/1"
    fluid = board.set_index("agent").loc["fluid"]
    assert fluid["median_pct"] == 97.0 and fluid["worst_pct"] == 96.0
    summary = seed_summary(rows).set_index("agent")
    assert list(summary.index) == ["ppo"]
    assert summary.loc["ppo", "n_seeds"] == 3
    assert summary.loc["ppo", "median_pct"] == pytest.approx(99.0)
    assert summary.loc["ppo", "median_pct_ci"] > 0
    per = per_scenario_across_seeds(rows).set_index("scenario")
    assert per.loc["b", "pct_of_dp"] == pytest.approx(98.0)
    assert per.loc["b", "worst_seed_pct"] == pytest.approx(97.5)


def test_json_rows_and_agent_names():
    rows = _fake_rows()
    out = json_rows(rows)
    assert out[0]["seed"] == 0 and out[-1]["seed"] is None
    assert select_agents(["ppo", "dp", "fluid"]) == ["ppo", "dp", "fluid"]
    with pytest.raises(ConfigError, match="unknown agent"):
        select_agents(["ppo", "magic"])
    with pytest.raises(ConfigError, match="unknown scenario"):
        EvalConfig(scenarios=("nope",))


def test_rows_carry_the_reference_and_the_gain_over_the_prior():
    base = baseline_factories()
    cfg = EvalConfig(n_episodes=120, scenarios=("md-base",))
    rows = evaluate_suite(
        cfg, {"fluid": base["fluid"], "prior": base["prior"]}, progress=False
    ).set_index("agent")
    assert set(rows["reference"]) == {"dp"}
    np.testing.assert_allclose(rows["pct_of_reference"], rows["pct_of_dp"])
    np.testing.assert_allclose(rows["reference_value"], rows["dp_value"])
    # the prior is paired with itself by no one; every other row carries the paired gain,
    # which is exactly the difference of the two paired percentages (same paths, same V*)
    assert np.isnan(rows.loc["prior", "gain_vs_prior_pct"])
    for agent in ("fluid", "dp"):
        gain = rows.loc[agent, "gain_vs_prior_pct"]
        diff = rows.loc[agent, "pct_of_reference"] - rows.loc["prior", "pct_of_reference"]
        assert gain == pytest.approx(diff, abs=1e-9)
        assert rows.loc[agent, "gain_vs_prior_ci"] > 0
    assert rows.loc["dp", "gain_vs_prior_pct"] > 0


def test_learning_suite_rows_are_percentages_of_the_oracle():
    from experiments.evaluate import reference_agent, suite_lines

    assert reference_agent("learning") == "oracle"
    base = baseline_factories("learning")
    assert {"dp_ce", "dp_resolve", "thompson", "qmdp", "lookahead", "prior", "fluid"} <= set(base)
    assert "fixed" not in base and "dp" not in base
    cfg = EvalConfig(suite="learning-smoke", n_episodes=60, scenarios=("learn-md-base",))
    rows = evaluate_suite(cfg, {k: base[k] for k in ("prior", "dp_resolve")}, progress=False)
    assert list(rows["agent"]) == ["oracle", "prior", "dp_resolve"]
    assert set(rows["reference"]) == {"oracle"}
    assert set(rows["suite_version"]) == {"learning-v1"}
    oracle = rows[rows["agent"] == "oracle"].iloc[0]
    assert oracle["pct_of_reference"] == pytest.approx(100.0)
    # nobody beats the oracle beyond the paired CI
    others = rows[rows["agent"] != "oracle"]
    assert (others["pct_of_reference"] <= 100 + 3 * others["pct_of_reference_ci"]).all()
    assert (rows["violations"] == 0).all()
    lines = suite_lines()
    assert len(lines) >= 4 and any(line.startswith("learning ") for line in lines)


def test_agent_names_depend_on_the_suite():
    assert "oracle" in select_agents(["all"], "learning")
    assert "ppo" in select_agents(["all"], "learning")
    assert "dp" in select_agents(["all"]) and "prior" in select_agents(["all"])
    with pytest.raises(ConfigError, match="suite 'learning'"):
        select_agents(["dp"], "learning")
