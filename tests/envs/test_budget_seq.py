"""The sequential category env: the limit holds on every path under any masked actions, and
the observation's remaining budget is what the week's earlier decisions left."""

from __future__ import annotations

import numpy as np
import pytest

from envs.budget import N_BUDGET, OFF_ACTION, CategoryEnv, promo_actions
from envs.budget_seq import SequentialCategoryEnv, allocate
from envs.markdown import EnvConfig
from envs.observation import OBS_DIM
from experiments.suite import RULE_PROFILES, budget_training_catalog
from ingest.errors import ConfigError

SLOTS_LEFT, SLOTS_PER_SKU, SLOTS_SHARE, POSITION = range(4)


def _random_allowed(rng: np.random.Generator, masks: np.ndarray) -> np.ndarray:
    keys = np.where(masks, rng.random(masks.shape), -1.0)
    return np.argmax(keys, axis=1)


@pytest.mark.parametrize(
    ("profile", "n_skus", "k_range"), [("none", 4, (1, 2)), ("coupons", 3, (1, 1))]
)
def test_random_masked_actions_never_exceed_the_limit(profile, n_skus, k_range) -> None:
    rules = RULE_PROFILES[profile]
    catalog = budget_training_catalog(60, np.random.default_rng(0), profile=profile)
    horizon, copies = 5, 16
    env = SequentialCategoryEnv(
        EnvConfig(horizon_weeks=horizon, rules=rules, catalog=catalog),
        copies,
        n_skus,
        max_promoted=k_range,
        seed=3,
    )
    promo = promo_actions(rules)
    rng = np.random.default_rng(7)
    obs = env.reset()
    assert obs.shape == (copies, OBS_DIM + N_BUDGET)
    granted = np.zeros(copies, dtype=np.int64)
    weeks_done = 0
    for step in range(3 * horizon * n_skus):
        position = step % n_skus
        k = env.max_promoted
        assert k_range[0] <= k.min() <= k.max() <= k_range[1]
        feats = obs[:, OBS_DIM:]
        # the remaining budget the policy sees is K minus the slots granted this week
        np.testing.assert_array_equal(env.remaining, k - granted)
        np.testing.assert_allclose(feats[:, SLOTS_LEFT], (k - granted) / k, atol=1e-6)
        np.testing.assert_allclose(feats[:, SLOTS_SHARE], k / n_skus, atol=1e-6)
        np.testing.assert_allclose(feats[:, POSITION], position / n_skus, atol=1e-6)
        masks = env.action_masks()
        assert masks[:, OFF_ACTION].all()
        full = env.remaining <= 0
        assert not masks[full][:, promo].any()  # no slot left: no promotion allowed
        stock = env.policy_context().decision.stock
        assert (masks[stock <= 0].sum(axis=1) == 1).all()  # sold out: only no promotion
        # random actions, some of them masked: the env plays no promotion instead
        a = np.where(rng.random(copies) < 0.2, rng.integers(rules.n_actions, size=copies),
                     _random_allowed(rng, masks))  # fmt: skip
        played = np.where(masks[np.arange(copies), a], a, OFF_ACTION)
        granted += promo[played]
        assert (granted <= k).all()
        obs, rewards, dones, infos = env.step(a)
        if position < n_skus - 1:
            assert not rewards.any() and not dones.any()
        else:
            weeks_done += 1
            granted[:] = 0
            assert dones.all() == (weeks_done % horizon == 0) and dones.all() == dones.any()
    assert weeks_done == 3 * horizon
    env.close()


def test_allocate_keeps_every_path_within_the_limit_on_the_category_env() -> None:
    rules = RULE_PROFILES["coupons"]
    catalog = budget_training_catalog(4, np.random.default_rng(1), profile="coupons")
    env = CategoryEnv(catalog, rules, 6, max_promoted=2, n_paths=50, seed=0)
    rng = np.random.default_rng(0)
    seen = []

    def greedy_random(obs, masks, ctx):
        seen.append(obs.shape[1])
        # promote whenever allowed (the limit must stop it)
        want = np.where(masks[:, 1:].any(axis=1), 1 + _random_allowed(rng, masks[:, 1:]), 0)
        return want

    class Seq:
        def act(self, obs, masks, ctx):
            return allocate(greedy_random, obs, masks, ctx, n_skus=4, max_promoted=2)

    res = env.play(Seq())
    assert (res.totals["budget_violations"] == 0).all()
    assert res.promoted.max() == 2  # the limit binds, and holds
    assert set(seen) == {OBS_DIM + N_BUDGET}


def test_bad_category_shapes_are_refused() -> None:
    cat = budget_training_catalog(5, np.random.default_rng(0))
    config = EnvConfig(horizon_weeks=4, rules=RULE_PROFILES["none"], catalog=cat)
    with pytest.raises(ConfigError, match="max_promoted"):
        SequentialCategoryEnv(config, 4, 3, max_promoted=(1, 3))
    with pytest.raises(ConfigError, match="rule"):
        SequentialCategoryEnv(
            EnvConfig(horizon_weeks=4, rules=RULE_PROFILES["markdown"], catalog=cat), 4, 3
        )
