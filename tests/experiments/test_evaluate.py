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
