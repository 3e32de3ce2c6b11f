"""The policy context and the row selections of the rule and market states."""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from envs.config import RulesConfig
from envs.context import PolicyContext
from envs.rules import initial_decision_state
from simulator.demand import Catalog
from simulator.market import initial_state

from .conftest import make_catalog


def _context(catalog, week) -> PolicyContext:
    market = initial_state(catalog)
    market.week = np.asarray(week, dtype=np.int64)
    rules = RulesConfig()
    return PolicyContext(catalog, initial_decision_state(catalog, 6, rules), market, rules, 6)


def _broadcast(catalog, n: int, names=None):
    """``n`` rows of ``catalog``'s first SKU: the fields ``names`` (default all) broadcast
    without copying, as the DP's state grid builds them, the others copied row by row."""
    names = [f.name for f in fields(catalog)] if names is None else names
    copies = catalog.take(np.zeros(n, np.int64))
    return Catalog(
        **{
            f.name: np.broadcast_to(getattr(catalog, f.name)[:1], getattr(copies, f.name).shape)
            if f.name in names
            else getattr(copies, f.name)
            for f in fields(catalog)
        }
    )


def test_one_sku_means_one_broadcast_row_in_one_week():
    catalog = make_catalog(4)
    one = _broadcast(catalog, 5)  # the DP's state grid: one SKU seen in many states
    assert _context(one, np.full(5, 7)).is_one_sku()
    assert _context(one, np.full(5, 7)).n_slots == 5
    assert not _context(one, [7, 7, 8, 7, 7]).is_one_sku()  # a slot in another week
    # five equal rows that are copies: slots that merely hold the same SKU
    assert not _context(catalog.take(np.zeros(5, np.int64)), np.zeros(5)).is_one_sku()
    assert not _context(_broadcast(catalog, 5, ["sku"]), np.zeros(5)).is_one_sku()


def test_take_selects_rows_as_new_arrays():
    catalog = make_catalog(6)
    decision = initial_decision_state(catalog, np.arange(1, 7), RulesConfig())
    market = initial_state(catalog)
    rows = np.array([4, 1])
    sub = decision.take(rows)
    np.testing.assert_array_equal(sub.weeks_left, [5, 2])
    np.testing.assert_array_equal(sub.stock, catalog.initial_stock[rows])
    sub.stock[:] = -1.0
    assert np.all(decision.stock >= 0)  # the source is untouched
    msub = market.take(np.arange(6) % 2 == 0)  # a mask works too
    np.testing.assert_array_equal(msub.stock, market.stock[::2])
    msub.ref_price[:] = 9.0
    assert np.all(market.ref_price == 1.0)
