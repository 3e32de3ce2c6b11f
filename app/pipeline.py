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
:class:`~app.stage_record.StageRecord`. The run's lifecycle: the MLflow store is checked and
the output folder locked before any work (:mod:`app.outputs`); the stages write into a
staging folder; the run then logs its plans and outputs and registers its models
(:mod:`app.run_record`), publishes the folder in one step (with the SQL exports), and only
then moves the ``champion`` aliases. SIGTERM or SIGINT end the MLflow runs as KILLED and
leave the previous output folder whole.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from app.pipeline_config import PipelineConfig
from app.stage_record import StageRecord, stages_frame

if TYPE_CHECKING:
    from app.engine import Engine
    from app.exports import PendingSql
    from app.outputs import RunOutput

log = logging.getLogger(__name__)

STAGE_NAMES = ("ingest", "risk", "select", "fit", "policy", "evaluate", "export", "coupons")


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
    recommendation: list[str] = field(default_factory=list)
    """The per-SKU choice in lines (wins per planner, gain over the best single planner,
    value of weekly re-planning)."""

    def stage_table(self) -> pd.DataFrame:
        return stages_frame(self.stages)


def run_pipeline(cfg: PipelineConfig) -> PipelineResult:
    """Run every stage in order under one MLflow parent run (see the module docstring).

    Everything is written into a staging folder beside ``cfg.out_dir``, which replaces the
    output folder in one step when every stage succeeded (:mod:`app.outputs`); SQL exports
    are committed with that step. A lock refuses a second run into the same folder.

    Parameters
    ----------
    cfg : PipelineConfig

    Raises
    ------
    DataError, ConfigError
        For a bad source, an output folder in use or not writable, an unusable MLflow store
        or a bad config; the previous output folder is left as it was.
    RunInterrupted
        On SIGTERM or SIGINT (a ``SystemExit`` with code 143 or 130); the MLflow runs end
        as KILLED and the previous output folder is left as it was.
    """
    from app.engine import make_engine
    from app.exports import check_export_target, deferred_sql
    from app.outputs import open_run_output
    from experiments import tracking
    from ingest.loader import check_source

    tracking.check_store()  # before any work: a bad store must not cost a whole run
    engine = make_engine(cfg.engine, ray_mode=cfg.ray_mode)  # a bad cluster, before any work
    check_source(cfg.data)  # a malformed database URL or a missing file, before the lock
    mode = "quick" if cfg.quick else "full"
    name = tracking.run_name("pipeline", f"{_label(cfg.data)}-{mode}", cfg.seed)
    with (
        tracking.ending_runs_on_signals(),
        open_run_output(cfg.out_dir, run_name=name) as output,
        deferred_sql() as sql,
    ):
        check_export_target(output.staging, cfg.export)
        tracking.setup(cfg.experiment)
        stale = output.previous
        if stale is not None and stale.mlflow_run_id:
            if tracking.end_stale_run(stale.mlflow_run_id):
                log.warning(
                    "[run] the %s was killed; its MLflow run is now KILLED", stale.describe()
                )
        if output.cleaned:
            log.info("[run] removed %d leftover(s) of a killed run", len(output.cleaned))
        log.info("[run] %s: %d stages, output in %s", name, len(STAGE_NAMES), cfg.out_dir)
        return _run_stages(cfg, name, mode, output, sql, engine)
    raise AssertionError("unreachable")  # pragma: no cover - mypy: the with block returns


def _run_stages(
    cfg: PipelineConfig,
    name: str,
    mode: str,
    output: RunOutput,
    sql: PendingSql,
    engine: Engine,
) -> PipelineResult:
    """The stages under the parent run, then the record and the publish step."""
    import mlflow

    from app import run_record
    from app import stages as st
    from app.coupons import coupons_stage
    from experiments import tracking

    seeds = np.random.SeedSequence(cfg.seed).generate_state(len(STAGE_NAMES)).tolist()
    seed_of = dict(zip(STAGE_NAMES, (int(s) for s in seeds), strict=True))
    records = [StageRecord(n) for n in STAGE_NAMES]
    rec = {r.name: r for r in records}
    final = output.final
    # The stages write into the staging folder; the report names the output folder's paths.
    scfg = replace(cfg, out_dir=str(output.staging))

    with tracking.start_run(
        name,
        tags={"kind": "pipeline", "mode": mode, "data_source": _label(cfg.data)},
        config=cfg,
        seed=cfg.seed,
        experiment=cfg.experiment,
    ) as parent:
        run_id = parent.info.run_id
        output.set_mlflow_run(run_id)

        def stage(n: str, fn: Callable[[StageRecord], Any]) -> Any:
            r = rec[n]
            i = STAGE_NAMES.index(n) + 1
            log.info("[run %d/%d] %s ...", i, len(STAGE_NAMES), n)
            t0 = time.perf_counter()
            with tracking.start_run(f"{name}__{n}", nested=True, tags={"stage": n}):
                try:
                    out = fn(r)
                    tracking.raise_if_interrupted()
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
            data = stage("ingest", lambda r: st.ingest_stage(scfg, r))
            mlflow.set_tag("data_fingerprint", data.fingerprint)
            plan_key = cfg.plan_key(data.fingerprint)
            mlflow.set_tag("plan_key", plan_key)
            risk = stage("risk", lambda r: st.risk_stage(scfg, data, seed_of["risk"], r, engine))
            mlflow.set_tag("risk.source", risk.source)
            if risk.note:
                mlflow.set_tag("risk.note", risk.note[:500])
                data.notes.append(risk.note)  # the report lists the ingest notes
            scores = risk.scores
            selected = stage("select", lambda r: st.select_stage(scfg, scores, r, data.panel))
            fitted = stage(
                "fit",
                lambda r: st.fit_stage(scfg, data, scores, selected, seed_of["fit"], r, engine),
            )
            log.info("[run] stock assumption: %s", fitted.stock_assumption)
            policy = stage(
                "policy", lambda r: st.policy_stage(scfg, fitted.catalog, seed_of["policy"], r)
            )
            mlflow.set_tags(
                {
                    "policy.source": "trained" if policy.trained else "champion",
                    "policy.detail": rec["policy"].detail[:500],
                }
            )
            evaluated = stage(
                "evaluate",
                lambda r: st.evaluate_stage(
                    scfg, fitted.catalog, policy, seed_of["evaluate"], r, engine
                ),
            )
            out = stage(
                "export",
                lambda r: st.export_stage(
                    scfg,
                    plan_key,
                    data,
                    scores,
                    selected,
                    fitted,
                    evaluated,
                    records,
                    r,
                    shown_dir=cfg.out_dir,
                    engine=engine,
                ),
            )
            out.exports.update(
                stage("coupons", lambda r: coupons_stage(scfg, plan_key, data.dataset, r))
            )
        finally:
            tracking.log_metrics({f"stage_seconds/{r.name}": r.seconds for r in records})
            mlflow.set_tag("stages", ", ".join(f"{r.name}={r.status}" for r in records))
        tracking.log_metrics(out.roi)
        found = evaluated.recommendation
        if found is not None:
            tracking.log_metrics(found.metrics())
        plans = run_record.log_plans(evaluated.outcomes)
        learned = policy.policy.name
        key = f"plan/{learned}/gain_vs_none"
        gain = (
            (plans[key], plans[f"{key}_ci_low"], plans[f"{key}_ci_high"]) if key in plans else None
        )
        registered = run_record.register_models(
            risk=risk, policy=policy, rules=cfg.rules, gain=gain, run_id=run_id
        )
        output.seal({"run_name": name, "mlflow_run_id": run_id, "plan_key": plan_key})
        run_record.log_outputs(output.staging)
        tracking.raise_if_interrupted()
        with tracking.deferring_signals():
            output.publish(commit_with=sql.commit)
        for line in run_record.promote(registered):
            log.info("[run] %s", line)
        mlflow.set_tag("output_dir", str(final))

    def shown(path: str | Path) -> str:
        return st.shown_path(str(path), output.staging, cfg.out_dir)

    result = PipelineResult(
        config=cfg,
        plan_key=plan_key,
        run_id=run_id,
        stages=records,
        exports={k: shown(v) for k, v in out.exports.items()},
        report_path=shown(out.report_path),
        alerts={k: shown(v) for k, v in out.alerts.items()},
        summary=out.summary,
        roi=out.roi,
        stock_assumption=fitted.stock_assumption,
        recommendation=found.describe(cfg.export.currency) if found is not None else [],
    )
    for line in result.recommendation:
        log.info("[run] %s", line)
    log.info(
        "[run] done: schedules -> %s; report -> %s; MLflow run %s in %s",
        result.exports["schedules"],
        result.report_path,
        run_id,
        tracking.tracking_uri(),
    )
    return result


def _label(source: str) -> str:
    text = str(source).rstrip("/").split("/")[-1].split("?")[0]
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)[:40] or "data"
