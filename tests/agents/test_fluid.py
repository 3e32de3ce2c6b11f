"""The fluid model's numbers are frozen: a PPO model trained before a refactor reads the same
features and acts the same, and the certainty-equivalent baseline values the same.

``data/fluid_frozen.npz`` holds, per rule profile, contexts of a batched env mid-episode and
what the fluid model made of them when it was written (``data/make_fluid_fixture.py`` says
how and on which commit); ``data/ppo_prior_tiny.zip`` is a tiny PPO model with the fluid
prior saved then. Actions are compared exactly; numbers to 1e-12 relative, because numpy's
vectorized ``exp``, ``log`` and ``power`` round the last bit differently on different CPUs
(an AVX-512 machine differs from the AVX2 one the fixture was written on by one unit in the
last place in under 1 % of the entries), and a refactor that changes a formula moves far more.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.baselines import CertaintyEquivalent
from agents.dp import evaluate_exact
from agents.fluid import (
    augment,
    closed_form_values,
    hint_features,
    value_features,
    week_by_week_values,
)
from agents.ppo import PPOPolicy
from envs.config import DecisionState, RulesConfig
from envs.context import PolicyContext
from simulator.demand import Catalog
from simulator.market import MarketState

DATA = Path(__file__).parent / "data"
PROFILES = ("none", "coupons", "markdown", "all")
ULPS = {"rtol": 1e-12, "atol": 1e-15}
"""How close a recomputed number must be to its frozen value (infinities must match)."""


def _same(actual, frozen) -> None:
    np.testing.assert_allclose(actual, frozen, **ULPS)


@pytest.fixture(scope="module")
def frozen():
    with np.load(DATA / "fluid_frozen.npz") as f:
        return {k: f[k] for k in f.files}


def _rules(frozen, prefix: str) -> RulesConfig:
    values = json.loads(str(frozen[prefix + "rules"]))
    for name in ("discount_levels", "coupon_levels"):
        values[name] = tuple(values[name])
    return RulesConfig(**values)


def _state(frozen, prefix: str, cls):
    names = [k[len(prefix) :] for k in frozen if k.startswith(prefix)]
    return cls(**{name: frozen[prefix + name] for name in names})


def _case(frozen, profile: str):
    p = f"{profile}/"
    ctx = PolicyContext(
        catalog=_state(frozen, p + "catalog/", Catalog),
        decision=_state(frozen, p + "decision/", DecisionState),
        market=_state(frozen, p + "market/", MarketState),
        rules=_rules(frozen, p),
        horizon_weeks=frozen[p + "horizon_weeks"],
    )
    return frozen[p + "obs"], frozen[p + "masks"], ctx


@pytest.mark.parametrize("profile", PROFILES)
def test_ppo_features_equal_the_frozen_ones(frozen, profile):
    obs, masks, ctx = _case(frozen, profile)
    p = f"{profile}/"
    eq = _same
    eq(hint_features(obs, ctx.catalog, ctx.decision), frozen[p + "hint"])
    eq(closed_form_values(obs, ctx, masks), frozen[p + "values_split"])
    eq(closed_form_values(obs, ctx, masks, split=False), frozen[p + "values_hold"])
    eq(closed_form_values(obs, ctx), frozen[p + "values_unmasked"])
    eq(value_features(obs, ctx, masks), frozen[p + "value_features"])
    eq(augment(obs, ctx, masks), frozen[p + "augment"])
    eq(augment(obs, ctx, masks, values=False), frozen[p + "augment_hint_only"])
    # the frozen values are not degenerate: the two-price plan and the masks both matter
    assert np.isneginf(frozen[p + "values_split"]).any() == (~masks).any()
    assert np.isfinite(frozen[p + "values_hold"][masks]).all()


@pytest.mark.parametrize("profile", PROFILES)
def test_certainty_equivalent_acts_as_frozen(frozen, profile):
    obs, masks, ctx = _case(frozen, profile)
    _same(week_by_week_values(ctx), frozen[f"{profile}/ce_values"])
    actions = CertaintyEquivalent().act(obs, masks, ctx)
    np.testing.assert_array_equal(actions, frozen[f"{profile}/ce_actions"])


@pytest.mark.parametrize("profile", ["coupons", "all"])
def test_certainty_equivalent_on_the_dp_grid_values_as_frozen(frozen, profile):
    p = f"dp_{profile}/"
    cat = _state(frozen, p + "catalog/", Catalog)
    rules = _rules(frozen, p)
    values = [evaluate_exact(cat.take([i]), rules, 8, CertaintyEquivalent()) for i in range(4)]
    _same(values, frozen[p + "ce_value"])


def test_a_ppo_model_saved_before_acts_the_same(frozen):
    obs, masks, ctx = _case(frozen, "coupons")
    policy = PPOPolicy.load(DATA / "ppo_prior_tiny.zip")
    assert policy.requires_context
    actions = policy.act(obs, masks, ctx)
    np.testing.assert_array_equal(actions, frozen["coupons/ppo_actions"])
    # the model did not learn to copy the baseline: the prior's correction is visible
    assert np.any(actions != frozen["coupons/ce_actions"])
