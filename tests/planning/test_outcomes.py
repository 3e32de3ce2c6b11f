"""Paired simulation per SKU: a SKU's numbers are its own, whatever the rest of the catalog."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import planning.outcomes as outcomes_module
from envs.crn import poisson_quantile
from planning.outcomes import TOTALS, simulate_schedule, simulate_schedules, simulation_seed
from planning.random_keys import keyed_gamma, row_keys, sku_keys, uniforms
from planning.schedule import Schedule
from simulator.demand import Catalog

LADDER = (0.0, 0.1, 0.3, 0.5, 0.7)


def _catalog(n: int, seed: int) -> Catalog:
    rng = np.random.default_rng(seed)
    return Catalog.build(
        n_skus=n,
        sku=[f"P{seed}-{i}" for i in range(n)],
        base_demand=rng.uniform(0.0, 5.0, n),
        base_demand_se=0.3,
        elasticity=rng.uniform(-4.0, -0.5, n),
        elasticity_se=0.3,
        dispersion=rng.choice([0.0, 0.2, 1.5], n),
        list_price=rng.uniform(1.0, 5.0, n),
        unit_cost=1.0,
        initial_stock=rng.integers(0, 30, n).astype(float),
        holding_cost_per_unit_week=0.02,
        salvage_value_per_unit=0.1,
        return_rate=rng.choice([0.0, 0.05], n),
        ref_price_sensitivity=0.5,
        ref_price_memory=0.5,
        fatigue_rate=0.1,
        fatigue_decay=0.5,
    )


def _plan(rows: np.ndarray, sku: np.ndarray, name: str) -> Schedule:
    d = np.asarray(LADDER)[rows]
    return Schedule(sku=sku, discount=d, coupon=np.zeros_like(d), name=name)


@st.composite
def _worlds(draw):
    n = draw(st.integers(2, 7))
    h = draw(st.integers(2, 5))
    plan_a = np.array(draw(st.lists(st.integers(0, 4), min_size=n * h, max_size=n * h)))
    plan_b = np.array(draw(st.lists(st.integers(0, 4), min_size=n * h, max_size=n * h)))
    same = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    order = np.array(draw(st.permutations(range(n))))
    chunk = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32))
    return n, h, plan_a.reshape(n, h), plan_b.reshape(n, h), same, order, chunk, seed


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_worlds(), st.booleans())
def test_identical_plans_differ_by_exactly_zero_whatever_the_others_do(world, draw_parameters):
    n, h, rows_a, rows_b, same, order, chunk, seed = world
    cat = _catalog(n, seed % 1000)
    rows_b = np.where(same[:, None], rows_a, rows_b)
    kw = dict(n_episodes=6, seed=seed, draw_parameters=draw_parameters)
    a = simulate_schedule(cat, _plan(rows_a, cat.sku, "a"), **kw)
    # B: other plans on other SKUs, other chunk sizes, other SKU order.
    with mock.patch.object(outcomes_module, "_CHUNK_ROWS", chunk):
        b = simulate_schedule(cat.take(order), _plan(rows_b[order], cat.sku[order], "b"), **kw)
    back = np.argsort(order)
    for name in TOTALS:
        diff = a.totals[name][same] - b.totals[name][back][same]
        assert np.all(diff == 0.0), name
    # The many-plans primitive gives every plan the numbers it gets alone.
    both = simulate_schedules(
        cat, {"a": _plan(rows_a, cat.sku, "a"), "b": _plan(rows_b, cat.sku, "b")}, **kw
    )
    for name in TOTALS:
        assert np.array_equal(both["a"].totals[name], a.totals[name]), name
        assert np.array_equal(both["b"].totals[name], b.totals[name][back]), name


def test_a_sku_keeps_its_numbers_in_a_filtered_catalog_and_with_more_episodes():
    cat = _catalog(9, 4)
    plan = Schedule.constant(cat.sku, 6, 0.3)
    full = simulate_schedule(cat, plan, n_episodes=30, seed=11)
    keep = [7, 2]
    part = simulate_schedule(
        cat.take(keep), Schedule.constant(cat.sku[keep], 6, 0.3), n_episodes=40, seed=11
    )
    for name in TOTALS:
        assert np.array_equal(part.totals[name][:, :30], full.totals[name][keep]), name
    other_seed = simulate_schedule(cat, plan, n_episodes=30, seed=12)
    assert not np.array_equal(other_seed.totals["units_sold"], full.totals["units_sold"])


def test_same_seed_same_numbers_and_distinct_streams():
    keys = row_keys(5, sku_keys(["a", "b", "c"]), np.arange(4))
    assert keys.shape == (12,) and np.unique(keys).size == 12
    assert np.array_equal(uniforms(keys, 0, 3), uniforms(keys, 0, 3))
    u = uniforms(keys, 0, 3)
    assert ((u > 0) & (u < 1)).all()
    assert not np.array_equal(u[:, 0], u[:, 1])
    # The SKU key depends on the id only: the same id, the same key, in any order.
    assert np.array_equal(sku_keys(["b", "a"]), sku_keys(["a", "b"])[::-1])
    assert simulation_seed(0) == simulation_seed(0) != simulation_seed(1)
    with pytest.raises(ValueError, match="seed"):
        row_keys(-1, keys, np.arange(1))


def test_keyed_draws_have_the_market_distributions():
    keys = row_keys(1, sku_keys([f"s{i}" for i in range(40)]), np.arange(500))
    for shape in (0.2, 1.0, 6.0):
        x = keyed_gamma(keys, 3, np.full(keys.size, shape))
        assert stats.kstest(x, stats.gamma(shape).cdf).pvalue > 1e-3, shape
    u = uniforms(keys, 9, 1)[:, 0]
    for lam in (0.0, 0.3, 4.0, 25.0, 900.0):
        k = poisson_quantile(u, np.full(u.size, lam))
        assert np.array_equal(k, stats.poisson.ppf(u, lam)), lam


def test_deeper_discount_never_sells_less_on_the_same_luck():
    cat = _catalog(6, 2).replace(fatigue_rate=0.0, ref_price_sensitivity=0.0, return_rate=0.0)
    plans = {f"d{d}": Schedule.constant(cat.sku, 5, d) for d in (0.0, 0.3, 0.7)}
    out = simulate_schedules(cat, plans, n_episodes=50, seed=3)
    # Inverse-CDF demand: with the same uniforms a larger mean gives at least as many units.
    assert (out["d0.3"].totals["units_sold"] >= out["d0.0"].totals["units_sold"]).all()
    assert (out["d0.7"].totals["units_sold"] >= out["d0.3"].totals["units_sold"]).all()


def _poisson_search_every_step(u: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """The upward search of ``poisson_quantile`` as it was, compacting at every step (small
    means only: it starts at 0)."""
    k, pmf = np.zeros(lam.shape), np.exp(-lam)
    cdf = pmf.copy()
    idx = np.flatnonzero(u > cdf)
    kk, pp, cc, ll, uu = k[idx], pmf[idx], cdf[idx], lam[idx], u[idx]
    while idx.size:
        kk += 1.0
        pp *= ll / kk
        cc += pp
        done = uu <= cc
        k[idx[done]] = kk[done]
        keep = ~done
        idx, kk, pp, cc, ll, uu = idx[keep], kk[keep], pp[keep], cc[keep], ll[keep], uu[keep]
    return k


def test_poisson_quantile_compacting_now_and_then_equals_compacting_every_step():
    rng = np.random.default_rng(5)
    lam = rng.lognormal(0.5, 1.0, 20_000).clip(0.0, 9.9)  # below the Cornish-Fisher start
    lam[:3] = (0.0, 1e-9, 9.9)
    u = np.clip(rng.random(lam.size), 1e-12, 1 - 1e-12)
    u[3:6] = 1 - 1e-12
    assert np.array_equal(poisson_quantile(u, lam), _poisson_search_every_step(u, lam))
