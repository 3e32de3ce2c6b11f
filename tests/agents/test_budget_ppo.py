"""The budget market's PPO plumbing: the sequential policy keeps every path within the limit,
the training config refuses impossible categories and builds the sequential env; the
Lagrangian prior's features and order replay the Lagrangian plan (with one multiplier, or one
per week), and its training pool keeps each solved category together."""

from __future__ import annotations

import numpy as np
import pytest

from agents.budget_ppo import (
    POOL_TOL,
    POOL_WEEKLY_ITERATIONS,
    GuardedCategoryPolicy,
    SequentialBudgetPolicy,
    budget_policy,
    reads_slot_prices,
    solve_pool,
    weekly_prior,
)
from agents.lagrangian import CategoryDPPolicy, SlotPrices, solve_category, solve_weekly
from agents.policy import RandomMaskedPolicy
from agents.ppo import FluidHint, PPOConfig, PPOPolicy, build_model, make_training_env
from envs.budget import N_BUDGET, N_RIVAL, CategoryEnv, rival_features
from envs.budget_seq import SequentialCategoryEnv
from envs.markdown import EnvConfig
from envs.observation import OBS_DIM
from experiments.suite import RULE_PROFILES, budget_training_catalog, get_suite
from ingest.errors import ConfigError


def test_a_random_policy_played_sequentially_never_breaks_the_limit() -> None:
    scenario = get_suite("budget")[4]  # 5 SKUs, K = 2, coupons
    env = CategoryEnv(scenario.catalog(), scenario.rules, scenario.horizon_weeks,
                      max_promoted=2, n_paths=40, seed=1)  # fmt: skip
    res = env.play(SequentialBudgetPolicy(RandomMaskedPolicy(3), 5, 2))
    assert (res.totals["budget_violations"] == 0).all()
    assert res.promoted.max() == 2  # random promotions fill the slots, never more


def test_bad_budget_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="budget_slots"):
        PPOConfig(shared_budget=True, budget_skus=3, budget_slots=(1, 3))
    with pytest.raises(ConfigError, match="shared_budget"):
        PPOConfig(shared_budget=True, demand_memory=True)
    with pytest.raises(ConfigError, match="max_promoted"):
        SequentialBudgetPolicy(RandomMaskedPolicy(0), 3, 3)


def test_the_training_env_is_the_sequential_one_with_the_fluid_hint() -> None:
    config = PPOConfig(
        shared_budget=True,
        budget_prior="fluid",
        n_envs=8,
        batch_size=64,
        horizon_range=(6, 6),
        budget_skus=3,
    )
    rules = RULE_PROFILES["none"]
    env = make_training_env(config, rules, budget_training_catalog(30, np.random.default_rng(0)))
    assert isinstance(env, FluidHint) and isinstance(env.venv, SequentialCategoryEnv)
    assert env.venv.inner.config.horizon_weeks == 6 and env.num_envs == 8
    obs = env.reset()
    assert obs.shape[0] == 8 and obs.shape[1] > OBS_DIM + N_BUDGET  # the hint after the slots
    env.close()


# ------------------------------------------------------------------ the Lagrangian prior
class _RegretArgmax:
    """Plays the best allowed action of the Lagrangian regrets its observation carries (the
    slice a ``budget_prior = "lagrangian"`` policy starts from)."""

    name = "regret_argmax"
    requires_context = False

    def __init__(self, n_actions: int) -> None:
        self.n_actions = n_actions

    def reset(self, context=None) -> None:
        pass

    def act(self, observations, masks, context=None):
        start = OBS_DIM + N_BUDGET
        reg = np.asarray(observations)[:, start : start + self.n_actions]
        return np.argmax(np.where(masks, reg, -np.inf), axis=1)


@pytest.mark.parametrize("index", [1, 4])  # K = 1 of 4 SKUs; K = 2 of 5 with coupons
def test_the_lagrangian_regrets_played_greedily_in_advantage_order_are_the_lagrangian_plan(
    index: int,
) -> None:
    scenario = get_suite("budget")[index]
    solution = solve_category(
        scenario.catalog(), scenario.rules, scenario.horizon_weeks, scenario.max_promoted
    )
    prices = SlotPrices.from_category(solution)
    n = len(scenario.members)
    plays = {}
    for name, policy in [
        ("plan", CategoryDPPolicy(solution)),
        (
            "regrets",
            SequentialBudgetPolicy(
                _RegretArgmax(scenario.rules.n_actions), n, scenario.max_promoted, prices
            ),
        ),
    ]:
        env = CategoryEnv(scenario.catalog(), scenario.rules, scenario.horizon_weeks,
                          max_promoted=scenario.max_promoted, n_paths=150, seed=3)  # fmt: skip
        plays[name] = env.play(policy)
    assert solution.multiplier > 0  # the limit binds, so the order and the prices matter
    np.testing.assert_array_equal(plays["plan"].promoted, plays["regrets"].promoted)
    np.testing.assert_allclose(
        plays["plan"].totals["objective"], plays["regrets"].totals["objective"], rtol=0, atol=0
    )


@pytest.mark.parametrize("weekly", [False, True])
def test_slot_prices_read_the_priced_dp_at_the_skus_states(weekly: bool) -> None:
    scenario = get_suite("budget")[0]
    solution = solve_category(
        scenario.catalog(), scenario.rules, scenario.horizon_weeks, scenario.max_promoted
    )
    if weekly:  # one price per week: the weekly plan's advantages
        assert np.ptp(solve_weekly(scenario.catalog(), solution, iterations=10).multipliers) > 0
    prices = SlotPrices.from_category(solution, weekly=weekly)
    plan = CategoryDPPolicy(solution, "weekly" if weekly else "lagrangian")
    n = len(scenario.members)
    seen = []

    class Checking:
        name, requires_context = "checking", True

        def reset(self, context=None) -> None:
            pass

        def act(self, observations, masks, context=None):
            sku = np.arange(context.decision.stock.shape[0]) % n
            expected, _, _ = plan.advantages(context)
            np.testing.assert_allclose(prices.advantages(sku, context), expected, rtol=1e-5)
            reg = prices.regrets(sku, context, masks)
            assert reg.dtype == np.float32 and reg.min() >= -1.0
            assert (reg.max(axis=1) == 0.0).all()  # the best allowed action has no regret
            assert (reg[~np.asarray(masks, bool)] == -1.0).all()
            seen.append(int((context.decision.stock > 0).sum()))
            return plan.act(observations, masks, context)

    env = CategoryEnv(scenario.catalog(), scenario.rules, scenario.horizon_weeks,
                      max_promoted=1, n_paths=20, seed=0)  # fmt: skip
    env.play(Checking())
    assert len(seen) == scenario.horizon_weeks and seen[0] == 20 * n
    with pytest.raises(ConfigError, match="off its DP grid"):
        prices.values(np.array([0]), np.array([scenario.horizon_weeks + 1]), np.array([1.0]))


def test_the_training_pool_solves_each_category_and_keeps_its_skus_together() -> None:
    rules = RULE_PROFILES["none"]
    catalog = budget_training_catalog(40, np.random.default_rng(2))
    pool = solve_pool(catalog, rules, n_categories=4, n_skus=3, max_promoted=(1, 2),
                      horizon_weeks=6, rng=np.random.default_rng(5))  # fmt: skip
    assert pool.catalog.n_skus == 12 and pool.n_skus == 3
    assert set(pool.max_promoted.tolist()) <= {1, 2}
    for g in range(4):
        rows = list(range(3 * g, 3 * g + 3))
        sol = solve_category(catalog.take(rows), rules, 6, int(pool.max_promoted[g]))
        lam = pool.prior.multipliers[rows]
        assert np.ptp(lam) == 0.0
        assert lam[0] == pytest.approx(sol.multiplier, rel=2e-3, abs=1e-6)
    env = SequentialCategoryEnv(
        EnvConfig(horizon_weeks=6, rules=rules, catalog=pool.catalog), 5, 3, seed=1, pool=pool
    )
    obs = env.reset()
    assert obs.shape == (5, OBS_DIM + N_BUDGET + rules.n_actions + N_RIVAL)
    for _ in range(2 * 6 * 3):  # two episodes: the copies restart with a new category
        group = env.inner.sku_index.reshape(5, 3) // 3
        assert (group == group[:, :1]).all()  # a copy's SKUs are one pool category
        np.testing.assert_array_equal(env.max_promoted, pool.max_promoted[group[:, 0]])
        masks = env.action_masks()
        obs, _, _, _ = env.step(np.argmax(masks, axis=1))
        reg = obs[:, OBS_DIM + N_BUDGET : OBS_DIM + N_BUDGET + rules.n_actions]
        assert reg.min() >= -1.0 and reg.max() <= 0.0
        rival = obs[:, -N_RIVAL:]
        assert (np.abs(rival[:, :2]) <= 1).all() and (rival[:, 2] <= 1).all()
    with pytest.raises(ConfigError, match="training catalog has 40"):
        solve_pool(catalog, rules, n_categories=20, n_skus=3, max_promoted=(1, 2),
                   horizon_weeks=6, rng=np.random.default_rng(5))  # fmt: skip


def test_the_lagrangian_prior_settings_are_checked_and_build_the_prior_policy() -> None:
    with pytest.raises(ConfigError, match="budget_prior"):
        PPOConfig(shared_budget=True, budget_prior="dual")
    with pytest.raises(ConfigError, match="budget_pool = 0"):
        PPOConfig(shared_budget=True, budget_pool=0)
    with pytest.raises(ConfigError, match="fluid_prior"):
        PPOConfig(shared_budget=True, budget_prior="lagrangian", fluid_prior=0.0)
    with pytest.raises(ConfigError, match="n_catalog_skus >= 400"):
        PPOConfig(shared_budget=True, budget_prior="lagrangian", budget_pool=100,
                  n_catalog_skus=50)  # fmt: skip
    config = PPOConfig(shared_budget=True, budget_prior="lagrangian", budget_pool=3, n_envs=4,
                       batch_size=32, horizon_range=(5, 5), budget_skus=3,
                       n_catalog_skus=30)  # fmt: skip
    rules = RULE_PROFILES["none"]
    env = make_training_env(config, rules, budget_training_catalog(30, np.random.default_rng(0)))
    model = build_model(config, env)
    assert model.policy.prior_start == OBS_DIM + N_BUDGET
    policy = PPOPolicy(model)
    assert reads_slot_prices(policy, rules)
    scenario = get_suite("budget")[0]
    solution = solve_category(scenario.catalog(), scenario.rules, scenario.horizon_weeks, 1)
    raw = budget_policy(policy, scenario.catalog(), solution, guard=False)
    assert isinstance(raw, SequentialBudgetPolicy) and raw.prices is not None
    assert raw.prices.n_skus == 3
    guarded = budget_policy(policy, scenario.catalog(), solution)
    assert isinstance(guarded, GuardedCategoryPolicy)
    env.close()


def test_the_category_guard_plays_the_lagrangian_plan_where_the_network_is_worse() -> None:
    scenario = get_suite("budget")[0]
    solution = solve_category(
        scenario.catalog(), scenario.rules, scenario.horizon_weeks, scenario.max_promoted
    )
    n, k = len(scenario.members), scenario.max_promoted
    prices = SlotPrices.from_category(solution)
    worse = SequentialBudgetPolicy(RandomMaskedPolicy(7), n, k, prices)
    guarded = GuardedCategoryPolicy(worse, solution, scenario.catalog(), n_paths=64)
    assert not guarded.candidate_wins and guarded.guard_means[0] < guarded.guard_means[1]
    the_plan_itself = GuardedCategoryPolicy(
        SequentialBudgetPolicy(_RegretArgmax(scenario.rules.n_actions), n, k, prices),
        solution,
        scenario.catalog(),
        n_paths=64,
    )
    assert the_plan_itself.guard_means[0] == the_plan_itself.guard_means[1]  # the plan
    plays = []
    for policy in (guarded, CategoryDPPolicy(solution)):
        env = CategoryEnv(scenario.catalog(), scenario.rules, scenario.horizon_weeks,
                          max_promoted=k, n_paths=50, seed=11)  # fmt: skip
        plays.append(env.play(policy).totals["objective"].to_numpy())
    np.testing.assert_array_equal(plays[0], plays[1])


def test_rival_features_read_the_skus_deciding_later() -> None:
    scaled = np.array([[0.5, -1.0, 0.2, 0.9], [0.1, 0.3, -0.2, -1.0]])
    order = np.array([[3, 0, 2, 1], [1, 0, 2, 3]])
    first = rival_features(scaled, order, 0)
    np.testing.assert_allclose(first, [[0.9, 0.5, 0.5], [0.3, 0.1, 0.25]], rtol=1e-6)
    last = rival_features(scaled, order, 3)
    np.testing.assert_allclose(last, [[-1.0, -1.0, 0.0], [-1.0, -1.0, 0.0]])


# ------------------------------------------------------------------ the weekly prior
@pytest.mark.parametrize("index", [1, 4])
def test_the_weekly_regrets_played_greedily_in_advantage_order_are_the_weekly_plan(
    index: int,
) -> None:
    scenario = get_suite("budget")[index]
    solution = solve_category(
        scenario.catalog(), scenario.rules, scenario.horizon_weeks, scenario.max_promoted
    )
    weekly = solve_weekly(scenario.catalog(), solution, iterations=10)
    assert np.ptp(weekly.multipliers) > 0  # the weeks are priced apart, so the test can fail
    prices = SlotPrices.from_category(solution, weekly=True)
    plan = CategoryDPPolicy(solution, "weekly")
    n = len(scenario.members)
    plays = {}
    for name, policy in [
        ("plan", plan),
        ("regrets", SequentialBudgetPolicy(
            _RegretArgmax(scenario.rules.n_actions), n, scenario.max_promoted, prices)),
    ]:  # fmt: skip
        env = CategoryEnv(scenario.catalog(), scenario.rules, scenario.horizon_weeks,
                          max_promoted=scenario.max_promoted, n_paths=150, seed=3)  # fmt: skip
        plays[name] = env.play(policy)
    np.testing.assert_array_equal(plays["plan"].promoted, plays["regrets"].promoted)
    np.testing.assert_allclose(
        plays["plan"].totals["objective"], plays["regrets"].totals["objective"], rtol=0, atol=0
    )
    # and not the single multiplier's plan on these paths
    single = CategoryEnv(scenario.catalog(), scenario.rules, scenario.horizon_weeks,
                         max_promoted=scenario.max_promoted, n_paths=150, seed=3)  # fmt: skip
    other = single.play(CategoryDPPolicy(solution)).totals["objective"]
    assert not np.array_equal(other.to_numpy(), plays["plan"].totals["objective"].to_numpy())


def test_weekly_slot_prices_refuse_a_missing_solve_and_a_wrong_shape() -> None:
    scenario = get_suite("budget")[0]
    solution = solve_category(scenario.catalog(), scenario.rules, scenario.horizon_weeks, 1)
    with pytest.raises(ConfigError, match="solve_weekly"):
        SlotPrices.from_category(solution, weekly=True)
    promo = np.array([False, True, True])
    with pytest.raises(ConfigError, match="3 weekly multipliers for a 10-week DP"):
        SlotPrices(solution.solutions, np.zeros((3, 3)), promo)
    with pytest.raises(ConfigError, match="multipliers of shape"):
        SlotPrices(solution.solutions, np.zeros(2), promo)


def test_the_weekly_training_pool_holds_each_categorys_weekly_prices() -> None:
    rules = RULE_PROFILES["none"]
    catalog = budget_training_catalog(40, np.random.default_rng(2))
    pool = solve_pool(catalog, rules, n_categories=3, n_skus=3, max_promoted=(1, 1),
                      horizon_weeks=6, rng=np.random.default_rng(5), weekly=True)  # fmt: skip
    lam = pool.prior.multipliers
    assert lam.shape == (9, 6)
    for g in range(3):
        rows = list(range(3 * g, 3 * g + 3))
        sol = solve_category(catalog.take(rows), rules, 6, 1, tol=POOL_TOL)
        want = solve_weekly(catalog.take(rows), sol, iterations=POOL_WEEKLY_ITERATIONS)
        np.testing.assert_allclose(lam[rows], np.tile(want.multipliers, (3, 1)), rtol=1e-12)
    env = SequentialCategoryEnv(
        EnvConfig(horizon_weeks=6, rules=rules, catalog=pool.catalog), 4, 3, seed=1, pool=pool
    )
    obs = env.reset()
    assert obs.shape == (4, OBS_DIM + N_BUDGET + rules.n_actions + N_RIVAL)


def test_a_weekly_prior_model_records_its_prior_and_is_played_with_the_weekly_prices(
    tmp_path,
) -> None:
    config = PPOConfig(shared_budget=True, budget_prior="lagrangian_weekly", budget_pool=2,
                       n_envs=4, batch_size=32, horizon_range=(5, 5), budget_skus=3,
                       n_catalog_skus=30)  # fmt: skip
    rules = RULE_PROFILES["none"]
    env = make_training_env(config, rules, budget_training_catalog(30, np.random.default_rng(0)))
    assert env.venv.pool.prior.multipliers.shape == (6, 5)  # the pool's prices are weekly
    model = build_model(config, env)
    model.save(tmp_path / "model.zip")
    env.close()
    policy = PPOPolicy.load(tmp_path / "model.zip")
    assert policy.budget_prior == "lagrangian_weekly" and weekly_prior(policy)
    scenario = get_suite("budget")[0]
    solution = solve_category(scenario.catalog(), scenario.rules, scenario.horizon_weeks, 1)
    raw = budget_policy(policy, scenario.catalog(), solution, guard=False)
    assert solution.weekly is not None  # solved for it
    assert isinstance(raw, SequentialBudgetPolicy) and raw.prices.multipliers.shape == (3, 10)
    np.testing.assert_array_equal(raw.prices.multipliers[0], solution.weekly.multipliers)
    guarded = budget_policy(policy, scenario.catalog(), solution)
    assert isinstance(guarded, GuardedCategoryPolicy)
    # the guard's fallback is the plan the prior is: a random network loses to the weekly plan
    worse = SequentialBudgetPolicy(RandomMaskedPolicy(7), 3, 1, raw.prices)
    weekly_guard = GuardedCategoryPolicy(
        worse, solution, scenario.catalog(), n_paths=64, mode="weekly"
    )
    assert not weekly_guard.candidate_wins and weekly_guard.chosen.name == "lagrangian_weekly"
    # a model of the single multiplier (or saved before the prior was recorded) is not weekly
    single = PPOConfig(shared_budget=True, budget_pool=2, n_envs=4, batch_size=32,
                       horizon_range=(5, 5), budget_skus=3, n_catalog_skus=30)  # fmt: skip
    env = make_training_env(single, rules, budget_training_catalog(30, np.random.default_rng(0)))
    old = PPOPolicy(build_model(single, env))
    env.close()
    assert old.budget_prior == "lagrangian" and not weekly_prior(old)
    del old.model.budget_prior
    assert PPOPolicy(old.model).budget_prior is None
    fresh = solve_category(scenario.catalog(), scenario.rules, scenario.horizon_weeks, 1)
    played = budget_policy(old, scenario.catalog(), fresh, guard=False)
    assert played.prices.multipliers.ndim == 1 and fresh.weekly is None
