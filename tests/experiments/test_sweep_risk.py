"""``deadstock sweep`` with ``target = "risk"``: the sweep file's checks, the backtest folds,
and a tiny real sweep on the session's local Ray (two trials, two folds of a small synthetic
world) tracked in MLflow whose best config reproduces the best trial's score."""

from __future__ import annotations

import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest

from app.cli.main import main
from app.config import load_config
from app.pipeline_config import PipelineConfig
from experiments.sweep import COMPLETED, STATUS_TAG, STOPPED
from experiments.sweep_config import SweepConfig
from ingest.errors import ConfigError, DataError, DeadstockError
from risk_model.backtest import BacktestConfig, run_backtest
from risk_model.scoring import RiskConfig

SPACE = "[space]\nmax_depth = { randint = [2, 5] }\n"
BASE = 'target = "risk"\ndata = "x"\n'

TINY = """
target = "risk"
model = "xgb"
data = "{data}"
num_samples = 2
fold_weeks = 4
seed = 1
experiment = "{experiment}"
[asha]
max_t = 2
grace_period = 1
[risk]
train_offsets = [0]
[risk.xgb]
n_estimators = 40
[space]
max_depth = {{ randint = [1, 6] }}
learning_rate = {{ loguniform = [0.02, 0.3] }}
"""


def _load(tmp_path, text: str) -> SweepConfig:
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return load_config(SweepConfig, path)


def test_the_example_risk_sweep_file_loads_with_three_folds():
    config = load_config(SweepConfig, "examples/sweep_risk.toml")
    assert config.target == "risk" and config.model == "xgb"
    assert config.metric == "pr_auc_mean" and config.mode == "max"
    assert set(config.space) == {"max_depth", "learning_rate", "min_child_weight", "subsample"}
    # 80 weeks, 13-week label: the last test cutoff is 67, the folds 6 weeks apart
    assert config.folds(1, 80) == [(42, 55), (48, 61), (54, 67)]
    trial = config.trial_risk({"max_depth": 3, "learning_rate": 0.05})
    assert trial.models == ("xgb",) and trial.seed == config.seed
    assert trial.xgb.max_depth == 3 and trial.xgb.n_estimators == 300  # fixed in [risk.xgb]
    assert trial.features.price_change_features is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('model = "svm"\n' + SPACE, "sweep model = 'svm': expected one of ('lr', 'rf', 'xgb')"),
        ('model = "ens"\n' + SPACE, "the ensemble averages the three"),
        ("[space]\nC = { loguniform = [0.01, 10.0] }", "[space] C: unknown xgb hyperparameter"),
        ('model = "lr"\n' + SPACE, "[space] max_depth: unknown lr hyperparameter"),
        ("[space]\nmax_depth = { uniform = [2, 5] }", "max_depth is not a real number"),
        ("[space]\nsubsample = { normal = [0.5, 0.1] }", "unknown distribution 'normal'"),
        ("[space]\nsubsample = { uniform = [0.5, 1.5] }", "value 1.4999"),
        ("[space]\nmax_depth = { randint = [0, 3] }", "[xgb] max_depth = 0; expected >= 1"),
        ('metric = "pct_of_dp_mean"\n' + SPACE, "metric = 'pct_of_dp_mean': expected one of"),
        ('metric = "brier_mean"\nmode = "max"\n' + SPACE, "expected mode = 'min'"),
        ('suite = "standard"\n' + SPACE, "sweep suite: not a setting of a target = 'risk'"),
        ("[risk]\nseed = 3\n" + SPACE, "[risk] seed: not a sweep setting"),
        ('[risk]\nmodels = ["lr"]\n' + SPACE, "[risk] models: not a sweep setting"),
        ("[risk.xgb]\nmax_dept = 3\n" + SPACE, "did you mean 'max_depth'"),
        ("fold_weeks = 0\n" + SPACE, "fold_weeks = 0"),
        ("[space]", "hyperparameter of xgb"),
    ],
)
def test_a_bad_risk_sweep_file_names_the_field(text, expected, tmp_path):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, BASE + text)
    assert expected in str(err.value)


def test_a_risk_sweep_needs_a_data_source(tmp_path):
    with pytest.raises(ConfigError, match="sweep data is empty"):
        _load(tmp_path, 'target = "risk"\n' + SPACE)


def test_folds_that_the_data_cannot_hold_are_refused_naming_the_setting(tmp_path):
    config = _load(tmp_path, BASE + "last_test_cutoff = 50\n[asha]\nmax_t = 4\n" + SPACE)
    assert config.folds(1, 63) == [(25, 38), (29, 42), (33, 46), (37, 50)]
    with pytest.raises(DataError, match="last_test_cutoff = 50: .* expected <= 47"):
        config.folds(1, 60)
    with pytest.raises(DataError, match="lacks the label's 13 weeks of history.*asha.max_t"):
        config.folds(20, 63)


def test_a_bad_risk_sweep_file_exits_2_before_any_data_is_read(tmp_path, capsys):
    path = tmp_path / "sweep.toml"
    path.write_text(BASE + "[space]\nC = { uniform = [0.1, 1.0] }")
    assert main(["sweep", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after MLflow's first-use notes
    assert last.startswith("error: ") and "[space] C: unknown xgb hyperparameter" in last
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A small synthetic world as a folder source (600 SKUs, 60 weeks)."""
    out = tmp_path_factory.mktemp("world")
    args = ["data", "synth", "--n-skus", "600", "--weeks", "60", "--seed", "11", "--out"]
    assert main([*args, str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def revived_world(world, tmp_path_factory):
    """``world`` with every SKU selling a unit in week 44: no SKU is dead in a 13-week window
    that holds it, which TINY's folds on 60 weeks (test cutoffs 43 and 47, training cutoffs
    30 and 34) make the first fold's test window and the second fold's training window."""
    out = tmp_path_factory.mktemp("revived")
    shutil.copytree(world, out, dirs_exist_ok=True)
    sales = pd.read_csv(out / "sales.csv")
    skus = pd.read_csv(out / "products.csv")["sku"]
    week = sales[sales["week"] == REVIVED_WEEK].set_index("sku")
    missing = skus[~skus.isin(week.index)]
    add = pd.DataFrame({"sku": missing, "week": REVIVED_WEEK, "units": 1.0, "revenue": 1.0})
    sales = pd.concat([sales, add], ignore_index=True).fillna(0.0)
    sales.sort_values(["sku", "week"], kind="stable").to_csv(out / "sales.csv", index=False)
    return out


REVIVED_WEEK = 44


def test_folds_without_positive_labels_are_refused_before_ray_starts_naming_the_fold(
    revived_world, tmp_path, capsys
):
    from experiments.sweep import check_fold_labels
    from ingest.loader import load
    from ingest.panel import load_panel
    from risk_model.labels import make_labels

    config = _load(tmp_path, TINY.format(data=revived_world, experiment="risk-sweep-refused"))
    panel = load_panel(load(str(revived_world)))
    assert config.folds(1, 60) == [(30, 43), (34, 47)]
    # the counts the message must give, from the labels themselves
    test_labels = make_labels(panel, 43, config.risk.label)["label"]
    assert test_labels.sum() == 0 and len(test_labels) > 0
    train_labels = make_labels(panel, 34, config.risk.label)["label"]
    assert train_labels.sum() == 0
    with pytest.raises(DataError) as err:
        check_fold_labels(config, panel, config.folds(1, 60))
    text = str(err.value)
    assert "2 of 2 backtest fold(s)" in text
    assert (
        "fold 1 (test cutoff week 43, training cutoff week 30): "
        f"test 0 positive / {len(test_labels)} negative (needs >= 1 of each)"
    ) in text
    assert "fold 2 (test cutoff week 47, training cutoff week 34): training 0 positive" in text
    assert "validation 0 positive" in text and "lower asha.max_t" in text

    # the CLI refuses it the same way, before Ray or MLflow start and before any output
    path = tmp_path / "sweep.toml"
    out = tmp_path / "out"
    assert main(["sweep", "--config", str(path), "--out", str(out)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: sweep data") and "fold 1 (test cutoff week 43" in last
    assert not out.exists()
    assert mlflow.get_experiment_by_name("risk-sweep-refused") is None


def test_fold_label_counts_match_the_sets_a_backtest_fits_on(world):
    from ingest.loader import load
    from ingest.panel import load_panel
    from risk_model.backtest import fold_label_counts, training_frames

    dataset = load(str(world))
    panel = load_panel(dataset)
    cfg = BacktestConfig(train_offsets=(0, 4), train_cutoff=34, test_cutoff=47, n_bootstrap=0)
    counts = fold_label_counts(panel, cfg)
    _, y_tr, _, y_val, _, _ = training_frames(dataset, panel, cfg)
    assert counts["training"] == (int(y_tr.sum()), int(len(y_tr) - y_tr.sum()))
    assert counts["validation"] == (int(y_val.sum()), int(len(y_val) - y_val.sum()))
    assert min(counts["training"]) > 0 and counts["validation"][1] > 0


@pytest.mark.slow
def test_a_trial_that_fails_is_reported_by_its_error_and_leaves_no_best_config(
    ray_local, world, tmp_path, monkeypatch, caplog
):
    """A trial failing for a reason the driver's checks cannot see (here: the panel the
    trials get lacks ``revenue``, which the features need and the labels do not)."""
    import ingest.panel
    from experiments.sweep import BEST_PLAN, BEST_RISK, ERROR_TAG, FAILED, TRIALS_CSV, run_sweep

    load_panel = ingest.panel.load_panel
    monkeypatch.setattr(
        ingest.panel, "load_panel", lambda ds: load_panel(ds).drop(columns=["revenue"])
    )
    config = _load(tmp_path, TINY.format(data=world, experiment="risk-sweep-failed"))
    with pytest.raises(DeadstockError) as err:
        run_sweep(config, tmp_path / "out")
    text = str(err.value)
    assert "none of the 2 trial(s) reported a score (2 failed; the first, trial_000 (" in text
    assert "with DataError: panel: column(s) ['revenue'] missing" in text
    assert "Traceback" not in text and "RayTaskError" not in text
    # each failure logged once, as its error; none of Tune's own tracebacks
    failed_lines = [r.getMessage() for r in caplog.records if "['revenue']" in r.getMessage()]
    assert [m.split(" failed: ")[0] for m in failed_lines] == ["sweep trial_000", "sweep trial_001"]
    assert not [r for r in caplog.records if r.name.startswith("ray.tune") and r.exc_info]
    assert not list((tmp_path / "out").glob("best_*.toml"))
    assert (
        not (tmp_path / "out" / BEST_RISK).exists() and not (tmp_path / "out" / BEST_PLAN).exists()
    )
    table = pd.read_csv(tmp_path / "out" / TRIALS_CSV)
    assert list(table["status"]) == [FAILED, FAILED]
    assert table["error"].str.startswith("DataError: panel: column(s) ['revenue']").all()
    runs = mlflow.search_runs(
        [mlflow.get_experiment_by_name("risk-sweep-failed").experiment_id],
        filter_string="tags.mlflow.runName LIKE 'trial_%'",
    )
    assert set(runs["status"]) == {"FAILED"}
    assert runs[f"tags.{ERROR_TAG}"].str.contains("'revenue'").all()


@pytest.mark.slow
def test_a_tiny_risk_sweep_logs_child_runs_and_its_best_config_reproduces(
    ray_local, world, tmp_path
):
    from experiments.sweep import BEST_PLAN, BEST_RISK, run_sweep
    from ingest.loader import load
    from ingest.panel import load_panel

    config = _load(tmp_path, TINY.format(data=world, experiment="risk-sweep-test"))
    outcome = run_sweep(config, tmp_path / "a")
    table = outcome.trials
    assert len(table) == 2 and set(table["status"]) <= {COMPLETED, STOPPED}
    assert table["pr_auc_mean"].between(0, 1).all() and (table["reports"] >= 1).all()
    assert outcome.best["status"] == COMPLETED and outcome.best["reports"] == 2
    assert outcome.best_config == tmp_path / "a" / BEST_RISK
    assert outcome.best_plan == tmp_path / "a" / BEST_PLAN

    experiment = mlflow.get_experiment_by_name("risk-sweep-test")
    runs = mlflow.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'",
    )
    assert sorted(runs["tags.mlflow.runName"]) == ["trial_000", "trial_001"]
    assert set(runs["status"]) == {"FINISHED"}
    assert set(runs[f"tags.{STATUS_TAG}"]) == set(table["status"])
    assert set(runs["params.max_depth"]) == {str(v) for v in table["max_depth"]}
    best_run = runs[runs["tags.mlflow.runName"] == outcome.best["trial"]].iloc[0]
    assert best_run["metrics.pr_auc_mean"] == pytest.approx(outcome.best["pr_auc_mean"])
    assert best_run["metrics.test_cutoff"] == 47  # the last fold: 60 weeks - 13
    parent = mlflow.get_run(outcome.parent_run_id)
    assert parent.data.tags["target"] == "risk" and parent.data.tags["model"] == "xgb"
    assert parent.data.tags["mlflow.runName"].startswith("sweep__risk-xgb__s1__")
    assert parent.data.metrics["best/pr_auc_mean"] == pytest.approx(outcome.best["pr_auc_mean"])

    # the best config: the risk loaders accept it and it gives the best trial's score back
    best = load_config(RiskConfig, outcome.best_config)
    row = table[table["trial"] == outcome.best["trial"]].iloc[0]
    assert best.models == ("xgb",) and best.seed == 1 and best.train_offsets == (0,)
    assert best.xgb.max_depth == row["max_depth"] and best.xgb.n_estimators == 40
    assert best.xgb.learning_rate == pytest.approx(row["learning_rate"], rel=1e-12)
    dataset = load(str(world))
    panel = load_panel(dataset)
    scores = []
    for train, test in config.folds(int(panel["week"].min()), int(panel["week"].max())):
        flags = {"train_cutoff": train, "test_cutoff": test, "n_bootstrap": 0}
        fold = load_config(BacktestConfig, outcome.best_config, overrides=flags)
        scores.append(next(r for r in run_backtest(dataset, panel, fold).rows)["pr_auc"])
    assert float(np.mean(scores)) == pytest.approx(outcome.best["pr_auc_mean"], abs=1e-12)
    plan = load_config(PipelineConfig, outcome.best_plan)
    assert plan.risk.xgb == best.xgb and plan.risk.models == ("xgb",)
    assert plan.risk.label == best.label and plan.risk.features == best.features

    # same file, same trials and scores
    again = run_sweep(config, tmp_path / "b")
    cols = [c for c in table.columns if c != "run_id"]
    pd.testing.assert_frame_equal(table[cols], again.trials[cols])
