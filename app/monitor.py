"""The monitoring job: resolve the reference, run the checks, write the report, log to MLflow.

The reference (``--reference``) is a **main-job output folder** (``outputs/run`` after
``make run``): its ``manifest.json`` names the MLflow run of the pipeline, whose ingest stage
logged the last week of the data it trained on (``ingest/last_week``); its ``schedules.csv``
holds the approved schedules (plan week ``k`` is data week ``last_week + k``), which the
adherence check compares with the executed prices. Without a folder, ``reference_week`` gives
that week directly; without either, it is the ``data_last_week`` tag of the registered risk
champion (set by ``deadstock retrain``).

The risk model monitored is the registered champion (``deadstock-risk@champion``) when there
is one; its labels are taken to end at its ``label_end_week`` tag, or at the reference week.
The demand model is refitted on the reference weeks with the default fit settings (the
pipeline fits per run and registers no demand model; see :mod:`monitoring.forecast_error`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ingest.errors import DataError
from monitoring.monitor import MonitorConfig, MonitorResult, RiskModelRef, run_monitor
from monitoring.report import write_report
from monitoring.thresholds import MonitorThresholds

log = logging.getLogger(__name__)

#: The exit code of a monitoring run that found a crossed threshold (a scheduler acts on it).
EXIT_CROSSED = 3
MANIFEST = "manifest.json"
SCHEDULE_FILES = ("schedules.csv", "schedules.parquet")


@dataclass(frozen=True)
class MonitorJobConfig:
    """Settings of ``deadstock monitor``.

    Parameters
    ----------
    data : str
        The data source (as ``--data`` everywhere).
    reference : str or None
        A main-job output folder (see the module docstring).
    reference_week : int or None
        The reference week, when no folder is given.
    out_dir : str
        Where the report and its plots go (replaced as a whole).
    quick : bool
        Only the best-selling SKUs of the data (the data stage's quick subset).
    track : bool
        Log the metrics and the report to MLflow.
    thresholds : MonitorThresholds
    forecast_max_skus : int or None
        SKUs the demand check covers (the best sellers).
    risk_name : str
        Registered name of the risk model.
    """

    data: str
    reference: str | None = None
    reference_week: int | None = None
    out_dir: str = "outputs/monitor"
    quick: bool = False
    track: bool = True
    thresholds: MonitorThresholds = field(default_factory=MonitorThresholds)
    forecast_max_skus: int | None = 2000
    risk_name: str = "deadstock-risk"


@dataclass
class Reference:
    """The resolved reference: its last training week, where that came from, and the
    approved schedules (data weeks) when the reference is an output folder."""

    week: int
    source: str
    schedules: pd.DataFrame | None = None


def reference_from_folder(folder: str | Path) -> Reference:
    """Read a main-job output folder: the pipeline run's last data week and its schedules."""
    import mlflow

    path = Path(folder)
    manifest = path / MANIFEST
    if not manifest.is_file():
        raise DataError(
            f"--reference {str(path)!r}: no {MANIFEST}; expected a main-job output folder "
            "(outputs/run after `make run`)"
        )
    run_id = json.loads(manifest.read_text(encoding="utf-8")).get("mlflow_run_id")
    if not run_id:
        raise DataError(f"{manifest}: no 'mlflow_run_id'; expected a sealed run's manifest")
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.mlflow.parentRunId = '{run_id}' and tags.stage = 'ingest'",
        output_format="list",
    )
    weeks = [
        float(r.data.metrics["ingest/last_week"])
        for r in runs
        if "ingest/last_week" in r.data.metrics
    ]
    if not weeks:
        raise DataError(
            f"--reference {str(path)!r}: the MLflow store ({mlflow.get_tracking_uri()}) has no "
            f"ingest stage of run {run_id} with the metric 'ingest/last_week'; point "
            "MLFLOW_TRACKING_URI at the run's store or give --reference-week"
        )
    week = int(weeks[0])
    schedules = None
    for name in SCHEDULE_FILES:
        if (path / name).is_file():
            table = (
                pd.read_csv(path / name) if name.endswith(".csv") else pd.read_parquet(path / name)
            )
            missing = [c for c in ("sku", "week", "net_price") if c not in table.columns]
            if missing:
                raise DataError(f"{path / name}: column(s) {missing} missing")
            schedules = table.assign(week=table["week"].astype(int) + week)
            break
    return Reference(week, f"output folder {path} (run {run_id})", schedules)


def resolve_reference(config: MonitorJobConfig) -> Reference:
    """The reference of ``config`` (folder, explicit week, or the champion's tag)."""
    if config.reference is not None:
        return reference_from_folder(config.reference)
    if config.reference_week is not None:
        return Reference(int(config.reference_week), "--reference-week")
    from experiments.retrain_runs import champion_version

    version = champion_version(config.risk_name)
    tag = None if version is None else version.tags.get("data_last_week")
    if version is None or tag is None:
        raise DataError(
            "monitor: no reference: give --reference (a main-job output folder) or "
            f"--reference-week, or register a risk champion with `deadstock retrain` (its "
            f"'data_last_week' tag is the default reference); {config.risk_name}@champion "
            + ("has no such tag" if version is not None else "does not exist")
        )
    return Reference(int(tag), f"{config.risk_name}@champion version {version.version}")


def _risk_ref(config: MonitorJobConfig, reference: Reference) -> RiskModelRef | None:
    from experiments.retrain_runs import load_risk_champion

    model, version = load_risk_champion(config.risk_name)
    if model is None or version is None:
        log.warning("monitor: no %s@champion: calibration is skipped", config.risk_name)
        return None
    end = version.tags.get("label_end_week")
    return RiskModelRef(model, int(end) if end is not None else reference.week)


def _publish(staging: Path, final: Path) -> None:
    """Replace ``final`` by ``staging`` (a reader sees the old or the new folder whole, but
    for the instant between the two renames)."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def run_monitor_job(config: MonitorJobConfig) -> tuple[MonitorResult, Path]:
    """Load the data, run the checks, write the report (all files at once) and log to MLflow.

    Returns the result and the report's path.
    """
    from app.data import DataStageConfig, run_data_stage

    reference = resolve_reference(config)
    data = run_data_stage(DataStageConfig(source=config.data, out_dir=None, quick=config.quick))
    risk = _risk_ref(config, reference)
    mcfg = MonitorConfig(
        reference_week=reference.week,
        thresholds=config.thresholds,
        forecast_max_skus=config.forecast_max_skus,
    )
    result = run_monitor(
        data.panel,
        mcfg,
        products=data.dataset.products,
        baskets=data.dataset.get("baskets"),
        risk=risk,
        schedules=reference.schedules,
    )
    final = Path(config.out_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.staging-", dir=final.parent))
    try:
        write_report(result, staging, title=f"Monitoring: {data.dataset.source}")
        if config.track:
            _log(config, reference, result, staging, data.dataset.fingerprint)
        _publish(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result, final / "report.md"


def _log(
    config: MonitorJobConfig,
    reference: Reference,
    result: MonitorResult,
    folder: Path,
    fingerprint: str,
) -> None:
    import mlflow

    from experiments.tracking import log_metrics, start_run

    with start_run(
        f"monitor__w{result.last_week}__ref{result.reference_week}",
        config=config,
        data_fingerprint=fingerprint,
        tags={
            "stage": "monitor",
            "reference": reference.source[:500],
            "monitor.crossed": ",".join(c.name for c in result.crossed) or "none",
        },
    ):
        log_metrics(result.metrics())
        mlflow.log_artifacts(str(folder), artifact_path="monitor")
