"""``deadstock coupons``: the evaluation on a synthetic world with baskets (JSON rows as the
issue specifies them, logged to MLflow), the target lists of a plan's coupons, and clear
refusals for a source without households and a folder without schedules."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from app.cli.main import main
from simulator.synthetic import SyntheticConfig, generate_world, write_world

ROW_KEYS = {"model", "baseline", "cutoff", "k", "recall", "recall_ci", "ndcg", "ndcg_ci", "n_skus"}


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("coupon-world")
    cfg = SyntheticConfig(n_skus=80, n_weeks=52, seed=3, with_baskets=True, n_households=300)
    write_world(generate_world(cfg), out, fmt="parquet")
    return out


def test_evaluate_writes_the_rows_and_logs_a_run(world_dir, tmp_path, capsys, mlflow_store):
    out = tmp_path / "rows.json"
    # a small world has few SKUs in the high tier and they stop selling: take every tier
    config = tmp_path / "plan.toml"
    config.write_text('[selection]\ntiers = ["high", "medium", "low"]\n')
    code = main(
        ["coupons", "evaluate", "--data", str(world_dir), "--out", str(out), "--quick",
         "--config", str(config),
         "--models", "als,repeat,popularity", "--plots", str(tmp_path / "plots")]
    )  # fmt: skip
    assert code == 0
    rows = json.loads(out.read_text())
    assert rows and all(ROW_KEYS <= set(r) for r in rows)
    assert {r["model"] for r in rows} == {"als", "repeat", "popularity"}
    assert {r["baseline"] for r in rows if r["model"] == "als"} == {False}
    assert len({r["cutoff"] for r in rows}) == 2
    assert {r["k"] for r in rows} == {25, 50, 100}
    assert all(r["recall_ci"][0] <= r["recall"] <= r["recall_ci"][1] for r in rows)
    assert (tmp_path / "plots" / "coupons_recall_at_k.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "chosen:" in printed and "best baseline" in printed

    import mlflow

    runs = mlflow.search_runs(
        experiment_names=["deadstock"], filter_string="tags.stage = 'coupons-evaluate'"
    )
    assert len(runs) >= 1
    assert any(c.startswith("metrics.coupons/all/") for c in runs.columns)


def test_target_lists_households_for_the_plans_coupons(world_dir, tmp_path, capsys):
    baskets = pd.read_parquet(world_dir / "baskets.parquet")
    top = baskets["sku"].astype(str).value_counts().index[:2].tolist()
    plan = tmp_path / "run"
    plan.mkdir()
    pd.DataFrame(
        {"sku": [top[0], top[0], top[1], "nocoupon"], "week": [1, 2, 1, 1],
         "discount": 0.1, "coupon": [0.1, 0.0, 0.2, 0.0]}
    ).to_csv(plan / "schedules.csv", index=False)  # fmt: skip
    code = main(
        ["coupons", "target", "--data", str(world_dir), "--plan", str(plan), "--k", "10",
         "--models", "repeat,popularity"]
    )  # fmt: skip
    assert code == 0
    targets = pd.read_csv(plan / "coupon_targets.csv", dtype={"sku": str, "household": str})
    assert list(targets.columns) == ["sku", "household", "rank", "score", "week", "expected_reach"]
    assert set(zip(targets["sku"], targets["week"], strict=True)) == {(top[0], 1), (top[1], 1)}
    assert (targets.groupby("sku").size() == 10).all()
    assert targets["expected_reach"].between(0, 1).all()
    assert "expected reach" in capsys.readouterr().out


def test_a_source_without_households_and_a_plan_without_schedules_exit_2(
    world_dir, tmp_path, capsys
):
    no_baskets = tmp_path / "nobaskets"
    no_baskets.mkdir()
    for name in ("products", "sales"):
        pd.read_parquet(world_dir / f"{name}.parquet").to_parquet(no_baskets / f"{name}.parquet")
    assert main(["coupons", "evaluate", "--data", str(no_baskets), "--no-track"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no household baskets" in errors[0]
    assert "Traceback" not in err
    assert main(["coupons", "target", "--data", str(world_dir), "--plan", str(tmp_path)]) == 2
    assert "no schedules in" in capsys.readouterr().err


def test_the_runs_coupon_stage_writes_targets_only_when_plans_use_coupons(world_dir, tmp_path):
    from app.coupons import coupons_stage
    from app.pipeline_config import PipelineConfig
    from app.stage_record import StageRecord
    from envs.config import RulesConfig
    from ingest.loader import load
    from targeting.config import TargetingConfig

    dataset = load(str(world_dir))
    sku = str(pd.read_parquet(world_dir / "baskets.parquet")["sku"].iloc[0])
    pd.DataFrame(
        {"plan_key": "p", "sku": [sku, sku, "other"], "week": [1, 2, 1],
         "discount": 0.1, "coupon": [0.0, 0.1, 0.0]}
    ).to_csv(tmp_path / "schedules.csv", index=False)  # fmt: skip
    base = PipelineConfig(
        data=str(world_dir),
        out_dir=str(tmp_path),
        coupons=TargetingConfig(models=("repeat", "popularity"), k=4),
    )
    rec = StageRecord("coupons")
    assert coupons_stage(base, "p", dataset, rec) == {}
    assert "no coupons" in rec.detail and not (tmp_path / "coupon_targets.csv").exists()
    with_coupons = PipelineConfig(
        data=str(world_dir),
        out_dir=str(tmp_path),
        rules=RulesConfig(discount_levels=(0.0, 0.1), coupon_levels=(0.0, 0.1)),
        coupons=TargetingConfig(models=("repeat", "popularity"), k=4),
    )
    written = coupons_stage(with_coupons, "p", dataset, rec)
    targets = pd.read_csv(written["coupon_targets"], dtype={"sku": str})
    assert list(targets.columns) == ["plan_key", "sku", "household", "rank", "score", "week",
                                     "expected_reach"]  # fmt: skip
    assert set(targets["sku"]) == {sku} and set(targets["week"]) == {2}
    assert list(targets["rank"]) == [1, 2, 3, 4]
    assert rec.metrics["n_targets"] == 4.0 and "expected reach" in rec.detail
