"""``deadstock demand fit`` and ``deadstock simulate`` end to end on a tiny synthetic folder."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

from app.cli.main import main
from simulator.synthetic import SyntheticConfig, generate_world, write_world


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("world")
    write_world(generate_world(SyntheticConfig(n_skus=60, n_weeks=40, seed=2)), folder)
    return folder


@pytest.mark.slow
def test_fit_then_simulate(world_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEADSTOCK_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "catalog.parquet"
    assert main(["demand", "fit", "--data", str(world_dir), "--out", str(out)]) == 0
    frame = pd.read_parquet(out)
    assert len(frame) == 60
    needed = {"sku", "elasticity", "elasticity_se", "base_demand", "coupon_assumed"}
    assert needed <= set(frame.columns)
    assert (frame["elasticity"] <= 0).all()
    text = capsys.readouterr().out
    run_id = text.split("mlflow run: ")[1].split()[0]
    run = mlflow.get_run(run_id)
    assert "fit/elasticity_median" in run.data.metrics
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "plots")}
    assert "plots/elasticities_by_group.png" in arts

    args = ["simulate", "--catalog", str(out), "--policy", "fixed:0.3", "--horizon-weeks", "6"]
    assert main([*args, "--episodes", "30", "--seed", "4"]) == 0
    first = capsys.readouterr().out
    assert "sell-through" in first and "profit" in first
    assert main([*args, "--episodes", "30", "--seed", "4"]) == 0
    assert capsys.readouterr().out == first  # same seed, same numbers
    sku = str(frame["sku"][0])
    assert main([*args, "--episodes", "30", "--draw-parameters", "--sku", sku]) == 0
    assert "1 SKU(s)" in capsys.readouterr().out


def test_simulate_bad_inputs_exit_2(tmp_path, capsys):
    assert main(["simulate", "--catalog", str(tmp_path / "none.parquet")]) == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,base_demand\na,1\n")
    assert main(["simulate", "--catalog", str(bad)]) == 2
    assert "'elasticity' is missing" in capsys.readouterr().err
    assert main(["simulate", "--catalog", str(bad), "--policy", "fixed:2"]) == 2
    assert "discount + coupon < 0.95" in capsys.readouterr().err
