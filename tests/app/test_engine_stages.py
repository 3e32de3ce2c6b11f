"""Risk scoring and the main job's export tables on the engine: blocks of SKUs change no bit
of the scores and no byte of the tables, on the local engine and on Ray."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.config import load_config
from app.engine import LocalEngine, make_engine
from app.exports import plan_tables, schedules_table, sku_summary_table, write_tables
from app.pipeline_config import ExportConfig, PipelineConfig
from app.presentation import TableContext, product_labels
from app.stage_record import StageRecord
from app.stages import ingest_stage, risk_stage
from ingest.errors import ConfigError
from planning.outcomes import SimulationSettings
from planning.schedule import Schedule
from planning.selection import Candidates, choose
from risk_model.scoring import RiskConfig, score_frame, train_and_score
from simulator.demand import Catalog


# ------------------------------------------------------------------------------ risk scoring
@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """The quick run's config (no backtest, no champion) and the ingested 400-SKU world."""
    from simulator.synthetic import SyntheticConfig, generate_world, write_world

    folder = tmp_path_factory.mktemp("w400")
    write_world(generate_world(SyntheticConfig(n_skus=400, n_weeks=52, seed=3)), folder)
    cfg = load_config(
        PipelineConfig,
        overrides={
            "data": str(folder),
            "out_dir": str(folder / "out"),
            "risk.backtest": False,
            "risk.reuse_champion": False,
        },
        quick=True,
    )
    return cfg, ingest_stage(cfg, StageRecord("ingest"))


@pytest.fixture(scope="module")
def ensemble(ingested):
    """The ensemble (logistic regression, forest and XGBoost members) trained on the world,
    and its scoring features."""
    _, data = ingested
    result = train_and_score(
        data.dataset, data.panel, RiskConfig(models=("ens",), train_offsets=(0,), seed=4)
    )
    return result.model, result.features


def _with_block(cfg: PipelineConfig, block_skus: int) -> PipelineConfig:
    return replace(cfg, risk=replace(cfg.risk, block_skus=block_skus))


def test_risk_stage_scores_are_the_same_whatever_the_blocks(ingested):
    """The stage's own scores (logistic regression, the quick preset's model) in blocks of 3
    SKUs: the same bits as in one block."""
    cfg, data = ingested
    n = data.panel["sku"].nunique()
    one = risk_stage(_with_block(cfg, n + 5), data, 11, StageRecord("risk"))
    assert one.source == "trained" and len(one.scores) == n
    assert one.scores["driver_1"].notna().all()
    got = risk_stage(_with_block(cfg, 3), data, 11, StageRecord("risk"), LocalEngine())
    pd.testing.assert_frame_equal(got.scores, one.scores, check_exact=True)


def test_ensemble_scores_are_the_same_whatever_the_blocks(ensemble):
    """Every model kind (the ensemble's members) scores a SKU the same in any block."""
    model, feats = ensemble
    whole = score_frame(model, feats, 3)
    assert len(whole) == len(feats) and whole["risk"].is_monotonic_decreasing
    for block in (50, len(feats) + 1):
        got = score_frame(model, feats, 3, block_skus=block)
        pd.testing.assert_frame_equal(got, whole, check_exact=True, obj=f"blocks of {block}")
    # small blocks on fewer SKUs (XGBoost's cost per call makes them slow on every SKU)
    few = feats.iloc[:30]
    for block in (1, 7):
        pd.testing.assert_frame_equal(
            score_frame(model, few, 3, block_skus=block),
            score_frame(model, few, 3),
            check_exact=True,
            obj=f"blocks of {block}",
        )


def test_ray_scores_are_the_local_scores(ensemble, ray_local):
    """The blocks on Ray's workers, the model shared once per worker: the same bits."""
    model, feats = ensemble
    local = score_frame(model, feats, 3)
    seen: list[int] = []
    ray = make_engine("ray")

    def counting(fn, blocks, shared):
        for out in ray.map_blocks(fn, blocks, shared):
            seen.append(len(out))
            yield out

    remote = score_frame(model, feats, 3, block_skus=64, map_blocks=counting)
    assert seen == [64] * 6 + [len(feats) - 384]
    pd.testing.assert_frame_equal(remote, local, check_exact=True)


@pytest.mark.parametrize("value", [0, -2])
def test_a_bad_risk_block_size_names_the_setting(tmp_path, value):
    path = tmp_path / "plan.toml"
    path.write_text(f"[risk]\nblock_skus = {value}\n")
    with pytest.raises(ConfigError, match=rf"risk.block_skus = {value}: expected >= 1"):
        load_config(PipelineConfig, path)
    with pytest.raises(ConfigError, match=r"\[risk\] block_skus = 2.5: expected an integer"):
        path.write_text("[risk]\nblock_skus = 2.5\n")
        load_config(PipelineConfig, path)


def test_the_risk_block_size_is_not_part_of_the_plan_key():
    cfg = PipelineConfig()
    assert _with_block(cfg, 7).plan_key("data") == cfg.plan_key("data")


# ------------------------------------------------------------------------------ export tables
N = 23


@pytest.fixture(scope="module")
def plan():
    """A per-SKU choice among three plans of 23 SKUs (two that sell nothing), with scores
    that have drivers (one SKU without a score) and labels with a duplicate and a gap."""
    rng = np.random.default_rng(8)
    skus = [f"B{i:02d}" for i in range(N)]
    demand = rng.uniform(0.5, 4.0, N)
    demand[[4, 17]] = 0.0
    cat = Catalog.build(
        n_skus=N,
        sku=skus,
        category=rng.choice(["SOUP", "TEA", "BREAD & ROLLS"], N),
        base_demand=demand,
        base_demand_se=0.2,
        elasticity=-rng.uniform(1.5, 4.0, N),
        elasticity_se=0.2,
        list_price=rng.uniform(1.0, 6.0, N).round(2),
        unit_cost=1.1,
        initial_stock=rng.integers(10, 60, N).astype(float),
        holding_cost_per_unit_week=0.02,
        salvage_value_per_unit=0.1,
    )
    ramp = np.tile([0.0, 0.1, 0.3, 0.3, 0.5], (N, 1))
    plans = {
        "no_markdown": Schedule.constant(cat.sku, 5, 0.0, "no_markdown"),
        "fixed_30": Schedule.constant(cat.sku, 5, 0.3, "fixed_30"),
        "ramp": Schedule(cat.sku, ramp, np.zeros((N, 5)), name="ramp"),
    }
    choice = choose(cat, Candidates(plans, default="ramp"), n_episodes=40, selection_seed=1,
                    evaluation_seed=2, draw_parameters=True, ci_level=0.9)  # fmt: skip
    outcomes = {
        "recommended": choice.recommended,
        "no_markdown": choice.outcomes["no_markdown"],
        "best_heuristic": choice.outcomes["fixed_30"],
        "ramp": choice.outcomes["ramp"],
    }
    scored = [s for s in skus if s != "B09"] + ["OTHER"]
    scores = pd.DataFrame(
        {
            "sku": scored,
            "risk": rng.uniform(0, 1, len(scored)),
            "tier": rng.choice(["high", "medium", "low"], len(scored)),
            "driver_1": "weeks_since_last_sale",
            "driver_1_contribution": rng.normal(size=len(scored)),
            "driver_1_value": rng.integers(0, 20, len(scored)).astype(float),
            "driver_2": "vel_4",
            "driver_2_contribution": rng.normal(size=len(scored)),
            "driver_2_value": rng.uniform(0, 3, len(scored)),
        }
    )
    products = pd.DataFrame(
        {
            # B12 has no row; B03 a second one (the first counts)
            "sku": [s for s in skus if s != "B12"] + ["B03"],
            "category": "X",
            "department": ["GROCERY"] * 10 + [None] * (N - 10),
            "description": [f"ITEM {i}" if i % 5 else None for i in range(N) if i != 12]
            + ["SECOND"],
        }
    )
    ctx = TableContext(
        currency="EUR",
        labels=product_labels(products),
        week_starts=["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22", "2024-01-29"],
        settings=SimulationSettings(seed=1, n_episodes=40, draw_parameters=True, ci_level=0.9),
    )
    no_demand = np.isin(np.arange(N), [4, 17])
    return cat, scores, outcomes, ctx, no_demand, choice


def _tables(plan, **kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    cat, scores, outcomes, ctx, no_demand, choice = plan
    return plan_tables(cat, scores, outcomes, "K", ctx, no_demand=no_demand, choice=choice, **kw)


def _bytes(tables: tuple[pd.DataFrame, pd.DataFrame], folder: Path, fmt: str) -> list[bytes]:
    named = dict(zip(("schedules", "sku_summary"), tables, strict=True))
    written = write_tables(named, folder, ExportConfig(format=fmt))  # type: ignore[arg-type]
    return [Path(written[name]).read_bytes() for name in named]


def test_export_tables_are_the_same_whatever_the_blocks(plan, tmp_path):
    """Blocks of 1, 4, 7 or more SKUs than there are give the frames, and the CSV and Parquet
    bytes, of the tables built in one piece (as the export stage built them before)."""
    cat, scores, outcomes, ctx, no_demand, choice = plan
    whole = (
        schedules_table(outcomes["recommended"], "K", cat, ctx),
        sku_summary_table(cat, scores, outcomes, "K", ctx, no_demand=no_demand, choice=choice),
    )
    summary = whole[1]
    assert len(whole[0]) == N * 5 and len(summary) == N
    assert summary["recommended_by"].nunique() > 1 and summary["no_demand_at_any_price"].sum() == 2
    assert np.isnan(summary.loc[summary["sku"] == "B09", "risk"]).all()  # no score
    assert summary["top_drivers"].str.contains("raises risk").any()
    assert (summary["description"] == "").any() and (summary["department"] == "").any()
    files = {fmt: _bytes(whole, tmp_path / f"whole-{fmt}", fmt) for fmt in ("csv", "parquet")}
    for block in (1, 4, 7, N + 3, None):
        got = _tables(plan, block_skus=block)
        for name, left, right in zip(("schedules", "sku_summary"), got, whole, strict=True):
            pd.testing.assert_frame_equal(left, right, check_exact=True, obj=f"{name} {block}")
        for fmt, expected in files.items():
            assert _bytes(got, tmp_path / f"{block}-{fmt}", fmt) == expected, (block, fmt)


def test_export_tables_on_ray_are_the_local_tables(plan, ray_local):
    local = _tables(plan, block_skus=4, engine=LocalEngine())
    remote = _tables(plan, block_skus=4, engine=make_engine("ray"))
    for left, right in zip(remote, local, strict=True):
        pd.testing.assert_frame_equal(left, right, check_exact=True)


def test_a_bad_export_block_size_is_refused(plan):
    with pytest.raises(ConfigError, match="block_skus = 0: expected >= 1"):
        _tables(plan, block_skus=0)
