"""The whole time-split comparison: every model at every cutoff on the SKUs at risk there,
the summary with intervals, the chosen model against the best baseline, the redemptions.

The at-risk SKUs of each cutoff are an input (the risk model's selection, made by the caller
with data up to that cutoff), so this package never reaches into :mod:`risk_model`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from ingest.errors import DataError
from targeting.config import AUTO, TargetingConfig
from targeting.evaluate import (
    evaluate_models,
    paired_difference,
    split_data,
    summary_rows,
)
from targeting.models import Targeter, make_model
from targeting.redemptions import redemption_rows

log = logging.getLogger(__name__)


@dataclass
class TimeSplit:
    """What :func:`run_time_split` found.

    Attributes
    ----------
    per_sku : DataFrame
        One row per (model, cutoff, SKU), see :func:`targeting.evaluate.evaluate_models`.
    rows : list of dict
        The table: ``{model, baseline, cutoff, k, recall, recall_ci, ndcg, ndcg_ci, n_skus,
        subset}``.
    chosen : str
        The model the target lists use.
    best_baseline : str
        The baseline with the highest recall@k.
    best_learned : str
        The model that is not a baseline with the highest recall@k (``chosen`` when every
        model is a baseline).
    differences : list of dict
        ``best_learned`` minus ``best_baseline`` on recall@k per cutoff, all SKUs and the
        cold end, with paired intervals (empty when one of them is missing).
    redemptions : list of dict
        Recall@k of the recorded coupon redeemers (empty without redemption data).
    n_at_risk : dict of int to int
        At-risk SKUs asked for per cutoff (those with a buyer in the window are scored).
    """

    per_sku: pd.DataFrame
    rows: list[dict[str, object]]
    chosen: str
    best_baseline: str
    best_learned: str
    differences: list[dict[str, object]] = field(default_factory=list)
    redemptions: list[dict[str, object]] = field(default_factory=list)
    n_at_risk: dict[int, int] = field(default_factory=dict)

    def seconds(self, cutoff: int | None = None) -> dict[str, float]:
        """Fit-and-score seconds of each model (all households x the cutoff's SKUs) at
        ``cutoff`` (default the latest)."""
        at = self.per_sku["cutoff"].max() if cutoff is None else cutoff
        part = self.per_sku[self.per_sku["cutoff"] == at]
        return {str(k): float(v) for k, v in part.groupby("model")["seconds"].first().items()}


def make_models(cfg: TargetingConfig) -> list[Targeter]:
    """The configured models, seeded."""
    return [make_model(name, **cfg.model_params(name)) for name in cfg.models]


def choose_model(rows: list[dict[str, object]], k: int, baseline: bool | None = None) -> str:
    """The model with the highest mean recall@k over the cutoffs (all SKUs), among the
    baselines (``baseline=True``), the others (``False``) or all (``None``); ``""`` when
    there is none."""
    table = pd.DataFrame(rows)
    at_k = table[(table["k"] == k) & (table["subset"] == "all")]
    if baseline is not None:
        at_k = at_k[at_k["baseline"] == baseline]
    if at_k.empty:
        return ""
    return str(at_k.groupby("model", sort=True)["recall"].mean().idxmax())


def run_time_split(
    baskets: pd.DataFrame,
    at_risk: Mapping[int, Sequence[str]],
    cfg: TargetingConfig,
    *,
    products: pd.DataFrame | None = None,
    redemptions: pd.DataFrame | None = None,
    coupon_products: pd.DataFrame | None = None,
) -> TimeSplit:
    """Evaluate every configured model at every cutoff of ``at_risk`` (cutoff -> SKUs).

    Raises
    ------
    DataError
        When no at-risk SKU of any cutoff has a buyer in its window.
    """
    frames = []
    red_rows: list[dict[str, object]] = []
    for cutoff in sorted(at_risk):
        data = split_data(baskets, cutoff, at_risk[cutoff], products, cfg.horizon_weeks)
        log.info(
            "coupons: cutoff %d: %d of %d at-risk SKUs bought in weeks %d-%d; %d households",
            cutoff,
            len(data.skus),
            len(at_risk[cutoff]),
            cutoff + 1,
            cutoff + cfg.horizon_weeks,
            data.interactions.n_households,
        )
        if not len(data.skus):
            continue
        models = make_models(cfg)
        frames.append(evaluate_models(data, models, cfg.eval_ks))
        if redemptions is not None and coupon_products is not None:
            red_rows += redemption_rows(
                models,
                data.interactions,
                redemptions,
                coupon_products,
                cfg.horizon_weeks,
                cfg.eval_ks,
                cfg.seed,
            )
    if not frames:
        raise DataError(
            f"no at-risk SKU has a buyer in the {cfg.horizon_weeks} weeks after cutoffs "
            f"{sorted(at_risk)}: nothing to score the targeting against"
        )
    per_sku = pd.concat(frames, ignore_index=True)
    rows = summary_rows(per_sku, cfg.eval_ks, cfg.seed, cfg.n_bootstrap)
    chosen = choose_model(rows, cfg.k) if cfg.model == AUTO else cfg.model
    best = choose_model(rows, cfg.k, baseline=True)
    learned = choose_model(rows, cfg.k, baseline=False)
    diffs: list[dict[str, object]] = []
    if best and learned:
        for subset in ("all", "cold"):
            diffs += paired_difference(
                per_sku,
                learned,
                best,
                f"recall@{cfg.k}",
                subset=subset,
                seed=cfg.seed,
                n_boot=cfg.n_bootstrap,
            )
    return TimeSplit(
        per_sku=per_sku,
        rows=rows,
        chosen=chosen,
        best_baseline=best,
        best_learned=learned or chosen,
        differences=diffs,
        redemptions=red_rows,
        n_at_risk={int(c): len(s) for c, s in at_risk.items()},
    )
