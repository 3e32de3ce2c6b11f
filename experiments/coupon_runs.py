"""MLflow runs of the coupon-targeting evaluation: the config, the table with intervals as
metrics (one batch), the plot, the JSON rows, the per-SKU results and the chosen model."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow

from experiments.tracking import log_metrics, run_name, start_run
from targeting.config import TargetingConfig
from targeting.evaluate import interval
from targeting.report import plot_recall
from targeting.timesplit import TimeSplit


def _name(model: object) -> str:
    """A model name as MLflow accepts it in a metric key (``repeat+als`` -> ``repeat_als``)."""
    return str(model).replace("+", "_")


def metric_dict(split: TimeSplit) -> dict[str, float]:
    """The evaluation as metrics: ``coupons/{subset}/c{cutoff}/{model}/recall_at_{k}`` (and
    ``ndcg_at_k``, the interval ends), the chosen model's difference to the best baseline
    and the fit-and-score seconds (MLflow keys allow no ``@`` or ``+``)."""
    out: dict[str, float] = {}
    for r in split.rows:
        key = f"coupons/{r['subset']}/c{r['cutoff']}/{_name(r['model'])}"
        for metric in ("recall", "ndcg"):
            lo, hi = interval(r[f"{metric}_ci"])
            out[f"{key}/{metric}_at_{r['k']}"] = float(r[metric])  # type: ignore[arg-type]
            out[f"{key}/{metric}_at_{r['k']}_lo"] = float(lo)
            out[f"{key}/{metric}_at_{r['k']}_hi"] = float(hi)
    for d in split.differences:
        key = f"coupons/{d['subset']}/c{d['cutoff']}/learned_vs_best_baseline"
        out[f"{key}/difference"] = float(d["difference"])  # type: ignore[arg-type]
        out[f"{key}/relative"] = float(d["relative"])  # type: ignore[arg-type]
    for r in split.redemptions:
        out[f"coupons/redemptions/c{r['cutoff']}/{_name(r['model'])}/recall_at_{r['k']}"] = float(
            r["recall"]  # type: ignore[arg-type]
        )
    for model, seconds in split.seconds().items():
        out[f"coupons/seconds/{_name(model)}"] = seconds
    return out


def log_evaluation(
    split: TimeSplit,
    cfg: TargetingConfig,
    *,
    data_source: str,
    data_fingerprint: str,
    out_dir: str | Path | None = None,
) -> str:
    """Log one evaluation run; returns its id. The plot and JSON files are written to
    ``out_dir`` (a temporary folder when omitted) and logged as artifacts."""
    folder = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="deadstock-coupons-"))
    with start_run(
        run_name("coupons-evaluate", split.chosen, cfg.seed),
        config=cfg,
        seed=cfg.seed,
        data_fingerprint=data_fingerprint,
        tags={
            "stage": "coupons-evaluate",
            "data_source": data_source,
            "chosen_model": split.chosen,
            "best_baseline": split.best_baseline,
            "best_learned": split.best_learned,
        },
    ) as run:
        log_metrics(metric_dict(split))
        plot = plot_recall(split.rows, folder / "coupons_recall_at_k.png")
        mlflow.log_artifact(str(plot), artifact_path="plots")
        mlflow.log_dict({"rows": split.rows}, "coupons_evaluation.json")
        mlflow.log_dict(
            {"differences": split.differences, "redemptions": split.redemptions},
            "coupons_comparison.json",
        )
        per_sku = folder / "coupons_per_sku.csv"
        split.per_sku.to_csv(per_sku, index=False)
        mlflow.log_artifact(str(per_sku), artifact_path="tables")
        model = {"name": split.chosen, "params": cfg.model_params(split.chosen)}
        mlflow.log_text(json.dumps(model, indent=2, default=str), "model/targeting_model.json")
        return str(run.info.run_id)
