"""``deadstock monitor`` on synthetic worlds: a planted shift (one category's velocity halves
after week 40) is flagged with exit 3; the same world unshifted exits 0."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest

from app.cli.main import main
from risk_model.features import FEATURE_GROUPS
from simulator.synthetic import SyntheticConfig, generate_world, write_world

SHIFTED = "CAT03"
WORLD = {"n_skus": 320, "n_weeks": 52, "seed": 5, "with_interactions": False}


def _world(folder: Path, shift: str | None) -> Path:
    cfg = SyntheticConfig(**WORLD, shift_category=shift, shift_after_week=40, shift_factor=0.5)
    write_world(generate_world(cfg), folder, fmt="parquet")
    return folder


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("monitor-worlds")
    return {
        "shifted": _world(root / "shifted", SHIFTED),
        "plain": _world(root / "plain", None),
    }


def _monitor(data: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "monitor",
            "--data",
            str(data),
            "--reference-week",
            "40",
            "--out",
            str(out),
            "--risk-model",
            "no-such-risk-model",
            *extra,
        ]
    )


@pytest.mark.slow
def test_planted_shift_is_flagged_and_exits_3(
    worlds: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert _monitor(worlds["shifted"], out) == 3
    err = capsys.readouterr().err
    assert "threshold crossed: drift_n_features" in err and SHIFTED in err
    drift = pd.read_csv(out / "drift.csv")
    flagged = drift[drift["drifted"]]
    assert SHIFTED in set(flagged["scope"])
    # the shift is in the velocity: what drifts in the shifted category are sales features
    # (velocity ratios), and nothing else
    in_cat = set(flagged[flagged["scope"] == SHIFTED]["feature"])
    assert "ratio_8_26" in in_cat and in_cat <= set(FEATURE_GROUPS["sales"])
    # no other category drifts
    assert set(flagged["scope"]) <= {SHIFTED, "all"}
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "Crossed: drift_n_features" in report and "![drift](drift.png)" in report
    assert (out / "drift.png").stat().st_size > 0 and (out / "forecast.png").stat().st_size > 0
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string="tags.stage = 'monitor'",
        output_format="list",
    )
    assert any(r.data.metrics.get("monitor/drift_n_features", 0) > 0 for r in runs)


def test_monitor_refuses_a_reference_without_new_weeks(
    worlds: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        ["monitor", "--data", str(worlds["plain"]), "--reference-week", "52",
         "--out", str(tmp_path / "r"), "--no-track"]
    )  # fmt: skip
    assert rc == 2
    assert "no new weeks" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_monitor_refuses_a_folder_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["monitor", "--data", str(tmp_path), "--reference", str(tmp_path), "--no-track"])
    assert rc == 2
    assert "manifest.json" in capsys.readouterr().err


def _reference_folder(folder: Path, panel: pd.DataFrame, price_factor: float) -> Path:
    """A main-job output folder as the monitor reads it: a manifest naming a pipeline run
    whose ingest stage logged the last week (40), and approved schedules (plan weeks 1..12)
    at the executed prices times ``price_factor``."""
    import json

    from experiments.tracking import log_metrics, start_run

    with start_run("pipeline__fake", tags={"kind": "pipeline"}) as parent:
        with start_run("pipeline__fake__ingest", nested=True, tags={"stage": "ingest"}):
            log_metrics({"ingest/last_week": 40.0})
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"mlflow_run_id": parent.info.run_id}))
    new = panel[(panel["week"] > 40) & panel["price_observed"].astype(bool)]
    plan = new.assign(week=new["week"] - 40, net_price=new["effective_price"] * price_factor)
    plan[["sku", "week", "net_price"]].to_csv(folder / "schedules.csv", index=False)
    return folder


@pytest.mark.slow
def test_unshifted_world_exits_0_against_a_reference_folder(
    worlds: dict[str, Path], tmp_path: Path
) -> None:
    from app.data import DataStageConfig, run_data_stage

    panel = run_data_stage(DataStageConfig(source=str(worlds["plain"]), out_dir=None)).panel
    ref = _reference_folder(tmp_path / "run", panel, price_factor=1.0)
    out = tmp_path / "report"
    rc = main(
        ["monitor", "--data", str(worlds["plain"]), "--reference", str(ref), "--out", str(out),
         "--risk-model", "no-such-risk-model", "--no-track"]
    )  # fmt: skip
    assert rc == 0
    assert not pd.read_csv(out / "drift.csv")["drifted"].any()
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "All checks within their thresholds" in report and "up to 40" in report
    # the approved schedule is what was executed: adherence is read, and whole
    assert "| adherence | ok | 1.000 |" in report


@pytest.mark.parametrize(
    ("flag", "value", "named"),
    [("--policy-steps", "0", "--policy-steps = 0"), ("--horizon", "0", "horizon_weeks = 0")],
)
def test_retrain_refuses_bad_policy_settings_before_reading_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, named: str
) -> None:
    missing = tmp_path / "no-such-source"
    assert main(["retrain", "--data", str(missing), flag, value]) == 2
    err = capsys.readouterr().err
    assert named in err and "expected an integer >= 1" in err
    assert "Traceback" not in err
