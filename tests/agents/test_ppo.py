"""Masked PPO: config validation, the fluid hint, a tiny run that learns, checkpoint resume."""

from __future__ import annotations

import logging
import tempfile
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import agents.ppo as ppo_module
from agents.baselines import NoMarkdown
from agents.fluid import (
    HINT_FIELDS,
    PRIOR_START,
    closed_form_values,
    hint_dim,
    hint_features,
    value_features,
)
from agents.ppo import (
    FluidPriorPolicy,
    PPOConfig,
    PPOPolicy,
    build_model,
    late_snapshots,
    load_checkpoint_state,
    make_training_env,
    member_folder,
    member_paths,
    member_seed,
    snapshot_paths,
    snapshot_steps,
    train_ppo,
)
from envs.observation import OBS_DIM, OBS_NAMES
from envs.rules import initial_decision_state
from experiments.evaluate import play
from experiments.suite import get_suite
from ingest.errors import ConfigError
from simulator.demand import Catalog

TINY = PPOConfig(
    total_timesteps=4096,
    n_envs=64,
    n_steps=16,
    batch_size=256,
    n_epochs=2,
    net_arch=(16,),
    n_catalog_skus=50,
    checkpoint_every=2048,
    seed=3,
)


def test_config_validation_names_the_field():
    with pytest.raises(ConfigError, match="ppo.batch_size"):
        replace(TINY, batch_size=10_000)
    with pytest.raises(ConfigError, match="ppo.gamma"):
        replace(TINY, gamma=0.0)
    with pytest.raises(ConfigError, match="ppo.fluid_prior"):
        replace(TINY, fluid_prior=-1.0)
    with pytest.raises(ConfigError, match="ppo.device"):
        replace(TINY, device="tpu")


def test_fluid_hint_is_the_closed_form_runout_price():
    cat = Catalog.build(
        n_skus=3,
        elasticity=[-2.0, -0.5, -2.0],
        holding_cost_per_unit_week=[0.0, 0.01, 0.0],
        dispersion=[0.0, 0.3, 0.0],
    )
    dec = initial_decision_state(cat, 11, _rules())
    obs = np.zeros((3, OBS_DIM), np.float32)
    obs[:, OBS_NAMES.index("elasticity")] = cat.elasticity / 4
    obs[:, OBS_NAMES.index("demand_cover")] = [0.5, 0.5, 2.0]
    h = hint_features(obs, cat, dec)
    assert h.shape == (3, len(HINT_FIELDS))
    # run-out price p = cover ** (1 / |e|): 0.5 ** 0.5; inelastic SKUs stay at list price;
    # a SKU that sells out at list price needs no discount.
    np.testing.assert_allclose(h[:, 0], [1 - 0.5**0.5, 0.0, 0.0], atol=1e-6)
    assert h[1, 2] == pytest.approx(0.01 * 10)
    assert h[1, 3] == pytest.approx(0.3)


def _rules():
    from envs.config import RulesConfig

    return RulesConfig()


def test_training_env_appends_hints_and_keeps_masks():
    cat = get_suite()[0].catalog()
    env = make_training_env(TINY, get_suite()[0].rules, cat)
    obs = env.reset()
    rules = get_suite()[0].rules
    assert obs.shape == (TINY.n_envs, OBS_DIM + hint_dim(rules)) == (TINY.n_envs, PRIOR_START + 8)
    assert env.action_masks().shape == (TINY.n_envs, 8)
    # the regrets: 0 for the fluid action, in [-1, 0] for the others
    regret = obs[:, PRIOR_START:]
    assert np.all((regret >= -1) & (regret <= 0)) and np.all(regret.max(axis=1) == 0)
    no_values = make_training_env(replace(TINY, fluid_values=False), rules, cat)
    assert no_values.reset().shape == (TINY.n_envs, OBS_DIM + len(HINT_FIELDS))
    plain = make_training_env(replace(TINY, fluid_hint=False), rules, cat)
    assert plain.reset().shape == (TINY.n_envs, OBS_DIM)


@pytest.mark.parametrize("profile", ["none", "coupons", "markdown"])
def test_closed_form_fluid_values_pick_the_certainty_equivalent_action(profile):
    """The closed-form fluid values (flat season) agree with the week-by-week
    certainty-equivalent baseline on random SKUs and states mid-episode."""
    from agents.baselines import CertaintyEquivalent
    from experiments.suite import RULE_PROFILES, training_catalog

    rules = RULE_PROFILES[profile]
    cat = training_catalog(300, np.random.default_rng(5), profile=profile)
    env = make_training_env(replace(TINY, n_envs=300, fluid_hint=False), rules, cat, seed=2)
    obs = env.reset()
    rng = np.random.default_rng(0)
    for _ in range(3):  # move the slots to varied stock and weeks left
        masks = env.action_masks()
        obs, *_ = env.step(np.array([rng.choice(np.flatnonzero(m)) for m in masks]))
    masks = env.action_masks()
    ctx = env.policy_context()
    values = closed_form_values(obs, ctx, masks, split=False)
    ours = np.argmax(values, axis=1)
    theirs = CertaintyEquivalent().act(obs, masks, ctx)
    best = values[np.arange(len(ours)), ours]
    at_theirs = values[np.arange(len(ours)), theirs]
    # ties may break differently; the value of the baseline's pick must equal the best
    np.testing.assert_allclose(at_theirs, best, rtol=1e-9, atol=1e-9)
    assert np.all(np.isneginf(values[~masks]))
    # a two-price plan is one more option: never worse than holding, sometimes better
    with_split = closed_form_values(obs, ctx, masks)
    assert np.all(with_split[masks] >= values[masks] - 1e-12)
    if profile != "coupons":  # (with coupons the two-price plan rarely beats the grid)
        assert np.any(with_split[masks] > values[masks] + 1e-6)
    ours = np.argmax(with_split, axis=1)
    feats = value_features(obs, ctx, masks)
    d, c = rules.depths(ours)
    np.testing.assert_allclose(feats[:, 0], d, atol=1e-6)
    np.testing.assert_allclose(feats[:, 1], c, atol=1e-6)


def test_fluid_values_run_a_coupon_only_while_the_budget_lasts():
    """Hand-computed: a coupon action sells at the coupon's lift and net price for the B
    budget weeks, then at the shelf discount alone; stock is ample, so no holding limit."""
    from envs.config import RulesConfig
    from envs.context import PolicyContext
    from simulator.market import initial_state

    rules = RulesConfig(coupon_levels=(0.0, 0.1), coupon_budget_weeks=4)
    cat = Catalog.build(
        n_skus=1,
        base_demand=10.0,
        elasticity=-2.0,
        coupon_coef=3.0,
        unit_cost=0.4,
        holding_cost_per_unit_week=0.001,
        initial_stock=1000.0,
    )
    dec = initial_decision_state(cat, 10, rules)
    ctx = PolicyContext(cat, dec, initial_state(cat), rules, 10)
    obs = np.zeros((1, OBS_DIM), np.float32)
    obs[:, OBS_NAMES.index("season_now")] = 1.0
    obs[:, OBS_NAMES.index("season_ahead")] = 1.0
    v = closed_form_values(obs, ctx, split=False)[0] * 1000.0  # back to currency
    a = int(rules.encode(2, 1))  # 20 % off + 10 % coupon
    lam1, lam2 = 10.0 * 0.8**-2 * np.exp(0.3), 10.0 * 0.8**-2
    sold1, sold2 = 4 * lam1, 6 * lam2
    held = sum(1000 - lam1 * k for k in range(1, 5)) + sum(
        1000 - sold1 - lam2 * k for k in range(1, 6)
    )
    left = 1000 - sold1 - sold2
    expected = (0.7 - 0.4) * sold1 + (0.8 - 0.4) * sold2 - 0.001 * held - 0.4 * left
    assert v[a] == pytest.approx(expected, rel=1e-9)
    # without a coupon the action runs all 10 weeks
    b = int(rules.encode(2, 0))
    held0 = sum(1000 - lam2 * k for k in range(1, 10))
    expected0 = 0.4 * 10 * lam2 - 0.001 * held0 - 0.4 * (1000 - 10 * lam2)
    assert v[b] == pytest.approx(expected0, rel=1e-9)


def test_fluid_values_split_between_two_rungs_to_sell_out_at_exit():
    """Hand-computed: 0 % off leaves stock, 10 % off would sell out early; the two-price plan
    runs 0 % until the week from which 10 % sells the rest exactly at exit."""
    from envs.config import RulesConfig
    from envs.context import PolicyContext
    from simulator.market import initial_state

    rules = RulesConfig(discount_levels=(0.0, 0.1, 0.2), markdown_only=True)
    lam0, lam1 = 10.0, 10.0 * 0.9**-3.0
    stock = 120.0  # 0 % sells 100 in 10 weeks, 10 % sells 137
    cat = Catalog.build(
        n_skus=1, base_demand=10.0, elasticity=-3.0, unit_cost=0.3, initial_stock=stock
    )
    dec = initial_decision_state(cat, 10, rules)
    ctx = PolicyContext(cat, dec, initial_state(cat), rules, 10)
    obs = np.zeros((1, OBS_DIM), np.float32)
    obs[:, OBS_NAMES.index("season_now")] = 1.0
    obs[:, OBS_NAMES.index("season_ahead")] = 1.0
    v = closed_form_values(obs, ctx)[0] * stock
    hold = closed_form_values(obs, ctx, split=False)[0] * stock
    k = (lam1 * 10 - stock) / (lam1 - lam0)  # weeks at 0 % off
    expected = 0.7 * lam0 * k + 0.6 * (stock - lam0 * k)  # sells out, nothing left
    assert v[0] == pytest.approx(expected, rel=1e-9)
    assert hold[0] == pytest.approx(0.7 * 100 - 0.3 * 20, rel=1e-9)
    assert v[0] > hold[0]


def test_untrained_prior_policy_acts_as_the_fluid_re_solve():
    """A fresh FluidPriorPolicy's greedy action is the fluid action (its own logits start
    near zero), so PPO starts from the certainty-equivalent re-solve."""
    from experiments.suite import RULE_PROFILES, training_catalog

    rules = RULE_PROFILES["coupons"]
    cat = training_catalog(200, np.random.default_rng(1), profile="coupons")
    env = make_training_env(replace(TINY, n_envs=200), rules, cat, seed=4)
    model = build_model(replace(TINY, n_envs=200), env)
    assert isinstance(model.policy, FluidPriorPolicy)
    obs = env.reset()
    masks = env.action_masks()
    greedy, _ = model.predict(obs, deterministic=True, action_masks=masks)
    regret = obs[:, PRIOR_START:]
    fluid = np.argmax(np.where(masks, regret, -np.inf), axis=1)
    # near-ties in the fluid values may go either way: the greedy pick is within 1 % of a
    # list price per unit of the fluid optimum
    assert np.all(regret[np.arange(len(fluid)), greedy] >= -0.04)
    assert np.mean(greedy == fluid) > 0.9
    assert np.all(masks[np.arange(len(greedy)), greedy])


def test_fluid_prior_baseline_is_the_untrained_policy_in_both_markets():
    """The ``prior`` baseline takes the best fluid action, which is where the untrained
    policy's logits start; in the learning market the regrets follow the belief fields."""
    from agents.baselines import FluidPrior
    from envs.belief import N_BELIEF
    from experiments.suite import RULE_PROFILES, learning_training_catalog

    rules = RULE_PROFILES["markdown"]
    cat = learning_training_catalog(200, np.random.default_rng(2), profile="markdown")
    cfg = replace(TINY, n_envs=200, belief_grid=3)
    env = make_training_env(cfg, rules, cat, seed=5)
    model = build_model(cfg, env)
    assert model.policy.prior_start == PRIOR_START + N_BELIEF
    obs = env.reset()
    masks = env.action_masks()
    base = env.venv
    # one week in, the slots' posteriors differ
    base.step_async(
        FluidPrior().act(obs[:, : base.observation_space.shape[0]], masks, base.policy_context())
    )
    obs, *_ = env.step_wait()
    masks = env.action_masks()
    raw = obs[:, : base.observation_space.shape[0]]
    prior = FluidPrior().act(raw, masks, base.policy_context())
    regret = obs[:, PRIOR_START + N_BELIEF :]
    np.testing.assert_array_equal(prior, np.argmax(np.where(masks, regret, -np.inf), axis=1))
    greedy = PPOPolicy(model).act(raw, masks, base.policy_context())
    assert np.mean(greedy == prior) > 0.9


@pytest.mark.slow
def test_tiny_training_beats_no_markdown_on_an_easy_scenario():
    scenario = get_suite()[0]  # none-base: no markdown leaves ~40 % of the stock
    cfg = replace(
        TINY,
        total_timesteps=12_000,
        n_epochs=4,
        net_arch=(32,),
        learning_rate=3e-3,
        horizon_range=(scenario.horizon_weeks, scenario.horizon_weeks),
        fluid_prior=0.0,  # a plain MLP: the gain must come from learning, not the prior
    )
    result = train_ppo(cfg, scenario.rules, scenario.catalog())
    ppo = play(PPOPolicy(result.model), scenario, n_episodes=300, seed=11)
    none = play(NoMarkdown(), scenario, n_episodes=300, seed=11)
    assert ppo["violations"].sum() == 0
    gain = ppo["objective"].to_numpy() - none["objective"].to_numpy()
    # paired (CRN) difference: clearly positive, not noise
    assert gain.mean() > 3 * gain.std(ddof=1) / np.sqrt(gain.size)
    assert ppo["objective"].mean() > 1.1 * none["objective"].mean()


def test_checkpoint_resume_continues_the_step_count(tmp_path):
    scenario = get_suite()[0]
    first = train_ppo(TINY, scenario.rules, scenario.catalog(), checkpoint_dir=tmp_path)
    state = load_checkpoint_state(tmp_path)
    assert state is not None and state["num_timesteps"] == first.num_timesteps >= 4096
    assert first.resumed_from == 0
    longer = replace(TINY, total_timesteps=8192)
    second = train_ppo(longer, scenario.rules, scenario.catalog(), checkpoint_dir=tmp_path)
    assert second.resumed_from == first.num_timesteps
    assert second.num_timesteps >= 8192
    assert load_checkpoint_state(tmp_path)["num_timesteps"] == second.num_timesteps
    # the saved model loads as a policy and acts within the masks
    policy = PPOPolicy.load(tmp_path)
    assert policy.requires_context
    totals = play(policy, scenario, n_episodes=20, seed=1)
    assert totals["violations"].sum() == 0


def test_kept_snapshots_are_the_checkpoints_the_run_passed_through(tmp_path):
    scenario = get_suite()[0]
    longer = replace(TINY, total_timesteps=8192)
    result = train_ppo(
        longer, scenario.rules, scenario.catalog(), checkpoint_dir=tmp_path, keep_snapshots=True
    )
    paths = snapshot_paths(tmp_path)
    steps = [snapshot_steps(p) for p in paths]
    # one per checkpoint (every 2,048 steps, taken after whole rollouts of 1,024) and the end
    assert steps == sorted(steps) and steps[-1] == result.num_timesteps
    assert len(steps) >= 4 and steps[0] == 2048
    assert paths[-1].read_bytes() == (tmp_path / "model.zip").read_bytes()
    late = late_snapshots(tmp_path)
    assert late and paths[-1] not in late
    assert all(snapshot_steps(p) >= 0.5 * result.num_timesteps for p in late)
    assert late == [p for p in paths[:-1] if snapshot_steps(p) >= 0.5 * steps[-1]]
    # an earlier snapshot is a policy of its own: it loads and acts differently
    first, final = PPOPolicy.load(paths[0]), PPOPolicy.load(paths[-1])
    a = play(first, scenario, n_episodes=20, seed=1)["objective"].to_numpy()
    b = play(final, scenario, n_episodes=20, seed=1)["objective"].to_numpy()
    assert not np.array_equal(a, b)
    # a file put there by hand is named, not a traceback
    (tmp_path / "snapshots" / "model_best.zip").write_bytes(b"")
    with pytest.raises(ConfigError, match="model_best.zip.*model_<steps>.zip"):
        late_snapshots(tmp_path)
    # without keep_snapshots nothing is kept
    other = tmp_path / "plain"
    train_ppo(TINY, scenario.rules, scenario.catalog(), checkpoint_dir=other)
    assert snapshot_paths(other) == [] and late_snapshots(other) == []


def _sb3_folders() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("SB3-*")}


def test_training_logs_progress_and_leaves_no_temp_folder(tmp_path, monkeypatch, caplog):
    scenario = get_suite()[0]
    monkeypatch.setattr(ppo_module, "PROGRESS_LOG_SECONDS", 0.0)
    before = _sb3_folders()
    cfg = replace(TINY, checkpoint_every=0, total_timesteps=4000)
    with caplog.at_level(logging.INFO, logger="agents.ppo"):
        result = train_ppo(cfg, scenario.rules, scenario.catalog())
    assert _sb3_folders() == before  # SB3's default logger would create SB3-<time> there
    lines = [r.getMessage() for r in caplog.records if r.name == "agents.ppo"]
    assert len(lines) >= 2 and all("steps/s" in line for line in lines)
    # the count ends at whole rollouts (n_steps x n_envs = 1,024 here), shown as done
    assert result.num_timesteps == 4096
    assert lines[-1].startswith(f"ppo: {result.num_timesteps:,}/{result.num_timesteps:,} steps")
    assert "(100%)" in lines[-1] and "done in" in lines[-1]
    # the saved model reloads; a corrupt, truncated or foreign zip is a clear error
    good = tmp_path / "model.zip"
    result.model.save(str(good))
    assert PPOPolicy.load(good).n_features == result.model.observation_space.shape[0]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "garbage.zip").write_bytes(b"PK\x03\x04 not really a zip")
    (bad / "truncated.zip").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with zipfile.ZipFile(bad / "foreign.zip", "w") as archive:
        archive.writestr("hello.txt", "not a model")
    for name, why in (
        ("garbage.zip", "is not a zip file (corrupt or truncated?)"),
        # half a model zip may still end in the directory of a zip nested in it
        ("truncated.zip", "truncated"),
        ("foreign.zip", "is not a complete model zip (no 'data' entry"),
        ("missing.zip", "does not exist"),
    ):
        with pytest.raises(ConfigError) as info:
            PPOPolicy.load(bad / name)
        message = str(info.value)
        assert message.startswith(f"PPO model {str(bad / name)!r} ") and why in message
        assert "expected a model.zip" in message


def test_device_auto_follows_the_gpu_and_cuda_without_one_is_refused(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert ppo_module.resolve_device("auto") == "cpu"
    assert ppo_module.resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match=r"ppo.device = 'cuda'.*no CUDA device.*'cpu' or 'auto'"):
        ppo_module.resolve_device("cuda")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert ppo_module.resolve_device("auto") == "cuda"
    assert ppo_module.resolve_device("cuda:0") == "cuda:0"
    with pytest.raises(ConfigError, match=r"'cuda:1'.*N below 1"):
        ppo_module.resolve_device("cuda:1")


def test_policy_pickles_as_its_saved_model(plan_catalog):
    """A PPO policy reaches another process (an engine's worker) as its saved model: the
    unpickled policy acts exactly as the original."""
    import pickle

    from envs.config import RulesConfig

    rules = RulesConfig(discount_levels=(0.0, 0.2, 0.4))
    env = make_training_env(TINY, rules, plan_catalog)
    policy = PPOPolicy(build_model(TINY, env), name="tiny")
    copy = pickle.loads(pickle.dumps(policy))
    assert copy.name == "tiny" and copy.requires_context == policy.requires_context
    obs = env.reset()
    masks = env.action_masks()
    ctx = env.venv.policy_context()
    raw = obs[:, : env.venv.observation_space.shape[0]]
    np.testing.assert_array_equal(copy.act(raw, masks, ctx), policy.act(raw, masks, ctx))


def test_ensemble_members_have_seeds_and_folders_of_their_own(tmp_path):
    # member 0 is the run itself; the others draw distinct seeds, the same ones every time
    assert member_seed(7, 0) == 7
    seeds = [member_seed(7, j) for j in range(1, 4)]
    assert len(set(seeds)) == 3 and 7 not in seeds
    assert seeds == [member_seed(7, j) for j in range(1, 4)]
    assert member_seed(8, 1) != member_seed(7, 1)
    with pytest.raises(ConfigError, match="member = -1"):
        member_seed(7, -1)
    assert member_folder(tmp_path, 0) == tmp_path
    assert member_folder(tmp_path, 2) == tmp_path / "members" / "m2"
    assert member_paths(tmp_path) == []
    for j in (10, 2, 1):  # numeric order, not the names' order
        (member_folder(tmp_path, j)).mkdir(parents=True)
        (member_folder(tmp_path, j) / "model.zip").write_bytes(b"")
    assert [p.parent.name for p in member_paths(tmp_path)] == ["m1", "m2", "m10"]
    (tmp_path / "members" / "mx").mkdir()
    (tmp_path / "members" / "mx" / "model.zip").write_bytes(b"")
    with pytest.raises(ConfigError, match="expected a folder named m<j>"):
        member_paths(tmp_path)


@pytest.mark.parametrize("suite", ["standard", "learning"])
def test_same_seed_trains_the_same_network(suite):
    """Training is deterministic on one machine: two runs with one seed give every weight
    equal (the learning market's truth draws and posterior included); another seed does not."""
    scenario = get_suite(suite)[0]
    cfg = replace(TINY, checkpoint_every=0, belief_grid=5 if suite == "learning" else 0)

    def weights(config: PPOConfig) -> dict:
        model = train_ppo(config, scenario.rules, scenario.catalog()).model
        return {k: v.detach().clone() for k, v in model.policy.state_dict().items()}

    first, second = weights(cfg), weights(cfg)
    assert first.keys() == second.keys()
    assert all(np.array_equal(first[k].numpy(), second[k].numpy()) for k in first)
    other = weights(replace(cfg, seed=cfg.seed + 1))
    assert not all(np.array_equal(first[k].numpy(), other[k].numpy()) for k in first)
