"""The risk stage on small data: the [risk] settings, and the rule baseline instead of a stop."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from app.config import load_config
from app.pipeline_config import PipelineConfig
from app.stage_record import StageRecord
from app.stages import ingest_stage, risk_stage
from ingest.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The ingested 60-SKU x 52-week world: too few positives to validate a model."""
    from simulator.synthetic import SyntheticConfig, generate_world, write_world

    folder = tmp_path_factory.mktemp("w60")
    write_world(generate_world(SyntheticConfig(n_skus=60, n_weeks=52, seed=1)), folder)
    cfg = load_config(
        PipelineConfig, overrides={"data": str(folder), "out_dir": str(folder / "out")}, quick=True
    )
    return cfg, ingest_stage(cfg, StageRecord("ingest"))


def test_too_few_positives_fall_back_to_the_rule_with_a_note(small):
    cfg, data = small
    rec = StageRecord("risk")
    out = risk_stage(cfg, data, 7, rec)
    assert out.source == "rule" and out.result is None
    assert "rule baseline" in out.note and "positive" in out.note
    assert "[risk.label] horizon_weeks" in out.note  # says what to change
    assert rec.metrics["rule_fallback"] == 1.0 and "rule baseline" in rec.detail
    assert len(out.scores) == data.panel["sku"].nunique()
    assert (out.scores["tier"] == "high").any()


def test_fallback_error_stops_with_the_models_reason(small):
    cfg, data = small
    strict = replace(cfg, risk=replace(cfg.risk, fallback="error"))
    with pytest.raises(DataError, match="positive"):
        risk_stage(strict, data, 7, StageRecord("risk"))


def test_risk_settings_come_from_the_run_config(tmp_path):
    path = tmp_path / "plan.toml"
    path.write_text(
        '[risk]\nmodels = ["lr", "rf"]\nmin_positives = 4\nbacktest = false\n'
        '[risk.label]\nkind = "any_sale"\nhorizon_weeks = 8\n'
    )
    cfg = load_config(PipelineConfig, path, quick=True)
    assert cfg.risk.label.kind == "any_sale" and cfg.risk.label.horizon_weeks == 8
    # The file wins over the quick preset's models; the preset's offsets stay.
    assert cfg.risk.models == ("lr", "rf") and cfg.risk.train_offsets == (0,)
    assert not cfg.risk.backtest and cfg.risk.min_positives == 4
    assert load_config(PipelineConfig, path).risk.train_offsets == (0, 4, 8)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[risk.label]\nkind = "dead"', r"\[risk.label\] kind"),
        ('[risk]\nmodels = ["svm"]', "svm"),
        ("[risk]\ntrain_offsets = [-4]", "train_offsets"),
        ("[risk.label]\nmin_active_weeks = 20", "min_active_weeks"),
        ('[risk]\nfallback = "ignore"', "fallback"),
        ("[risk]\nhorizon = 8", r"\[risk\] horizon: unknown key"),
    ],
)
def test_bad_risk_settings_name_the_field(tmp_path, text, match):
    path = Path(tmp_path / "plan.toml")
    path.write_text(f"{text}\n")
    with pytest.raises(ConfigError, match=match):
        load_config(PipelineConfig, path)
