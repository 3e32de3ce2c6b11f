"""Revelation bounds of the learning market: told the truth at once is the oracle, never told
is the Bayes-optimal value (checked against a brute-force DP over posteriors), and every
depth in between is an upper bound on what a policy that learns can reach."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from agents.dp import BellmanModel, evaluate_exact, solve, start_rule_state
from agents.learning import GridDPPolicy, GridSolution, solve_grid
from agents.learning_bound import MAX_DEPTH, revelation_bound
from envs.belief import BeliefGrid, log_likelihood, normalize
from envs.config import RulesConfig
from ingest.errors import ConfigError
from simulator.demand import Catalog
from simulator.market import expected_demand

MARKDOWN = RulesConfig(discount_levels=(0.0, 0.2, 0.4, 0.6), markdown_only=True)
FREE = RulesConfig(discount_levels=(0.0, 0.3, 0.6))


def _sku(
    stock: float = 6.0, dispersion: float = 0.0, elasticity_se: float = 0.8, level_se: float = 0.5
) -> Catalog:
    return Catalog.build(
        n_skus=1,
        base_demand=2.0,
        elasticity=-2.0,
        elasticity_se=elasticity_se,
        base_demand_se=level_se,
        unit_cost=0.4,
        list_price=1.0,
        salvage_value_per_unit=0.05,
        dispersion=dispersion,
        initial_stock=stock,
    )


def _brute_force_bayes(sol: GridSolution) -> float:
    """The Bayes-optimal value by recursion over every sales history, written apart from the
    bound's search: the sales law from scipy (censored at the stock), the posterior from the
    env's own likelihood, each week's expected reward from the grid point's DP
    (``Q - E[V next]``)."""
    cat, rules, H = sol.catalog, sol.rules, sol.horizon_weeks
    G = sol.grid.n_points
    points = [sol.point_catalog(g) for g in range(G)]
    dps = [solve(c, rules, H, keep_q=True) for c in points]
    model = BellmanModel(cat, rules, H, display=None, mailer=None, track_depth=False)
    next_r, r0 = model.next_r, start_rule_state(model)
    model.release()
    depth, coupon = rules.depths(np.arange(rules.n_actions))
    alpha = float(cat.dispersion[0])

    def sales(t: int, a: int, s: int) -> tuple[np.ndarray, np.ndarray]:
        """P_g(y) for y = 0..s, shape (G, s + 1), and each point's expected demand."""
        lam = np.array(
            [
                expected_demand(c, np.array([int(c.start_week[0]) + t]), depth[a], coupon[a])[0]
                for c in points
            ]
        )
        y = np.arange(s)
        if alpha > 0:
            r, p = 1.0 / alpha, 1.0 / (1.0 + alpha * lam[:, None])
            head, tail = stats.nbinom.pmf(y, r, p), stats.nbinom.sf(s - 1, r, p[:, 0])
        else:
            head, tail = stats.poisson.pmf(y, lam[:, None]), stats.poisson.sf(s - 1, lam)
        return np.column_stack([head, tail]) if s else np.ones((G, 1)), lam

    def value(t: int, s: int, r: int, post: np.ndarray) -> float:
        w = H - t
        if w == 0:
            return float(post @ np.array([d.values[0, s, r] for d in dps]))
        q = np.array([d.q[w, s, r] for d in dps])  # (G, n_a)
        best = -np.inf
        for a in np.flatnonzero(np.isfinite(q[0])):
            p_y, lam = sales(t, int(a), s)
            r2 = int(next_r[r, a])
            v_next = np.array([[d.values[w - 1, s - y, r2] for y in range(s + 1)] for d in dps])
            reward = q[:, a] - np.sum(p_y * v_next, axis=1)
            total = float(post @ reward)
            for y in range(s + 1):
                p = float(post @ p_y[:, y])
                if p < 1e-300:
                    continue
                ll = log_likelihood(lam[None, :], np.array([y]), np.array([s]), np.array([alpha]))
                _, new = normalize(np.log(np.maximum(post, 1e-300))[None, :] + ll)
                total += p * value(t + 1, s - y, r2, new[0])
            best = max(best, total)
        return best

    return value(0, int(cat.initial_stock[0]), r0, sol.grid.prior.copy())


@pytest.mark.parametrize(
    ("rules", "horizon", "dispersion"),
    [(MARKDOWN, 3, 0.0), (FREE, 2, 0.4)],
    ids=["markdown-poisson", "free-price-nb"],
)
def test_never_told_is_the_bayes_optimal_value(rules, horizon, dispersion) -> None:
    sol = solve_grid(_sku(dispersion=dispersion), rules, horizon, BeliefGrid(3))
    bayes = _brute_force_bayes(sol)
    bound = revelation_bound(sol, horizon, prune=0.0)
    assert bound.depth == horizon
    assert bound.pruned_mass == 0.0
    assert bound.value == pytest.approx(bayes, rel=1e-9)
    # learning costs something here: the Bayes-optimal value is below the oracle's
    assert bayes < sol.oracle_value - 1e-6
    # depth beyond the horizon is the horizon
    assert revelation_bound(sol, MAX_DEPTH, prune=0.0).value == pytest.approx(bound.value)


@pytest.fixture(scope="module")
def markdown_solution() -> GridSolution:
    return solve_grid(_sku(stock=30.0), MARKDOWN, 6, BeliefGrid(5))


def test_bounds_fall_from_the_oracle_with_depth(markdown_solution) -> None:
    sol = markdown_solution
    values = [revelation_bound(sol, k).value for k in range(4)]
    assert values[0] == pytest.approx(sol.oracle_value, rel=1e-12)
    # revealed after week 1: the best first action on the prior, then the true DP
    assert values[1] == pytest.approx(
        max(
            float(
                sol.grid.prior
                @ np.array(
                    [
                        solve(sol.point_catalog(g), MARKDOWN, 6, keep_q=True).q[6, 30, 0, a]
                        for g in range(sol.grid.n_points)
                    ]
                )
            )
            for a in range(MARKDOWN.n_actions)
        ),
        rel=1e-12,
    )
    assert all(b < a for a, b in zip(values, values[1:], strict=False))


def test_every_policy_that_learns_is_below_the_bound(markdown_solution) -> None:
    """The certainty equivalent (a fixed table, exact value by the DP's own evaluation at
    every grid point) and a bound pruned hard stay below / above the exact search."""
    sol = markdown_solution
    exact = revelation_bound(sol, 3, prune=0.0)
    ce = GridDPPolicy(sol, "prior_mean")
    ce_value = sum(
        sol.grid.prior[g] * evaluate_exact(sol.point_catalog(g), MARKDOWN, 6, ce)
        for g in range(sol.grid.n_points)
    )
    assert ce_value < exact.value
    # pruning tells unlikely histories the truth early: a valid, looser bound
    loose = revelation_bound(sol, 3, prune=0.05)
    assert loose.pruned_mass > 0
    assert loose.value >= exact.value - 1e-9


def test_known_parameters_learn_nothing() -> None:
    sku = _sku(stock=20.0)
    dp = solve(sku, MARKDOWN, 5).value
    one = solve_grid(sku, MARKDOWN, 5, BeliefGrid(1))
    for k in (0, 1, 3):
        assert revelation_bound(one, k).value == pytest.approx(dp, rel=1e-12)


@pytest.mark.parametrize(
    ("depth", "prune"), [(-1, 1e-9), (MAX_DEPTH + 1, 1e-9), (1.5, 1e-9), (2, 1.0), (2, -0.1)]
)
def test_bad_arguments_are_refused(markdown_solution, depth, prune) -> None:
    with pytest.raises(ConfigError, match="depth|prune"):
        revelation_bound(markdown_solution, depth, prune=prune)
