"""Champion/challenger retraining: a better challenger is promoted, one that is not better
by the margin is not, and a run that fails or is interrupted moves no alias."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import mlflow
import pytest

from agents.ppo import PPOConfig
from envs.config import RulesConfig
from experiments import retrain_runs
from experiments.retrain_runs import RetrainConfig, champion_version, retrain_run
from ingest.dataset import Dataset
from ingest.panel import build_panel
from monitoring.challenger import PromotionRule
from risk_model.scoring import RiskConfig
from simulator.synthetic import SyntheticConfig, generate_world

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world() -> tuple[Dataset, object]:
    w = generate_world(
        SyntheticConfig(
            n_skus=160, n_weeks=52, seed=7, with_interactions=False, shift_category="CAT02"
        )
    )
    dataset = Dataset(tables=dict(w.tables), source="synthetic:retrain", fingerprint="fp-retrain")
    return dataset, build_panel(dataset)


def _config(**kw: object) -> RetrainConfig:
    tag = uuid.uuid4().hex[:8]
    base = RetrainConfig(
        models=("risk", "demand"),
        risk=RiskConfig(models=("lr",), train_offsets=(0, 4)),
        rule=PromotionRule(margin=0.02, n_bootstrap=200),
        max_demand_skus=40,
        risk_name=f"test-risk-{tag}",
        demand_name=f"test-demand-{tag}",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def _aliases(cfg: RetrainConfig) -> dict[str, str | None]:
    out = {}
    for model, name in (("risk", cfg.risk_name), ("demand", cfg.demand_name)):
        v = champion_version(name)
        out[model] = None if v is None else str(v.version)
    return out


def test_first_run_promotes_then_the_same_recipe_is_kept(world) -> None:
    dataset, panel = world
    cfg = _config()
    first = retrain_run(dataset, panel, cfg)
    assert first.promoted == first.versions
    assert _aliases(cfg) == first.versions
    # the same data and settings give the same models: no improvement, the champion stays
    again = retrain_run(dataset, panel, cfg)
    for c in again.comparisons.values():
        assert c.improvement == pytest.approx(0.0, abs=1e-9)
        assert not c.promote
    assert again.promoted == {}
    assert _aliases(cfg) == first.versions
    run = mlflow.get_run(again.run_id)
    assert run.data.tags["retrain.risk"] == "keep" and run.data.tags["retrain.demand"] == "keep"
    path = mlflow.artifacts.download_artifacts(
        run_id=again.run_id, artifact_path="retrain_decision.json"
    )
    decisions = json.loads(open(path, encoding="utf-8").read())["decisions"]
    assert {d["model"] for d in decisions} == {"risk", "demand"}
    assert all(d["champion_version"] == first.versions[d["model"]] for d in decisions)


def test_a_better_demand_challenger_is_promoted(world) -> None:
    dataset, panel = world
    cfg = _config(models=("demand",))
    # the champion was fitted before the category's velocity halved (week 40)
    old = retrain_run(dataset, panel[panel["week"] <= 38], cfg)
    new = retrain_run(dataset, panel, cfg)
    c = new.comparisons["demand"]
    assert c.promote and c.ci_low > cfg.rule.margin
    assert _aliases(cfg)["demand"] == new.versions["demand"] != old.versions["demand"]


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_a_failed_or_interrupted_run_moves_no_alias(world, monkeypatch, error) -> None:
    dataset, panel = world
    cfg = _config()
    before = _aliases(cfg)
    assert before == {"risk": None, "demand": None}  # a fresh name: the risk would be promoted

    def fail(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(retrain_runs, "_log_demand_model", fail)
    with pytest.raises(type(error)):
        retrain_run(dataset, panel, cfg)
    assert _aliases(cfg) == before
    # the risk challenger was registered before the failure, but not promoted
    versions = mlflow.MlflowClient().search_model_versions(f"name = '{cfg.risk_name}'")
    assert len(versions) == 1 and not versions[0].aliases


# ------------------------------------------------------------------------------ policy
RULES = RulesConfig(discount_levels=(0.0, 0.1, 0.2, 0.3, 0.5, 0.7), markdown_only=True)
# a short training that starts from the fluid re-solve (the default prior): a sound policy
GOOD_PPO = PPOConfig(
    total_timesteps=2048, n_envs=64, n_steps=16, batch_size=512, n_epochs=1, checkpoint_every=0
)
# the same budget without the fluid features: an untrained network, near-random markdowns
BAD_PPO = replace(GOOD_PPO, fluid_hint=False, fluid_values=False, fluid_prior=0.0)


def _policy_config(**kw: object) -> RetrainConfig:
    base = _config(
        models=("policy",),
        rules=RULES,
        ppo=GOOD_PPO,
        horizon_weeks=6,
        max_policy_skus=30,
        policy_episodes=60,
        policy_name=f"test-policy-{uuid.uuid4().hex[:8]}",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def _policy_alias(cfg: RetrainConfig) -> str | None:
    v = champion_version(cfg.policy_name)
    return None if v is None else str(v.version)


def test_a_better_policy_challenger_is_promoted(world) -> None:
    dataset, panel = world
    cfg = _policy_config(ppo=BAD_PPO)
    first = retrain_run(dataset, panel, cfg)  # no champion yet: the poor policy takes it
    assert first.promoted == {"policy": first.versions["policy"]}
    better = retrain_run(dataset, panel, replace(cfg, ppo=GOOD_PPO))
    c = better.comparisons["policy"]
    assert c.promote and c.ci_low > cfg.rule.margin
    assert c.challenger_loss > c.champion_loss  # mean profit per SKU: higher is better
    assert _policy_alias(cfg) == better.versions["policy"] != first.versions["policy"]
    run = mlflow.get_run(better.run_id)
    assert run.data.tags["retrain.policy"] == "promote"
    assert run.data.metrics["retrain/policy/promote"] == 1.0
    path = mlflow.artifacts.download_artifacts(
        run_id=better.run_id, artifact_path="retrain_decision.json"
    )
    (decision,) = json.loads(open(path, encoding="utf-8").read())["decisions"]
    assert decision["champion_version"] == first.versions["policy"]
    assert decision["n_skus"] >= 2 and decision["loss"] == "profit"


def test_a_worse_policy_challenger_is_kept(world) -> None:
    dataset, panel = world
    cfg = _policy_config()
    first = retrain_run(dataset, panel, cfg)
    worse = retrain_run(dataset, panel, replace(cfg, ppo=BAD_PPO))
    c = worse.comparisons["policy"]
    assert not c.promote and c.improvement < 0 and c.ci_high < 0
    assert worse.promoted == {}
    assert _policy_alias(cfg) == first.versions["policy"]
    assert mlflow.get_run(worse.run_id).data.tags["retrain.policy"] == "keep"


def test_an_interrupted_policy_retrain_moves_no_alias(world, monkeypatch) -> None:
    dataset, panel = world
    cfg = _policy_config(ppo=BAD_PPO)
    champion = retrain_run(dataset, panel, cfg).versions["policy"]

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    # the better policy challenger is trained, compared and registered, then the run is cut
    monkeypatch.setattr(retrain_runs, "_log_demand_model", interrupt)
    with pytest.raises(KeyboardInterrupt):
        retrain_run(dataset, panel, replace(cfg, ppo=GOOD_PPO, models=("policy", "demand")))
    assert _policy_alias(cfg) == champion
    versions = mlflow.MlflowClient().search_model_versions(f"name = '{cfg.policy_name}'")
    assert len(versions) == 2
    assert [v.aliases for v in versions if str(v.version) != champion] == [[]]


def test_a_champion_for_other_rules_skips_the_policy(world) -> None:
    dataset, panel = world
    cfg = _policy_config()
    retrain_run(dataset, panel, cfg)
    other = retrain_run(dataset, panel, replace(cfg, rules=replace(RULES, markdown_only=False)))
    assert "holds no policy for these rules" in other.skipped["policy"]
    assert other.promoted == {}
