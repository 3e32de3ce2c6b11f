"""``deadstock run --quick`` end to end on a small synthetic world, and its failure modes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app.cli.main import main
from app.config import load_config
from app.exports import SCHEDULE_COLUMNS
from app.pipeline_config import PipelineConfig
from ingest.errors import ConfigError
from planning.recommend import DP_NAME

TOML = """
horizon_weeks = 6

[selection]
threshold = 0.15
max_skus = 12

[risk]
block_skus = 64

[evaluation]
n_episodes = 40
block_skus = 2

[policy]
source = "train"

[ppo]
total_timesteps = 8192
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from simulator.synthetic import SyntheticConfig, generate_world, write_world

    folder = tmp_path_factory.mktemp("world")
    write_world(generate_world(SyntheticConfig(n_skus=400, n_weeks=52, seed=3)), folder)
    (folder / "run.toml").write_text(TOML)
    return folder


def _run(world: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "run",
            "--data",
            str(world),
            "--out",
            str(out),
            "--quick",
            "--config",
            str(world / "run.toml"),
            *extra,
        ]  # fmt: skip
    )


@pytest.fixture(scope="module")
def first_run(world, tmp_path_factory):
    import mlflow

    out = tmp_path_factory.mktemp("run")
    before = {r.info.run_id for r in mlflow.search_runs(search_all_experiments=True,
                                                         output_format="list")}  # fmt: skip
    assert _run(world, out) == 0
    return out, before


@pytest.mark.slow
def test_quick_run_exports_one_row_per_sku_and_week(first_run):
    out, _ = first_run
    sched = pd.read_csv(out / "schedules.csv", dtype={"sku": str})
    summary = pd.read_csv(out / "sku_summary.csv", dtype={"sku": str})
    assert list(sched.columns) == list(SCHEDULE_COLUMNS)
    n = summary["sku"].nunique()
    assert 1 <= n <= 12 and len(summary) == n
    assert len(sched) == n * 6
    assert not sched.duplicated(["sku", "week"]).any()
    assert set(sched["sku"]) == set(summary["sku"])
    assert sched["plan_key"].nunique() == 1
    for col in ("risk", "tier", "top_drivers", "rec_sell_through", "rec_leftover_units",
                "rec_margin_given_away", "rec_profit", "none_profit", "heur_profit",
                "profit_vs_none", "profit_vs_heur"):  # fmt: skip
        assert col in summary.columns, col
    assert (summary["risk"] >= 0.15).all()
    alerts = pd.read_csv(out / "alerts.csv", dtype={"sku": str})
    assert len(alerts) == n
    md = list((out / "alerts").glob("*.md"))
    assert len(md) == alerts["category"].nunique()
    assert (out / "new_product_flags.csv").exists()
    report = (out / "report" / "report.md").read_text()
    assert "Stock assumption" in report and "profit vs doing nothing" in report
    # the per-SKU choice: a winner per SKU, its margin over a different runner-up with a CI
    assert summary["recommended_by"].notna().all()
    assert (summary["recommended_by"] == summary["recommended_policy"]).all()
    ranked = summary[summary["runner_up"].notna()]
    assert (ranked["runner_up"] != ranked["recommended_by"]).all()
    lo, hi = summary["profit_vs_runner_up_ci_low"], summary["profit_vs_runner_up_ci_high"]
    assert ((lo <= summary["profit_vs_runner_up"]) & (summary["profit_vs_runner_up"] <= hi)).all()
    assert "Which planner each SKU gets" in report and "SKUs won per planner" in report


@pytest.mark.slow
def test_mlflow_parent_and_stage_runs(first_run):
    import mlflow

    _, before = first_run
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    new = [r for r in runs if r.info.run_id not in before]
    parents = [r for r in new if r.data.tags.get("kind") == "pipeline"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.data.tags["stages"].count("=ok") == 8
    assert "roi/profit" in parent.data.metrics and "data_fingerprint" in parent.data.tags
    # the per-SKU choice's wins add up to the planned SKUs
    summary = pd.read_csv(first_run[0] / "sku_summary.csv", dtype={"sku": str})
    wins = {k: v for k, v in parent.data.metrics.items() if k.startswith("recommend/wins/")}
    assert sum(wins.values()) == len(summary) and f"recommend/wins/{DP_NAME}" in wins
    assert "recommend/gain_vs_best_single_ci_low" in parent.data.metrics
    children = [r for r in new if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    stages = {r.data.tags.get("stage"): r for r in children if r.data.tags.get("stage")}
    assert set(stages) == {
        "ingest", "risk", "select", "fit", "policy", "evaluate", "export", "coupons"
    }  # fmt: skip
    for name, run in stages.items():
        assert f"{name}/seconds" in run.data.metrics
    assert stages["select"].data.metrics["select/n_selected"] >= 1
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id)]
    assert "report" in artifacts


@pytest.mark.slow
def test_rerun_is_idempotent_and_deterministic(first_run, world):
    out, _ = first_run
    first = pd.read_csv(out / "schedules.csv", dtype={"sku": str})
    assert _run(world, out) == 0
    second = pd.read_csv(out / "schedules.csv", dtype={"sku": str})
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.slow
def test_ray_engine_gives_the_same_outputs(first_run, world, tmp_path, ray_local):
    """Same seed, same bytes of every table on the local and the Ray engine: the 400 SKUs
    scored in blocks of 64, the candidates planned and simulated, and the schedules and SKU
    summary built, in blocks of 2 SKUs, on Ray's workers."""
    out, _ = first_run
    assert _run(world, tmp_path / "ray", "--engine", "ray") == 0
    for name in ("schedules", "sku_summary", "alerts", "new_product_flags"):
        local = (out / f"{name}.csv").read_bytes()
        remote = (tmp_path / "ray" / f"{name}.csv").read_bytes()
        assert local == remote, name
        if name != "new_product_flags":  # a short list that may be empty
            assert len(pd.read_csv(out / f"{name}.csv", dtype={"sku": str})) > 0


def test_bad_source_fails_early_without_exports(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--data", str(tmp_path / "nope"), "--out", str(out), "--quick"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err
    assert not any(out.glob("*.csv")) and not (out / "report").exists()


def test_unwritable_output_fails_early(tmp_path, world, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", "--data", str(world), "--out", str(blocker / "out"), "--quick"]) == 2
    err = capsys.readouterr().err
    assert "cannot create output folder" in err and "Traceback" not in err


def test_config_file_and_errors(tmp_path, world):
    cfg = load_config(PipelineConfig, world / "run.toml", quick=True, overrides={"out_dir": "x"})
    assert cfg.horizon_weeks == 6 and cfg.selection.threshold == 0.15
    assert cfg.evaluation.n_episodes == 40 and cfg.selection.max_skus == 12
    assert cfg.ppo.total_timesteps == 8192
    again = load_config(PipelineConfig, world / "run.toml", quick=True)
    assert cfg.plan_key("fp") == again.plan_key("fp")
    assert cfg.plan_key("fp") != cfg.plan_key("other")
    bad = tmp_path / "bad.toml"
    bad.write_text("[fit.stock]\nweeks_of_cover = -1\n")
    with pytest.raises(ConfigError, match="stock.weeks_of_cover = -1"):
        load_config(PipelineConfig, bad)


def test_ui_command_is_local_only():
    from app.cli.ui import ui_command

    cmd = ui_command(port=5123, backend_store_uri="sqlite:///x.db")
    assert cmd[1:4] == ["-m", "mlflow", "ui"]
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--port") + 1] == "5123"
    assert cmd[cmd.index("--backend-store-uri") + 1] == "sqlite:///x.db"
    with pytest.raises(ConfigError):
        ui_command(port=0)
