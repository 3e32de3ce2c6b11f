"""``deadstock abtest design`` and ``analyze`` end to end on a tiny run output over a
synthetic world, the MLflow runs they log, and bad input (exit 2, one line)."""

from __future__ import annotations

import pandas as pd
import pytest

from app.cli.main import main
from fieldtests.design import ASSIGNMENT_COLUMNS
from fieldtests.synthetic import current_catalog, simulate_test_weeks
from ingest.io import write_frame_atomic
from planning.schedule import Schedule, read_schedule
from tests.fieldtests.worlds import tiny_run

N_WEEKS = 30


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    world = tiny_run(folder, n_skus=200, n_weeks=N_WEEKS, seed=4)
    return folder, world


@pytest.fixture(scope="module")
def designed(run_dir, tmp_path_factory):
    import mlflow

    folder, _ = run_dir
    out = tmp_path_factory.mktemp("design")
    before = {r.info.run_id for r in mlflow.search_runs(search_all_experiments=True,
                                                         output_format="list")}  # fmt: skip
    code = main(["abtest", "design", "--plan", str(folder), "--metric", "sell_through",
                 "--mde", "0.1", "--sims", "40", "--episodes", "10", "--seed", "3",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    return out, before


def _new_runs(before, kind):
    import mlflow

    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    return [r for r in runs if r.info.run_id not in before and r.data.tags.get("kind") == kind]


def test_design_writes_the_assignment_report_and_logs_to_mlflow(designed, run_dir):
    out, before = designed
    a = pd.read_csv(out / "assignment.csv", dtype={"sku": str})
    assert list(a.columns) == list(ASSIGNMENT_COLUMNS)
    summary = pd.read_csv(run_dir[0] / "sku_summary.csv", dtype={"sku": str})
    assert sorted(a["sku"]) == sorted(summary["sku"])
    assert (a["test_start_week"] == N_WEEKS + 1).all()  # the week after the run's data
    report = (out / "design.md").read_text()
    assert "power_curve.png" in report and "SKUs needed" in report
    assert (out / "power_curve.png").stat().st_size > 1000
    (run,) = _new_runs(before, "abtest_design")
    assert run.data.params["metric"] == "sell_through"
    assert "design/power_at_mde/stratified_cuped" in run.data.metrics
    import mlflow

    names = {f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id, "design")}
    assert "design/assignment.csv" in names and "design/design.md" in names


def test_analyze_reads_the_test_weeks_from_a_data_source(designed, run_dir, tmp_path, capsys):
    out, before = designed
    folder, world = run_dir
    a = pd.read_csv(out / "assignment.csv", dtype={"sku": str})
    plan = read_schedule(folder / "schedules.csv")
    control = Schedule.constant(plan.sku, plan.horizon, 0.0)
    tables = simulate_test_weeks(world.tables, current_catalog(world), a, plan, control, seed=0)
    data = tmp_path / "data"
    for name, frame in tables.items():
        write_frame_atomic(frame, data / f"{name}.csv")
    code = main(["abtest", "analyze", "--assignment", str(out / "assignment.csv"),
                 "--data", str(data), "--out", str(tmp_path / "analysis")])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "sell_through:" in printed and "sample ratio" in printed
    report = (tmp_path / "analysis" / "analysis.md").read_text()
    assert "Guardrails" in report and "Balance" in report and "effects.png" in report
    effects = pd.read_csv(tmp_path / "analysis" / "effects.csv")
    assert set(effects["metric"]) == {"profit", "sell_through", "dead_stock"}
    assert _new_runs(before, "abtest_analysis")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mde", "0"], "mde = 0.0: expected > 0"),
        (["--mde", "-0.1"], "mde = -0.1: expected > 0"),
        (["--weeks", "99"], "weeks = 99: expected at most the plan's horizon (6)"),
    ],
)
def test_bad_design_input_exits_2_with_one_line(run_dir, tmp_path, capsys, args, message):
    code = main(["abtest", "design", "--plan", str(run_dir[0]), "--out", str(tmp_path / "o"),
                 "--no-track", "--sims", "10", "--episodes", "2", *args])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert message in err
    assert not (tmp_path / "o" / "assignment.csv").exists()


def test_unknown_metric_and_missing_run_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["abtest", "design", "--plan", str(tmp_path), "--metric", "margin"])
    assert done.value.code == 2
    assert "invalid choice: 'margin'" in capsys.readouterr().err
    assert main(["abtest", "design", "--plan", str(tmp_path / "nope"), "--no-track"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_an_assignment_missing_a_column_is_refused(designed, run_dir, tmp_path, capsys):
    out, _ = designed
    a = pd.read_csv(out / "assignment.csv", dtype={"sku": str}).drop(columns="arm")
    bad = tmp_path / "bad.csv"
    a.to_csv(bad, index=False)
    code = main(["abtest", "analyze", "--assignment", str(bad), "--data", str(run_dir[0]),
                 "--no-track", "--out", str(tmp_path / "x")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "bad.csv" in err and "'arm'" in err
