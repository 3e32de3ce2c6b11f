"""Champion/challenger retraining: a better challenger is promoted, one that is not better
by the margin is not, and a run that fails or is interrupted moves no alias."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import mlflow
import pytest

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
