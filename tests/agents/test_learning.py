"""Grid DP planners of the learning market: the degenerate prior is the standard DP, the
oracle's value agrees with simulation, every planner obeys the masks."""

from __future__ import annotations

import numpy as np
import pytest

from agents.baselines import CertaintyEquivalent, FluidPrior, Myopic, NoMarkdown
from agents.dp import solve
from agents.learning import GridDPPolicy, QMDPPolicy, solve_grid
from agents.learning_bound import LookaheadPolicy, _Tables, _week, revelation_bound
from agents.policy import PolicyError
from envs.belief import BeliefGrid
from envs.config import RulesConfig
from envs.learning import LearningMarkdownEnv
from envs.markdown import EnvConfig
from simulator.demand import Catalog

RULES = RulesConfig(discount_levels=(0.0, 0.1, 0.2, 0.3, 0.5, 0.7), markdown_only=True)
HORIZON = 6


def _sku(elasticity_se: float = 0.6, level_se: float = 0.4, dispersion: float = 0.0) -> Catalog:
    return Catalog.build(
        n_skus=1,
        base_demand=5.0,
        elasticity=-2.0,
        elasticity_se=elasticity_se,
        base_demand_se=level_se,
        unit_cost=0.4,
        list_price=1.0,
        salvage_value_per_unit=0.1,
        dispersion=dispersion,
        initial_stock=40.0,
    )


@pytest.fixture(scope="module")
def grid_solution():
    return solve_grid(_sku(), RULES, HORIZON, BeliefGrid(5))


def test_degenerate_prior_is_the_standard_dp() -> None:
    sku = _sku()
    exact = solve(sku, RULES, HORIZON)
    one = solve_grid(sku, RULES, HORIZON, BeliefGrid(1))
    assert one.values0.shape == (1,)
    assert one.oracle_value == pytest.approx(exact.value, rel=1e-12)
    np.testing.assert_array_equal(one.actions[0], exact.actions)
    # no uncertainty: every grid point is the estimate
    known = solve_grid(_sku(0.0, 0.0), RULES, HORIZON, BeliefGrid(5))
    np.testing.assert_allclose(known.values0, exact.value, rtol=1e-12)


def test_grid_points_and_oracle_value(grid_solution) -> None:
    sol = grid_solution
    assert sol.actions.shape[0] == 25
    assert sol.oracle_value == pytest.approx(float(sol.grid.prior @ sol.values0))
    # the estimate's point: demand and value in the middle of the grid's range
    center = solve(_sku(), RULES, HORIZON).value
    assert sol.values0[sol.center] == pytest.approx(center, rel=1e-12)
    assert sol.values0.min() < center < sol.values0.max()
    cat = sol.point_catalog(0)
    assert cat.elasticity[0] == pytest.approx(-2.0 - 0.6 * 2.5)


def _env(n: int, seed: int = 11, grid: int = 5) -> LearningMarkdownEnv:
    return LearningMarkdownEnv(
        EnvConfig(catalog=_sku(), rules=RULES, horizon_weeks=HORIZON, invalid_action="hold"),
        n_slots=n,
        seed=seed,
        fixed_skus=True,
        grid=grid,
    )


def _play(env: LearningMarkdownEnv, policy) -> np.ndarray:
    env.reveal_truth = bool(getattr(policy, "needs_truth", False))
    policy.reset(None)
    totals = env.evaluate(lambda o, m, c: policy.act(o, m, c))
    assert int(totals["violations"].sum()) == 0
    return totals["objective"].to_numpy()


def test_oracle_simulation_agrees_with_its_exact_value(grid_solution) -> None:
    x = _play(_env(3000), GridDPPolicy(grid_solution, "oracle"))
    half = 3.0 * x.std(ddof=1) / np.sqrt(x.size)
    assert abs(x.mean() - grid_solution.oracle_value) < half


def test_planners_obey_the_masks_and_none_beats_the_oracle(grid_solution) -> None:
    env = _env(400)
    oracle = _play(env, GridDPPolicy(grid_solution, "oracle"))
    bound = revelation_bound(grid_solution, 3).value
    assert bound < grid_solution.oracle_value
    for policy in (
        GridDPPolicy(grid_solution, "prior_mean"),
        GridDPPolicy(grid_solution, "posterior_mean"),
        GridDPPolicy(grid_solution, "thompson", seed=1),
        QMDPPolicy(grid_solution),
        LookaheadPolicy(grid_solution),
        FluidPrior(),
        CertaintyEquivalent(),
        Myopic(),
        NoMarkdown(),
    ):
        x = _play(env, policy)
        diff = x - oracle
        # the oracle is optimal per draw: nobody beats it beyond the paired noise
        assert diff.mean() <= 3.0 * diff.std(ddof=1) / np.sqrt(diff.size), policy.name
        # nor the tighter bound of a policy told the truth after three weeks
        assert x.mean() <= bound + 3.0 * x.std(ddof=1) / np.sqrt(x.size), policy.name


def test_thompson_is_reproducible_and_the_oracle_needs_the_truth(grid_solution) -> None:
    env = _env(100)
    a = _play(env, GridDPPolicy(grid_solution, "thompson", seed=3))
    b = _play(env, GridDPPolicy(grid_solution, "thompson", seed=3))
    np.testing.assert_array_equal(a, b)
    obs = env.reset()
    with pytest.raises(PolicyError, match="true grid point"):
        env.reveal_truth = False
        GridDPPolicy(grid_solution, "oracle").act(obs, env.action_masks(), env.policy_context())
    # at the start the posterior is the prior: re-solving picks the estimate's table
    resolve = GridDPPolicy(grid_solution, "posterior_mean")
    ce = GridDPPolicy(grid_solution, "prior_mean")
    ctx, masks = env.policy_context(), env.action_masks()
    np.testing.assert_array_equal(resolve.act(obs, masks, ctx), ce.act(obs, masks, ctx))


def test_qmdp_weighs_every_point_by_its_posterior(grid_solution) -> None:
    sol = grid_solution
    q = sol.q_tables
    assert q.shape == (25, *sol.actions.shape[1:], RULES.n_actions) and q.dtype == np.float32
    # each point's table is its DP's: the first best allowed action is the DP's action
    exact = solve(sol.point_catalog(7), RULES, HORIZON, keep_q=True)
    allowed = np.isfinite(exact.q[1:])
    best = np.argmax(np.where(allowed, q[7, 1:], -np.inf), axis=-1)
    np.testing.assert_array_equal(best, exact.actions[1:])
    # at the start the posterior is the prior: the action of the best prior-weighted Q
    env = _env(5)
    obs = env.reset()
    ctx, masks = env.policy_context(), env.action_masks()
    w, s, r = sol.state_index(ctx)
    expected = np.argmax(np.where(masks[0], sol.grid.prior @ q[:, w[0], s[0], r[0], :], -np.inf))
    np.testing.assert_array_equal(QMDPPolicy(sol).act(obs, masks, ctx), np.full(5, expected))


@pytest.mark.parametrize("planner", [QMDPPolicy, LookaheadPolicy], ids=["qmdp", "lookahead"])
def test_with_known_parameters_the_posterior_planners_are_the_dp(planner) -> None:
    known = solve_grid(_sku(), RULES, HORIZON, BeliefGrid(1))
    env = _env(200, seed=5, grid=1)
    np.testing.assert_array_equal(
        _play(env, planner(known)), _play(env, GridDPPolicy(known, "prior_mean"))
    )


def test_lookahead_plays_the_two_week_bound_at_the_root(grid_solution) -> None:
    """Its first action attains U_2 (the bound's root is its value); in the last week it is
    QMDP."""
    sol = grid_solution
    env = _env(4)
    obs = env.reset()
    ctx, masks = env.policy_context(), env.action_masks()
    look = LookaheadPolicy(sol)
    first = look.act(obs, masks, ctx)
    assert np.all(first == first[0])
    # U_2 restricted to that first action equals U_2: the lookahead picks the bound's argmax
    two = revelation_bound(sol, 2, prune=0.0).value
    tb = _Tables(sol, 2)
    week = _week(tb, 0, tb.n_units, tb.r0, sol.grid.prior.copy(), int(first[0]), 0.0)
    assert week.value + week.children_qmdp(tb) == pytest.approx(two, rel=1e-12)
    # the last week: QMDP's action, whatever the posterior
    for _ in range(HORIZON - 1):
        obs, _, _, _ = env.step(QMDPPolicy(sol).act(obs, env.action_masks(), env.policy_context()))
    ctx, masks = env.policy_context(), env.action_masks()
    last = ctx.decision.weeks_left == 1  # a slot that sold out has started a new episode
    assert last.sum() >= 2
    np.testing.assert_array_equal(
        look.act(obs, masks, ctx)[last], QMDPPolicy(sol).act(obs, masks, ctx)[last]
    )


def test_posterior_planners_need_the_envs_posterior_on_their_grid(grid_solution) -> None:
    from dataclasses import replace

    env = _env(3)
    obs = env.reset()
    ctx, masks = env.policy_context(), env.action_masks()
    other = solve_grid(_sku(), RULES, HORIZON, BeliefGrid(3))
    for make in (
        lambda sol: GridDPPolicy(sol, "posterior_mean"),
        QMDPPolicy,
        LookaheadPolicy,
    ):
        policy = make(grid_solution)
        with pytest.raises(PolicyError, match=f"{policy.name!r} reads the posterior"):
            policy.act(obs, masks, replace(ctx, belief=None))
        with pytest.raises(
            PolicyError, match="solved on 9 grid points; the env's posterior has 25"
        ):
            make(other).act(obs, masks, ctx)
