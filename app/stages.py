"""The stage functions of the main job (see :mod:`app.pipeline` for the order).

Each stage is a typed function of the pipeline config and the previous stages' values; it
fills a :class:`~app.stage_record.StageRecord` (metrics, one-line detail) and returns its
value. The market arithmetic, the rules, the policies and the risk model all live in their
own packages; these functions only call them.

How a policy becomes an exported schedule: see :mod:`planning.from_policy`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.policy import Policy
from app.engine import Engine
from app.pipeline_config import PipelineConfig
from app.stage_record import StageRecord
from envs.config import RulesConfig
from ingest.errors import DataError
from ingest.panel import MAX_DISCOUNT_DEPTH
from planning.outcomes import Outcome, SimulationSettings
from planning.recommend import Recommendation, recommend
from planning.selection import RECOMMENDED_NAME
from risk_model.labels import LabelConfig
from simulator.demand import Catalog

log = logging.getLogger(__name__)


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
        Hash of the data fingerprint and every setting that decides the model: a champion
        registered with the same key scores exactly as a new model would.
    note : str
        One sentence for the report when the scores are not a model trained by this run.
    """

    scores: pd.DataFrame
    source: str
    fit_key: str
    result: Any = None
    note: str = ""


def _risk_config(cfg: PipelineConfig, seed: int) -> Any:
    """The model's settings of ``cfg.risk`` (a plain :class:`~risk_model.scoring.RiskConfig`:
    the run's backtest and fallback switches do not change a model) with the stage's seed."""
    from risk_model.scoring import RiskConfig

    risk = replace(cfg.risk, seed=int(seed % (2**31)))
    return RiskConfig(**{f.name: getattr(risk, f.name) for f in fields(RiskConfig)})


def _risk_backtest(
    cfg: PipelineConfig, data: IngestOut, risk_cfg: Any, metrics: dict[str, float]
) -> str:
    """The time-split backtest one label horizon before the last observable test cutoff
    (``test = last week - horizon``, ``train = test - horizon``, unless
    ``risk.backtest_*_cutoff`` are set); skipped, with a note, when the data is too short or
    has no positive at the test cutoff. Returns the note."""
    import mlflow

    from risk_model.backtest import BacktestConfig, json_rows, run_backtest

    if not cfg.risk.backtest:
        return "backtest off (risk.backtest = false)"
    label, models = risk_cfg.label, risk_cfg.models
    h = label.horizon_weeks
    test_cutoff = cfg.risk.backtest_test_cutoff
    test_cutoff = data.last_week - h if test_cutoff is None else test_cutoff
    train_cutoff = cfg.risk.backtest_train_cutoff
    train_cutoff = test_cutoff - h if train_cutoff is None else train_cutoff
    if train_cutoff < int(data.panel["week"].min()) + label.lookback_weeks:
        return f"backtest skipped: {data.last_week} weeks are too few for two horizons"
    bt_cfg = BacktestConfig(
        **risk_cfg.setup(),
        train_cutoff=train_cutoff,
        test_cutoff=test_cutoff,
        n_bootstrap=cfg.risk.n_bootstrap,
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
    best = max((r for r in bt.rows if r["model"] in models), key=lambda r: r.get("pr_auc", 0))
    return (
        f"backtest {train_cutoff}->{test_cutoff}: {best['model']} ROC-AUC "
        f"{best['roc_auc']:.3f}, PR-AUC {best['pr_auc']:.3f}"
    )


def _tier_counts(scores: pd.DataFrame, metrics: dict[str, float]) -> str:
    """Count the scored, established and per-tier SKUs into ``metrics``; returns the counts
    as words for the stage detail. Tiers mean something only where the label applies
    (established SKUs): they are counted there, as the selection and the report do."""
    metrics["n_scored"] = float(len(scores))
    est = (
        scores["established"].astype(bool)
        if "established" in scores.columns
        else pd.Series(True, index=scores.index)
    )
    metrics["n_established"] = float(est.sum())
    for tier in ("high", "medium", "low"):
        metrics[f"n_{tier}"] = float(((scores["tier"] == tier) & est).sum())
    return f"{int(est.sum()):,} established, {int(metrics['n_high']):,} of them high"


def risk_stage(
    cfg: PipelineConfig,
    data: IngestOut,
    seed: int,
    rec: StageRecord,
    engine: Engine | None = None,
) -> RiskOut:
    """Score every SKU's dead-stock risk: with the registered champion when it was trained on
    this data with these settings, else with models trained here, else (too few positives
    to train and validate a model) with the rule baseline.

    The models train here; the scoring (risk and top drivers) runs in blocks of
    ``cfg.risk.block_skus`` SKUs on ``engine`` (default: this process), the model loaded
    once per worker. The blocks change no score.

    Every setting is ``cfg.risk`` (:class:`~app.pipeline_config.RiskStageConfig`): the label,
    the features (price-change features are off by default: the retailer's own clearance
    would make the score circular for the markdown plan), the models, the cutoffs, the
    backtest (:func:`_risk_backtest`), ``reuse_champion``, ``min_positives`` and
    ``fallback``.
    """
    from experiments.risk_runs import load_fitting_champion, risk_fit_key
    from risk_model.rule import RULE_NAME, rule_scores
    from risk_model.scoring import train_and_score

    risk_cfg = _risk_config(cfg, seed)
    fit_key = risk_fit_key(data.fingerprint, risk_cfg)
    metrics: dict[str, float] = {}
    blocked: dict[str, Any] = {"block_skus": cfg.risk.block_skus}
    if engine is not None:
        blocked["map_blocks"] = engine.map_blocks
    if cfg.risk.reuse_champion:
        champ, why = load_fitting_champion(fit_key, data.dataset, data.panel, risk_cfg, **blocked)
        if champ is not None:
            counts = _tier_counts(champ, metrics)
            rec.metrics = {**metrics, "loaded_champion": 1.0}
            rec.detail = f"{len(champ):,} SKUs scored by the {why}; {counts}"
            log.info("risk: loaded the %s instead of training", why)
            return RiskOut(champ, "champion", fit_key, note=f"risk scores from the {why}")
    backtest_note = _risk_backtest(cfg, data, risk_cfg, metrics)
    why_rule = ""
    result = None
    try:
        trained = train_and_score(data.dataset, data.panel, risk_cfg, **blocked)
    except DataError as err:
        if cfg.risk.fallback != "rule":
            raise
        why_rule = str(err)
    else:
        n_pos = int(trained.info["n_train_pos"]) + int(trained.info["n_val_pos"])
        if n_pos < cfg.risk.min_positives and cfg.risk.fallback == "rule":
            why_rule = (
                f"only {n_pos} positive labelled row(s), fewer than [risk] min_positives = "
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
            f"because no model could be trained: {why_rule.rstrip('.')}. More history, more "
            "SKUs, a shorter [risk.label] horizon_weeks or another [risk.label] kind give a model."
        )
        scores = rule.scores.assign(sku=rule.scores["sku"].astype(str))
        counts = _tier_counts(scores, metrics)
        rec.metrics = {
            **metrics,
            "rule_fallback": 1.0,
            "n_labelled_positive": float(rule.n_positive),
        }
        rec.detail = (
            f"{len(scores):,} SKUs scored by the rule baseline {RULE_NAME}; {counts} "
            f"(no model: {why_rule})"
        )
        log.warning("risk: %s", note)
        return RiskOut(scores, "rule", fit_key, note=note)
    scores = result.scores.assign(sku=result.scores["sku"].astype(str))
    champ_val = result.validation[result.champion]
    metrics.update({f"val_{m}": float(champ_val[m]) for m in ("roc_auc", "pr_auc", "brier")})
    counts = _tier_counts(scores, metrics)
    rec.metrics = metrics
    rec.detail = (
        f"{len(scores):,} SKUs scored by {result.champion} (validation PR-AUC "
        f"{champ_val['pr_auc']:.3f}); {counts}" + (f"; {backtest_note}" if backtest_note else "")
    )
    return RiskOut(scores, "trained", fit_key, result=result)


# ------------------------------------------------------------------------------ select
@dataclass
class Selection:
    """The at-risk SKUs, riskiest first, the rule that picked them, and the counts behind it.

    Attributes
    ----------
    skus : list of str
    rule : str
    n_scored : int
        SKUs the risk model scored (every SKU with sales history).
    established : set of str
        The scored SKUs the risk label applies to (see :func:`established_skus`); only they
        have a tier.
    tier_counts : dict of str to int
        Established SKUs per tier.
    """

    skus: list[str]
    rule: str
    n_scored: int = 0
    established: set[str] = field(default_factory=set)
    tier_counts: dict[str, int] = field(default_factory=dict)


def established_skus(panel: pd.DataFrame, label: LabelConfig | None = None) -> set[str]:
    """SKUs the dead-stock label applies to at the last week: at least ``min_units`` units and
    ``min_active_weeks`` selling weeks in the last ``lookback_weeks`` weeks (the risk label's
    own definition, ``label``, the run's ``risk.label``). A SKU that has already stopped
    selling is dead stock already, not at risk of becoming it, and has no recent velocity to
    plan from."""
    lab = label or LabelConfig()
    last = int(panel["week"].max())
    recent = panel[panel["week"] > last - lab.lookback_weeks]
    g = recent.assign(active=recent["units"] > 0).groupby("sku", observed=True)
    units, active = g["units"].sum(), g["active"].sum()
    ok = (units >= lab.min_units) & (active >= lab.min_active_weeks)
    return set(units.index[ok.to_numpy()].astype(str))


def select_stage(
    cfg: PipelineConfig, scores: pd.DataFrame, rec: StageRecord, panel: pd.DataFrame
) -> Selection:
    """The at-risk SKUs, riskiest first: established SKUs (the scores' ``established`` column,
    else :func:`established_skus`) selected by threshold when set, else by tier; capped at
    ``max_skus``. Only established SKUs count towards tiers."""
    sel = cfg.selection
    sku = scores["sku"].astype(str)
    if "established" in scores.columns:
        established = scores["established"].astype(bool)
    else:
        established = sku.isin(established_skus(panel, cfg.risk.label))
    tier_counts = {
        t: int(((scores["tier"].astype(str) == t) & established).sum())
        for t in ("high", "medium", "low")
    }
    if sel.threshold is not None:
        mask = established & (scores["risk"].astype(float) >= sel.threshold)
        rule = f"established SKUs with risk >= {sel.threshold:g}"
    else:
        mask = established & scores["tier"].astype(str).isin(sel.tiers)
        rule = f"established SKUs in tier {list(sel.tiers)}"
    chosen = scores[mask].sort_values(["risk", "sku"], ascending=[False, True])
    n_eligible = len(chosen)
    cap = sel.max_skus
    if cap is not None and len(chosen) > cap:
        chosen = chosen.head(cap)
        rule += f", the {cap} riskiest of {n_eligible:,}"
    if chosen.empty:
        raise DataError(
            f"no SKU is at risk by the selection rule ({rule}); lower selection.threshold or "
            f"add tiers (the scores range {scores['risk'].min():.2f}..{scores['risk'].max():.2f})"
        )
    n_est = int(established.sum())
    rec.metrics = {
        "n_scored": float(len(scores)),
        "n_established": float(n_est),
        **{f"n_established_{t}": float(n) for t, n in tier_counts.items()},
        "n_eligible": float(n_eligible),
        "n_selected": float(len(chosen)),
        "mean_risk": float(chosen["risk"].mean()),
    }
    rec.detail = (
        f"{len(chosen):,} at-risk SKUs ({rule}); {len(scores):,} SKUs scored, {n_est:,} "
        f"established ({', '.join(f'{n:,} {t}' for t, n in tier_counts.items())})"
    )
    return Selection(
        chosen["sku"].astype(str).tolist(),
        rule,
        n_scored=len(scores),
        established=set(sku[established.to_numpy()]),
        tier_counts=tier_counts,
    )


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


_SUPERSEDED_FIT_NOTES = ("fit.stock.weeks_of_cover", "fit.stock.holding_cost_share_per_week")
"""Setting names cited by the demand fit's notes on stock and holding cost: the run states its
own stock assumption (``StockAssumptions.describe``), so those notes are left out."""


def fit_notes(notes: list[str], n_planned: int, n_fitted: int, cfg: PipelineConfig) -> list[str]:
    """The demand fit's notes for the report: scoped to the SKUs fitted (the planned ones
    and their category peers), setting names as the run config's keys, and without the notes
    the run's stock assumption replaces."""
    from app.presentation import readable_note

    scope = (
        f"demand fit of {n_fitted:,} SKUs (the {n_planned:,} planned and up to "
        f"{cfg.fit.peers_per_category} peers per category, for pooling): "
    )
    return [
        scope + readable_note(n)
        for n in notes
        if not any(name in n for name in _SUPERSEDED_FIT_NOTES)
    ]


def fit_stage(
    cfg: PipelineConfig,
    data: IngestOut,
    scores: pd.DataFrame,
    selection: Selection,
    seed: int,
    rec: StageRecord,
    engine: Engine | None = None,
) -> FitOut:
    """Fit the demand of the selected SKUs' categories (so elasticities pool within the
    category) with ``cfg.fit`` and keep the selected SKUs, with the stock the plan starts
    from (the source's stock table, else the assumption ``cfg.fit.stock``).

    Each category group's GLM runs as one task on ``engine`` (default: this process); the
    pooling of the elasticities across categories runs here afterwards."""
    from simulator.fit import fit_catalog

    panel = data.panel
    selected = selection.skus
    sub = fit_panel(panel, selected, cfg.fit.peers_per_category)
    notes: list[str] = []
    for col in ("coupon_depth", "discount_depth"):
        if col in sub.columns and (sub[col] > MAX_DISCOUNT_DEPTH).any():
            # Real data has coupons worth more than the list price (Complete Journey); the
            # demand model's depths live in [0, MAX_DISCOUNT_DEPTH].
            n_big = int((sub[col] > MAX_DISCOUNT_DEPTH).sum())
            sub = sub.assign(**{col: sub[col].clip(upper=MAX_DISCOUNT_DEPTH)})
            notes.append(
                f"{n_big} panel row(s) had {col} > {MAX_DISCOUNT_DEPTH}; clipped to "
                f"{MAX_DISCOUNT_DEPTH} for the fit"
            )
    result = fit_catalog(
        sub,
        cfg.fit,
        products=data.dataset.products,
        map_tasks=engine.run_tasks if engine is not None else None,
    )
    cat = result.catalog
    pos = pd.Series(np.arange(cat.n_skus), index=pd.Index(np.asarray(cat.sku, dtype=str)))
    have = [k for k in selected if k in pos.index]
    dropped = len(selected) - len(have)
    if not have:
        raise DataError("none of the at-risk SKUs could be fitted (none sold in the panel)")
    cat = cat.take(pos.loc[have].to_numpy())
    risk = scores.set_index("sku")["risk"].reindex(have).to_numpy(dtype=float)
    cat = cat.replace(risk_score=risk)
    if "on_hand" in panel.columns and panel["on_hand"].notna().any():
        assumption = "on-hand stock from the source's stock table (last known level)"
    else:
        assumption = cfg.fit.stock.describe()
    notes += fit_notes(result.notes, cat.n_skus, result.catalog.n_skus, cfg)
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

    from agents.fluid import hint_dim
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
    from agents.ppo import PPOPolicy, train_ppo

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
    ppo_cfg = replace(cfg.ppo, seed=seed % (2**31), horizon_range=(h, h))
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
    """Simulated outcomes of the recommended plan, doing nothing, and every candidate."""

    outcomes: dict[str, Outcome]
    best_heuristic: str
    closed_loop: dict[str, float]
    no_demand: np.ndarray
    """SKUs (catalog order) with no demand at any allowed price: no markdown for them."""
    recommendation: Recommendation | None = None
    """The per-SKU choice (winners, margins, gain over the best single planner) and the
    value of weekly re-planning."""


def heuristic_policies(cfg: PipelineConfig) -> list[Policy]:
    """The heuristic baselines the recommended policy is compared with."""
    from agents.baselines import default_baselines

    # The DP is the exact optimum, not a heuristic; no-markdown is simulated separately.
    return [p for p in default_baselines(include_dp=False) if p.name != "no_markdown"]


def evaluate_stage(
    cfg: PipelineConfig,
    catalog: Catalog,
    policy: PolicyOut,
    seed: int,
    rec: StageRecord,
    engine: Engine | None = None,
) -> EvalOut:
    """Plan every candidate and choose each SKU's plan (:func:`planning.recommend.recommend`).

    The evaluation paths are those of :func:`planning.outcomes.simulation_seed` of the run's
    seed, as in the what-if, so ``deadstock simulate --sku`` reproduces a SKU's row of
    ``sku_summary``; the choice is made on other paths (the selection seed). SKUs with no
    demand at any allowed price get no markdown in every plan.

    The candidates are planned, and their plans simulated for the choice, in blocks of
    ``cfg.evaluation.block_skus`` SKUs on ``engine`` (default: this process), the policies
    loaded once per worker (:mod:`app.blocks`).
    """
    from app.blocks import BlockSimulator, plan_candidates_in_blocks
    from app.engine import LocalEngine

    plan_seed = int(np.random.SeedSequence(seed).generate_state(1)[0])
    ev = cfg.evaluation
    settings = SimulationSettings(cfg.seed, ev.n_episodes, ev.draw_parameters, ev.ci_level)
    heuristics = heuristic_policies(cfg)
    engine = engine or LocalEngine()
    candidates = plan_candidates_in_blocks(
        engine,
        catalog,
        policy.policy,
        heuristics,
        cfg.rules,
        cfg.horizon_weeks,
        seed=plan_seed,
        block_skus=ev.block_skus,
        qmdp_grid=ev.qmdp_grid if ev.draw_parameters else 0,
    )
    found = recommend(
        catalog,
        policy.policy,
        heuristics,
        cfg.rules,
        cfg.horizon_weeks,
        plan_seed=plan_seed,
        settings=settings,
        per_sku=cfg.policy.recommend == "best",
        candidates=candidates,
        simulate=BlockSimulator(engine, ev.block_skus),
    )
    no_demand = found.no_demand
    outcomes = found.choice.outcomes
    heur_names = [p.name for p in heuristics if p.name in outcomes]
    if not heur_names:
        raise DataError("no heuristic baseline is available to compare with")

    def profit(k: str) -> float:
        return outcomes[k].portfolio("profit")[0]

    best = max(heur_names, key=profit)
    ordered = {"recommended": found.choice.recommended, "no_markdown": outcomes["no_markdown"]}
    ordered["best_heuristic"] = outcomes[best]
    shown = (RECOMMENDED_NAME, "no_markdown", best)
    ordered.update({k: v for k, v in outcomes.items() if k not in shown})
    rec.metrics = {f"{k}_profit": profit(k) for k in outcomes}
    rec.metrics.update({f"{k}_closed_loop_objective": v for k, v in found.closed_loop.items()})
    rec.metrics.update(found.metrics())
    rec.metrics["n_episodes"] = float(settings.n_episodes)
    rec.metrics["n_no_demand"] = float(no_demand.sum())
    for line in found.describe(cfg.export.currency):
        log.info("[evaluate] %s", line)
    wins = ", ".join(f"{k} {v}" for k, v in found.choice.wins().items() if v)
    rec.detail = (
        f"{len(outcomes) - 1} plans x {catalog.n_skus:,} SKUs x {settings.n_episodes} episodes; "
        f"per-SKU choice {profit(RECOMMENDED_NAME):,.0f} (wins: {wins}), best heuristic {best} "
        f"{profit(best):,.0f}, no markdown {profit('no_markdown'):,.0f}"
        + (
            f"; {int(no_demand.sum())} SKU(s) with no demand at any price"
            if no_demand.any()
            else ""
        )
    )
    return EvalOut(ordered, best, found.closed_loop, no_demand, found)


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
    engine: Engine | None = None,
) -> ExportOut:
    """Build every table, then write them (all computed before the first write), the
    per-category alerts, the simulation settings and the report.

    ``cfg.out_dir`` is where they are written (the run's staging folder); ``shown_dir`` is
    where they will be once the run publishes them, the paths the report names. The
    ``schedules`` and ``sku_summary`` tables are built in blocks of
    ``cfg.evaluation.block_skus`` SKUs on ``engine`` (default: this process) and joined in
    block order (:func:`app.exports.plan_tables`: the same bytes whatever the blocks).
    """
    import time

    from app.alerts import alerts_table, write_alerts
    from app.exports import NOT_ESTABLISHED, new_product_flags_table, plan_tables, write_tables
    from app.presentation import TableContext, plan_week_starts, product_labels, readable_note
    from app.report import ReportInputs, write_report
    from app.stage_record import stages_frame
    from app.whatif import write_simulation_settings
    from ingest.io import write_frame_atomic
    from planning.outcomes import SimulationSettings

    t0 = time.perf_counter()
    outcomes = evaluated.outcomes
    cat = fitted.catalog
    settings = SimulationSettings(
        seed=cfg.seed,
        n_episodes=cfg.evaluation.n_episodes,
        draw_parameters=cfg.evaluation.draw_parameters,
        ci_level=cfg.evaluation.ci_level,
    )
    products = data.dataset.products
    week_starts = plan_week_starts(data.dataset.get("calendar"), data.last_week, cfg.horizon_weeks)
    ctx = TableContext(
        currency=cfg.export.currency,
        labels=product_labels(products),
        week_starts=week_starts,
        settings=settings,
    )
    # Only established SKUs have a tier; the others show that they are not established.
    shown = scores.assign(sku=scores["sku"].astype(str))
    shown = shown.assign(
        tier=shown["tier"].astype(str).where(shown["sku"].isin(selection.established),
                                             NOT_ESTABLISHED),
        established=shown["sku"].isin(selection.established),
    )  # fmt: skip
    found = evaluated.recommendation
    schedules, summary = plan_tables(
        cat,
        shown,
        outcomes,
        plan_key,
        ctx,
        no_demand=evaluated.no_demand,
        choice=found.choice if found else None,
        engine=engine,
        block_skus=cfg.evaluation.block_skus,
    )
    alerts = alerts_table(summary)
    flags, n_matching = new_product_flags_table(
        shown,
        products,
        data.panel,
        data.last_week,
        cfg.new_products,
        plan_key,
        ctx,
        exclude=set(np.asarray(cat.sku, dtype=str)),
        weeks_of_cover=cfg.fit.stock.weeks_of_cover,
        velocity_weeks=cfg.fit.stock.velocity_weeks,
    )
    tables = {
        "schedules": schedules,
        "sku_summary": summary,
        "alerts": alerts,
        "new_product_flags": flags,
    }
    written = write_tables(tables, cfg.out_dir, cfg.export)
    # The at-risk SKUs' fitted parameters and the simulation settings, so what-ifs replay the
    # plan later with the same numbers (deadstock simulate --sku ... reads them beside the
    # schedules).
    written["catalog"] = str(
        write_frame_atomic(cat.to_frame(), Path(cfg.out_dir) / "catalog.parquet")
    )
    written["simulation"] = str(write_simulation_settings(settings, cfg.out_dir))
    alert_files = write_alerts(
        alerts,
        cfg.out_dir,
        stock_assumption=fitted.stock_assumption,
        horizon_weeks=cfg.horizon_weeks,
        simulation=settings.describe(),
    )
    # The export stage is still running while its report is written: say so, with its time
    # so far, rather than leave it out.
    stage_tab = stages_frame(records)
    is_export = stage_tab["stage"] == rec.name
    stage_tab.loc[is_export, "status"] = "running (report written)"
    stage_tab.loc[is_export, "seconds"] = round(time.perf_counter() - t0, 1)
    n_planned = cat.n_skus
    notes = [
        f"best heuristic: {evaluated.best_heuristic}",
        f"new-product flags: {n_matching:,} products match ({cfg.new_products.describe()}); "
        f"{len(flags):,} listed",
        *fitted.notes,
        *(readable_note(n) for n in data.notes),
    ]
    if week_starts:
        notes.append(f"plan week 1 starts on {week_starts[0]} (the week after the data's last)")
    inputs = ReportInputs(
        scores=shown,
        selected=list(np.asarray(cat.sku, dtype=str)),
        selection_rule=selection.rule
        + (
            f"; {len(selection.skus) - n_planned} could not be fitted"
            if len(selection.skus) > n_planned
            else ""
        ),
        outcomes=outcomes,
        catalog_frame=cat.to_frame(),
        stock_assumption=fitted.stock_assumption,
        simulation=settings.describe(),
        horizon_weeks=cfg.horizon_weeks,
        stages=stage_tab[stage_tab["status"] != "pending"],
        ci_level=cfg.evaluation.ci_level,
        summary=summary,
        currency=cfg.export.currency,
        exports={k: shown_path(v, cfg.out_dir, shown_dir) for k, v in written.items()},
        notes=notes,
        title=f"deadstock run report ({'quick' if cfg.quick else 'full'}, {data.dataset.source})",
        recommendation=found.describe(cfg.export.currency) if found else (),
    )
    report_path, roi = write_report(inputs, cfg.out_dir)
    rec.metrics = {f"rows_{k}": float(len(v)) for k, v in tables.items()}
    rec.metrics["n_alert_reports"] = float(len(alert_files))
    rec.metrics["n_new_product_matches"] = float(n_matching)
    rec.metrics["n_below_cost"] = float((summary["weeks_below_cost"] > 0).sum())
    rec.detail = (
        f"{len(schedules):,} schedule rows, {len(alert_files)} category alerts, "
        f"{len(flags):,} new-product flags of {n_matching:,} matches"
    )
    out = Path(cfg.out_dir)
    return ExportOut(
        exports=written,
        report_path=report_path,
        alerts=alert_files,
        summary=summary,
        roi=roi,
        artifact_dirs=[out / "report", out / "alerts"],
    )
