"""``deadstock abtest design|analyze``: field tests from a run's output and a data source.

The domain work is :mod:`fieldtests`; this module reads the files (the run's
``catalog.parquet``, ``schedules`` and ``sku_summary``; the assignment table; the data source
through :mod:`ingest.loader`), writes the tables, reports and plots atomically into the
output folder, and logs each design and analysis as an MLflow run (params, ``design/...`` or
``analysis/...`` metrics, the files as artifacts).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import tracking
from fieldtests.analysis import Analysis, analyze, check_assignment, observed_outcomes
from fieldtests.design import Design, DesignConfig, control_schedule, design_test
from fieldtests.report import (
    analysis_markdown,
    design_markdown,
    effects_figure,
    outcomes_figure,
    power_curve_figure,
)
from ingest.errors import ConfigError, DataError
from ingest.io import write_figure_atomic, write_frame_atomic, write_text_atomic
from planning.schedule import Schedule, read_schedule
from simulator.demand import Catalog, read_catalog

log = logging.getLogger(__name__)

ASSIGNMENT_FORMATS = (".csv", ".parquet")


@dataclass
class RunFiles:
    """What a design needs from a run's output folder."""

    folder: Path
    catalog: Catalog
    plan: Schedule
    summary: pd.DataFrame


def _find(folder: Path, stem: str) -> Path:
    for ext in ASSIGNMENT_FORMATS:
        if (folder / f"{stem}{ext}").is_file():
            return folder / f"{stem}{ext}"
    raise DataError(
        f"run output {str(folder)!r} has no {stem}.csv or {stem}.parquet; expected the folder "
        "written by 'deadstock run'"
    )


def read_table(path: Path, what: str) -> pd.DataFrame:
    """A CSV or Parquet table with the SKU column as text; a clear error otherwise."""
    if not path.is_file():
        raise DataError(f"{what} {str(path)!r} not found")
    if path.suffix.lower() not in ASSIGNMENT_FORMATS:
        raise DataError(f"{what} {str(path)!r}: expected a .csv or .parquet file")
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype={"sku": str})
    except Exception as err:  # noqa: BLE001 - any reader failure is the file's fault
        raise DataError(f"{what} {str(path)!r} could not be read: {err}") from None
    if "sku" in frame.columns:
        frame["sku"] = frame["sku"].astype(str)
    return frame


def read_run(folder: str | Path) -> RunFiles:
    """The catalog, the recommended plan (in the catalog's order) and the SKU summary."""
    f = Path(folder)
    if not f.is_dir():
        raise DataError(f"--plan {str(f)!r} is not a folder; expected a 'deadstock run' output")
    catalog = read_catalog(f / "catalog.parquet")
    plan = read_schedule(_find(f, "schedules"))
    summary = read_table(_find(f, "sku_summary"), "sku summary")
    for col in ("category", "tier"):
        if col not in summary.columns:
            raise DataError(f"{_find(f, 'sku_summary')}: column {col!r} is missing")
    skus = np.asarray(catalog.sku, dtype=str)
    pos = pd.Index(np.asarray(plan.sku, dtype=str)).get_indexer(skus)
    if (pos < 0).any():
        raise DataError(
            f"{_find(f, 'schedules')} has no plan for {int((pos < 0).sum())} catalog SKUs "
            f"(e.g. {skus[pos < 0][:3].tolist()})"
        )
    plan = Schedule(catalog.sku, plan.discount[pos], plan.coupon[pos], name="recommended")
    return RunFiles(f, catalog, plan, summary)


_PANEL_WEEKS = re.compile(r"^panel: .*weeks (\d+)-(\d+)", re.M)


def default_start_week(folder: Path) -> int:
    """The data week after the run's last, from the run's ``data/data_summary.txt``; 0 (the
    analysis then takes the data's last test weeks) when the run does not say."""
    path = folder / "data" / "data_summary.txt"
    found = _PANEL_WEEKS.search(path.read_text()) if path.is_file() else None
    if found is None:
        log.warning("%s does not give the run's last week; the analysis will take the last "
                    "weeks of its data as the test weeks (or give --start-week)", path)  # fmt: skip
        return 0
    return int(found.group(2)) + 1


def _heuristic(summary: pd.DataFrame) -> str | None:
    if "best_heuristic" not in summary.columns or summary["best_heuristic"].isna().all():
        return None
    return str(summary["best_heuristic"].dropna().mode().iloc[0])


def _assignment_target(out: Path, fmt: str) -> Path:
    if fmt not in ("csv", "parquet"):
        raise ConfigError(f"--format {fmt!r}: expected csv or parquet")
    return out / f"assignment.{fmt}"


def run_design(
    plan_dir: str | Path,
    config: DesignConfig,
    out: str | Path,
    *,
    start_week: int | None = None,
    fmt: str = "csv",
    track: bool = True,
) -> tuple[Design, list[Path], str | None]:
    """Design a test of the run in ``plan_dir``; write and log it. Returns the design, the
    files written and the MLflow run id."""
    if track:
        tracking.check_store()
    target = _assignment_target(Path(out), fmt)
    run = read_run(plan_dir)
    weeks = config.weeks or run.plan.horizon
    control = control_schedule(
        run.catalog, config.control, weeks, heuristic=_heuristic(run.summary), seed=config.seed
    )
    start = default_start_week(run.folder) if start_week is None else int(start_week)
    if start_week is not None and start < 1:
        raise ConfigError(f"--start-week {start}: expected >= 1")
    design = design_test(run.catalog, run.summary, run.plan, control, config, start_week=start)
    o = Path(out)
    files = [
        write_frame_atomic(design.assignment, target),
        write_frame_atomic(design.curve, o / "power_curve.csv"),
        write_figure_atomic(power_curve_figure(design), o / "power_curve.png", dpi=110),
        write_text_atomic(o / "design.md", design_markdown(design)),
    ]
    run_id = None
    if track:
        import mlflow

        name = tracking.run_name("abtest-design", Path(plan_dir).name or "run", config.seed)
        tags = {"kind": "abtest_design", "plan": str(plan_dir)}
        with tracking.start_run(name, tags=tags, config=design.params(), seed=config.seed) as r:
            tracking.log_metrics(design.metrics())
            for f in files:
                mlflow.log_artifact(str(f), artifact_path="design")
            run_id = r.info.run_id
    return design, files, run_id


def run_analysis(
    assignment_path: str | Path,
    data: str,
    out: str | Path,
    *,
    level: float = 0.95,
    track: bool = True,
) -> tuple[Analysis, list[Path], str | None]:
    """Analyse the test of ``assignment_path`` on ``data``; write and log it."""
    from ingest.loader import load

    if not 0.5 <= level < 1:
        raise ConfigError(f"--level {level}: expected in [0.5, 1)")
    if track:
        tracking.check_store()
    path = Path(assignment_path)
    # the assignment is checked before the (possibly long) load of the data
    assignment = check_assignment(read_table(path, "assignment file"),
                                  f"assignment file {str(path)!r}")  # fmt: skip
    dataset = load(data)
    outcomes = observed_outcomes(
        dataset.sales, assignment, source=f"assignment file {str(path)!r}",
        data_source=f"data source {data!r}",
    )  # fmt: skip
    share = float(assignment["treatment_share"].iloc[0])
    analysis = analyze(outcomes, share=share, level=level)
    o = Path(out)
    plots = ("effects.png", "profit_by_arm.png")
    files = [
        write_frame_atomic(analysis.effects, o / "effects.csv"),
        write_frame_atomic(analysis.outcomes, o / "outcomes.csv"),
        write_figure_atomic(effects_figure(analysis), o / plots[0], dpi=110),
        write_figure_atomic(outcomes_figure(analysis), o / plots[1], dpi=110),
        write_text_atomic(
            o / "analysis.md",
            analysis_markdown(analysis, source=str(path), data=str(data), plots=plots),
        ),
    ]
    run_id = None
    if track:
        import mlflow

        name = tracking.run_name("abtest-analysis", path.stem)
        tags = {"kind": "abtest_analysis", "assignment": str(path), "data": str(data)}
        with tracking.start_run(
            name, tags=tags, config={"level": level, "treatment_share": share},
            data_fingerprint=dataset.fingerprint,
        ) as r:  # fmt: skip
            tracking.log_metrics(analysis.metrics())
            for f in files:
                mlflow.log_artifact(str(f), artifact_path="analysis")
            run_id = r.info.run_id
    return analysis, files, run_id
