"""The batched env's shortcuts give the numbers the plain computation gives."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import envs.batched as batched
from envs import RULES_V0
from envs.batched import BatchedMarkdownEnv
from envs.markdown import EnvConfig
from envs.observation import build_observation
from simulator.demand import Catalog


def _run(env: BatchedMarkdownEnv, steps: int = 20) -> list[bytes]:
    rng = np.random.default_rng(3)
    out = [env.reset().tobytes()]
    for _ in range(steps):
        masks = env.action_masks()
        env.step_async(np.argmax(np.where(masks, rng.random(masks.shape), -1.0), axis=1))
        obs, rew, done, infos = env.step_wait()
        out += [obs.tobytes(), rew.tobytes(), done.tobytes()]
        out += [info["terminal_observation"].tobytes() for info in infos if info]
    return out


@pytest.mark.parametrize("fixed", [False, True])
def test_start_table_matches_assembling(
    catalog: Catalog, fixed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = EnvConfig(catalog=catalog, rules=RULES_V0, horizon_range=None if fixed else (2, 9))
    n = catalog.n_skus * 4
    with_table = BatchedMarkdownEnv(cfg, n, seed=4, fixed_skus=fixed)
    assert with_table._start_table is not None
    monkeypatch.setattr(batched, "START_TABLE_MAX_ROWS", 0)
    without = BatchedMarkdownEnv(cfg, n, seed=4, fixed_skus=fixed)
    assert without._start_table is None
    a, b = _run(with_table), _run(without)
    assert len(a) > 61  # some episodes finished (terminal observations were compared too)
    assert a == b


def test_observations_equal_build_observation_of_the_slots(catalog: Catalog) -> None:
    """Cached descriptor columns and season rows give build_observation's numbers."""
    env = BatchedMarkdownEnv(EnvConfig(catalog=catalog, rules=RULES_V0, horizon_range=(2, 9)), 40)
    env.seed(1)
    obs = env.reset()
    rng = np.random.default_rng(0)
    for _ in range(12):
        ctx = env.policy_context()
        expected = build_observation(
            ctx.catalog,
            ctx.decision,
            ctx.market,
            env.rules,
            horizon_weeks=ctx.horizons(),
            last_units_sold=env._last_sold,
        )
        np.testing.assert_array_equal(obs, expected)
        masks = env.action_masks()
        env.step_async(np.argmax(np.where(masks, rng.random(masks.shape), -1.0), axis=1))
        obs, _, _, _ = env.step_wait()


@pytest.mark.parametrize("draw", [False, True])
def test_restarted_slots_hold_their_skus_parameters(catalog: Catalog, draw: bool) -> None:
    """Restarts copy only the catalog fields that differ between source SKUs; every slot's
    row must still equal its SKU's row in every field (the drawn parameters aside)."""
    cfg = EnvConfig(catalog=catalog, rules=RULES_V0, horizon_range=(2, 5), draw_parameters=draw)
    env = BatchedMarkdownEnv(cfg, catalog.n_skus * 3, seed=5)
    assert 0 < len(env._varying_fields) < len(dataclasses.fields(Catalog))
    _run(env, 12)
    assert env._episode.min() >= 1  # every slot restarted at least once
    expected = env.source.take(env._sku_index)
    drawn = {"elasticity", "coupon_coef", "display_coef", "mailer_coef", "base_demand"}
    for f in dataclasses.fields(Catalog):
        if draw and f.name in drawn:
            continue
        np.testing.assert_array_equal(getattr(env._catalog, f.name), getattr(expected, f.name))


def test_market_season_lookup_matches_the_catalogs() -> None:
    from simulator.market import _season_at

    rng = np.random.default_rng(0)
    cat = Catalog.build(n_skus=7, season=rng.uniform(0.5, 1.5, (7, 52)))
    week = np.array([0, 51, 52, 103, 260, 5, 77])
    np.testing.assert_array_equal(_season_at(cat, week), cat.season_at(week))
    cat.season = np.asfortranarray(cat.season)  # not C-contiguous: the catalog's own lookup
    np.testing.assert_array_equal(_season_at(cat, week), cat.season_at(week))
