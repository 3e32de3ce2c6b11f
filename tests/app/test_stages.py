"""The select stage's counts and the demand fit's notes as the report shows them."""

from __future__ import annotations

import pandas as pd

from app.pipeline_config import PipelineConfig, SelectionConfig
from app.stage_record import StageRecord
from app.stages import fit_notes, select_stage


def test_selection_counts_only_established_skus_in_tiers():
    scores = pd.DataFrame(
        {
            "sku": ["a", "b", "c", "d", "e"],
            "risk": [0.99, 0.9, 0.8, 0.4, 0.97],
            "tier": ["high", "high", "high", "low", "high"],
            "established": [False, True, True, True, False],
        }
    )
    cfg = PipelineConfig(selection=SelectionConfig(max_skus=1))
    rec = StageRecord("select")
    sel = select_stage(cfg, scores, rec, pd.DataFrame({"sku": [], "week": [], "units": []}))
    assert sel.skus == ["b"]  # a and e are riskier but not established
    assert sel.established == {"b", "c", "d"} and sel.n_scored == 5
    assert sel.tier_counts == {"high": 2, "medium": 0, "low": 1}
    assert "the 1 riskiest of 2" in sel.rule
    assert rec.metrics["n_established_high"] == 2 and rec.metrics["n_scored"] == 5
    assert "5 SKUs scored, 3 established (2 high, 0 medium, 1 low)" in rec.detail


def test_fit_notes_are_scoped_and_name_the_run_config_keys():
    notes = [
        "initial_stock assumed = 8 weeks of cover ... (fit.stock.weeks_of_cover, velocity_weeks)",
        "holding cost assumed = ... (fit.stock.holding_cost_share_per_week, "
        "fit.stock.salvage_share)",
        "the panel covers 30 of 52 calendar weeks: ... (fit.min_season_weeks)",
    ]
    out = fit_notes(notes, 1000, 8012, PipelineConfig())
    # The stock and holding-cost notes are replaced by the run's own stock assumption.
    assert len(out) == 1
    assert out[0].startswith("demand fit of 8,012 SKUs (the 1,000 planned and up to 40 peers")
    assert "fit.min_season_weeks" not in out[0] and "[fit] min_season_weeks" in out[0]
