"""The DP's work-array pool: reused between solves, never shared by two live models."""

from __future__ import annotations

import numpy as np
import pytest

from agents import dp
from envs.config import RulesConfig
from simulator.demand import Catalog


def _sku(units: int, dispersion: float) -> Catalog:
    return Catalog.build(
        n_skus=1,
        base_demand=6.0,
        initial_stock=units,
        elasticity=-2.0,
        unit_cost=0.4,
        holding_cost_per_unit_week=0.01,
        salvage_value_per_unit=0.1,
        dispersion=dispersion,
        coupon_coef=2.0,
        start_week=3,
    )


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_repeated_solves_reuse_the_work_arrays_and_agree(alpha):
    cat, rules = _sku(120, alpha), RulesConfig(markdown_only=True)
    first = dp.solve(cat, rules, 8)
    pooled = {name: arr for name, arr in dp._POOL.free.items()}
    assert {"sf", "sold", "pmf_hat"} <= set(pooled)
    again = dp.solve(cat, rules, 8)
    # the second solve leased the very arrays the first gave back, and gave them back again
    assert all(dp._POOL.free[name] is arr for name, arr in pooled.items())
    np.testing.assert_array_equal(again.values, first.values)
    np.testing.assert_array_equal(again.actions, first.actions)
    assert again.value == first.value


def test_a_solve_inside_a_live_model_gets_its_own_arrays():
    cat, rules = _sku(60, 0.3), RulesConfig()
    alone = dp.solve(cat, rules, 6)
    other = _sku(90, 0.0)
    reference = dp.solve(other, rules, 6)
    inner_values: list[float] = []

    def policy(ctx, masks):
        # a nested solve while the outer evaluation's model holds its arrays
        inner_values.append(dp.solve(other, rules, 6).value)
        return np.zeros(masks.shape[0], dtype=np.int64)

    dp.evaluate_exact(cat, rules, 6, policy)
    assert inner_values == [reference.value] * 6
    np.testing.assert_array_equal(dp.solve(cat, rules, 6).values, alone.values)


def test_shape_changes_and_huge_arrays_are_not_reused(monkeypatch):
    a = dp._lease("probe", (3, 4))
    dp._give_back("probe", a)
    assert dp._lease("probe", (3, 5)) is not a  # other shape: a fresh array
    dp._give_back("probe", a)
    assert dp._lease("probe", (3, 4), complex) is not a  # other dtype
    monkeypatch.setattr(dp, "POOL_MAX_BYTES", 8)
    dp._give_back("probe", a)
    assert "probe" not in dp._POOL.free
