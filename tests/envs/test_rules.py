"""Business rules as action masks: every rule, checked against an independent oracle.

The oracle below restates each rule from ``RulesConfig``'s documentation on a *shadow* state
that the test keeps itself (from the actions taken and the episode ends), so neither
``envs.rules.action_mask`` nor ``envs.rules.advance`` grades its own homework.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.batched import BatchedMarkdownEnv
from envs.config import NO_BUDGET, DecisionState, RulesConfig
from envs.markdown import EnvConfig
from envs.rules import (
    LONG_AGO,
    action_mask,
    active_rules,
    advance,
    exit_penalty,
    hold_actions,
    initial_decision_state,
    rule_masks,
    violated_rules,
    violations,
)
from simulator.demand import Catalog

LADDER = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
COUPONS = (0.0, 0.05, 0.15)

# one config per rule (coupons on, so coupon rules have something to refuse)
RULE_CASES: dict[str, RulesConfig] = {
    "max_discount": RulesConfig(LADDER, COUPONS, max_discount=0.35),
    "min_weeks_between_changes": RulesConfig(LADDER, COUPONS, min_weeks_between_changes=3),
    "markdown_only": RulesConfig(LADDER, COUPONS, markdown_only=True),
    "margin_floor": RulesConfig(LADDER, COUPONS, margin_floor=0.1),
    "no_touch_after_launch": RulesConfig(LADDER, COUPONS, no_touch_after_launch_weeks=4),
    "no_touch_before_exit": RulesConfig(LADDER, COUPONS, no_touch_before_exit_weeks=2),
    "coupon_budget": RulesConfig(LADDER, COUPONS, coupon_budget_weeks=1),
    "sell_through_hard": RulesConfig(
        LADDER, COUPONS, max_discount=0.5, sell_through_target=0.9, sell_through_mode="hard"
    ),
}
HORIZON = 5
N_SLOTS = 2_000
N_EPISODES = 10_000


class Shadow:
    """The test's own record of what the rules need, moved only by actions and dones."""

    def __init__(self, catalog: Catalog) -> None:
        n = catalog.n_skus
        self.depth = np.zeros(n, dtype=np.int64)
        self.since_change = np.full(n, 10**9)
        self.coupon_weeks = np.zeros(n, dtype=np.int64)
        self.week = np.zeros(n, dtype=np.int64)
        self.age0 = catalog.age_weeks.copy()

    def restart(self, slots: np.ndarray, catalog: Catalog) -> None:
        self.depth[slots] = 0
        self.since_change[slots] = 10**9
        self.coupon_weeks[slots] = 0
        self.week[slots] = 0
        self.age0[slots] = catalog.age_weeks[slots]

    def move(self, rules: RulesConfig, actions: np.ndarray) -> None:
        d, c = actions // rules.n_coupons, actions % rules.n_coupons
        changed = d != self.depth
        self.since_change = np.where(changed, 1, self.since_change + 1)
        self.depth = d
        self.coupon_weeks += c > 0
        self.week += 1


def oracle_ok(
    name: str,
    rules: RulesConfig,
    shadow: Shadow,
    catalog: Catalog,
    stock: np.ndarray,
    initial: np.ndarray,
    actions: np.ndarray,
) -> np.ndarray:
    """Whether each action obeys rule ``name``, restated from its documentation."""
    d, c = actions // rules.n_coupons, actions % rules.n_coupons
    depth = np.asarray(rules.discount_levels)[d]
    coupon = np.asarray(rules.coupon_levels)[c]
    weeks_left = HORIZON - shadow.week
    untouched = (d == 0) & (c == 0)
    if name == "max_discount":
        return depth <= rules.max_discount + 1e-12
    if name == "min_weeks_between_changes":
        return (d == shadow.depth) | (shadow.since_change >= rules.min_weeks_between_changes)
    if name == "markdown_only":
        return d >= shadow.depth
    if name == "margin_floor":
        net_price = catalog.list_price * (1 - depth - coupon)
        return untouched | (net_price >= catalog.unit_cost * (1 + rules.margin_floor) - 1e-9)
    if name == "no_touch_after_launch":
        age = shadow.age0 + shadow.week
        return (age >= rules.no_touch_after_launch_weeks) | untouched
    if name == "no_touch_before_exit":
        frozen = weeks_left <= rules.no_touch_before_exit_weeks
        return ~frozen | ((d == shadow.depth) & (c == 0))
    if name == "coupon_budget":
        return (shadow.coupon_weeks < rules.coupon_budget_weeks) | (c == 0)
    if name == "sell_through_hard":
        short = (initial - stock) < rules.sell_through_target * initial - 1e-9
        deepest = max(i for i, x in enumerate(rules.discount_levels) if x <= rules.max_discount)
        return ~((weeks_left == 1) & short) | (d == deepest)
    raise AssertionError(name)


@pytest.fixture(scope="module")
def rule_catalog() -> Catalog:
    from tests.envs.conftest import make_catalog

    return make_catalog(n_skus=16, seed=3)


@pytest.mark.parametrize("name", list(RULE_CASES))
def test_random_masked_policy_never_breaks_rule(name: str, rule_catalog: Catalog) -> None:
    rules = RULE_CASES[name]
    assert active_rules(rules) == (name,) or name == "sell_through_hard"
    env = BatchedMarkdownEnv(
        EnvConfig(horizon_weeks=HORIZON, rules=rules, catalog=rule_catalog),
        N_SLOTS,
        seed=11,
    )
    env.reset()
    rng = np.random.default_rng(5)
    ctx = env.policy_context()
    shadow = Shadow(ctx.catalog)
    finished = refused = bit = 0
    while finished < N_EPISODES:
        ctx = env.policy_context()
        masks = env.action_masks()
        stock, initial = ctx.decision.stock, ctx.decision.initial_stock
        # a random masked policy ...
        chosen = np.argmax(np.where(masks, rng.random(masks.shape), -1.0), axis=1)
        ok = oracle_ok(name, rules, shadow, ctx.catalog, stock, initial, chosen)
        assert ok.all(), f"{name}: masked policy broke the rule in {int((~ok).sum())} slots"
        # ... and the action an unmasked one would have taken is refused when it breaks it
        wild = rng.integers(rules.n_actions, size=N_SLOTS)
        wild_ok = oracle_ok(name, rules, shadow, ctx.catalog, stock, initial, wild)
        breaks = ~wild_ok
        assert not masks[np.arange(N_SLOTS), wild][breaks].any()
        flagged = violations(rules, ctx.decision, wild, ctx.catalog)
        np.testing.assert_array_equal(flagged[breaks], True)
        per_rule = violated_rules(rules, ctx.decision, wild, ctx.catalog)
        np.testing.assert_array_equal(per_rule[name][breaks], True)
        if name != "sell_through_hard":  # alone, a rule's mask is exactly the oracle
            np.testing.assert_array_equal(flagged, breaks)
            np.testing.assert_array_equal(per_rule[name], breaks)
        refused += int(breaks.sum())
        bit += int((~masks).any(axis=1).sum())

        shadow.move(rules, chosen)
        env.step_async(chosen)
        _, _, dones, _ = env.step_wait()
        done_slots = np.flatnonzero(dones)
        shadow.restart(done_slots, env.policy_context().catalog)
        finished += done_slots.size
    assert refused > 100, f"{name}: the rule was never tested (refused {refused})"
    assert bit > 100


def test_markdown_only_refusal_in_env_raises_or_holds(catalog: Catalog) -> None:
    from envs.markdown import MarkdownEnv, RuleViolationError

    rules = RulesConfig(markdown_only=True)
    env = MarkdownEnv(EnvConfig(rules=rules, catalog=catalog))
    env.reset(seed=0, options={"sku_index": 0})
    env.step(3)
    assert not env.action_masks()[1]
    with pytest.raises(RuleViolationError, match="markdown_only"):
        env.step(1)
    hold_env = MarkdownEnv(EnvConfig(rules=rules, catalog=catalog, invalid_action="hold"))
    hold_env.reset(seed=0, options={"sku_index": 0})
    hold_env.step(3)
    _, _, _, _, info = hold_env.step(1)
    assert info["violation"] and info["rules_broken"] == ["markdown_only"]
    assert info["discount"] == pytest.approx(0.3)  # the hold action was played


def test_batched_hold_mode_counts_violations(catalog: Catalog) -> None:
    from envs.markdown import RuleViolationError

    rules = RulesConfig(markdown_only=True)
    cfg = EnvConfig(rules=rules, catalog=catalog, horizon_weeks=3, end_on_sellout=False)
    env = BatchedMarkdownEnv(dataclasses.replace(cfg, invalid_action="hold"), fixed_skus=True)
    plan = iter([5, 2, 0])  # 2 and 0 are price increases after a markdown
    totals = env.evaluate(lambda o, m, c: np.full(m.shape[0], next(plan)))
    assert (totals["violations"] == 2).all()
    strict = BatchedMarkdownEnv(cfg, fixed_skus=True)
    plan = iter([5, 2, 0])
    with pytest.raises(RuleViolationError, match="markdown_only"):
        strict.evaluate(lambda o, m, c: np.full(m.shape[0], next(plan)))


def _state(n: int, **overrides: np.ndarray) -> DecisionState:
    base = {
        "weeks_left": np.full(n, 5),
        "stock": np.full(n, 50.0),
        "initial_stock": np.full(n, 100.0),
        "depth_index": np.zeros(n, dtype=np.int64),
        "weeks_since_change": np.full(n, LONG_AGO),
        "coupon_weeks_left": np.full(n, NO_BUDGET),
        "age_weeks": np.full(n, 52),
    }
    base.update(overrides)
    return DecisionState(**base)


def test_hard_sell_through_picks_deepest_allowed_by_the_others() -> None:
    cat = Catalog.build(n_skus=2, list_price=10.0, unit_cost=4.0)
    rules = RulesConfig(
        max_discount=0.5, margin_floor=0.0, sell_through_target=0.8, sell_through_mode="hard"
    )
    # last week; SKU 0 below target (sold 50 of 100), SKU 1 above (sold 90)
    state = _state(2, weeks_left=np.array([1, 1]), stock=np.array([50.0, 10.0]))
    mask = action_mask(rules, state, cat)
    # margin floor: 10 * (1 - d) >= 4 -> d <= 0.6; max 0.5 -> deepest allowed index 5
    np.testing.assert_array_equal(np.flatnonzero(mask[0]), [5])
    np.testing.assert_array_equal(np.flatnonzero(mask[1]), [0, 1, 2, 3, 4, 5])
    # with an exit freeze the hard rule selects among what the freeze allows: the hold
    frozen = dataclasses.replace(rules, no_touch_before_exit_weeks=1)
    state.depth_index[:] = 2
    np.testing.assert_array_equal(np.flatnonzero(action_mask(frozen, state, cat)[0]), [2])


def test_unreachable_state_falls_back_to_hold() -> None:
    cat = Catalog.build(n_skus=1)
    rules = RulesConfig(markdown_only=True, max_discount=0.3)
    state = _state(1, depth_index=np.array([6]))  # above max, and may not go back up
    mask = action_mask(rules, state, cat)
    np.testing.assert_array_equal(np.flatnonzero(mask[0]), hold_actions(rules, state))


ALL_RULES = RulesConfig(
    LADDER,
    COUPONS,
    max_discount=0.6,
    min_weeks_between_changes=2,
    markdown_only=True,
    margin_floor=0.0,
    no_touch_after_launch_weeks=2,
    no_touch_before_exit_weeks=1,
    sell_through_target=0.7,
    sell_through_mode="hard",
    coupon_budget_weeks=2,
)


@settings(max_examples=60, deadline=None)
@given(
    weeks_left=st.integers(1, 10),
    sold_share=st.floats(0, 1),
    depth=st.integers(0, 7),
    since=st.integers(1, 5),
    coupons_left=st.integers(0, 3),
    age=st.integers(0, 5),
    cost_ratio=st.floats(0.1, 1.5),
)
def test_mask_never_empty_and_rule_masks_agree(
    weeks_left: int,
    sold_share: float,
    depth: int,
    since: int,
    coupons_left: int,
    age: int,
    cost_ratio: float,
) -> None:
    """Any state, reachable or not: at least one action; the combined mask is the AND of the
    per-rule masks wherever that AND is not empty."""
    cat = Catalog.build(n_skus=1, list_price=10.0, unit_cost=10.0 * cost_ratio)
    state = _state(
        1,
        weeks_left=np.array([weeks_left]),
        stock=np.array([100.0 * (1 - sold_share)]),
        depth_index=np.array([depth]),
        weeks_since_change=np.array([since]),
        coupon_weeks_left=np.array([coupons_left]),
        age_weeks=np.array([age]),
    )
    mask = action_mask(ALL_RULES, state, cat)
    assert mask.shape == (1, ALL_RULES.n_actions) and mask.any()
    both = np.logical_and.reduce(list(rule_masks(ALL_RULES, state, cat).values()))
    if both.any():
        np.testing.assert_array_equal(mask, both)


def test_advance_moves_every_field() -> None:
    rules = RulesConfig(coupon_levels=(0.0, 0.1), coupon_budget_weeks=2)
    cat = Catalog.build(n_skus=3, initial_stock=20.0, age_weeks=[0, 3, 9])
    s0 = initial_decision_state(cat, 6, rules)
    assert s0.coupon_weeks_left.tolist() == [2, 2, 2]
    actions = rules.encode(np.array([0, 2, 2]), np.array([1, 0, 1]))
    s1 = advance(rules, s0, actions, np.array([3.0, 0.0, 20.0]))
    assert s1.weeks_left.tolist() == [5, 5, 5]
    assert s1.stock.tolist() == [17.0, 20.0, 0.0]
    assert s1.depth_index.tolist() == [0, 2, 2]
    assert s1.weeks_since_change.tolist() == [LONG_AGO, 1, 1]
    assert s1.coupon_weeks_left.tolist() == [1, 2, 1]
    assert s1.age_weeks.tolist() == [1, 4, 10]
    s2 = advance(rules, s1, actions, np.zeros(3))
    assert s2.weeks_since_change.tolist() == [LONG_AGO, 2, 2]
    assert s0.stock.tolist() == [20.0, 20.0, 20.0]  # the input state is not modified
    unlimited = initial_decision_state(cat, 6, RulesConfig(coupon_levels=(0.0, 0.1)))
    moved = advance(rules, unlimited, actions, np.zeros(3))
    assert (moved.coupon_weeks_left == NO_BUDGET).all()


def test_out_of_range_actions_break_every_rule() -> None:
    cat = Catalog.build(n_skus=2)
    rules = RulesConfig(markdown_only=True, max_discount=0.5)
    state = _state(2)
    bad = np.array([-1, rules.n_actions])
    assert violations(rules, state, bad, cat).all()
    assert all(v.all() for v in violated_rules(rules, state, bad, cat).values())


def test_exit_penalty_only_in_penalty_mode() -> None:
    cat = Catalog.build(n_skus=3, list_price=[10.0, 10.0, 20.0])
    rules = RulesConfig(sell_through_target=0.8, sell_through_penalty_per_unit=0.5)
    pen = exit_penalty(rules, cat, np.array([50.0, 10.0, 30.0]), np.full(3, 100.0))
    # short of 80 sold: 30, 0, 10 units; 0.5 * list price per unit
    np.testing.assert_allclose(pen, [150.0, 0.0, 100.0])
    hard = dataclasses.replace(rules, sell_through_mode="hard")
    assert not exit_penalty(hard, cat, np.array([50.0, 10.0, 30.0]), np.full(3, 100.0)).any()
    off = RulesConfig()
    assert not exit_penalty(off, cat, np.array([50.0, 10.0, 30.0]), np.full(3, 100.0)).any()
