"""One ``plan.toml`` that sets a value in every section of the run's config: each value reaches
the library function that uses it (the stage functions run on small frames, with the heavy
calls replaced by recorders that stop the stage)."""

from __future__ import annotations

import tomllib
from dataclasses import fields, is_dataclass, replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from app import stages as st
from app.cli.main import main
from app.engine import LocalEngine
from app.pipeline_config import DEFAULT_RULES, PipelineConfig
from app.stage_record import StageRecord
from ingest.errors import DataError
from simulator.demand import Catalog

PLAN = """
data = "my-source"
horizon_weeks = 7
seed = 11

[selection]
threshold = 0.2
max_skus = 2

[fit]
n_harmonics = 1
peers_per_category = 1

[fit.stock]
velocity_weeks = 5
salvage_share = 0.25

[risk]
models = ["lr", "rf"]
train_offsets = [0, 2]
n_bootstrap = 7
n_drivers = 2
backtest_test_cutoff = 50
backtest_train_cutoff = 30
block_skus = 250

[risk.label]
kind = "sell_through"
horizon_weeks = 10
min_active_weeks = 4

[risk.features]
buyer_features = false

[rules]
max_discount = 0.4

[ppo]
learning_rate = 0.0007
total_timesteps = 5000

[policy]
source = "train"
recommend = "policy"

[evaluation]
n_episodes = 33
ci_level = 0.9
draw_parameters = false
block_skus = 3

[export]
format = "parquet"
table_prefix = "x_"

[new_products]
max_age_weeks = 5
min_risk = 0.7

[coupons]
models = ["repeat", "popularity"]
k = 7
cutoffs = [20]
"""


class Stop(BaseException):
    """Raised by a recorder once it has what the test needs (a BaseException, so the CLI's
    error boundary lets it through)."""


@pytest.fixture(scope="module")
def cfg(tmp_path_factory) -> PipelineConfig:
    """The config exactly as ``deadstock run --config plan.toml`` builds it."""
    path = tmp_path_factory.mktemp("plan") / "plan.toml"
    path.write_text(PLAN)
    seen: list[PipelineConfig] = []
    mp = pytest.MonkeyPatch()
    mp.setattr("app.pipeline.run_pipeline", lambda c: seen.append(c) or _stop())
    try:
        with pytest.raises(Stop):
            main(["run", "--config", str(path), "--out", str(path.parent / "out")])
    finally:
        mp.undo()
    return seen[0]


def test_the_plan_sets_every_section(cfg):
    sections = {f.name for f in fields(PipelineConfig) if is_dataclass(getattr(cfg, f.name))}
    assert sections <= set(tomllib.loads(PLAN)), "a new section needs a value in PLAN and a test"
    assert cfg.horizon_weeks == 7 and cfg.seed == 11 and cfg.data == "my-source"


def _panel(n_weeks: int = 80) -> pd.DataFrame:
    """Six SKUs in two categories selling every week, except ``s3`` (three selling weeks in
    the last 13: established under the default label, not under min_active_weeks = 4)."""
    rows = []
    for i in range(6):
        for w in range(1, n_weeks + 1):
            units = 2.0 if (i != 3 or w in (n_weeks, n_weeks - 1, n_weeks - 2)) else 0.0
            rows.append((f"s{i}", w, "A" if i < 4 else "B", units))
    frame = pd.DataFrame(rows, columns=["sku", "week", "category", "units"])
    return frame.assign(discount_depth=0.0, list_price=3.0)


def _data(panel: pd.DataFrame) -> st.IngestOut:
    products = pd.DataFrame({"sku": sorted(panel["sku"].unique())})
    dataset = SimpleNamespace(products=products, source="my-source", notes=[], get=lambda _: None)
    return st.IngestOut(dataset, panel, "fp", int(panel["week"].max()))


def test_data_reaches_the_ingest_stage(cfg, monkeypatch):
    seen = []
    monkeypatch.setattr("app.data.run_data_stage", lambda c: seen.append(c) or _stop())
    with pytest.raises(Stop):
        st.ingest_stage(cfg, StageRecord("ingest"))
    assert seen[0].source == "my-source"


def _stop():
    raise Stop


def test_risk_section_reaches_backtest_and_training(cfg, monkeypatch):
    seen: dict[str, object] = {}

    def backtest(dataset, panel, c):
        seen["backtest"] = c
        raise DataError("recorded")

    def train(dataset, panel, c, **kw):
        seen["train"], seen["scoring"] = c, kw
        raise Stop

    monkeypatch.setattr("risk_model.backtest.run_backtest", backtest)
    monkeypatch.setattr("risk_model.scoring.train_and_score", train)
    engine = LocalEngine()
    with pytest.raises(Stop):
        st.risk_stage(cfg, _data(_panel()), 12345, StageRecord("risk"), engine)
    # the scoring runs in blocks of [risk] block_skus on the run's engine
    assert seen["scoring"] == {"block_skus": 250, "map_blocks": engine.map_blocks}
    bt, risk = seen["backtest"], seen["train"]
    for c in (bt, risk):
        assert c.models == ("lr", "rf") and c.train_offsets == (0, 2)  # type: ignore[attr-defined]
        assert c.label.kind == "sell_through" and c.label.horizon_weeks == 10  # type: ignore[attr-defined]
        assert c.features.buyer_features is False  # type: ignore[attr-defined]
        assert c.features.price_change_features is False  # the run's default  # type: ignore[attr-defined]
        assert c.seed == 12345  # the stage's spawned seed, not a file value  # type: ignore[attr-defined]
    assert (bt.train_cutoff, bt.test_cutoff, bt.n_bootstrap) == (30, 50, 7)  # type: ignore[attr-defined]
    assert risk.n_drivers == 2  # type: ignore[attr-defined]


def test_selection_and_label_reach_the_select_stage(cfg):
    panel = _panel()
    scores = pd.DataFrame(
        {"sku": [f"s{i}" for i in range(6)], "risk": [0.1, 0.3, 0.5, 0.95, 0.9, 0.6]}
    ).assign(tier="high")
    chosen = st.select_stage(cfg, scores, StageRecord("select"), panel)
    # threshold 0.2 keeps s1..s5; s3 is not established under min_active_weeks = 4;
    # max_skus = 2 keeps the two riskiest of the rest.
    assert chosen.skus == ["s4", "s5"]
    assert "risk >= 0.2" in chosen.rule and "2 riskiest" in chosen.rule


def test_fit_section_reaches_fit_catalog(cfg, monkeypatch):
    seen = []
    monkeypatch.setattr(
        "simulator.fit.fit_catalog",
        lambda p, c, products=None, map_tasks=None: seen.append((p, c)) or _stop(),
    )
    panel = _panel()
    scores = pd.DataFrame({"sku": ["s0"], "risk": [0.9]})
    with pytest.raises(Stop):
        st.fit_stage(cfg, _data(panel), scores, st.Selection(["s0"], "r"), 0, StageRecord("fit"))
    sub, fit = seen[0]
    assert fit is cfg.fit and fit.n_harmonics == 1
    assert fit.stock.velocity_weeks == 5 and fit.stock.salvage_share == 0.25
    assert sub["sku"].nunique() == 2  # s0 and one peer of its category


def _catalog(n: int = 2) -> Catalog:
    return Catalog.build(
        n_skus=n,
        sku=np.array([f"s{i}" for i in range(n)], dtype=object),
        base_demand=np.full(n, 2.0),
        elasticity=np.full(n, -2.0),
        list_price=np.full(n, 3.0),
        unit_cost=np.full(n, 1.5),
        initial_stock=np.full(n, 20.0),
    )


def test_ppo_and_rules_reach_train_ppo(cfg, monkeypatch):
    seen = []
    monkeypatch.setattr(
        "agents.ppo.train_ppo", lambda c, rules, catalog: seen.append((c, rules)) or _stop()
    )
    with pytest.raises(Stop):
        st.policy_stage(cfg, _catalog(), 777, StageRecord("policy"))
    ppo, rules = seen[0]
    assert ppo.learning_rate == 0.0007 and ppo.total_timesteps == 5000
    assert ppo.horizon_range == (7, 7) and ppo.seed == 777 and ppo.checkpoint_every == 0
    assert rules.max_discount == 0.4 and rules.discount_levels == DEFAULT_RULES.discount_levels


def test_evaluation_and_horizon_reach_the_simulation(cfg, monkeypatch):
    seen = {}

    def recommend(catalog, learned, heuristics, rules, horizon, **kw):
        seen.update(kw, rules=rules, horizon=horizon, learned=learned.name)
        raise Stop

    planned = object()

    def plan_in_blocks(engine, catalog, learned, heuristics, rules, horizon, **kw):
        seen.update(block_skus=kw["block_skus"], engine=engine.name, plan_horizon=horizon,
                    qmdp_grid=kw["qmdp_grid"])  # fmt: skip
        return planned

    monkeypatch.setattr(st, "recommend", recommend)
    monkeypatch.setattr("app.blocks.plan_candidates_in_blocks", plan_in_blocks)
    pol = st.PolicyOut(SimpleNamespace(name="ppo"), "trained")  # type: ignore[arg-type]
    with pytest.raises(Stop):
        st.evaluate_stage(cfg, _catalog(), pol, 5, StageRecord("evaluate"))
    assert seen["horizon"] == 7 and seen["rules"] is cfg.rules and seen["learned"] == "ppo"
    # the plans are made in blocks of the config's size, by default on the local engine
    assert seen["candidates"] is planned and seen["plan_horizon"] == 7
    assert seen["block_skus"] == cfg.evaluation.block_skus and seen["engine"] == "local"
    settings = seen["settings"]
    assert settings.n_episodes == 33 and settings.ci_level == 0.9
    assert settings.draw_parameters is False and settings.seed == cfg.seed
    assert seen["per_sku"] is False  # recommend = "policy"
    # QMDP hedges against the fit's uncertainty: planned only when the parameters are drawn
    assert seen["qmdp_grid"] == 0
    drawn = replace(cfg, evaluation=replace(cfg.evaluation, draw_parameters=True, qmdp_grid=5))
    with pytest.raises(Stop):
        st.evaluate_stage(drawn, _catalog(), pol, 5, StageRecord("evaluate"))
    assert seen["qmdp_grid"] == 5


def test_export_and_new_products_reach_the_writers(cfg, monkeypatch, tmp_path):
    seen = {}
    empty = pd.DataFrame()

    def flags(scores, products, panel, last_week, c, plan_key, *args, **kwargs):
        seen["new_products"] = c
        return empty, 0

    def write(tables, out_dir, c):
        seen["export"] = c
        raise Stop

    def tables(*args, **kwargs):
        seen["tables"] = kwargs
        return empty, empty

    monkeypatch.setattr("app.exports.plan_tables", tables)
    monkeypatch.setattr("app.alerts.alerts_table", lambda *a, **k: empty)
    monkeypatch.setattr("app.exports.new_product_flags_table", flags)
    monkeypatch.setattr("app.exports.write_tables", write)
    ev = st.EvalOut({"recommended": None}, "fluid", {}, np.zeros(2, dtype=bool))  # type: ignore[dict-item]
    fitted = st.FitOut(_catalog(), "assumed", [])
    scores = pd.DataFrame({"sku": ["s0", "s1"], "risk": [0.9, 0.8], "tier": ["high", "high"]})
    engine = LocalEngine()
    with pytest.raises(Stop):
        st.export_stage(
            cfg, "k", _data(_panel()), scores, st.Selection([], ""), fitted, ev, [],
            StageRecord("export"), engine=engine,
        )  # fmt: skip
    # the schedules and SKU summary are built in the evaluation's blocks on the run's engine
    assert seen["tables"]["block_skus"] == 3 and seen["tables"]["engine"] is engine
    assert seen["new_products"].max_age_weeks == 5 and seen["new_products"].min_risk == 0.7
    assert seen["export"].format == "parquet" and seen["export"].table_prefix == "x_"


def test_coupons_section_reaches_the_coupon_stage(cfg, monkeypatch):
    from dataclasses import replace

    from app import coupons
    from envs.config import RulesConfig

    seen = {}

    def split(baskets, at_risk, tc, **kwargs):
        seen["coupons"], seen["at_risk"] = tc, at_risk
        raise Stop

    schedules = pd.DataFrame({"sku": ["s0", "s1"], "week": [1, 1], "coupon": [0.1, 0.0]})
    monkeypatch.setattr("app.exports.read_table", lambda name, out_dir, c: schedules)
    monkeypatch.setattr(coupons, "run_time_split", split)
    baskets = pd.DataFrame({"household_id": ["h"], "sku": ["s0"], "week": [30]})
    dataset = SimpleNamespace(get=lambda name: baskets, source="my-source", products=None)
    with_coupons = replace(cfg, rules=RulesConfig(coupon_levels=(0.0, 0.1)))
    with pytest.raises(Stop):
        coupons.coupons_stage(with_coupons, "k", dataset, StageRecord("coupons"))
    assert seen["coupons"].k == 7 and seen["coupons"].models == ("repeat", "popularity")
    assert seen["at_risk"] == {20: ["s0"]}
