"""The analysis on a synthetic test whose effect is known: the CIs hold the true effects,
the checks pass, and a bad assignment or data source is refused with a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from app.abtest import read_run
from fieldtests.analysis import analyze, observed_outcomes
from fieldtests.design import DesignConfig, control_schedule, design_test
from fieldtests.synthetic import current_catalog, simulate_test_weeks, true_effects
from ingest.errors import DataError
from tests.fieldtests.worlds import tiny_run

N_WEEKS = 30


@pytest.fixture(scope="module")
def test_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    world = tiny_run(folder, n_skus=300, n_weeks=N_WEEKS, seed=5)
    run = read_run(folder)
    control = control_schedule(run.catalog, "none", run.plan.horizon)
    cfg = DesignConfig(n_sims=20, n_episodes=10, seed=1)
    design = design_test(run.catalog, run.summary, run.plan, control, cfg,
                         start_week=N_WEEKS + 1)  # fmt: skip
    a = design.assignment
    tables = simulate_test_weeks(world.tables, current_catalog(world), a, run.plan, control, seed=9)
    truth = true_effects(current_catalog(world), a, run.plan, control, seed=2, n_episodes=400)
    return a, tables, truth


def test_the_intervals_hold_the_true_effects(test_run):
    a, tables, truth = test_run
    out = observed_outcomes(tables["sales"], a, source="a", data_source="d")
    assert len(out) == len(a) and set(out["arm"]) == {"treatment", "control"}
    res = analyze(out, share=0.5)
    e = res.effects.set_index(["metric", "estimator"])
    for metric in ("profit", "sell_through", "dead_stock"):
        row = e.loc[(metric, "stratified_cuped")]
        assert row["ci_low"] <= truth[metric] <= row["ci_high"], (metric, truth[metric])
    # the ladder clears stock: sell-through up, dead stock down, both clearly
    assert e.loc[("sell_through", "stratified_cuped"), "ci_low"] > 0
    assert e.loc[("dead_stock", "stratified_cuped"), "ci_high"] < 0
    g = res.guardrails.set_index("metric")
    assert g.loc["margin_given_away", "effect"] > 0  # a markdown gives margin away
    assert not res.srm.flagged
    assert set(res.balance["covariate"]) >= {"pre_units", "pre_revenue", "initial_stock"}
    assert (res.balance["smd"].abs() < 0.3).all()


def test_a_test_without_its_data_is_refused(test_run):
    a, tables, _ = test_run
    early = tables["sales"][tables["sales"]["week"] <= N_WEEKS]
    with pytest.raises(DataError, match="the data ends at week 30"):
        observed_outcomes(early, a, source="assignment file 'x.csv'", data_source="d")
    other = a.assign(sku="X" + a["sku"])
    with pytest.raises(DataError, match="does not match"):
        observed_outcomes(tables["sales"], other, source="assignment file 'x.csv'",
                          data_source="d")  # fmt: skip
    with pytest.raises(DataError, match=r"column\(s\) \['stratum'\] missing"):
        observed_outcomes(tables["sales"], a.drop(columns="stratum"), source="x.csv",
                          data_source="d")  # fmt: skip
    with pytest.raises(DataError, match="holds \\['both'\\]"):
        observed_outcomes(tables["sales"], a.assign(arm="both"), source="x.csv", data_source="d")


def test_a_60_40_execution_of_a_50_50_design_is_flagged(test_run):
    a, tables, _ = test_run
    out = observed_outcomes(tables["sales"], a, source="a", data_source="d")
    # 1,000 SKUs of which the price system applied the plan to 600 (the arm says what ran)
    big = out.sample(n=1000, replace=True, random_state=0).reset_index(drop=True)
    big["arm"] = np.where(np.arange(1000) < 600, "treatment", "control")
    assert analyze(big, share=0.5).srm.flagged
    assert not analyze(big, share=0.6).srm.flagged
