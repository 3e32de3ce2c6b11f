"""The exact DP: hand-checkable values, a brute-force cross-check, Monte-Carlo agreement
through the market, rule masks respected, and refusal where it cannot be exact."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from agents.baselines import DPPolicy
from agents.dp import (
    DPNotExactError,
    demand_pmf,
    evaluate_exact,
    expected_units_sold,
    solve,
)
from agents.rollout import rollout
from envs.config import RulesConfig
from envs.rules import action_mask, initial_decision_state
from ingest.errors import ConfigError
from simulator.demand import Catalog

SEASON = 1.0 + 0.4 * np.sin(np.arange(52) / 52 * 2 * np.pi)

RULE_SETS = {
    "none": RulesConfig(),
    "markdown_min3": RulesConfig(markdown_only=True, min_weeks_between_changes=3),
    "coupons_hard": RulesConfig(
        discount_levels=(0.0, 0.2, 0.4, 0.6),
        coupon_levels=(0.0, 0.1),
        coupon_budget_weeks=2,
        no_touch_before_exit_weeks=1,
        no_touch_after_launch_weeks=3,
        margin_floor=0.0,
        sell_through_target=0.95,
        sell_through_mode="hard",
    ),
    "penalty_max": RulesConfig(
        max_discount=0.5, sell_through_target=0.9, sell_through_penalty_per_unit=1.0
    ),
}


def sku(**kw) -> Catalog:
    base = dict(
        base_demand=5.0,
        initial_stock=50,
        elasticity=-2.5,
        unit_cost=0.4,
        holding_cost_per_unit_week=0.01,
        salvage_value_per_unit=0.1,
        return_rate=0.05,
        dispersion=0.3,
        coupon_coef=3.0,
        season=SEASON,
        start_week=5,
        age_weeks=1,
    )
    base.update(kw)
    return Catalog.build(n_skus=1, **base)


# ---------------------------------------------------------------------------- hand checks


def test_one_week_poisson_value_is_analytic():
    cat = sku(
        base_demand=3.0, initial_stock=5, list_price=2.0, unit_cost=0.5, return_rate=0.0,
        dispersion=0.0, season=1.0, holding_cost_per_unit_week=0.3,
    )  # fmt: skip
    sol = solve(cat, RulesConfig(discount_levels=(0.0,)), 1)
    k = np.arange(200)
    sold = (np.minimum(k, 5) * stats.poisson.pmf(k, 3.0)).sum()
    # exit week: no holding; margin 1.5 per unit; leftover salvaged at 0.1, written off at 0.5
    assert sol.value == pytest.approx(1.5 * sold + (0.1 - 0.5) * (5 - sold), rel=1e-12)


def test_one_week_picks_the_best_action_negative_binomial():
    cat = sku(initial_stock=8, season=1.0, return_rate=0.1)
    rules = RulesConfig(discount_levels=(0.0, 0.3, 0.6))
    sol = solve(cat, rules, 1)
    r, a = 1 / 0.3, np.arange(400)
    values = []
    for d in rules.discount_levels:
        lam = 5.0 * (1 - d) ** -2.5
        pmf = stats.nbinom.pmf(a, r, 1 / (1 + 0.3 * lam))
        sold = (np.minimum(a, 8) * pmf).sum()
        values.append((1 - d) * 0.9 * sold - 0.4 * sold + (0.1 - 0.4) * (8 - sold))
    assert sol.value == pytest.approx(max(values), rel=1e-10)
    assert sol.actions[1, 8, 0] == int(np.argmax(values))


def test_no_demand_means_holding_then_writeoff():
    cat = sku(base_demand=0.0, initial_stock=20)
    sol = solve(cat, RulesConfig(), 4)
    assert sol.value == pytest.approx(-0.01 * 20 * 3 + (0.1 - 0.4) * 20, abs=1e-12)


def test_demand_pmf_and_expected_sales_match_scipy():
    lam = np.array([0.0, 0.7, 12.0, 300.0])
    pmf, sf = demand_pmf(lam, 0.0, 400)
    k = np.arange(pmf.shape[1])
    np.testing.assert_allclose(pmf, stats.poisson.pmf(k[None], lam[:, None]), atol=1e-14)
    np.testing.assert_allclose(sf[:, :50], stats.poisson.sf(np.arange(50)[None], lam[:, None]))
    pmf, sf = demand_pmf(lam, 0.5, 60)
    p = 1 / (1 + 0.5 * lam[:, None])
    np.testing.assert_allclose(pmf, stats.nbinom.pmf(np.arange(61)[None], 2.0, p), atol=1e-14)
    for alpha in (0.0, 0.5):
        got = expected_units_sold(lam[1:], alpha, 10)
        want = [
            np.sum(sf_row[:10]) for sf_row in demand_pmf(lam[1:], alpha, 10)[1]
        ]  # E[min(D, s)] = sum_{k<s} P(D > k)
        np.testing.assert_allclose(got, want, rtol=1e-10)


# ---------------------------------------------------------------------------- brute force


def _brute_force(cat: Catalog, rules: RulesConfig, H: int) -> float:
    """Plain recursion over (weeks left, stock, depth in force) with scipy pmfs."""
    L, u, h = 1.0, float(cat.unit_cost[0]), float(cat.holding_cost_per_unit_week[0])
    salv, ret, alpha = (
        float(cat.salvage_value_per_unit[0]),
        float(cat.return_rate[0]),
        float(cat.dispersion[0]),
    )
    memo: dict = {}

    def v(w: int, s: int, j: int) -> float:
        if w == 0:
            return (salv - u) * s
        if (w, s, j) in memo:
            return memo[(w, s, j)]
        week = int(cat.start_week[0]) + H - w
        best = -np.inf
        for di, d in enumerate(rules.discount_levels):
            if rules.markdown_only and di < j:
                continue
            lam = float(cat.base_demand[0] * SEASON[week % 52] * (1 - d) ** cat.elasticity[0])
            total = 0.0
            for k in range(s + 1):
                if alpha > 0:
                    pk = stats.nbinom.pmf(k, 1 / alpha, 1 / (1 + alpha * lam))
                    if k == s:
                        pk = stats.nbinom.sf(s - 1, 1 / alpha, 1 / (1 + alpha * lam))
                else:
                    pk = stats.poisson.pmf(k, lam) if k < s else stats.poisson.sf(s - 1, lam)
                margin = L * (1 - d) * (1 - ret) - u
                hold = 0.0 if w == 1 else h * (s - k)
                total += pk * (margin * k - hold + v(w - 1, s - k, di))
            best = max(best, total)
        memo[(w, s, j)] = best
        return best

    return v(H, int(cat.initial_stock[0]), 0)


@pytest.mark.parametrize("markdown_only", [False, True], ids=["free", "markdown_only"])
@pytest.mark.parametrize("alpha", [0.0, 0.4], ids=["poisson", "negbin"])
def test_matches_brute_force_recursion(markdown_only, alpha):
    cat = sku(initial_stock=6, base_demand=1.5, dispersion=alpha, coupon_coef=0.0)
    rules = RulesConfig(discount_levels=(0.0, 0.3, 0.6), markdown_only=markdown_only)
    assert solve(cat, rules, 4).value == pytest.approx(_brute_force(cat, rules, 4), rel=1e-10)


# ---------------------------------------------------------------------------- simulation


@pytest.mark.parametrize("name", list(RULE_SETS))
def test_simulated_dp_policy_within_99ci_of_dp_value(name):
    rules = RULE_SETS[name]
    cat, H = sku(), 10
    sol = solve(cat, rules, H)
    res = rollout(DPPolicy(), cat, rules, H, n_episodes=3000, seed=11)
    mean, half = res.mean_ci(0.99)
    assert abs(mean[0] - sol.value) <= half[0], (mean[0], sol.value, half[0])
    # and the policy evaluator reproduces the optimum exactly
    ev = evaluate_exact(cat, rules, H, lambda ctx, m: sol.policy(ctx.decision))
    assert ev == pytest.approx(sol.value, rel=1e-12)


@pytest.mark.parametrize("name", list(RULE_SETS))
def test_dp_table_only_holds_allowed_actions(name):
    rules, cat, H = RULE_SETS[name], sku(), 6
    sol = solve(cat, rules, H)
    j, wsc, budget = sol.grid.components()
    n_s, n_r = sol.values.shape[1], sol.grid.size
    for w in range(1, H + 1):
        state = initial_decision_state(cat, H, rules)
        grid = type(state)(
            weeks_left=np.full(n_s * n_r, w),
            stock=np.repeat(np.arange(n_s, dtype=float), n_r),
            initial_stock=np.full(n_s * n_r, 50.0),
            depth_index=np.tile(j, n_s),
            weeks_since_change=np.tile(wsc, n_s),
            coupon_weeks_left=np.tile(budget, n_s),
            age_weeks=np.full(n_s * n_r, 1 + H - w),
        )
        mask = action_mask(rules, grid, cat.take(np.zeros(n_s * n_r, int)))
        chosen = sol.policy(grid)
        assert mask[np.arange(chosen.size), chosen].all()


def test_rules_never_raise_the_optimum():
    cat, H = sku(), 8
    free = solve(cat, RulesConfig(), H).value
    for name, rules in RULE_SETS.items():
        if rules.n_coupons == 1 and rules.sell_through_target is None:
            assert solve(cat, rules, H).value <= free + 1e-9, name


def test_seasonality_and_promotions_move_the_value():
    flat = solve(sku(season=1.0), RulesConfig(), 6).value
    high = solve(sku(season=1.5), RulesConfig(), 6).value
    assert high > flat
    cat = sku(season=1.0).replace(display_coef=1.0)
    promo = solve(cat, RulesConfig(), 6, display=np.array([0, 0, 1.0, 1.0, 0, 0])).value
    assert promo > solve(cat, RulesConfig(), 6).value


# ---------------------------------------------------------------------------- refusals


def test_refuses_reference_price_memory_and_fatigue():
    with pytest.raises(DPNotExactError, match="ref_price_sensitivity"):
        solve(sku(ref_price_sensitivity=0.5, ref_price_memory=0.7), RulesConfig(), 4)
    with pytest.raises(DPNotExactError, match="fatigue_rate"):
        evaluate_exact(sku(fatigue_rate=0.1), RulesConfig(), 4, lambda c, m: np.zeros(len(m)))
    with pytest.raises(DPNotExactError, match="whole number"):
        solve(sku(initial_stock=10.5), RulesConfig(), 4)


def test_bad_inputs_are_clear_config_errors():
    two = Catalog.build(n_skus=2)
    with pytest.raises(ConfigError, match="one SKU at a time"):
        solve(two, RulesConfig(), 4)
    with pytest.raises(ConfigError, match="horizon_weeks"):
        solve(sku(), RulesConfig(), 0)
    with pytest.raises(ConfigError, match="display has shape"):
        solve(sku(), RulesConfig(), 4, display=np.ones(3))
    with pytest.raises(ConfigError, match="too large"):
        solve(sku(initial_stock=10**7), RulesConfig(), 52)
    sol = solve(sku(), RulesConfig(), 4)
    state = initial_decision_state(sku(), 4, RulesConfig())
    state.stock = state.stock + 0.5
    with pytest.raises(ConfigError, match="off the DP grid"):
        sol.policy(state)


def test_value_tables_are_consistent():
    sol = solve(sku(), RULE_SETS["markdown_min3"], 5)
    start = initial_decision_state(sku(), 5, RULE_SETS["markdown_min3"])
    assert sol.value_at(start)[0] == pytest.approx(sol.value)
    assert sol.values.shape == (6, 51, sol.grid.size)
    assert np.all(sol.actions[0] == -1)
    # more stock never hurts when salvage >= 0 and holding is small... check monotone at exit
    assert np.all(np.diff(sol.values[0][:, 0]) < 0)  # leftover writes off at a loss
    assert list(itertools.islice(sol.grid.components()[1], 3)) == [1, 2, 3]


# ---------------------------------------------------------------------------- benchmark scripts


def _load_script(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_scripts_run_and_write_their_sections(tmp_path):
    page, csv = tmp_path / "dp.md", tmp_path / "dp_baselines.csv"
    bench = _load_script("bench_dp")
    assert bench.main(["--units", "40", "--weeks", "4", "--repeats", "1", "--page", str(page)]) == 0
    table = _load_script("baselines_table")
    args = ["--units", "30", "--elasticities", "-2", "--covers", "2", "--horizons", "4"]
    assert table.main([*args, "--profiles", "none", "--page", str(page), "--csv", str(csv)]) == 0
    text = page.read_text()
    assert "## DP solve time" in text and "## Baselines as a percentage" in text
    assert "`certainty_equiv`" in text
    # rerunning one script replaces its own section and keeps the other
    bench.main(["--units", "40", "--weeks", "4", "--repeats", "1", "--page", str(page)])
    text = page.read_text()
    assert text.count("## DP solve time") == 1 and "## Baselines as a percentage" in text
    import pandas as pd

    frame = pd.read_csv(csv)
    assert (frame["value"] <= frame["dp_value"] + 1e-9).all()
