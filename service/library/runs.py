"""Run output folders, the price-execution export, the MLflow leaderboard and the
pipeline command: the service's calls into :mod:`app` and :mod:`experiments`."""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ingest.errors import DataError
from service.library.rules import catalog_from_bytes, rules_from_config, rules_to_dict

logger = logging.getLogger(__name__)

MANIFEST_NAMES = ("manifest.json", "run.json")
"""Files a run folder may hold with its identity (``run_id``, ``data_fingerprint``,
``config``); read when present."""

TABLE_EXTENSIONS = ("csv", "parquet")
WEEKLY_KEYS = ("units", "revenue", "margin", "stock_left")
CATALOG_ARTIFACT = "catalog.parquet"


# ------------------------------------------------------------------------------ run folders
@dataclass
class RunFolder:
    """What a pipeline run's output folder holds, read and checked."""

    folder: Path
    plan_key: str
    summary: pd.DataFrame
    discount: np.ndarray
    coupon: np.ndarray
    expected: dict[str, np.ndarray]
    catalog_bytes: bytes
    run_id: str | None = None
    data_fingerprint: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    rules: dict[str, Any] = field(default_factory=dict)
    roi: dict[str, float] | None = None
    metadata_source: str = ""
    week_starts: list[str] | None = None
    """Start date (``YYYY-MM-DD``) of plan weeks 1..H where the data have a calendar."""
    currency: str | None = None
    """Currency of the run's money columns (ISO code), where the tables state it."""

    @property
    def horizon_weeks(self) -> int:
        return int(self.discount.shape[1])

    @property
    def skus(self) -> list[str]:
        return self.summary["sku"].astype(str).tolist()

    def content_hash(self) -> str:
        """Hash of the plan's content (SKUs and weekly depths): one plan_key imported twice
        with different schedules is a conflict, not a repeat."""
        h = hashlib.sha256()
        h.update("\n".join(self.skus).encode())
        h.update(np.ascontiguousarray(np.round(self.discount, 9)).tobytes())
        h.update(np.ascontiguousarray(np.round(self.coupon, 9)).tobytes())
        return h.hexdigest()


def _read_table(folder: Path, name: str, *, required: bool) -> pd.DataFrame | None:
    for ext in TABLE_EXTENSIONS:
        path = folder / f"{name}.{ext}"
        if path.is_file():
            try:
                if ext == "csv":
                    return pd.read_csv(path, dtype={"sku": str, "plan_key": str})
                return pd.read_parquet(path)
            except Exception as err:  # noqa: BLE001 - any reader failure is the file's fault
                raise DataError(f"{path}: could not be read ({err})") from None
    if required:
        raise DataError(
            f"run folder {str(folder)!r} has no {name}.csv or {name}.parquet; give the output "
            f"folder of a 'deadstock run' that exported files (not SQL)"
        )
    return None


def read_run_folder(folder: str | Path, *, run_id_hint: str | None = None) -> RunFolder:
    """Read a ``deadstock run`` output folder: schedules, SKU summary, alerts, catalog and
    the run's identity.

    Raises
    ------
    DataError
        For a missing folder or table, a table without its columns, several plans in one
        folder, or a schedule that does not cover weeks 1..H of every summarised SKU.
    """
    from app.exports import SCHEDULE_COLUMNS

    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"run folder {str(root)!r} does not exist")
    sched = _read_table(root, "schedules", required=True)
    summary = _read_table(root, "sku_summary", required=True)
    assert sched is not None and summary is not None
    for name, frame, needed in (
        ("schedules", sched, SCHEDULE_COLUMNS),
        ("sku_summary", summary, ("plan_key", "sku", "category")),
    ):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise DataError(f"{root / name}: column(s) {missing} missing")
    keys = {str(k) for k in sched["plan_key"].unique()} | {
        str(k) for k in summary["plan_key"].unique()
    }
    if len(keys) != 1:
        raise DataError(f"run folder {str(root)!r} holds {len(keys)} plan keys; expected one")
    plan_key = keys.pop()
    summary = summary.assign(sku=summary["sku"].astype(str)).drop_duplicates("sku")
    skus = summary["sku"].to_numpy()
    h = int(pd.to_numeric(sched["week"]).max()) if len(sched) else 0
    # Each row's place in the (SKU, week) grid, by hashing: a 1 M-SKU plan has 12 M rows.
    row = _positions(sched["sku"], skus)
    week = pd.to_numeric(sched["week"]).to_numpy(dtype=np.int64)
    flat = row * max(h, 1) + week - 1
    ok = h >= 1 and (row >= 0).all() and ((week >= 1) & (week <= h)).all()
    if (
        not ok
        or len(sched) != len(skus) * h
        or np.bincount(flat, minlength=len(skus) * h).max() > 1
    ):
        raise DataError(
            f"{root}/schedules: every SKU of sku_summary needs weeks 1..{h} exactly once "
            f"(and no other SKU)"
        )
    order = np.argsort(flat, kind="stable")

    def grid(col: str) -> np.ndarray:
        return sched[col].to_numpy(dtype=float)[order].reshape(len(skus), h)

    alerts = _read_table(root, "alerts", required=False)
    # Older runs wrote the recommendation in words only in the alerts; newer ones carry it
    # in the summary too (then the summary's is kept, without a suffixed copy).
    if (
        alerts is not None
        and {"sku", "recommendation"} <= set(alerts.columns)
        and "recommendation" not in summary.columns
    ):
        rec = alerts.assign(sku=alerts["sku"].astype(str)).drop_duplicates("sku")
        summary = summary.merge(rec[["sku", "recommendation"]], on="sku", how="left")
    catalog_path = root / CATALOG_ARTIFACT
    if not catalog_path.is_file():
        raise DataError(f"run folder {str(root)!r} has no {CATALOG_ARTIFACT}")
    catalog_bytes = catalog_path.read_bytes()
    cat = catalog_from_bytes(catalog_bytes, source=str(catalog_path))
    missing_skus = sorted(set(skus) - set(np.asarray(cat.sku, dtype=str)))
    if missing_skus:
        raise DataError(f"{catalog_path}: SKU(s) {missing_skus[:3]} of sku_summary are missing")
    out = RunFolder(
        folder=root.resolve(),
        plan_key=plan_key,
        summary=summary.reset_index(drop=True),
        discount=grid("discount"),
        coupon=grid("coupon"),
        expected={k: grid(f"expected_{k}") for k in WEEKLY_KEYS},
        catalog_bytes=catalog_bytes,
        week_starts=_week_starts(sched, h),
        currency=_currency(summary, root),
    )
    _identify(out, run_id_hint)
    return out


def _week_starts(sched: pd.DataFrame, n_weeks: int) -> list[str] | None:
    """The start date of each plan week from the schedules' ``week_start`` column (None
    when the column is absent or empty: the data had no calendar)."""
    if "week_start" not in sched.columns or n_weeks < 1:
        return None
    dates = sched[["week", "week_start"]].dropna()
    dates = dates[dates["week_start"].astype(str).str.strip() != ""]
    if dates.empty:
        return None
    by_week = dates.groupby(pd.to_numeric(dates["week"]))["week_start"].first()
    return [str(by_week.get(w, "")) for w in range(1, n_weeks + 1)]


def _currency(summary: pd.DataFrame, root: Path) -> str | None:
    """The one currency of the summary's ``currency`` column (None without the column)."""
    if "currency" not in summary.columns:
        return None
    codes = {str(c) for c in summary["currency"].dropna().unique() if str(c).strip()}
    if len(codes) > 1:
        raise DataError(f"{root}/sku_summary: column currency holds {sorted(codes)}; "
                        "expected one currency per plan")  # fmt: skip
    return codes.pop() if codes else None


def _positions(values: pd.Series, skus: np.ndarray) -> np.ndarray:
    """Index of each value in ``skus`` (-1 when absent), hashed in Arrow's C++ (a Python-level
    pass over 12 M strings takes longer than the rest of an import)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    found = pc.index_in(pa.array(values.astype(str)), value_set=pa.array(skus.astype(str)))
    return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def _identify(run: RunFolder, run_id_hint: str | None) -> None:
    """Fill the run's identity from a manifest, else from its MLflow run, else defaults."""
    for name in MANIFEST_NAMES:
        path = run.folder / name
        if path.is_file():
            try:
                values = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise DataError(f"{path}: not valid JSON ({err})") from None
            run.run_id = values.get("run_id") or run_id_hint
            run.data_fingerprint = values.get("data_fingerprint")
            run.config = dict(values.get("config") or {})
            run.metadata_source = str(path)
            break
    if not run.config:
        found = _mlflow_run(run.plan_key, run.run_id or run_id_hint)
        if found is not None:
            run.run_id, run.data_fingerprint, run.config, run.roi = found
            run.metadata_source = f"MLflow run {run.run_id}"
    if not run.config:
        run.run_id = run.run_id or run_id_hint
        run.metadata_source = (
            "no manifest and no MLflow run tagged with this plan_key: the default "
            "pipeline config (and its rules) is assumed"
        )
    run.rules = rules_to_dict(rules_from_config(run.config))


def _literal(text: Any) -> Any:
    try:
        value = ast.literal_eval(str(text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    return list(value) if isinstance(value, tuple) else value


def _mlflow_run(
    plan_key: str, run_id: str | None
) -> tuple[str, str | None, dict[str, Any], dict[str, float]] | None:
    """(run id, data fingerprint, nested config, ROI metrics) of the pipeline's parent run
    tagged with ``plan_key``, newest first; None when there is none."""
    import mlflow

    from experiments import tracking

    mlflow.set_tracking_uri(tracking.tracking_uri())
    try:
        if run_id:
            runs = [mlflow.get_run(run_id)]
        else:
            runs = mlflow.search_runs(
                search_all_experiments=True,
                filter_string=f"tags.plan_key = '{plan_key}' and tags.kind = 'pipeline'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
                output_format="list",
            )
    except Exception as err:  # noqa: BLE001 - a missing or unreadable store is not fatal
        logger.warning("MLflow lookup of plan %s failed: %s", plan_key, err)
        return None
    if not runs:
        return None
    run = runs[0]
    config: dict[str, Any] = {}
    for key, value in run.data.params.items():
        node = config
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = _literal(value)
    roi = {k: float(v) for k, v in run.data.metrics.items() if k.startswith("roi/")}
    return run.info.run_id, run.data.tags.get("data_fingerprint"), config, roi


# ------------------------------------------------------------------------------ exports
def write_price_export(
    frame: pd.DataFrame, fmt: str, out_dir: str | Path, name: str, sql_url: str | None
) -> str:
    """Write the price-execution table with :func:`app.exports.write_tables` (a file
    written atomically, or one SQL transaction that replaces the plan's rows); returns where
    it went."""
    from app.exports import write_tables
    from app.pipeline_config import ExportConfig

    cfg = ExportConfig(format=fmt, sql_url=sql_url)  # type: ignore[arg-type]
    if fmt != "sql":
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    return write_tables({name: frame}, out_dir, cfg)[name]


# ------------------------------------------------------------------------------ ROI
def roi_lines(roi: dict[str, Any]) -> list[dict[str, Any]]:
    """A plan's ROI metrics (``roi/<key>``, ``_ci_low``, ``_ci_high``, as the pipeline logs
    them) as the report's labelled lines, total and memo items (:mod:`app.report`); lines
    the plan has no metric for are left out."""
    from app.report import ROI_LINES, ROI_MEMO, ROI_TOTAL

    specs = [(label, key, "currency", "line") for label, key, _ in ROI_LINES]
    specs.append((ROI_TOTAL[0], ROI_TOTAL[1], "currency", "total"))
    specs += [(label, key, unit, "memo") for label, key, unit, _ in ROI_MEMO]

    def value(name: str) -> float | None:
        v = roi.get(name)
        return float(v) if isinstance(v, int | float) and np.isfinite(v) else None

    out = []
    for label, key, unit, part in specs:
        if f"roi/{key}" not in roi:
            continue
        out.append({"key": key, "item": label, "unit": unit, "part": part,
                    "mean": value(f"roi/{key}"), "ci_low": value(f"roi/{key}_ci_low"),
                    "ci_high": value(f"roi/{key}_ci_high")})  # fmt: skip
    return out


# ------------------------------------------------------------------------------ experiments
def leaderboard() -> tuple[list[dict[str, Any]], int]:
    """The agents' leaderboard across MLflow runs (:mod:`experiments.compare`) and the
    number of runs behind it."""
    from experiments.compare import CompareConfig, across_runs, search

    runs = search(CompareConfig())
    board = across_runs(runs)
    return json.loads(board.to_json(orient="records")), len(runs)


# ------------------------------------------------------------------------------ pipeline runs
def pipeline_command(
    out_dir: str | Path,
    *,
    base: Sequence[str] = (),
    data: str | None = None,
    config_path: str | None = None,
    quick: bool = False,
    seed: int | None = None,
    policy: str | None = None,
) -> list[str]:
    """The ``deadstock run`` command line of a run started by the API."""
    cmd = list(base) or [sys.executable, "-m", "app.cli"]
    cmd += ["run", "--out", str(out_dir)]
    if data:
        cmd += ["--data", data]
    if config_path:
        cmd += ["--config", config_path]
    if quick:
        cmd.append("--quick")
    if seed is not None:
        cmd += ["--seed", str(seed)]
    if policy:
        cmd += ["--policy", policy]
    return cmd


def run_id_from_log(text: str) -> str | None:
    """The MLflow run id ``deadstock run`` prints last (``MLflow run -> ID in ...``)."""
    for line in reversed(text.splitlines()):
        if line.startswith("MLflow run") and "->" in line:
            parts = line.split("->", 1)[1].split()
            return parts[0] if parts else None
    return None
