"""Coupon targeting in the application: the at-risk SKUs of each cutoff (the risk model's
selection with data up to that cutoff, as the run selects them), the time-split evaluation of
the targeting models (:mod:`targeting`), and the target lists of a plan's coupons.

The commands (``deadstock coupons evaluate|target``) and the run's export call these
functions; MLflow logging is :mod:`experiments.coupon_runs`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from app.pipeline_config import PipelineConfig
from app.stage_record import StageRecord
from ingest.dataset import Dataset
from ingest.errors import DataError
from targeting.config import TargetingConfig
from targeting.interactions import baskets_of, build_interactions
from targeting.models import make_model
from targeting.targets import TARGET_COLUMNS, expected_reach, past_buyers, target_lists
from targeting.timesplit import TimeSplit, run_time_split

log = logging.getLogger(__name__)

COUPON_TARGET_COLUMNS = (*TARGET_COLUMNS, "week", "expected_reach")
SCHEDULE_FILES = ("schedules.csv", "schedules.parquet")


def at_risk_at(
    dataset: Dataset, panel: pd.DataFrame, cutoff: int, cfg: PipelineConfig
) -> list[str]:
    """The SKUs the run would select as at risk at ``cutoff``: the risk model of ``cfg.risk``
    trained and scored with data up to the cutoff (the rule baseline where it cannot train),
    then ``cfg.selection``'s rule (tiers or threshold, established SKUs, the cap)."""
    from app.stages import select_stage
    from risk_model.rule import rule_scores
    from risk_model.scoring import RiskConfig, train_and_score

    risk = RiskConfig(**{f.name: getattr(cfg.risk, f.name) for f in fields(RiskConfig)})
    risk = replace(risk, score_cutoff=int(cutoff), seed=int(cfg.seed % (2**31)))
    upto = panel[panel["week"] <= cutoff]
    try:
        scores = train_and_score(dataset, upto, risk).scores
    except DataError as err:
        log.warning(
            "coupons: no risk model at cutoff %d (%s); using the rule baseline", cutoff, err
        )
        scores = rule_scores(dataset, upto, risk).scores
    scores = scores.assign(sku=scores["sku"].astype(str))
    return select_stage(cfg, scores, StageRecord("select"), upto).skus


def load_redemptions(dataset: Dataset) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The recorded coupon redemptions of a Complete Journey source (``None``s for other
    sources, which record none)."""
    from ingest.completejourney import SOURCE_NAME, load_coupon_redemptions

    calendar = dataset.get("calendar")
    if dataset.source != SOURCE_NAME or calendar is None:
        return None, None
    red = load_coupon_redemptions(calendar)
    return red.redemptions, red.coupon_products


@dataclass
class CouponEvaluation:
    """A time split with the at-risk SKUs it was run on."""

    split: TimeSplit
    at_risk: dict[int, list[str]]
    cutoffs: tuple[int, ...]


def evaluate_coupons(
    dataset: Dataset, panel: pd.DataFrame, cfg: PipelineConfig
) -> CouponEvaluation:
    """Select the at-risk SKUs at each cutoff of ``cfg.coupons`` and compare the targeting
    models on them (:func:`targeting.timesplit.run_time_split`)."""
    baskets = baskets_of(dataset)
    tc = cfg.coupons
    cutoffs = tc.default_cutoffs(int(baskets["week"].max()))
    at_risk = {}
    for c in cutoffs:
        at_risk[c] = at_risk_at(dataset, panel, c, cfg)
        log.info("coupons: %d SKUs at risk at cutoff %d", len(at_risk[c]), c)
    redemptions, coupon_products = load_redemptions(dataset)
    split = run_time_split(
        baskets,
        at_risk,
        tc,
        products=dataset.products,
        redemptions=redemptions,
        coupon_products=coupon_products,
    )
    return CouponEvaluation(split, at_risk, cutoffs)


def read_plan_schedules(plan: str | Path) -> pd.DataFrame:
    """The ``schedules`` table of a run's output folder (CSV or Parquet export)."""
    folder = Path(plan)
    for name in SCHEDULE_FILES:
        path = folder / name
        if path.is_file():
            frame = (
                pd.read_csv(path, dtype={"sku": str})
                if path.suffix == ".csv"
                else pd.read_parquet(path)
            )
            missing = [c for c in ("sku", "week", "coupon") if c not in frame.columns]
            if missing:
                raise DataError(f"{path}: column(s) {missing} missing; expected a run's schedules")
            return frame.assign(sku=frame["sku"].astype(str))
    raise DataError(
        f"no schedules in {str(folder)!r} (looked for {list(SCHEDULE_FILES)}); give the output "
        "folder of a `deadstock run`"
    )


def coupon_targets(
    dataset: Dataset,
    schedules: pd.DataFrame,
    tc: TargetingConfig,
    per_sku: pd.DataFrame,
    model: str,
) -> pd.DataFrame:
    """The target households of every coupon in ``schedules``.

    ``model`` is fitted on every basket line of the data (the plan starts after it), each
    SKU with a coupon gets its top ``tc.k`` households, repeated for each of its coupon
    weeks, and the expected reach from ``per_sku`` (the time split's recall@k of ``model``).

    Returns
    -------
    DataFrame
        :data:`COUPON_TARGET_COLUMNS`, sorted by sku, week and rank; empty when no schedule
        uses a coupon.
    """
    weeks = schedules.loc[schedules["coupon"].astype(float) > 0, ["sku", "week"]]
    if weeks.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COUPON_TARGET_COLUMNS})
    baskets = baskets_of(dataset)
    inter = build_interactions(baskets, int(baskets["week"].max()), dataset.products)
    fitted = make_model(model, **tc.model_params(model)).fit(inter)
    skus = sorted(weeks["sku"].astype(str).unique())
    lists = target_lists(fitted, skus, tc.k)
    reach = pd.Series(expected_reach(per_sku, model, tc.k, past_buyers(inter, skus)), index=skus)
    lists["expected_reach"] = lists["sku"].map(reach).to_numpy(dtype=float)
    out = lists.merge(weeks.drop_duplicates(), on="sku", how="inner")
    out = out.sort_values(["sku", "week", "rank"], kind="stable").reset_index(drop=True)
    return out[list(COUPON_TARGET_COLUMNS)]


def reach_by_sku(targets: pd.DataFrame) -> dict[str, float]:
    """Each targeted SKU's expected reach (to set ``Catalog.coupon_reach``)."""
    if targets.empty:
        return {}
    first = targets.drop_duplicates("sku")
    return dict(zip(first["sku"].astype(str), first["expected_reach"].astype(float), strict=True))


def reach_array(skus: np.ndarray, reach: dict[str, float]) -> np.ndarray:
    """``coupon_reach`` for a catalog's SKUs: the targeted ones' reach, 1.0 for the rest."""
    return np.array([reach.get(str(s), 1.0) for s in skus], dtype=float)


def coupons_stage(
    cfg: PipelineConfig, plan_key: str, dataset: Dataset, rec: StageRecord
) -> dict[str, str]:
    """The run's ``coupon_targets`` table, written beside its other exports when its
    schedules use coupons (a quick no-op otherwise): the target households of every coupon
    (:func:`coupon_targets`), from the model ``cfg.coupons.model`` chooses on a time split at
    the latest cutoff over the SKUs with coupons. Returns ``{"coupon_targets": target}``
    or nothing."""
    from app.exports import read_table, write_tables

    if len(cfg.rules.coupon_levels) < 2:
        rec.detail = "the rules allow no coupons: no targets"
        return {}
    schedules = read_table("schedules", cfg.out_dir, cfg.export).assign(
        sku=lambda f: f["sku"].astype(str)
    )
    skus = sorted(schedules.loc[schedules["coupon"].astype(float) > 0, "sku"].unique())
    if not skus:
        rec.detail = "no recommended schedule uses a coupon: no targets"
        return {}
    if dataset.get("baskets") is None:
        rec.detail = (
            f"{len(skus)} schedules use coupons, but the source has no household baskets: no "
            "targets (targeting needs households)"
        )
        log.warning("coupons: %s", rec.detail)
        return {}
    tc = cfg.coupons
    baskets = baskets_of(dataset)
    cutoff = tc.default_cutoffs(int(baskets["week"].max()))[-1]
    split = run_time_split(baskets, {cutoff: skus}, tc, products=dataset.products)
    targets = coupon_targets(dataset, schedules, tc, split.per_sku, split.chosen)
    targets.insert(0, "plan_key", plan_key)
    written = write_tables({"coupon_targets": targets}, cfg.out_dir, cfg.export)
    reach = targets.drop_duplicates("sku")["expected_reach"]
    rec.metrics = {
        "n_skus_with_coupons": float(len(skus)),
        "n_targets": float(len(targets)),
        "mean_expected_reach": float(reach.mean()),
    }
    rec.detail = (
        f"{len(targets):,} target households for {len(skus)} SKUs with coupons (model "
        f"{split.chosen}, k = {tc.k}, expected reach {reach.mean():.1%})"
    )
    return written
