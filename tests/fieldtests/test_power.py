"""Power by simulation: agrees with statsmodels where the formula's assumptions hold; the
design on a tiny run sizes the test and says when it is too small."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.abtest import read_run
from fieldtests.design import DesignConfig, control_schedule, design_test
from fieldtests.power import (
    PotentialOutcomes,
    analytic_power,
    required_units,
    simulate_potential_outcomes,
    simulated_tests,
)
from ingest.errors import ConfigError
from tests.fieldtests.worlds import tiny_run


def test_simulated_power_agrees_with_the_formula_on_iid_normal_units():
    rng = np.random.default_rng(0)
    n, episodes, delta = 100, 400, 0.4
    control = rng.normal(size=(n, episodes))
    po = PotentialOutcomes(np.arange(n).astype(str), control, control + delta,
                           rng.normal(size=(n, episodes, 1)), "profit")  # fmt: skip
    codes = np.zeros(n, dtype=int)
    shifted, none = simulated_tests(po, codes, shifts=[delta, 0.0], n_tests=1500, seed=1,
                                    resample=True)  # fmt: skip
    formula = analytic_power(delta, 1.0, 50, 50, 0.05)
    assert 0.45 < formula < 0.55
    assert shifted.power(0.05)["difference"] == pytest.approx(formula, abs=0.04)
    assert none.power(0.05)["difference"] == pytest.approx(0.05, abs=0.02)
    # the formula's sample size gives the power it was asked for
    total = required_units(delta, 1.0, 0.05, 0.8)
    assert analytic_power(delta, 1.0, int(total / 2), int(total / 2), 0.05) >= 0.8
    assert required_units(delta, 1.0, 0.05, 0.8, rho=0.8) < 0.45 * total
    assert required_units(0.0, 1.0, 0.05, 0.8) == float("inf")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    tiny_run(folder, n_skus=200, n_weeks=30, seed=2)
    return read_run(folder)


def test_identical_plans_have_exactly_zero_effect(run):
    none = control_schedule(run.catalog, "none", 6)
    po = simulate_potential_outcomes(run.catalog, none, none, metric_name="profit", weeks=6,
                                     pre_weeks=6, n_episodes=20, seed=0)  # fmt: skip
    assert np.array_equal(po.treatment, po.control)
    assert po.covariate.shape == (run.catalog.n_skus, 20, 2)


def test_design_sizes_the_test_and_is_seeded(run):
    none = control_schedule(run.catalog, "none", run.plan.horizon)
    cfg = DesignConfig(metric="sell_through", mde=0.1, n_sims=100, n_episodes=30, seed=4)
    d = design_test(run.catalog, run.summary, run.plan, none, cfg, start_week=31)
    assert len(d.assignment) == run.catalog.n_skus and d.assignment["sku"].is_unique
    assert (d.assignment["test_start_week"] == 31).all()
    c = d.curve
    # no effect: the rejection rate is about alpha; a big effect: about certain
    assert c.iloc[0]["power_stratified_cuped"] < 0.15
    assert c.iloc[-1]["power_stratified_cuped"] > c.iloc[0]["power_stratified_cuped"]
    assert (np.diff(c["power_formula"]) >= 0).all()
    assert d.plan_effect > 0  # markdowns sell more of the stock
    again = design_test(run.catalog, run.summary, run.plan, none, cfg, start_week=31)
    pd.testing.assert_frame_equal(d.assignment, again.assignment)
    pd.testing.assert_frame_equal(d.curve, again.curve)


def test_a_plan_too_small_for_its_mde_says_how_many_skus_it_needs(run):
    none = control_schedule(run.catalog, "none", run.plan.horizon)
    cfg = DesignConfig(metric="profit", mde=0.01, n_sims=50, n_episodes=20)
    d = design_test(run.catalog, run.summary, run.plan, none, cfg, start_week=31)
    assert d.needed_units["cuped"] > d.n_units
    assert d.notes and "SKUs are needed" in d.notes[0]


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [("mde", 0.0, "mde = 0.0: expected > 0"), ("metric", "margin", "expected one of profit"),
     ("control", "ppo", "control = 'ppo'"), ("power", 1.5, "power = 1.5")],
)  # fmt: skip
def test_bad_settings_are_refused(field, value, match):
    with pytest.raises(ConfigError, match=match):
        DesignConfig(**{field: value})


def test_the_best_heuristic_control_is_its_plan(plan_catalog):
    from ingest.errors import DataError

    sched = control_schedule(plan_catalog, "best_heuristic", 6, heuristic="ladder_10pt_2w")
    assert sched.discount.shape == (plan_catalog.n_skus, 6)
    assert sched.discount[:, -1].max() > 0  # a ladder marks down
    assert (np.diff(sched.discount, axis=1) >= 0).all()
    with pytest.raises(DataError, match="best heuristic 'ppo'"):
        control_schedule(plan_catalog, "best_heuristic", 6, heuristic="ppo")
