"""QMDP as a main-job candidate: its plan hedged against the fit's uncertainty."""

from __future__ import annotations

import numpy as np
import pytest

from agents.baselines import LinearLadder
from envs.config import RulesConfig
from planning.from_policy import QMDP_NAME, dp_plan, qmdp_plan
from planning.outcomes import SimulationSettings
from planning.recommend import DP_NAME, plan_candidates, recommend
from simulator.demand import Catalog

RULES = RulesConfig(discount_levels=(0.0, 0.1, 0.2, 0.3, 0.5), markdown_only=True)
H = 6


def _catalog(stock: float | list[float], *, se: bool) -> Catalog:
    n = 4
    return Catalog.build(
        sku=[f"s{i}" for i in range(n)],
        base_demand=[0.8, 2.0, 3.0, 1.2],
        elasticity=[-1.4, -3.5, -2.2, -2.8],
        dispersion=[0.0, 0.3, 0.0, 0.2],
        list_price=[3.0, 2.0, 4.0, 5.0],
        unit_cost=[1.0, 1.0, 1.5, 2.0],
        initial_stock=stock,
        holding_cost_per_unit_week=0.02,
        salvage_value_per_unit=0.1,
        elasticity_se=[0.6, 0.9, 0.4, 0.7] if se else 0.0,
        base_demand_se=[0.4, 0.5, 0.3, 0.6] if se else 0.0,
    )


def test_with_known_parameters_qmdp_plans_what_the_dp_plans():
    """Zero standard errors: the prior grid is the estimate alone, QMDP plays the DP, and with
    more stock than any plan sells (the DP's action then does not depend on the stock) every
    episode follows one path, so the two typical plans are equal to the cent."""
    cat = _catalog(400.0, se=False)
    q = qmdp_plan(cat, RULES, H, seed=3, grid_points=3)
    dp = dp_plan(cat, RULES, H, seed=3)
    assert q.exact.all() and q.grid_points == 3
    np.testing.assert_array_equal(q.schedule.discount, dp.schedule.discount)
    np.testing.assert_array_equal(q.schedule.coupon, dp.schedule.coupon)
    assert (q.schedule.discount > 0).any()


def test_qmdp_plans_obey_the_rules_repeat_and_leave_out_what_the_dp_cannot_solve():
    cat = _catalog([6.0, 30.0, 40.0, 12.0], se=True)
    cat.ref_price_sensitivity[3] = 1.0  # demand with memory: not DP-exact
    q = qmdp_plan(cat, RULES, H, seed=5, grid_points=3)
    assert q.exact.tolist() == [True, True, True, False]
    assert (q.schedule.discount[3] == 0).all()  # no markdown where it is not a QMDP plan
    d = q.schedule.discount[:3]
    assert np.isin(d, RULES.discount_levels).all()
    assert (np.diff(d, axis=1) >= 0).all()  # markdown only
    assert np.isfinite(q.closed_loop)
    again = qmdp_plan(cat, RULES, H, seed=5, grid_points=3)
    np.testing.assert_array_equal(again.schedule.discount, q.schedule.discount)
    assert again.closed_loop == q.closed_loop
    # the uncertainty changes the plan: a wider prior hedges differently on some SKU
    wide = qmdp_plan(cat.replace(elasticity_se=2.0 * cat.elasticity_se), RULES, H, seed=5,
                     grid_points=3)  # fmt: skip
    assert not np.array_equal(wide.schedule.discount, q.schedule.discount)


class _Learned(LinearLadder):
    def __init__(self) -> None:
        super().__init__(0.2, 1)
        self.name = "ppo"


@pytest.mark.parametrize("grid", [0, 3])
def test_the_choice_offers_qmdp_only_where_it_planned(grid):
    cat = _catalog([6.0, 30.0, 40.0, 12.0], se=True)
    cat.ref_price_sensitivity[3] = 1.0
    plans = plan_candidates(cat, _Learned(), [], RULES, H, seed=2, qmdp_grid=grid)
    assert (QMDP_NAME in plans.plans) == bool(grid)
    settings = SimulationSettings(seed=4, n_episodes=200, draw_parameters=True)
    rec = recommend(cat, _Learned(), [], RULES, H, plan_seed=2, settings=settings,
                    no_demand=np.zeros(4, dtype=bool), candidates=plans)  # fmt: skip
    choice = rec.choice
    assert (QMDP_NAME in choice.names) == bool(grid)
    # the memory SKU has neither the DP's nor QMDP's plan to choose from
    assert choice.recommended_by[3] not in (DP_NAME, QMDP_NAME)
    if grid:
        assert rec.closed_loop[QMDP_NAME] != 0.0
        # QMDP is not complete (one SKU left out), so it cannot be the best single planner
        assert choice.best_single != QMDP_NAME
