"""The per-SKU choice: chosen on the selection paths, reported on independent ones."""

from __future__ import annotations

import numpy as np
import pytest

from agents.baselines import LinearLadder, default_baselines
from envs.config import RulesConfig
from ingest.errors import ConfigError, DataError
from planning import selection as selection_module
from planning.outcomes import (
    Outcome,
    SimulationSettings,
    mean_ci,
    simulate_schedules,
    simulation_seed,
)
from planning.recommend import DP_NAME, NONE_NAME, recommend
from planning.schedule import Schedule
from planning.selection import RECOMMENDED_NAME, Candidates, choose, selection_seed
from simulator.demand import Catalog

RULES = RulesConfig(discount_levels=(0.0, 0.1, 0.2, 0.3, 0.5), markdown_only=True)
H = 6


def _catalog(stock: list[float] | None = None) -> Catalog:
    """DP-exact (no memory, no fatigue, whole stock), parameters known (no standard errors)."""
    return Catalog.build(
        sku=["slow", "elastic", "glut", "fast", "dear"],
        base_demand=[0.6, 2.0, 1.5, 6.0, 1.0],
        elasticity=[-1.5, -4.0, -3.0, -2.0, -2.5],
        dispersion=[0.0, 0.3, 0.0, 0.0, 0.0],
        list_price=[3.0, 2.0, 2.0, 4.0, 10.0],
        unit_cost=[1.0, 1.0, 1.2, 1.5, 4.0],
        initial_stock=stock or [6.0, 20.0, 40.0, 30.0, 8.0],
        holding_cost_per_unit_week=0.02,
        salvage_value_per_unit=0.1,
    )


class _Learned(LinearLadder):
    """Stands in for PPO (a closed-loop policy that is not optimal)."""

    def __init__(self) -> None:
        super().__init__(0.2, 1)
        self.name = "ppo"


def _recommend(cat: Catalog):
    heuristics = [p for p in default_baselines(include_dp=False) if p.name != NONE_NAME]
    settings = SimulationSettings(seed=4, n_episodes=300, draw_parameters=False)
    no_demand = np.zeros(cat.n_skus, dtype=bool)
    return recommend(cat, _Learned(), heuristics, RULES, H, plan_seed=9, settings=settings,
                     no_demand=no_demand)  # fmt: skip


@pytest.fixture(scope="module")
def found():
    cat = _catalog()
    return cat, _recommend(cat)


def test_on_a_dp_exact_catalog_with_known_parameters_every_sku_gets_the_dp_plan():
    """With more stock than any plan sells, the DP's policy does not depend on the stock, so
    its exported plan is the best fixed plan: the choice gives it to every SKU."""
    cat = _catalog(stock=[400.0] * 5)
    rec = _recommend(cat)
    choice = rec.choice
    assert rec.dp_exact.all() and not rec.dp_reasons
    dp = choice.outcomes[DP_NAME].schedule
    chosen = choice.recommended.schedule
    np.testing.assert_array_equal(chosen.discount, dp.discount)
    np.testing.assert_array_equal(chosen.coupon, dp.coupon)
    # a plan identical to the DP's is credited to the DP (the default planner)
    assert (choice.recommended_by == DP_NAME).all()
    assert choice.wins()[DP_NAME] == cat.n_skus
    # the choice had something to choose from: other planners made other plans
    assert (choice.runner_up != "").all()
    assert (dp.discount > 0).any()


def test_the_dp_loses_a_sku_only_to_a_plan_that_beats_it_beyond_the_ci(found):
    """Where stock binds, the DP's exported plan (its closed loop's typical path) need not be
    the best fixed plan; a challenger takes the SKU only with a paired CI above zero on the
    selection paths."""
    cat, rec = found
    choice = rec.choice
    # replay the selection: the per-episode profits are those of the selection seed
    picked = simulate_schedules(
        cat, {k: choice.outcomes[k].schedule for k in choice.names},
        n_episodes=300, seed=choice.selection_seed, draw_parameters=False,
    )  # fmt: skip
    for i in np.flatnonzero(choice.recommended_by != DP_NAME):
        won = picked[choice.recommended_by[i]].totals["profit"][i]
        lo, _ = mean_ci(won - picked[DP_NAME].totals["profit"][i], 0.95)
        assert lo > 0, cat.sku[i]
    assert choice.wins()[DP_NAME] >= 1


def test_selection_and_evaluation_paths_are_different(found):
    cat, rec = found
    choice = rec.choice
    assert choice.selection_seed == selection_seed(4) != choice.evaluation_seed
    assert choice.evaluation_seed == simulation_seed(4)
    k = choice.names.index(NONE_NAME)
    # the same plan, simulated on the two sets of paths, gives different numbers
    evaluated = choice.outcomes[NONE_NAME].sku_mean("profit")
    assert not np.allclose(choice.selection_mean[k], evaluated)
    one = Candidates({NONE_NAME: choice.outcomes[NONE_NAME].schedule})
    with pytest.raises(ConfigError, match="two seeds"):
        choose(cat, one, n_episodes=4, selection_seed=3, evaluation_seed=3,
               draw_parameters=False, ci_level=0.95)  # fmt: skip


def test_recommended_by_and_the_runner_up_margin_are_consistent(found):
    cat, rec = found
    choice = rec.choice
    rec_profit = choice.recommended.totals["profit"]
    for i in range(cat.n_skus):
        winner = choice.outcomes[choice.recommended_by[i]]
        # the recommended outcome is the winner's, on the evaluation paths, exactly
        np.testing.assert_array_equal(rec_profit[i], winner.totals["profit"][i])
        runner = choice.runner_up[i]
        if runner == "":
            assert choice.margin[i] == 0.0
            continue
        assert runner != choice.recommended_by[i]
        other = choice.outcomes[runner]
        assert not np.array_equal(other.schedule.discount[i], winner.schedule.discount[i])
        diff = rec_profit[i] - other.totals["profit"][i]
        assert choice.margin[i] == pytest.approx(diff.mean())
        assert choice.margin_ci_low[i] <= choice.margin[i] <= choice.margin_ci_high[i]
    m, lo, hi = choice.gain_vs_best_single
    best = choice.outcomes[choice.best_single].totals["profit"]
    assert m == pytest.approx((rec_profit - best).sum(axis=0).mean())
    assert lo <= m <= hi
    assert set(choice.metrics()) >= {f"recommend/wins/{DP_NAME}", "recommend/gain_vs_best_single"}
    assert rec.replanning is not None and rec.replanning.n_skus == cat.n_skus


def _one_sku(depths: dict[str, float], n_weeks: int = 4) -> tuple[Catalog, Candidates]:
    cat = Catalog.build(sku=["x"], base_demand=3.0, elasticity=-4.0, list_price=2.0,
                        unit_cost=0.5, initial_stock=30.0)  # fmt: skip
    plans = {k: Schedule.constant(cat.sku, n_weeks, d, k) for k, d in depths.items()}
    return cat, Candidates(plans, default=next(iter(depths)))


def _choose(cat: Catalog, cands: Candidates, n: int = 200):
    return choose(cat, cands, n_episodes=n, selection_seed=1, evaluation_seed=2,
                  draw_parameters=False, ci_level=0.95)  # fmt: skip


def _fake_paths(monkeypatch, profit: dict[str, np.ndarray]) -> None:
    """Replace the simulation by given per-episode profits (one SKU, the same on both sets
    of paths); the per-SKU choice's own plan gets the profits of the plan it equals."""

    def simulate(catalog, schedules, *, seed, n_episodes, draw_parameters, ci_level):
        out = {}
        for name, sched in schedules.items():
            same = next(k for k, v in schedules.items() if k in profit
                        and np.array_equal(v.discount, sched.discount))  # fmt: skip
            totals = {"profit": profit[same][None, :n_episodes]}
            out[name] = Outcome(sched, totals, {}, {}, None, ci_level)
        return out

    monkeypatch.setattr(selection_module, "simulate_schedules", simulate)


def test_a_challenger_replaces_the_default_only_when_it_beats_it_beyond_the_ci(monkeypatch):
    cat, cands = _one_sku({"dp": 0.0, "close": 0.1, "clear": 0.3})
    noise = np.random.default_rng(0).normal(0.0, 1.0, 400)
    dp = 10.0 + noise
    # ahead on average, but the paired CI of the difference includes zero
    jitter = np.random.default_rng(1).normal(0.0, 1.0, 400)
    close = dp + 0.05 + (jitter - jitter.mean())  # 0.05 ahead, CI half-width about 0.1
    _fake_paths(monkeypatch, {"dp": dp, "close": close, "clear": dp - 1.0})
    got = _choose(cat, cands, n=400)
    lo, _ = mean_ci(close - dp, 0.95)
    assert close.mean() > dp.mean() and lo < 0
    assert got.recommended_by[0] == "dp" and got.runner_up[0] == "close"
    assert got.margin[0] == pytest.approx((dp - close).mean())
    # ahead beyond the CI: the challenger takes the SKU, the DP is its runner-up
    _fake_paths(monkeypatch, {"dp": dp, "close": close, "clear": dp + 0.5})
    got = _choose(cat, cands, n=400)
    assert got.recommended_by[0] == "clear" and got.runner_up[0] == "close"
    # without a default planner the higher mean wins, significant or not
    _fake_paths(monkeypatch, {"dp": dp, "close": close, "clear": dp - 1.0})
    got = _choose(cat, Candidates(cands.plans), n=400)
    assert got.recommended_by[0] == "close"


def test_identical_plans_tie_to_the_default_then_to_the_simpler_plan():
    cat, cands = _one_sku({"c": 0.0, "a": 0.3, "b": 0.3})
    both = Candidates(cands.plans, default="b")
    got = _choose(cat, both)
    assert got.recommended_by[0] == "b" and got.runner_up[0] == "c"
    # with no stock every plan earns exactly zero: the plan with fewer changes wins, then
    # the candidates' order
    empty = cat.replace(initial_stock=np.array([0.0]))
    step = Schedule(sku=cat.sku, discount=np.array([[0.0, 0.3, 0.3, 0.3]]),
                    coupon=np.zeros((1, 4)), name="step")  # fmt: skip
    got = _choose(empty, Candidates({"step": step, "b": cands.plans["b"], "a": cands.plans["a"]}))
    assert (got.selection_mean == 0).all()
    assert got.recommended_by[0] == "b" and got.runner_up[0] == "step"


def test_unavailable_candidates_are_never_chosen():
    cat, cands = _one_sku({"dp": 0.0, "deep": 0.5})
    only_dp = Candidates(cands.plans, {"deep": np.array([False])}, default="dp")
    got = _choose(cat, only_dp)
    assert got.recommended_by[0] == "dp" and got.runner_up[0] == ""
    assert got.best_single == "dp"
    with pytest.raises(DataError, match="no available candidate"):
        Candidates(cands.plans, {"dp": np.array([False]), "deep": np.array([False])}).availability(
            1
        )
    assert RECOMMENDED_NAME in got.outcomes


def test_no_demand_skus_get_doing_nothing_and_do_not_decide_the_best_single_planner():
    cat = _catalog(stock=[400.0] * 5)
    heuristics = [p for p in default_baselines(include_dp=False) if p.name != NONE_NAME]
    settings = SimulationSettings(seed=4, n_episodes=100, draw_parameters=False)
    no_demand = np.array([True, False, False, False, False])
    rec = recommend(cat, _Learned(), heuristics, RULES, H, plan_seed=9, settings=settings,
                    no_demand=no_demand)  # fmt: skip
    choice = rec.choice
    assert choice.recommended_by[0] == NONE_NAME and choice.runner_up[0] == ""
    assert (choice.recommended_by[1:] == DP_NAME).all()
    # every plan is doing nothing on the no-demand SKU, so it cannot make doing nothing the
    # only planner that covers every SKU
    assert choice.best_single != NONE_NAME
    assert rec.replanning is not None and rec.replanning.n_skus == 4
