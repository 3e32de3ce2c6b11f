"""The learning market: the exact posterior against a brute-force Bayes update, what the
policy sees, the truth draws shared by every policy (CRN), the Gymnasium env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from scipy import stats

import envs
from envs.belief import ELASTICITY_CAP, BeliefGrid, log_likelihood
from envs.learning import LearningMarkdownEnv
from envs.markdown import EnvConfig
from envs.observation import ELASTICITY_SCALE, OBS_DIM, OBS_NAMES
from ingest.errors import ConfigError
from simulator.demand import Catalog

Z_MAX = 2.5


def _catalog(dispersion: float, stock: float = 40.0) -> Catalog:
    return Catalog.build(
        n_skus=1,
        base_demand=6.0,
        elasticity=-1.6,
        elasticity_se=0.9,  # wide: the top grid points are capped at ELASTICITY_CAP
        base_demand_se=0.5,
        dispersion=dispersion,
        initial_stock=stock,
    )


def _brute_force(history, k: int, cat: Catalog) -> dict[str, float]:
    """Posterior moments by Bayes' rule written out point by point with scipy's own pmfs."""
    z = np.linspace(-Z_MAX, Z_MAX, k)
    prior_axis = stats.norm.pdf(z)
    e0, se_e = float(cat.elasticity[0]), float(cat.elasticity_se[0])
    b0, se_l = float(cat.base_demand[0]), float(cat.base_demand_se[0])
    alpha = float(cat.dispersion[0])
    post = np.empty((k, k))
    es = np.empty((k, k))
    ls = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            e = min(e0 + se_e * z[i], ELASTICITY_CAP)
            level = se_l * z[j]
            weight = prior_axis[i] * prior_axis[j]
            for depth, sold, stock in history:
                lam = b0 * np.exp(level) * (1.0 - depth) ** e
                if alpha > 0:
                    r = 1.0 / alpha
                    dist = stats.nbinom(r, r / (r + lam))
                else:
                    dist = stats.poisson(lam)
                weight *= dist.sf(stock - 1) if sold >= stock else dist.pmf(sold)
            post[i, j], es[i, j], ls[i, j] = weight, e, level
    post /= post.sum()
    me, ml = (post * es).sum(), (post * ls).sum()
    sd_e = np.sqrt((post * (es - me) ** 2).sum())
    sd_l = np.sqrt((post * (ls - ml) ** 2).sum())
    corr = (post * (es - me) * (ls - ml)).sum() / (sd_e * sd_l)
    entropy = -(post * np.log(post)).sum() / np.log(k * k)
    return {"e": me, "sd_e": sd_e, "l": ml, "sd_l": sd_l, "corr": corr, "entropy": entropy}


@pytest.mark.parametrize("dispersion", [0.0, 0.4], ids=["poisson", "nb"])
@pytest.mark.parametrize("stock", [40.0, 12.0], ids=["stock", "sellout"])
def test_posterior_features_match_brute_force(dispersion: float, stock: float) -> None:
    cat = _catalog(dispersion, stock)
    k = 5
    env = LearningMarkdownEnv(
        EnvConfig(catalog=cat, horizon_weeks=6), n_slots=1, seed=3, fixed_skus=True, grid=k
    )
    obs = env.reset()
    rng = np.random.default_rng(0)
    history = []
    ended = False
    for _ in range(6):
        mask = env.action_masks()[0]
        a = int(rng.choice(np.flatnonzero(mask)))
        depth = float(env.rules.depths(np.array([a]))[0][0])
        stock_before = float(env.policy_context().decision.stock[0])
        env.step_async(np.array([a]))
        obs, _, done, infos = env.step_wait()
        history.append((depth, float(env.week_units_sold[0]), stock_before))
        if done[0]:
            obs = infos[0]["terminal_observation"][None, :]
            ended = True
            break
        want = _brute_force(history, k, cat)
        ctx = env.policy_context()
        got = ctx.belief.summary()
        np.testing.assert_allclose(got["elasticity_mean"][0], want["e"], rtol=1e-9)
        np.testing.assert_allclose(ctx.catalog.elasticity[0], want["e"], rtol=1e-9)
        np.testing.assert_allclose(
            ctx.catalog.base_demand[0], cat.base_demand[0] * np.exp(want["l"]), rtol=1e-9
        )
    want = _brute_force(history, k, cat)
    feats = obs[0, OBS_DIM:]
    np.testing.assert_allclose(
        feats,
        [want["sd_e"], want["l"], want["sd_l"], want["corr"], want["entropy"]],
        atol=2e-6,  # float32 observation
    )
    e_obs = obs[0, OBS_NAMES.index("elasticity")] * ELASTICITY_SCALE
    np.testing.assert_allclose(e_obs, want["e"], atol=1e-5)
    if stock == 12.0:
        assert ended, "the small stock should sell out within the horizon (censored update)"


def test_censored_likelihood_is_the_tail() -> None:
    lam = np.array([[2.0, 5.0, 9.0], [2.0, 5.0, 9.0]])
    ll = log_likelihood(lam, np.array([4.0, 4.0]), np.array([4.0, 4.0]), np.array([0.0, 0.5]))
    np.testing.assert_allclose(np.exp(ll[0]), stats.poisson.sf(3, lam[0]), rtol=1e-10)
    r = 2.0
    np.testing.assert_allclose(np.exp(ll[1]), stats.nbinom.sf(3, r, r / (r + lam[1])), rtol=1e-10)
    # no stock, no information
    assert np.all(log_likelihood(lam, np.zeros(2), np.zeros(2), np.zeros(2)) == 0.0)


def test_policy_never_sees_the_truth() -> None:
    cat = _catalog(0.0)
    env = LearningMarkdownEnv(EnvConfig(catalog=cat, horizon_weeks=6), n_slots=64, seed=1)
    obs = env.reset()
    truth = env.true_catalog().elasticity
    assert np.unique(truth).size > 3  # the truths vary between slots
    ctx = env.policy_context()
    assert ctx.truth is None
    # at the start every slot's belief is the prior: one observation and catalog for all
    assert np.all(obs == obs[0]) and np.all(ctx.catalog.elasticity == ctx.catalog.elasticity[0])
    env.reveal_truth = True
    assert env.policy_context().truth is not None


def _truths_and_sales(seed: int, pick: int) -> tuple[np.ndarray, np.ndarray]:
    cat = Catalog.build(
        n_skus=2,
        base_demand=[3.0, 8.0],
        elasticity=-2.0,
        elasticity_se=0.6,
        base_demand_se=0.4,
        initial_stock=50.0,
    )
    env = LearningMarkdownEnv(
        EnvConfig(catalog=cat, horizon_weeks=4), n_slots=40, seed=seed, fixed_skus=True, grid=5
    )
    seen: list[np.ndarray] = []

    def act(obs, masks, ctx):
        if not seen:
            seen.append(env.true_catalog().elasticity.copy())
            seen.append(env.true_catalog().base_demand.copy())
        return np.array([np.flatnonzero(m)[min(pick, m.sum() - 1)] for m in masks])

    totals = env.evaluate(act, episodes_per_slot=1)
    return np.concatenate(seen), totals["units_sold"].to_numpy()


def test_every_policy_plays_the_same_truths() -> None:
    truth_a, sold_a = _truths_and_sales(seed=5, pick=0)
    truth_b, sold_b = _truths_and_sales(seed=5, pick=4)
    np.testing.assert_array_equal(truth_a, truth_b)
    assert not np.array_equal(sold_a, sold_b)  # the policies differ, the luck does not
    truth_c, _ = _truths_and_sales(seed=6, pick=0)
    assert not np.array_equal(truth_a, truth_c)


def test_grid_draws_follow_the_prior() -> None:
    grid = BeliefGrid(5)
    u = np.random.default_rng(0).random(200_000)
    freq = np.bincount(grid.draw(u), minlength=grid.n_points) / u.size
    np.testing.assert_allclose(freq, grid.prior, atol=3e-3)
    assert grid.center == 12 and BeliefGrid(1).n_points == 1


def test_refusals() -> None:
    with pytest.raises(ConfigError, match="draw_parameters"):
        LearningMarkdownEnv(EnvConfig(draw_parameters=True), n_slots=2)
    with pytest.raises(ConfigError, match="belief grid k"):
        BeliefGrid(0)


def test_gym_env_is_registered_and_deterministic() -> None:
    assert envs.MARKDOWN_LEARNING_ID in envs.ENV_IDS

    def play(seed: int) -> list:
        env = gym.make(envs.MARKDOWN_LEARNING_ID)
        rng = np.random.default_rng(0)
        obs, info = env.reset(seed=seed)
        trace = [obs.tobytes()]
        for _ in range(30):
            a = int(rng.choice(np.flatnonzero(info["action_mask"])))
            obs, reward, terminated, truncated, info = env.step(a)
            trace.append((obs.tobytes(), reward, terminated, info["units_sold"]))
            if terminated or truncated:
                obs, info = env.reset()
        return trace

    assert play(3) == play(3)
    assert play(3) != play(4)
