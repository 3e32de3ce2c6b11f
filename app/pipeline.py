"""The main job, end to end: from sales history to exported schedules, alerts and a report.

:func:`run_pipeline` runs the stages in order, each a typed function of this module, under one
MLflow parent run with a nested run per stage:

1. ``ingest``: load, validate and clean the source; build the weekly panel;
2. ``risk``: backtest, train and score the dead-stock risk model;
3. ``select``: pick the at-risk SKUs (by tier or threshold);
4. ``fit``: fit their demand (a catalog) and set the stock the plan starts from;
5. ``policy``: load the registered champion policy when it fits, or train one;
6. ``evaluate``: simulate the policy's schedules and the baselines' on those SKUs;
7. ``export``: write the schedules, SKU summary, alerts, new-product flags and the report.

The stage functions live in :mod:`app.stages`; what each did is a
:class:`~app.stage_record.StageRecord`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from app.pipeline_config import PipelineConfig
from app.stage_record import StageRecord, stages_frame

log = logging.getLogger(__name__)

STAGE_NAMES = ("ingest", "risk", "select", "fit", "policy", "evaluate", "export")


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` returns."""

    config: PipelineConfig
    plan_key: str
    run_id: str
    stages: list[StageRecord]
    exports: dict[str, str]
    report_path: str
    alerts: dict[str, str]
    summary: pd.DataFrame
    roi: dict[str, float]
    stock_assumption: str

    def stage_table(self) -> pd.DataFrame:
        return stages_frame(self.stages)


def run_pipeline(cfg: PipelineConfig) -> PipelineResult:
    """Run every stage in order under one MLflow parent run (see the module docstring).

    Parameters
    ----------
    cfg : PipelineConfig

    Raises
    ------
    DataError, ConfigError
        For a bad source, an unwritable output folder or a bad config; nothing is exported.
    """
    import mlflow

    from app import stages as st
    from app.exports import check_export_target
    from experiments import tracking
    from ingest.loader import check_source

    check_source(cfg.data)
    check_export_target(cfg.out_dir, cfg.export)
    seeds = np.random.SeedSequence(cfg.seed).generate_state(len(STAGE_NAMES)).tolist()
    seed_of = dict(zip(STAGE_NAMES, (int(s) for s in seeds), strict=True))
    records = [StageRecord(n) for n in STAGE_NAMES]
    rec = {r.name: r for r in records}
    mode = "quick" if cfg.quick else "full"
    name = tracking.run_name("pipeline", f"{_label(cfg.data)}-{mode}", cfg.seed)
    log.info("[run] %s: %d stages, output in %s", name, len(STAGE_NAMES), cfg.out_dir)

    with tracking.start_run(
        name,
        tags={"kind": "pipeline", "mode": mode, "data_source": _label(cfg.data)},
        config=cfg,
        seed=cfg.seed,
        experiment=cfg.experiment,
    ) as parent:

        def stage(n: str, fn: Callable[[StageRecord], Any]) -> Any:
            r = rec[n]
            i = STAGE_NAMES.index(n) + 1
            log.info("[run %d/%d] %s ...", i, len(STAGE_NAMES), n)
            t0 = time.perf_counter()
            with tracking.start_run(f"{name}__{n}", nested=True, tags={"stage": n}):
                try:
                    out = fn(r)
                except BaseException:
                    r.status = "failed"
                    r.seconds = time.perf_counter() - t0
                    mlflow.set_tag("status", "failed")
                    log.error(
                        "[run %d/%d] %s failed after %.1f s", i, len(STAGE_NAMES), n, r.seconds
                    )
                    raise
                r.status = "ok"
                r.seconds = time.perf_counter() - t0
                tracking.log_metrics({f"{n}/{k}": v for k, v in r.metrics.items()})
                tracking.log_metrics({f"{n}/seconds": r.seconds})
                mlflow.set_tag("detail", r.detail[:500])
            log.info(
                "[run %d/%d] %s done in %.1f s: %s", i, len(STAGE_NAMES), n, r.seconds, r.detail
            )
            return out

        try:
            data = stage("ingest", lambda r: st.ingest_stage(cfg, r))
            mlflow.set_tag("data_fingerprint", data.fingerprint)
            plan_key = cfg.plan_key(data.fingerprint)
            mlflow.set_tag("plan_key", plan_key)
            scores = stage("risk", lambda r: st.risk_stage(cfg, data, seed_of["risk"], r))
            selected = stage("select", lambda r: st.select_stage(cfg, scores, r, data.panel))
            fitted = stage(
                "fit", lambda r: st.fit_stage(cfg, data, scores, selected, seed_of["fit"], r)
            )
            log.info("[run] stock assumption: %s", fitted.stock_assumption)
            policy = stage(
                "policy", lambda r: st.policy_stage(cfg, fitted.catalog, seed_of["policy"], r)
            )
            evaluated = stage(
                "evaluate",
                lambda r: st.evaluate_stage(cfg, fitted.catalog, policy, seed_of["evaluate"], r),
            )
            out = stage(
                "export",
                lambda r: st.export_stage(
                    cfg, plan_key, data, scores, selected, fitted, evaluated, records, r
                ),
            )
        finally:
            tracking.log_metrics({f"stage_seconds/{r.name}": r.seconds for r in records})
            mlflow.set_tag("stages", ", ".join(f"{r.name}={r.status}" for r in records))
        tracking.log_metrics(out.roi)
        for path in out.artifact_dirs:
            if path.is_dir():
                mlflow.log_artifacts(str(path), artifact_path=path.name)
        run_id = parent.info.run_id
    result = PipelineResult(
        config=cfg,
        plan_key=plan_key,
        run_id=run_id,
        stages=records,
        exports=out.exports,
        report_path=str(out.report_path),
        alerts={k: str(v) for k, v in out.alerts.items()},
        summary=out.summary,
        roi=out.roi,
        stock_assumption=fitted.stock_assumption,
    )
    log.info(
        "[run] done: schedules -> %s; report -> %s; MLflow run %s in %s",
        out.exports["schedules"],
        out.report_path,
        run_id,
        tracking.tracking_uri(),
    )
    return result


def _label(source: str) -> str:
    text = str(source).rstrip("/").split("/")[-1].split("?")[0]
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)[:40] or "data"
