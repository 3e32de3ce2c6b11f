"""The risk models' hyperparameters as settings: today's values by default, reaching the
estimators, read from ``deadstock risk --config`` files and a plan's ``[risk]`` section with
the loader's messages, and leaving the keys of earlier runs alone."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from app.cli.main import main
from app.config import load_config
from app.pipeline_config import PipelineConfig
from experiments.risk_runs import risk_fit_key
from ingest.errors import ConfigError
from risk_model.backtest import BacktestConfig
from risk_model.models import (
    ForestParams,
    Hyperparams,
    RiskClassifier,
    XGBoostParams,
    make_base_estimator,
)
from risk_model.scoring import RiskConfig


def test_the_defaults_are_the_values_the_models_always_had():
    # the values fixed in make_base_estimator before they were settings
    lr = make_base_estimator("lr")[-1].get_params()
    assert (lr["C"], lr["max_iter"]) == (0.5, 2000)
    rf = make_base_estimator("rf").get_params()
    assert (rf["n_estimators"], rf["min_samples_leaf"], rf["max_features"]) == (200, 3, "sqrt")
    assert (rf["max_samples"], rf["max_depth"]) == (0.5, None)
    xgb = make_base_estimator("xgb").get_params()
    fixed = {"n_estimators": 400, "learning_rate": 0.03, "max_depth": 4, "subsample": 0.8}
    fixed |= {"min_child_weight": 2.0, "colsample_bytree": 0.7, "reg_lambda": 2.0}
    assert {k: xgb[k] for k in fixed} == fixed
    assert xgb["reg_alpha"] == 0.0 and xgb["gamma"] == 0.0  # XGBoost's own defaults


def test_a_hyperparameter_reaches_the_estimator_and_changes_the_model():
    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.normal(size=(600, 3)), columns=["a", "b", "c"])
    y = (rng.random(600) < 1 / (1 + np.exp(3 - 2 * X["a"] + X["b"] * X["c"]))).astype(int)
    hp = Hyperparams(xgb=XGBoostParams(max_depth=1, n_estimators=50))
    shallow = RiskClassifier(kind="xgb", hyperparams=hp).fit(X, y)
    assert shallow.estimator_.get_params()["max_depth"] == 1
    assert shallow.estimator_.get_params()["n_estimators"] == 50
    default = RiskClassifier(kind="xgb").fit(X, y)
    assert not np.allclose(shallow.predict_proba(X), default.predict_proba(X))
    ens = RiskClassifier(kind="ens", hyperparams=Hyperparams(rf=ForestParams(max_depth=2)))
    assert ens.fit(X, y).estimator_.members_["rf"].get_params()["max_depth"] == 2


def test_a_risk_file_sets_the_hyperparameters_of_both_risk_commands(tmp_path):
    path = tmp_path / "risk.toml"
    path.write_text('models = ["xgb"]\n[xgb]\nmax_depth = 6\nsubsample = 0.9\n[lr]\nC = 2.0\n')
    for cls in (BacktestConfig, RiskConfig):
        cfg = load_config(cls, path)
        assert cfg.xgb == XGBoostParams(max_depth=6, subsample=0.9)
        assert cfg.lr.C == 2.0 and cfg.rf == ForestParams()
        assert cfg.hyperparams.xgb.max_depth == 6


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[xgb]\nmax_dept = 6", "risk.toml [xgb] max_dept: unknown key; did you mean 'max_depth'?"),
        ("[rf]\nn_estimators = 1.5", "risk.toml [rf] n_estimators = 1.5: expected an integer"),
        ("[xgb]\nsubsample = 1.5", "[xgb] subsample = 1.5; expected in (0, 1]"),
        ('[rf]\nmax_features = "all"', '[rf] max_features = "all": expected'),
        ("[lr]\nC = 0.0", "[lr] C = 0.0; expected > 0"),
        ("learning_rate = 0.1", "did you mean [xgb] learning_rate?"),
    ],
)
def test_a_bad_hyperparameter_is_refused_naming_the_file_and_key(text, expected, tmp_path):
    path = tmp_path / "risk.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(BacktestConfig, path)
    assert expected in str(err.value)
    assert "risk.toml" in str(err.value)


def test_a_plan_file_sets_them_under_risk_and_default_ones_keep_the_old_keys(tmp_path):
    path = tmp_path / "plan.toml"
    path.write_text("[risk.xgb]\nmax_depth = 6\n[risk.rf]\nmax_depth = 8\n")
    plan = load_config(PipelineConfig, path)
    assert plan.risk.xgb.max_depth == 6 and plan.risk.rf.max_depth == 8
    assert plan.risk.hyperparams.lr.C == 0.5
    path.write_text("[risk.xgb]\nmax_depht = 6\n")
    with pytest.raises(ConfigError, match=r"plan.toml \[risk.xgb\] max_depht: unknown key"):
        load_config(PipelineConfig, path)
    # keys hashed before the hyperparameters were settings do not change for the defaults
    default = PipelineConfig()
    assert default.risk.default_hyperparams() == ("lr", "rf", "xgb")
    assert plan.risk.default_hyperparams() == ("lr",)
    assert plan.plan_key("fp") != default.plan_key("fp")
    risk = RiskConfig()
    before = dataclasses.asdict(risk)  # the key's settings as they were: no lr, rf, xgb
    for key in ("n_jobs", "lr", "rf", "xgb"):
        before.pop(key)
    blob = json.dumps(["fp", before], sort_keys=True, default=str)
    assert risk_fit_key("fp", risk) == hashlib.sha256(blob.encode()).hexdigest()[:16]
    changed = dataclasses.replace(risk, xgb=XGBoostParams(max_depth=6))
    assert risk_fit_key("fp", risk) != risk_fit_key("fp", changed)


def test_risk_backtest_takes_a_config_file_and_refuses_a_bad_one(tmp_path, capsys):
    path = tmp_path / "risk.toml"
    path.write_text("[xgb]\nlearning_rate = 2.0\n")
    code = main(["risk", "backtest", "--config", str(path), "--data", str(tmp_path), "--no-track"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[xgb] learning_rate = 2.0; expected in (0, 1]" in err
    path.write_text("[xgb]\nlearning_rte = 0.1\n")
    assert main(["risk", "train", "--config", str(path), "--data", str(tmp_path)]) == 2
    assert "did you mean 'learning_rate'" in capsys.readouterr().err
