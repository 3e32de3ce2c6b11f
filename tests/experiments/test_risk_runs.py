"""MLflow runs of the risk model and the ``deadstock risk`` CLI, on a small synthetic world."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from app.cli.main import main
from experiments.risk_runs import (
    CHAMPION_URI,
    REGISTERED_NAME,
    backtest_run,
    load_champion,
    pip_requirements,
    train_run,
)
from ingest.dataset import Dataset
from ingest.panel import build_panel
from risk_model.backtest import JSON_KEYS, BacktestConfig
from risk_model.scoring import RiskConfig
from simulator.synthetic import SyntheticConfig, generate_world, write_world

WORLD = SyntheticConfig(n_skus=400, n_weeks=60, seed=21, dead_share=0.3)


@pytest.fixture(scope="module")
def world():
    w = generate_world(WORLD)
    ds = Dataset(tables=dict(w.tables), source="synthetic", fingerprint="fp-test")
    return ds, build_panel(ds)


def test_pip_requirements_name_xgboost_cpu():
    reqs = pip_requirements()
    assert any(r.startswith("xgboost-cpu") for r in reqs)
    assert not any(r.startswith("xgboost==") for r in reqs)


def test_backtest_run_logs_metrics_with_cis(world, tmp_path):
    ds, panel = world
    cfg = BacktestConfig(train_cutoff=30, test_cutoff=44, models=("lr",), n_bootstrap=20)
    result, run_id = backtest_run(ds, panel, cfg, out_dir=tmp_path)
    run = mlflow.get_run(run_id)
    m = run.data.metrics
    for key in ("risk/lr/roc_auc", "risk/lr/roc_auc_ci_low", "risk/lr/roc_auc_ci_high"):
        assert key in m
    assert m["risk/lr/roc_auc"] == pytest.approx(result.rows[0]["roc_auc"])
    assert m["risk/rule_wsls/pr_auc_ci_high"] >= m["risk/rule_wsls/pr_auc"]
    assert run.data.tags["data_fingerprint"] == "fp-test"
    children = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{run_id}'", output_format="list"
    )
    assert {c.data.tags["model"] for c in children} == {"lr", "rule_wsls", "noise_floor"}
    assert all("risk/roc_auc_ci_low" in c.data.metrics for c in children)
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "plots")}
    assert {"plots/roc.png", "plots/pr.png", "plots/calibration.png"} <= artifacts


def test_registered_champion_scores_like_the_trained_model(world):
    ds, panel = world
    result, run_id, version = train_run(ds, panel, RiskConfig(models=("lr", "xgb")))
    assert version is not None
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias(REGISTERED_NAME, "champion").version) == version
    model = load_champion(CHAMPION_URI)
    scored = model.predict(result.features.reset_index())
    expected = result.scores
    pd.testing.assert_series_equal(scored["sku"], expected["sku"])
    np.testing.assert_allclose(scored["risk"], expected["risk"], rtol=1e-12)
    assert (scored["tier"] == expected["tier"]).all()
    assert (scored["driver_1"] == expected["driver_1"]).all()
    assert set(expected["tier"]) <= {"high", "medium", "low"}
    assert expected["risk"].is_monotonic_decreasing


def test_cli_backtest_json_and_score(world, tmp_path, capsys):
    w = generate_world(WORLD)
    write_world(w, tmp_path / "data")
    out = tmp_path / "bt.json"
    rc = main(
        [
            "risk",
            "backtest",
            "--data",
            str(tmp_path / "data"),
            "--train-cutoff",
            "30",
            "--test-cutoff",
            "44",
            "--models",
            "lr",
            "--bootstrap",
            "10",
            "--no-track",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    rows = json.loads(out.read_text())
    assert [tuple(r) for r in rows] == [JSON_KEYS] * 3
    assert "rule_wsls" in capsys.readouterr().out
    scores = tmp_path / "scores.csv"
    assert main(["risk", "score", "--data", str(tmp_path / "data"), "--out", str(scores)]) == 0
    frame = pd.read_csv(scores)
    assert len(frame) == WORLD.n_skus
    assert {"sku", "risk", "tier", "established", "driver_1", "driver_3"} <= set(frame.columns)
    assert 0 < frame["established"].sum() < len(frame)


def test_cli_errors_are_clear(tmp_path, capsys):
    rc = main(["risk", "backtest", "--data", str(tmp_path / "missing")])
    assert rc == 2
    assert "not found" in capsys.readouterr().err
    rc = main(["risk", "backtest", "--data", "x", "--train-cutoff", "30", "--test-cutoff", "35"])
    assert rc == 2
    assert "train_cutoff" in capsys.readouterr().err
