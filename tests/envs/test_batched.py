"""The batched env: same game as the single env, SB3/MaskablePPO plumbing, evaluation mode."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported

from envs import RULES_V0
from envs.batched import TOTAL_COLUMNS, BatchedMarkdownEnv
from envs.markdown import EnvConfig, MarkdownEnv
from ingest.errors import ConfigError
from simulator.demand import Catalog


def _random_masked(seed: int):
    rng = np.random.default_rng(seed)

    def act(obs: np.ndarray, masks: np.ndarray, ctx: object) -> np.ndarray:
        return np.argmax(np.where(masks, rng.random(masks.shape), -1.0), axis=1)

    return act


@pytest.mark.parametrize("rules", [None, RULES_V0], ids=["no-rules", "rules-v0"])
def test_one_slot_replays_the_single_env(rules) -> None:
    params = dict(base_demand=6.0, initial_stock=50.0, dispersion=0.3, return_rate=0.05)
    cfg = EnvConfig(horizon_weeks=6, sku_params=params)
    if rules is not None:
        cfg = dataclasses.replace(cfg, rules=rules)
    single = MarkdownEnv(cfg)
    obs1, _ = single.reset(seed=7)
    batched = BatchedMarkdownEnv(cfg, 1, seed=7)
    obs2 = batched.reset()
    np.testing.assert_array_equal(obs1, obs2[0])
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(40):
        mask = single.action_masks()
        np.testing.assert_array_equal(mask, batched.action_masks()[0])
        a = int(rng.choice(np.flatnonzero(mask)))
        obs1, r1, term, _, _ = single.step(a)
        batched.step_async(np.array([a]))
        obs2, r2, done, infos = batched.step_wait()
        assert term == bool(done[0])
        assert r1 == pytest.approx(float(r2[0]), rel=1e-6)
        if term:
            np.testing.assert_allclose(infos[0]["terminal_observation"], obs1)
            assert infos[0]["episode"]["l"] >= 1
            obs1, _ = single.reset()
            episodes += 1
        np.testing.assert_allclose(obs1, obs2[0])
    assert episodes >= 5


def _trace(env: BatchedMarkdownEnv, steps: int = 15) -> list[bytes]:
    act = _random_masked(1)
    obs = env.reset()
    out = [obs.tobytes()]
    for _ in range(steps):
        env.step_async(act(obs, env.action_masks(), None))
        obs, rew, done, _ = env.step_wait()
        out += [obs.tobytes(), rew.tobytes(), done.tobytes()]
    return out


def test_same_seed_same_slots(catalog: Catalog) -> None:
    cfg = EnvConfig(catalog=catalog, rules=RULES_V0, draw_parameters=True, horizon_range=(2, 9))
    a, b = BatchedMarkdownEnv(cfg, 64, seed=5), BatchedMarkdownEnv(cfg, 64, seed=5)
    assert _trace(a) == _trace(b)
    b.seed(6)
    assert _trace(a.__class__(cfg, 64, seed=5)) != _trace(b)


def test_slots_draw_skus_and_horizons(catalog: Catalog) -> None:
    cfg = EnvConfig(catalog=catalog, horizon_range=(2, 9))
    env = BatchedMarkdownEnv(cfg, 500, seed=0)
    env.reset()
    ctx = env.policy_context()
    assert set(ctx.catalog.sku) == set(catalog.sku)
    horizons = env.slot_horizon_weeks
    assert horizons.min() == 2 and horizons.max() == 9
    np.testing.assert_array_equal(ctx.decision.weeks_left, horizons)
    assert ctx.episode_start is not None and ctx.episode_start.all()


def test_maskable_ppo_reads_the_masks(catalog: Catalog) -> None:
    env = BatchedMarkdownEnv(EnvConfig(catalog=catalog, rules=RULES_V0), 32, seed=0)
    env.reset()
    assert is_masking_supported(env)
    masks = get_action_masks(env)
    assert masks.shape == (32, RULES_V0.n_actions) and masks.dtype == bool
    np.testing.assert_array_equal(masks, env.action_masks())


@pytest.mark.slow
def test_maskable_ppo_trains_without_violations(catalog: Catalog) -> None:
    import torch
    from sb3_contrib import MaskablePPO

    torch.set_num_threads(1)
    cfg = EnvConfig(catalog=catalog, rules=RULES_V0, horizon_weeks=6, invalid_action="raise")
    env = BatchedMarkdownEnv(cfg, 64, seed=0)
    model = MaskablePPO("MlpPolicy", env, n_steps=16, batch_size=256, n_epochs=1, seed=0)
    model.learn(2_048)  # a masked action would raise RuleViolationError
    assert model.num_timesteps >= 2_048
    assert len(model.ep_info_buffer) > 0  # episode stats reach SB3's logger


def test_evaluation_totals_and_common_random_numbers(catalog: Catalog) -> None:
    cfg = EnvConfig(catalog=catalog, rules=RULES_V0, horizon_weeks=5)
    env = BatchedMarkdownEnv(cfg, 2 * catalog.n_skus, seed=9, fixed_skus=True)
    totals = env.evaluate(_random_masked(0), episodes_per_slot=3)
    assert list(totals.columns) == list(TOTAL_COLUMNS)
    assert len(totals) == 2 * catalog.n_skus * 3
    np.testing.assert_array_equal(totals["sku"], catalog.sku[totals["slot"] % catalog.n_skus])
    np.testing.assert_allclose(totals["objective"], totals["profit"] - totals["exit_penalty"])
    np.testing.assert_allclose(
        totals["units_sold"] + totals["leftover_units"], totals["initial_stock"]
    )
    assert (totals["violations"] == 0).all()
    assert (totals["weeks_played"] <= 5).all()

    env.seed(9)
    again = env.evaluate(_random_masked(0), episodes_per_slot=3)
    assert again.equals(totals)

    # CRN: a different policy in slot 0 only leaves every other slot's luck unchanged
    inner = _random_masked(0)

    def hold_slot0(obs, masks, ctx):
        a = inner(obs, masks, ctx)
        a[0] = np.flatnonzero(masks[0])[0]
        return a

    env.seed(9)
    changed = env.evaluate(hold_slot0, episodes_per_slot=3)
    others = changed["slot"] != 0
    assert changed[others].equals(totals[others])
    assert not changed[~others]["units_sold"].equals(totals[~others]["units_sold"])


def test_crn_sampler_draws_the_market_distribution() -> None:
    """Evaluation mode samples by inverse CDF; its mean sales match the native sampler's."""
    sku = dict(base_demand=4.0, initial_stock=1e6, dispersion=0.5, return_rate=0.1)
    cfg = EnvConfig(sku_params=sku, horizon_weeks=1)
    cat = cfg.source_catalog().take(np.zeros(4_000, dtype=int))
    evaluation = BatchedMarkdownEnv(
        dataclasses.replace(cfg, catalog=cat, sku_params=None), fixed_skus=True, seed=0
    )
    crn = evaluation.evaluate(lambda o, m, c: np.full(m.shape[0], 2), episodes_per_slot=1)
    native = BatchedMarkdownEnv(cfg, 4_000, seed=0)
    native.reset()
    native.step_async(np.full(4_000, 2))
    native.step_wait()
    lam = 4.0 * 0.8**-2.0
    var = lam + 0.5 * lam**2
    se = np.sqrt(var / 4_000)
    assert abs(crn["units_sold"].mean() - lam) < 4 * se
    assert crn["units_sold"].var() == pytest.approx(var, rel=0.15)
    returned = crn["units_returned"].sum() / crn["units_sold"].sum()
    assert returned == pytest.approx(0.1, abs=0.015)


def test_bad_arguments_are_config_errors(catalog: Catalog) -> None:
    with pytest.raises(ConfigError, match="n_slots"):
        BatchedMarkdownEnv(EnvConfig(catalog=catalog), None)
    with pytest.raises(ConfigError, match="multiple"):
        BatchedMarkdownEnv(EnvConfig(catalog=catalog), 13, fixed_skus=True)
    env = BatchedMarkdownEnv(EnvConfig(catalog=catalog), 4)
    with pytest.raises(ConfigError, match="record_episodes"):
        env.evaluate(_random_masked(0))


def test_one_context_class_for_the_env_and_the_policies(catalog: Catalog) -> None:
    """The env hands out the class the policies are typed against (envs.context), the
    rollout and the DP's grid build the same one, and no second copy exists."""
    import typing

    import envs.batched
    from agents.baselines import CertaintyEquivalent, LinearLadder
    from agents.dp import evaluate_exact
    from agents.policy import Policy, check_actions
    from agents.rollout import rollout
    from envs.context import PolicyContext

    assert typing.get_type_hints(Policy.act)["context"] == PolicyContext | None
    assert not hasattr(envs.batched, "SlotContext")
    seen: list[type] = []

    class Spy(Policy):
        def act(self, observations, masks, context=None):
            seen.append(type(context))
            return np.argmax(masks, axis=1)

    rollout(Spy(), catalog.take([0]), RULES_V0, 3, n_episodes=2, seed=0)
    n_rollout = len(seen)
    evaluate_exact(Catalog.build(n_skus=1, initial_stock=20.0), RULES_V0, 3, Spy())
    assert 0 < n_rollout < len(seen) and set(seen) == {PolicyContext}
    cfg = EnvConfig(catalog=catalog, rules=RULES_V0, horizon_range=(3, 7))
    env = BatchedMarkdownEnv(cfg, 16, seed=0)
    env.reset()
    ctx = env.policy_context()
    assert type(ctx) is PolicyContext
    np.testing.assert_array_equal(ctx.horizons(), env.slot_horizon_weeks)
    assert ctx.n_slots == 16
    for policy in (CertaintyEquivalent(), LinearLadder(step=0.1, every_weeks=2)):
        evaluation = BatchedMarkdownEnv(
            dataclasses.replace(cfg, horizon_range=None), fixed_skus=True, seed=1
        )

        def act(obs, masks, context, policy=policy):
            actions = policy.act(obs, masks, context)
            check_actions(actions, masks, policy=policy.name)
            return actions

        totals = evaluation.evaluate(act, episodes_per_slot=2)
        assert len(totals) == 2 * catalog.n_skus and (totals["violations"] == 0).all()
