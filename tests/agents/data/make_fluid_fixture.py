"""Write ``fluid_frozen.npz`` and ``ppo_prior_tiny.zip``: the fluid model's outputs frozen.

Run once, on the code whose numbers are to be kept. The files in this folder were written
at 04b03dd, before the fluid model moved into ``agents/fluid.py`` (by this script as it was
then, with the names of that commit: ``agents.ppo.fluid_action_values`` for
``closed_form_values``, and the body of ``CertaintyEquivalent.act`` for
``week_by_week_values``)::

    .venv/bin/python tests/agents/data/make_fluid_fixture.py

``tests/agents/test_fluid.py`` rebuilds the same contexts from the stored inputs and checks
that today's code gives the stored outputs to the bit, so a PPO model trained before a
refactor reads the same features and acts the same. Rerunning this script on later code
only re-freezes that code's numbers: do it only for an intended change of the fluid model
(and say so in the commit).

Per rule profile the file holds the inputs (``<profile>/obs``, ``/masks``,
``/horizon_weeks``, ``/rules`` as JSON, ``/catalog/<field>``, ``/decision/<field>``,
``/market/<field>``) and the outputs: ``/hint`` (the five hint features),
``/values_split`` and ``/values_hold`` (the closed-form fluid action values with and without
the two-price plan, masked), ``/values_unmasked``, ``/value_features``, ``/augment`` and
``/augment_hint_only`` (the observation the PPO network reads, with and without the fluid
values), ``/ce_values`` and ``/ce_actions`` (the certainty-equivalent baseline's week-by-week
fluid profit and choice) and ``/ppo_actions`` (the tiny model's greedy actions, profile
``coupons`` only, the model's own rules). ``dp_<profile>/ce_value`` holds the baseline's
exact expected profit (:func:`agents.dp.evaluate_exact`, on the DP's grid context) for the
SKUs of ``dp_<profile>/catalog``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

HERE = Path(__file__).resolve().parent
PROFILES = ("none", "coupons", "markdown", "all")
N_SLOTS = 48
MODEL_PROFILE = "coupons"
DP_SKUS = 4
DP_HORIZON = 8


def _store(out: dict[str, np.ndarray], prefix: str, state) -> None:
    for f in fields(state):
        value = np.array(getattr(state, f.name))
        out[prefix + f.name] = value.astype(str) if value.dtype == object else value


def main() -> None:
    from agents.baselines import CertaintyEquivalent
    from agents.dp import evaluate_exact
    from agents.fluid import (
        augment,
        closed_form_values,
        hint_features,
        value_features,
        week_by_week_values,
    )
    from agents.ppo import PPOConfig, PPOPolicy, make_training_env, train_ppo
    from experiments.suite import RULE_PROFILES, training_catalog

    tiny = PPOConfig(
        total_timesteps=2048,
        n_envs=64,
        n_steps=16,
        batch_size=256,
        n_epochs=1,
        net_arch=(8,),
        n_catalog_skus=50,
        checkpoint_every=0,
        seed=5,
    )
    rules_m = RULE_PROFILES[MODEL_PROFILE]
    cat_m = training_catalog(50, np.random.default_rng(2), profile=MODEL_PROFILE)
    model = train_ppo(tiny, rules_m, cat_m).model
    model.save(str(HERE / "ppo_prior_tiny.zip"))
    policy = PPOPolicy(model)

    out: dict[str, np.ndarray] = {}
    for k, profile in enumerate(PROFILES):
        rules = RULE_PROFILES[profile]
        cat = training_catalog(N_SLOTS, np.random.default_rng(100 + k), profile=profile)
        env = make_training_env(
            replace(tiny, n_envs=N_SLOTS, fluid_hint=False), rules, cat, seed=200 + k
        )
        obs = env.reset()
        rng = np.random.default_rng(300 + k)
        for _ in range(3 + k):  # varied stock, weeks left, coupon budget
            masks = env.action_masks()
            obs, *_ = env.step(np.array([rng.choice(np.flatnonzero(m)) for m in masks]))
        masks = env.action_masks()
        ctx = env.policy_context()
        p = f"{profile}/"
        out[p + "obs"] = np.asarray(obs, np.float32)
        out[p + "masks"] = np.asarray(masks, bool)
        out[p + "horizon_weeks"] = np.asarray(ctx.horizon_weeks)
        out[p + "rules"] = np.array(json.dumps(asdict(rules)))
        for part, state in (
            ("catalog", ctx.catalog),
            ("decision", ctx.decision),
            ("market", ctx.market),
        ):
            _store(out, f"{p}{part}/", state)
        out[p + "hint"] = hint_features(obs, ctx.catalog, ctx.decision)
        out[p + "values_split"] = closed_form_values(obs, ctx, masks)
        out[p + "values_hold"] = closed_form_values(obs, ctx, masks, split=False)
        out[p + "values_unmasked"] = closed_form_values(obs, ctx)
        out[p + "value_features"] = value_features(obs, ctx, masks)
        out[p + "augment"] = augment(obs, ctx, masks)
        out[p + "augment_hint_only"] = augment(obs, ctx, masks, values=False)
        out[p + "ce_values"] = week_by_week_values(ctx)
        out[p + "ce_actions"] = CertaintyEquivalent().act(obs, masks, ctx)
        if profile == MODEL_PROFILE:
            out[p + "ppo_actions"] = policy.act(obs, masks, ctx)
    # the baseline on the DP's grid context (one SKU broadcast over every state), valued
    # exactly: SKUs without memory or fatigue, few units
    for k, profile in enumerate(("coupons", "all")):
        rules = RULE_PROFILES[profile]
        cat = training_catalog(DP_SKUS, np.random.default_rng(400 + k), profile=profile)
        cat = cat.replace(
            ref_price_sensitivity=0.0,
            fatigue_rate=0.0,
            initial_stock=np.minimum(np.rint(cat.initial_stock), 40.0),
        )
        p = f"dp_{profile}/"
        out[p + "rules"] = np.array(json.dumps(asdict(rules)))
        _store(out, p + "catalog/", cat)
        out[p + "ce_value"] = np.array(
            [
                evaluate_exact(cat.take([i]), rules, DP_HORIZON, CertaintyEquivalent())
                for i in range(DP_SKUS)
            ]
        )
    np.savez_compressed(HERE / "fluid_frozen.npz", **out)


if __name__ == "__main__":
    main()
