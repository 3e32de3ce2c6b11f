"""The augmented-state DP of demand with memory: exact when memory is off, its grid value
agrees with a simulation of its own policy when memory is on, and the memory-blind DP is the
exact DP's policy when there is nothing to be blind to."""

from __future__ import annotations

import numpy as np
import pytest

from agents.baselines import DPPolicy
from agents.dp import solve
from agents.dp_memory import (
    MemoryBlindDP,
    MemoryDPPolicy,
    frozen_memory_catalog,
    interp_weights,
    memory_grid,
    solve_memory,
)
from agents.policy import Policy, PolicyError
from envs.batched import BatchedMarkdownEnv
from envs.config import RulesConfig
from envs.markdown import EnvConfig
from ingest.errors import ConfigError
from simulator.demand import Catalog
from simulator.market import expected_demand

LADDER = RulesConfig(discount_levels=(0.0, 0.1, 0.2, 0.3, 0.5), markdown_only=True)
COUPONS = RulesConfig(discount_levels=(0.0, 0.2, 0.4), coupon_levels=(0.0, 0.1))
FREE = RulesConfig(discount_levels=(0.0, 0.1, 0.2, 0.3, 0.4))
HORIZON = 8
MEMORY = {
    "ref_price_sensitivity": 1.5,
    "ref_price_memory": 0.6,
    "fatigue_rate": 0.15,
    "fatigue_decay": 0.6,
}


def _sku(**memory: float) -> Catalog:
    return Catalog.build(
        n_skus=1,
        sku=["m"],
        base_demand=6.0,
        elasticity=-2.0,
        unit_cost=0.4,
        list_price=1.0,
        salvage_value_per_unit=0.05,
        holding_cost_per_unit_week=0.002,
        coupon_coef=3.0,
        initial_stock=60.0,
        **memory,
    )


def _play(policy: Policy, catalog: Catalog, rules: RulesConfig, n: int = 2000) -> np.ndarray:
    env = BatchedMarkdownEnv(
        EnvConfig(horizon_weeks=HORIZON, rules=rules, catalog=catalog, invalid_action="hold"),
        n_slots=n,
        seed=7,
        fixed_skus=True,
    )
    policy.reset(None)
    totals = env.evaluate(lambda o, m, c: policy.act(o, m, c))
    assert totals["violations"].sum() == 0
    return totals["objective"].to_numpy()


@pytest.mark.parametrize("rules", [LADDER, COUPONS, FREE], ids=["ladder", "coupons", "free"])
def test_memory_off_is_the_exact_dp(rules):
    cat = _sku()
    exact = solve(cat, rules, HORIZON)
    aug = solve_memory(cat, rules, HORIZON)
    assert aug.grid.shape == (1, 1)
    assert aug.value == exact.value
    np.testing.assert_array_equal(aug.values[..., 0, 0], exact.values)
    np.testing.assert_array_equal(aug.actions[..., 0, 0], exact.actions)


def test_frozen_catalog_has_the_memory_demand():
    cat = _sku(**MEMORY)
    rng = np.random.default_rng(0)
    for ref, fat, d in rng.uniform((0.5, 0.0, 0.0), (1.0, 0.5, 0.5), (5, 3)):
        frozen = frozen_memory_catalog(cat, ref, fat)
        want = expected_demand(cat, np.zeros(1, np.int64), d, ref_price=ref, fatigue=fat)
        got = expected_demand(frozen, np.zeros(1, np.int64), d)
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_interp_weights_reproduce_linear_functions():
    points = np.array([0.3, 0.5, 0.8, 1.0])
    x = np.array([0.1, 0.3, 0.42, 0.8, 0.95, 1.2])
    w = interp_weights(points, x)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    np.testing.assert_allclose(w @ (2 * points + 1), 2 * np.clip(x, 0.3, 1.0) + 1)


def test_grid_covers_the_reachable_memory():
    grid = memory_grid(_sku(**MEMORY), LADDER, HORIZON, 5, 4)
    assert grid.ref[0] == pytest.approx(0.5) and grid.ref[-1] == 1.0
    top = 0.15 * (1 - 0.6**HORIZON) / (1 - 0.6)
    assert grid.fatigue[-1] == pytest.approx(top)
    with pytest.raises(ConfigError, match="points per axis"):
        memory_grid(_sku(**MEMORY), LADDER, HORIZON, 1, 4)


@pytest.mark.parametrize("rules", [LADDER, COUPONS], ids=["ladder", "coupons"])
def test_memory_on_value_agrees_with_simulation(rules):
    cat = _sku(**MEMORY)
    sol = solve_memory(cat, rules, HORIZON, n_ref=9, n_fatigue=5)
    x = _play(MemoryDPPolicy(sol), cat, rules)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    # the grid value is the policy's value up to the discretization error, well inside the CI
    assert abs(sol.value - x.mean()) < half
    # memory changes what is optimal: the memory-blind re-solve earns less on the same paths
    blind = _play(MemoryBlindDP(), cat, rules)
    diff = x - blind
    assert diff.mean() > 1.96 * diff.std(ddof=1) / np.sqrt(diff.size)


def test_blind_dp_without_memory_is_the_exact_dp():
    cat = _sku()
    exact = _play(DPPolicy(), cat, FREE, n=300)
    blind = _play(MemoryBlindDP(), cat, FREE, n=300)
    np.testing.assert_array_equal(blind, exact)


def test_policy_refuses_another_sku():
    sol = solve_memory(_sku(**MEMORY), FREE, HORIZON, n_ref=3, n_fatigue=3)
    other = _sku(**MEMORY).replace(sku=np.array(["other"], dtype=object))
    with pytest.raises(PolicyError, match="solved for"):
        _play(MemoryDPPolicy(sol), other, FREE, n=4)
