"""The stage functions of the main job (see :mod:`app.pipeline` for the order).

Each stage is a typed function of the pipeline config and the previous stages' values; it
fills a :class:`~app.stage_record.StageRecord` (metrics, one-line detail) and returns its
value. The market arithmetic, the rules, the policies and the risk model all live in their
own packages; these functions only call them.

How a policy becomes an exported schedule: see :mod:`planning.from_policy`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.policy import Policy
from app.config import PipelineConfig
from app.stage_record import StageRecord
from envs.config import RulesConfig
from ingest.errors import DataError
from planning.from_policy import plan_of
from planning.outcomes import Outcome, simulate_schedule
from planning.schedule import Schedule
from simulator.demand import Catalog


# ------------------------------------------------------------------------------ ingest
@dataclass
class IngestOut:
    """The loaded, validated and cleaned data and its weekly panel."""

    dataset: Any
    panel: pd.DataFrame
    fingerprint: str
    last_week: int
    notes: list[str] = field(default_factory=list)


def ingest_stage(cfg: PipelineConfig, rec: StageRecord) -> IngestOut:
    """Load, validate and clean ``cfg.data`` and build its weekly panel."""
    from app.data import DataStageConfig, run_data_stage

    out = run_data_stage(DataStageConfig(source=cfg.data, out_dir=str(Path(cfg.out_dir) / "data")))
    dataset, panel = out.dataset, out.panel
    last_week = int(panel["week"].max())
    rec.metrics = {
        "n_skus": float(panel["sku"].nunique()),
        "n_weeks": float(panel["week"].nunique()),
        "n_panel_rows": float(len(panel)),
        "last_week": float(last_week),
    }
    rec.detail = (
        f"{dataset.source}: {panel['sku'].nunique():,} SKUs x {panel['week'].nunique()} weeks"
    )
    return IngestOut(dataset, panel, dataset.fingerprint, last_week, list(dataset.notes))


# ------------------------------------------------------------------------------ risk
#: Where the risk scores came from (tag ``risk.source`` of the parent run).
RISK_SOURCES = ("trained", "champion", "rule")


@dataclass
class RiskOut:
    """The risk scores (one row per SKU: ``sku``, ``risk`` 0..1, ``tier``, ``established``
    and the top drivers) and where they came from.

    Attributes
    ----------
    source : {"trained", "champion", "rule"}
        A model trained by this run, the registered champion (same data and settings), or
        the rule baseline (too few positives to train a model).
    result : RiskResult or None
        The trained model and its validation (``source = "trained"`` only), to register.
    fit_key : str
        Hash of the data fingerprint and every risk setting: a champion registered with the
        same key scores exactly as a new model would.
    note : str
        One sentence for the report when the scores are not a model trained by this run.
    """

    scores: pd.DataFrame
    source: str
    fit_key: str
    result: Any = None
    note: str = ""


def _risk_config(cfg: PipelineConfig, seed: int) -> Any:
    from risk_model.features import FeatureConfig
    from risk_model.scoring import RiskConfig

    return RiskConfig(
        label=cfg.risk.label_config(),
        features=FeatureConfig(price_change_features=cfg.risk_price_change_features),
        models=cfg.risk_models,
        train_offsets=cfg.risk_train_offsets,
        seed=int(seed % (2**31)),
    )


def _risk_backtest(
    cfg: PipelineConfig, data: IngestOut, risk_cfg: Any, metrics: dict[str, float]
) -> str:
    """Run the time-split backtest when the data has two label horizons; returns a note."""
    import mlflow

    from risk_model.backtest import BacktestConfig, json_rows, run_backtest

    label = risk_cfg.label
    test_cutoff = data.last_week - label.horizon_weeks
    train_cutoff = test_cutoff - label.horizon_weeks
    if train_cutoff < int(data.panel["week"].min()) + label.lookback_weeks:
        return f"backtest skipped: {data.last_week} weeks are too few for two horizons"
    bt_cfg = BacktestConfig(
        label=label,
        features=risk_cfg.features,
        train_cutoff=train_cutoff,
        test_cutoff=test_cutoff,
        train_offsets=risk_cfg.train_offsets,
        models=risk_cfg.models,
        n_bootstrap=20 if cfg.quick else 200,
        seed=risk_cfg.seed,
    )
    try:
        bt = run_backtest(data.dataset, data.panel, bt_cfg)
    except DataError as err:
        return f"backtest skipped: {err}"
    for row in bt.rows:
        for m in ("roc_auc", "pr_auc", "f1", "brier"):
            if isinstance(row.get(m), int | float):
                metrics[f"backtest_{row['model']}_{m}"] = float(row[m])
    metrics["backtest_noise_floor"] = float(bt.noise_floor)
    if mlflow.active_run() is not None:
        mlflow.log_dict({"rows": json_rows(bt)}, "risk_backtest.json")
    best = max(
        (r for r in bt.rows if r["model"] in risk_cfg.models), key=lambda r: r.get("pr_auc", 0)
    )
    return (
        f"backtest {train_cutoff}->{test_cutoff}: {best['model']} ROC-AUC "
        f"{best['roc_auc']:.3f}, PR-AUC {best['pr_auc']:.3f}"
    )


def _tier_counts(scores: pd.DataFrame, metrics: dict[str, float]) -> int:
    metrics["n_scored"] = float(len(scores))
    for tier in ("high", "medium", "low"):
        metrics[f"n_{tier}"] = float((scores["tier"] == tier).sum())
    return int(metrics["n_high"])


def risk_stage(cfg: PipelineConfig, data: IngestOut, seed: int, rec: StageRecord) -> RiskOut:
    """Score every SKU's dead-stock risk: with the registered champion when it was trained on
    this data with these settings, else with models trained here, else (too few positives
    to train and validate a model) with the rule baseline.

    The label, the cutoffs (through ``risk.horizon_weeks`` and ``risk.train_offsets``) and
    the models are ``cfg.risk``. The backtest (``risk.backtest``) trains one label horizon
    before the last observable test cutoff and is skipped, with a note, when the data is too
    short or has no positive at the test cutoff. Price-change features are off unless
    ``risk_price_change_features`` (the retailer's own clearance would make the score
    circular for the markdown plan).
    """
    import logging

    from experiments.risk_runs import load_fitting_champion, risk_fit_key
    from risk_model.rule import RULE_NAME, rule_scores
    from risk_model.scoring import train_and_score

    log = logging.getLogger(__name__)
    risk_cfg = _risk_config(cfg, seed)
    fit_key = risk_fit_key(data.fingerprint, risk_cfg)
    metrics: dict[str, float] = {}
    if cfg.risk.reuse_champion:
        champ, why = load_fitting_champion(fit_key, data.dataset, data.panel, risk_cfg)
        if champ is not None:
            n_high = _tier_counts(champ, metrics)
            rec.metrics = {**metrics, "loaded_champion": 1.0}
            rec.detail = f"{len(champ):,} SKUs scored by the {why}, {n_high:,} high"
            log.info("risk: loaded the %s instead of training", why)
            return RiskOut(champ, "champion", fit_key, note=f"risk scores from the {why}")
    backtest_note = _risk_backtest(cfg, data, risk_cfg, metrics) if cfg.risk.backtest else ""
    why_rule = ""
    result = None
    try:
        trained = train_and_score(data.dataset, data.panel, risk_cfg)
    except DataError as err:
        if cfg.risk.fallback != "rule":
            raise
        why_rule = str(err)
    else:
        n_pos = int(trained.info["n_train_pos"]) + int(trained.info["n_val_pos"])
        if n_pos < cfg.risk.min_positives and cfg.risk.fallback == "rule":
            why_rule = (
                f"only {n_pos} positive labelled row(s), fewer than risk.min_positives = "
                f"{cfg.risk.min_positives}"
            )
        else:
            result = trained
    if result is None:
        try:
            rule = rule_scores(data.dataset, data.panel, risk_cfg)
        except DataError as err:
            raise DataError(
                f"the risk stage cannot score: no model ({why_rule}) and no rule baseline ({err})"
            ) from None
        note = (
            f"risk scores from the rule baseline ({RULE_NAME}: weeks since the last sale, "
            f"calibrated on {rule.n_labelled} labelled rows with {rule.n_positive} positive(s)) "
            f"because no model could be trained: {why_rule.rstrip('.')}. More history, more SKUs, a "
            "shorter risk.horizon_weeks or another risk.label give a model."
        )
        scores = rule.scores.assign(sku=rule.scores["sku"].astype(str))
        n_high = _tier_counts(scores, metrics)
        rec.metrics = {
            **metrics,
            "rule_fallback": 1.0,
            "n_labelled_positive": float(rule.n_positive),
        }
        rec.detail = (
            f"{len(scores):,} SKUs scored by the rule baseline {RULE_NAME}, {n_high:,} high"
        )
        rec.detail += f" (no model: {why_rule})"
        log.warning("risk: %s", note)
        return RiskOut(scores, "rule", fit_key, note=note)
    scores = result.scores.assign(sku=result.scores["sku"].astype(str))
    champ_val = result.validation[result.champion]
    metrics.update({f"val_{m}": float(champ_val[m]) for m in ("roc_auc", "pr_auc", "brier")})
    n_high = _tier_counts(scores, metrics)
    rec.metrics = metrics
    rec.detail = (
        f"{len(scores):,} SKUs scored by {result.champion} (validation PR-AUC "
        f"{champ_val['pr_auc']:.3f}), {n_high:,} high"
        + (f"; {backtest_note}" if backtest_note else "")
    )
    return RiskOut(scores, "trained", fit_key, result=result)


# ------------------------------------------------------------------------------ select
@dataclass
class Selection:
    """The at-risk SKUs, riskiest first, and the rule that picked them."""

    skus: list[str]
    rule: str


def established_skus(panel: pd.DataFrame) -> set[str]:
    """SKUs the dead-stock label applies to at the last week: at least ``min_units`` units and
    ``min_active_weeks`` selling weeks in the last ``lookback_weeks`` weeks (the risk label's
    own definition). A SKU that has already stopped selling is dead stock already, not at
    risk of becoming it, and has no recent velocity to plan from."""
    from risk_model.labels import LabelConfig

    lab = LabelConfig()
    last = int(panel["week"].max())
    recent = panel[panel["week"] > last - lab.lookback_weeks]
    g = recent.assign(active=recent["units"] > 0).groupby("sku", observed=True)
    units, active = g["units"].sum(), g["active"].sum()
    ok = (units >= lab.min_units) & (active >= lab.min_active_weeks)
    return set(units.index[ok.to_numpy()].astype(str))


def select_stage(
    cfg: PipelineConfig, scores: pd.DataFrame, rec: StageRecord, panel: pd.DataFrame
) -> Selection:
    """The at-risk SKUs, riskiest first: established SKUs (see :func:`established_skus`)
    selected by threshold when set, else by tier; capped at ``max_skus``."""
    sel = cfg.selection
    established = scores["sku"].astype(str).isin(established_skus(panel))
    if sel.threshold is not None:
        mask = established & (scores["risk"].astype(float) >= sel.threshold)
        rule = f"established SKUs with risk >= {sel.threshold:g}"
    else:
        mask = established & scores["tier"].astype(str).isin(sel.tiers)
        rule = f"established SKUs in tier {list(sel.tiers)}"
    chosen = scores[mask].sort_values(["risk", "sku"], ascending=[False, True])
    cap = cfg.max_skus
    if cap is not None and len(chosen) > cap:
        chosen = chosen.head(cap)
        rule += f", the {cap} riskiest"
    if chosen.empty:
        raise DataError(
            f"no SKU is at risk by the selection rule ({rule}); lower selection.threshold or "
            f"add tiers (the scores range {scores['risk'].min():.2f}..{scores['risk'].max():.2f})"
        )
    rec.metrics = {
        "n_selected": float(len(chosen)),
        "n_established": float(established.sum()),
        "mean_risk": float(chosen["risk"].mean()),
    }
    rec.detail = f"{len(chosen):,} at-risk SKUs ({rule})"
    return Selection(chosen["sku"].astype(str).tolist(), rule)


# ------------------------------------------------------------------------------ fit
@dataclass
class FitOut:
    """The at-risk SKUs' fitted catalog (riskiest first) and the stock assumption."""

    catalog: Catalog
    stock_assumption: str
    notes: list[str]


def fit_panel(panel: pd.DataFrame, selected: list[str], peers_per_category: int) -> pd.DataFrame:
    """The panel rows the demand fit needs: the selected SKUs, plus up to
    ``peers_per_category`` other SKUs of each of their categories (those with the most
    selling weeks, the best identified), so elasticities are shrunk towards a category mean
    without fitting the whole catalog."""
    sku = panel["sku"].astype(str)
    is_sel = sku.isin(set(selected))
    cats = panel.loc[is_sel, "category"].unique()
    others = panel[~is_sel & panel["category"].isin(cats)]
    weeks = (
        others.assign(selling=others["units"] > 0)
        .groupby(["category", "sku"], observed=True)["selling"]
        .sum()
        .reset_index()
        .sort_values(["category", "selling", "sku"], ascending=[True, False, True])
    )
    peers = weeks.groupby("category", observed=True).head(peers_per_category)["sku"].astype(str)
    return panel[is_sel | sku.isin(set(peers))]


def fit_stage(
    cfg: PipelineConfig,
    data: IngestOut,
    scores: pd.DataFrame,
    selection: Selection,
    seed: int,
    rec: StageRecord,
) -> FitOut:
    """Fit the demand of the selected SKUs' categories (so elasticities pool within the
    category) and keep the selected SKUs, with the stock the plan starts from."""
    from simulator.fit import FitConfig, fit_catalog

    panel = data.panel
    selected = selection.skus
    sub = fit_panel(panel, selected, cfg.fit_peers_per_category)
    notes: list[str] = []
    for col in ("coupon_depth", "discount_depth"):
        if col in sub.columns and (sub[col] > 0.95).any():
            # Real data has coupons worth more than the list price (Complete Journey); the
            # demand model's depths live in [0, 0.95].
            n_big = int((sub[col] > 0.95).sum())
            sub = sub.assign(**{col: sub[col].clip(upper=0.95)})
            notes.append(f"{n_big} panel row(s) had {col} > 0.95; clipped to 0.95 for the fit")
    s = cfg.stock
    fit_cfg = FitConfig(
        weeks_of_cover=s.weeks_of_cover,
        velocity_weeks=s.velocity_weeks,
        holding_cost_share_per_week=s.holding_cost_rate_per_week,
        salvage_share=s.salvage_rate,
    )
    result = fit_catalog(sub, fit_cfg, products=data.dataset.products)
    cat = result.catalog
    pos = pd.Series(np.arange(cat.n_skus), index=pd.Index(np.asarray(cat.sku, dtype=str)))
    have = [k for k in selected if k in pos.index]
    dropped = len(selected) - len(have)
    if not have:
        raise DataError("none of the at-risk SKUs could be fitted (none sold in the panel)")
    cat = cat.take(pos.loc[have].to_numpy())
    risk = scores.set_index("sku")["risk"].reindex(have).to_numpy(dtype=float)
    has_stock = "on_hand" in panel.columns and panel["on_hand"].notna().any()
    stock = np.maximum(cat.initial_stock, s.min_stock_units if not has_stock else 0.0)
    cat = cat.replace(risk_score=risk, initial_stock=np.ceil(stock))
    if has_stock:
        assumption = "on-hand stock from the source's stock table (last known level)"
    else:
        assumption = s.describe()
    notes += list(result.notes)
    if dropped:
        notes.append(f"{dropped} at-risk SKU(s) sold nothing in the panel: no demand to fit")
    rec.metrics = {
        "n_fitted": float(cat.n_skus),
        "n_dropped": float(dropped),
        "median_elasticity": float(np.median(cat.elasticity)),
        "total_stock_units": float(cat.initial_stock.sum()),
        **{f"diag_{k}": float(v) for k, v in result.diagnostics.items()},
    }
    rec.detail = (
        f"{cat.n_skus:,} SKUs fitted (median elasticity {np.median(cat.elasticity):.2f}), "
        f"{cat.initial_stock.sum():,.0f} units on hand"
    )
    return FitOut(cat, assumption, notes)


# ------------------------------------------------------------------------------ policy
@dataclass
class PolicyOut:
    """The recommended policy and where it came from.

    Attributes
    ----------
    source : str
        ``"trained"``, or where the champion was loaded from.
    model_path : Path or None
        The policy's SB3 zip in the run's output folder (``policy/ppo_policy.zip``).
    trained : bool
        True when this run trained it (then the pipeline registers it).
    """

    policy: Policy
    source: str
    model_path: Path | None = None
    trained: bool = False


#: The policy's file in the run's output folder.
POLICY_FILE = Path("policy") / "ppo_policy.zip"


def _champion(rules: RulesConfig) -> tuple[Policy | None, str]:
    """The registered champion's policy for ``rules``, or (None, why not)."""
    import mlflow

    from agents.ppo import hint_dim
    from envs.observation import OBS_DIM
    from experiments.policy_model import CHAMPION_ALIAS, REGISTERED_NAME

    uri = f"models:/{REGISTERED_NAME}@{CHAMPION_ALIAS}"
    try:
        version = mlflow.MlflowClient().get_model_version_by_alias(REGISTERED_NAME, CHAMPION_ALIAS)
        model = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    except Exception as err:  # noqa: BLE001 - a missing or broken registry entry
        # The usual case on a new store is simply that nothing is registered yet; say so
        # rather than print the exception's class name.
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
        if "not found" in first.lower() or "RESOURCE_DOES_NOT_EXIST" in first:
            return None, f"no champion registered as {uri} in this MLflow store"
        return None, f"champion {uri} could not be loaded ({type(err).__name__}: {first})"
    for profile, prules in getattr(model, "rules", {}).items():
        if prules == rules and profile in model.policies:
            pol = model.policies[profile]
            shape = getattr(pol.model.observation_space, "shape", None)
            sizes = sorted({OBS_DIM + hint_dim(rules, v) for v in (False, True)} | {OBS_DIM})
            if shape is None or shape[0] not in sizes:
                return None, f"champion's observation size {shape} is not one of {sizes}"
            pol.name = "ppo"
            return pol, f"champion {uri} (version {version.version}, profile {profile!r})"
    return None, "champion was trained for other rules"


def policy_stage(cfg: PipelineConfig, catalog: Catalog, seed: int, rec: StageRecord) -> PolicyOut:
    """Load the registered champion when it fits the rules and observation, else train PPO on
    the at-risk catalog (``policy.source`` decides). Either way the policy is saved as
    :data:`POLICY_FILE` in the output folder."""
    import logging

    from agents.ppo import PPOConfig, PPOPolicy, train_ppo

    log = logging.getLogger(__name__)
    path = Path(cfg.out_dir) / POLICY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    why = "policy.source = 'train'"
    if cfg.policy.source in ("auto", "champion"):
        pol, why = _champion(cfg.rules)
        if pol is not None:
            pol.model.save(str(path))  # type: ignore[attr-defined]
            rec.detail = f"loaded {why} instead of training"
            rec.metrics = {"trained": 0.0}
            log.info("policy: loaded the %s instead of training", why)
            return PolicyOut(pol, why, path)
        if cfg.policy.source == "champion":
            raise DataError(f"policy.source = 'champion' but {why}; train one with deadstock train")
    h = cfg.horizon_weeks
    ppo_cfg = PPOConfig(
        total_timesteps=cfg.train_timesteps,
        seed=seed % (2**31),
        horizon_range=(h, h),
        checkpoint_every=0,
    )
    result = train_ppo(ppo_cfg, cfg.rules, catalog)
    result.model.save(str(path))
    rec.metrics = {
        "trained": 1.0,
        "timesteps": float(result.num_timesteps),
        "train_seconds": float(result.wall_seconds),
    }
    rec.detail = f"trained PPO for {result.num_timesteps:,} steps ({why})"
    return PolicyOut(PPOPolicy(result.model, name="ppo"), "trained", path, trained=True)


# ------------------------------------------------------------------------------ evaluate
@dataclass
class EvalOut:
    """Simulated outcomes of the recommended plan, doing nothing, and every heuristic."""

    outcomes: dict[str, Outcome]
    best_heuristic: str
    closed_loop: dict[str, float]


def heuristic_policies(cfg: PipelineConfig) -> list[Policy]:
    """The heuristic baselines the recommended policy is compared with."""
    from agents.baselines import default_baselines

    # The DP is the exact optimum, not a heuristic; no-markdown is simulated separately.
    return [p for p in default_baselines(include_dp=False) if p.name != "no_markdown"]


def evaluate_stage(
    cfg: PipelineConfig, catalog: Catalog, policy: PolicyOut, seed: int, rec: StageRecord
) -> EvalOut:
    """Plan every policy, then simulate every plan with common random numbers."""
    h = cfg.horizon_weeks
    seeds = np.random.SeedSequence(seed).generate_state(2).tolist()
    plan_seed, sim_seed = int(seeds[0]), int(seeds[1])
    n_ep = cfg.n_episodes
    kw = dict(
        n_episodes=n_ep,
        seed=sim_seed,
        ci_level=cfg.evaluation.ci_level,
        draw_parameters=cfg.evaluation.draw_parameters,
    )
    plans: dict[str, Schedule] = {}
    closed: dict[str, float] = {}
    learned = policy.policy.name
    plans[learned], closed[learned] = plan_of(policy.policy, catalog, cfg.rules, h, seed=plan_seed)
    plans["no_markdown"] = Schedule.constant(catalog.sku, h, 0.0, "no_markdown")
    for heur in heuristic_policies(cfg):
        plans[heur.name], closed[heur.name] = plan_of(heur, catalog, cfg.rules, h, seed=plan_seed)
    outcomes = {k: simulate_schedule(catalog, s, **kw) for k, s in plans.items()}  # type: ignore[arg-type]
    heur_names = [k for k in outcomes if k not in (learned, "no_markdown")]
    if not heur_names:
        raise DataError("no heuristic baseline is available to compare with")

    def profit(k: str) -> float:
        return outcomes[k].portfolio("profit")[0]

    best = max(heur_names, key=profit)
    chosen = learned
    if cfg.policy.recommend == "best" and profit(best) > profit(learned):
        chosen = best
    ordered = {"recommended": outcomes[chosen], "no_markdown": outcomes["no_markdown"]}
    ordered["best_heuristic"] = outcomes[best]
    ordered.update({k: v for k, v in outcomes.items() if k not in (chosen, best, "no_markdown")})
    rec.metrics = {f"{k}_profit": profit(k) for k in outcomes}
    rec.metrics.update({f"{k}_closed_loop_objective": v for k, v in closed.items()})
    rec.metrics["n_episodes"] = float(n_ep)
    rec.metrics["recommended_is_learned"] = float(chosen == learned)
    rec.detail = (
        f"{len(plans)} plans x {catalog.n_skus:,} SKUs x {n_ep} episodes; {learned} "
        f"{profit(learned):,.0f}, best heuristic {best} {profit(best):,.0f}, no markdown "
        f"{profit('no_markdown'):,.0f}; recommended: {chosen}"
    )
    return EvalOut(ordered, best, closed)


# ------------------------------------------------------------------------------ export
def shown_path(path: str, written_dir: str | Path, shown_dir: str | Path | None) -> str:
    """``path`` under ``shown_dir`` instead of ``written_dir`` (SQL table names unchanged)."""
    if shown_dir is None:
        return path
    try:
        return str(Path(shown_dir) / Path(path).relative_to(written_dir))
    except ValueError:
        return path


@dataclass
class ExportOut:
    """Where everything went."""

    exports: dict[str, str]
    report_path: Path
    alerts: dict[str, Path]
    summary: pd.DataFrame
    roi: dict[str, float]
    artifact_dirs: list[Path]


def export_stage(
    cfg: PipelineConfig,
    plan_key: str,
    data: IngestOut,
    scores: pd.DataFrame,
    selection: Selection,
    fitted: FitOut,
    evaluated: EvalOut,
    records: list[StageRecord],
    rec: StageRecord,
    shown_dir: str | Path | None = None,
) -> ExportOut:
    """Build every table, then write them (all computed before the first write), the
    per-category alerts and the report.

    ``cfg.out_dir`` is where they are written (the run's staging folder); ``shown_dir`` is
    where they will be once the run publishes them, the paths the report names.
    """
    from app.alerts import alerts_table, write_alerts
    from app.exports import (
        new_product_flags_table,
        schedules_table,
        sku_summary_table,
        write_tables,
    )
    from app.report import ReportInputs, write_report
    from app.stage_record import stages_frame
    from ingest.io import write_frame_atomic

    outcomes = evaluated.outcomes
    cat = fitted.catalog
    schedules = schedules_table(outcomes["recommended"], plan_key)
    summary = sku_summary_table(cat, scores, outcomes, plan_key)
    alerts = alerts_table(summary, schedules)
    flags = new_product_flags_table(
        scores, data.dataset.products, data.last_week, cfg.new_products, plan_key
    )
    tables = {
        "schedules": schedules,
        "sku_summary": summary,
        "alerts": alerts,
        "new_product_flags": flags,
    }
    written = write_tables(tables, cfg.out_dir, cfg.export)
    # The at-risk SKUs' fitted parameters, so what-ifs can replay the plan later
    # (deadstock simulate --catalog OUT/catalog.parquet --schedule OUT/schedules.csv --sku ...).
    written["catalog"] = str(
        write_frame_atomic(cat.to_frame(), Path(cfg.out_dir) / "catalog.parquet")
    )
    alert_files = write_alerts(
        alerts,
        cfg.out_dir,
        stock_assumption=fitted.stock_assumption,
        horizon_weeks=cfg.horizon_weeks,
        n_episodes=cfg.n_episodes,
        ci_level=cfg.evaluation.ci_level,
    )
    stage_tab = stages_frame(records)
    # The risk distribution of the SKUs the label applies to (already-dead SKUs all score ~1).
    est = scores[scores["sku"].astype(str).isin(established_skus(data.panel))]
    inputs = ReportInputs(
        scores=est,
        selected=list(np.asarray(cat.sku, dtype=str)),
        selection_rule=selection.rule,
        outcomes=outcomes,
        catalog_frame=cat.to_frame(),
        stock_assumption=fitted.stock_assumption,
        n_episodes=cfg.n_episodes,
        ci_level=cfg.evaluation.ci_level,
        horizon_weeks=cfg.horizon_weeks,
        stages=stage_tab[stage_tab["status"] != "pending"],
        exports={k: shown_path(v, cfg.out_dir, shown_dir) for k, v in written.items()},
        notes=[f"best heuristic: {evaluated.best_heuristic}", *fitted.notes, *data.notes],
        title=f"deadstock run report ({'quick' if cfg.quick else 'full'}, {data.dataset.source})",
    )
    report_path, roi = write_report(inputs, cfg.out_dir)
    rec.metrics = {f"rows_{k}": float(len(v)) for k, v in tables.items()}
    rec.metrics["n_alert_reports"] = float(len(alert_files))
    rec.detail = f"{len(schedules):,} schedule rows, {len(alert_files)} category alerts"
    out = Path(cfg.out_dir)
    return ExportOut(
        exports=written,
        report_path=report_path,
        alerts=alert_files,
        summary=summary,
        roi=roi,
        artifact_dirs=[out / "report", out / "alerts"],
    )
