"""The plan's tables and where they go: CSV or Parquet files, or SQL tables.

Tables (every row carries ``plan_key``; see :meth:`PipelineConfig.plan_key`):

``schedules``
    One row per at-risk SKU and plan week: the recommended discount and coupon, and the
    simulated expected units, revenue, margin and stock left after the week.
``sku_summary``
    One row per at-risk SKU: risk, tier and top drivers; the recommended policy's expected
    sell-through, leftover units, margin given away and profit (with CIs); the same for doing
    nothing and for the best heuristic; and the paired differences.
``alerts``
    One row per at-risk SKU with the readable recommendation sent to its category manager
    (the per-category reports themselves are Markdown files, see :mod:`app.alerts`).
``new_product_flags``
    Products launched recently whose risk score is high: stock them in small lots.

Writes never leave half a table: files are written to a temporary file and renamed; SQL tables
are written in one transaction that first deletes the rows of the same ``plan_key``, so a
re-run replaces its rows instead of adding to them. Inside :func:`deferred_sql` (the pipeline)
the SQL tables are held until the run publishes its output folder and written then, in one
transaction with the folder's swap (see :mod:`app.outputs`).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.policy import Policy
from app.config import ExportConfig, NewProductConfig
from envs.config import RulesConfig
from ingest.errors import ConfigError, DataError
from ingest.io import write_frame_atomic
from planning.from_policy import plan_of
from planning.outcomes import Outcome, mean_ci, simulate_schedule
from simulator.demand import Catalog

logger = logging.getLogger(__name__)

SCHEDULE_COLUMNS = (
    "plan_key",
    "sku",
    "week",
    "discount",
    "coupon",
    "expected_units",
    "expected_revenue",
    "expected_margin",
    "expected_stock_left",
)
TABLE_NAMES = ("schedules", "sku_summary", "alerts", "new_product_flags")
_POLICY_METRICS = ("sell_through", "leftover_units", "margin_given_away", "profit")


def drivers_text(scores: pd.DataFrame) -> pd.Series:
    """One readable string of the top drivers per row of a risk-score frame.

    Uses a ``top_drivers`` column when there is one; otherwise joins ``driver_<k>`` columns
    with their ``driver_<k>_contribution`` (signed) when present.
    """
    if "top_drivers" in scores.columns:
        return scores["top_drivers"].fillna("").astype(str)
    names = sorted(c for c in scores.columns if re.fullmatch(r"driver_?\d+", c))
    if not names:
        return pd.Series([""] * len(scores), index=scores.index, dtype=object)
    parts = []
    for col in names:
        contrib = next(
            (c for c in (f"{col}_contribution", f"{col}_contrib", f"{col}_value") if c in scores),
            None,
        )
        text = scores[col].fillna("").astype(str)
        if contrib is not None:
            text = text + " (" + scores[contrib].map(lambda v: f"{float(v):+.3f}") + ")"
        parts.append(text)
    out = parts[0]
    for p in parts[1:]:
        out = out + "; " + p
    return out.str.replace(r"(; )?\s*\(nan\)", "", regex=True).str.strip("; ")


def schedules_table(outcome: Outcome, plan_key: str) -> pd.DataFrame:
    """The ``schedules`` table: one row per SKU and plan week of the recommended schedule."""
    frame = outcome.schedule.to_frame()
    frame.insert(0, "plan_key", plan_key)
    frame["expected_units"] = outcome.weekly_mean["units"].ravel()
    frame["expected_revenue"] = outcome.weekly_mean["revenue"].ravel()
    frame["expected_margin"] = outcome.weekly_mean["margin"].ravel()
    frame["expected_stock_left"] = outcome.weekly_mean["stock_left"].ravel()
    return frame[list(SCHEDULE_COLUMNS)]


def sku_summary_table(
    catalog: Catalog,
    scores: pd.DataFrame,
    outcomes: Mapping[str, Outcome],
    plan_key: str,
) -> pd.DataFrame:
    """The ``sku_summary`` table.

    Parameters
    ----------
    catalog : Catalog
        The at-risk SKUs, in the outcomes' order.
    scores : DataFrame
        Risk scores with at least ``sku``, ``risk`` and ``tier``.
    outcomes : mapping
        Must hold ``"recommended"``, ``"no_markdown"`` and ``"best_heuristic"`` outcomes,
        simulated with one seed (common random numbers).
    plan_key : str
    """
    for needed in ("recommended", "no_markdown", "best_heuristic"):
        if needed not in outcomes:
            raise DataError(f"sku_summary needs a {needed!r} outcome; got {sorted(outcomes)}")
    rec, none, heur = outcomes["recommended"], outcomes["no_markdown"], outcomes["best_heuristic"]
    sc = scores.assign(sku=scores["sku"].astype(str)).drop_duplicates("sku").set_index("sku")
    skus = pd.Index(np.asarray(catalog.sku, dtype=str))
    sc = sc.reindex(skus)
    frame = pd.DataFrame(
        {
            "plan_key": plan_key,
            "sku": skus,
            "category": np.asarray(catalog.category, dtype=str),
            "risk": sc["risk"].to_numpy(dtype=float),
            "tier": sc["tier"].astype(object).to_numpy(),
            "top_drivers": drivers_text(sc.reset_index()).to_numpy(),
            "initial_stock": catalog.initial_stock,
            "list_price": catalog.list_price,
            "unit_cost": catalog.unit_cost,
            "recommended_policy": rec.schedule.name,
            "best_heuristic": heur.schedule.name,
        }
    )
    for prefix, out in (("rec", rec), ("none", none), ("heur", heur)):
        for name in _POLICY_METRICS:
            frame[f"{prefix}_{name}"] = out.sku_mean(name)
        lo, hi = out.sku_ci("profit")
        frame[f"{prefix}_profit_ci_low"] = lo
        frame[f"{prefix}_profit_ci_high"] = hi
    for other, out in (("none", none), ("heur", heur)):
        for name in ("profit", "leftover_units", "margin_given_away"):
            diff = rec.totals[name] - out.totals[name]
            frame[f"{name}_vs_{other}"] = diff.mean(axis=1)
        lo, hi = mean_ci(rec.totals["profit"] - out.totals["profit"], rec.ci_level, axis=1)
        frame[f"profit_vs_{other}_ci_low"] = lo
        frame[f"profit_vs_{other}_ci_high"] = hi
    return frame


def new_product_flags_table(
    scores: pd.DataFrame,
    products: pd.DataFrame,
    last_week: int,
    rule: NewProductConfig,
    plan_key: str,
) -> pd.DataFrame:
    """Products launched in the last ``rule.max_age_weeks`` weeks with risk >= ``rule.min_risk``.

    The launch week is the products table's ``launch_week`` (the cleaning step imputes it as
    the first sale week when a source lacks it). Each flagged product is recommended for
    small-lot stocking.
    """
    cols = ["plan_key", "sku", "category", "launch_week", "age_weeks", "risk", "tier",
            "top_drivers", "recommendation", "rule"]  # fmt: skip
    if "launch_week" not in products.columns:
        return pd.DataFrame(columns=cols)
    prod = products[["sku", "category", "launch_week"]].assign(sku=products["sku"].astype(str))
    sc = scores.assign(sku=scores["sku"].astype(str))
    sc = sc.assign(top_drivers=drivers_text(sc))[["sku", "risk", "tier", "top_drivers"]]
    merged = sc.merge(prod, on="sku", how="inner")
    launch = pd.to_numeric(merged["launch_week"], errors="coerce")
    merged["age_weeks"] = last_week - launch
    keep = (
        launch.notna()
        & (merged["age_weeks"] <= rule.max_age_weeks)
        & (merged["risk"].astype(float) >= rule.min_risk)
    )
    out = merged[keep].sort_values("risk", ascending=False).copy()
    out["launch_week"] = launch[keep].astype(int)
    out["age_weeks"] = out["age_weeks"].astype(int)
    out["recommendation"] = "stock in small lots and reorder on sell-through"
    out["rule"] = rule.describe()
    out.insert(0, "plan_key", plan_key)
    return out[cols].reset_index(drop=True)


# ------------------------------------------------------------------------------ writers
def table_target(out_dir: str | Path, name: str, cfg: ExportConfig) -> str:
    """Where table ``name`` goes: a file path, or the SQL table name."""
    if cfg.format == "sql":
        return f"{cfg.table_prefix}{name}"
    return str(Path(out_dir) / f"{name}.{cfg.format}")


def check_export_target(out_dir: str | Path, cfg: ExportConfig) -> None:
    """Fail early (before any work) when the exports cannot be written.

    Checks that the output folder can be created and written, and for SQL that the database
    accepts a connection.
    """
    import os

    from ingest.io import TEMP_GLOB, write_text_atomic

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create output folder {str(out)!r}: {err.strerror}") from None
    probe = out / ".probe"
    try:
        write_text_atomic(probe, "")
        probe.unlink()
    except OSError as err:
        raise DataError(f"output folder {str(out)!r} is not writable: {err.strerror}") from None
    finally:
        for stale in out.glob(TEMP_GLOB):
            with contextlib.suppress(OSError):
                stale.unlink()
    if not os.access(out, os.W_OK):
        raise DataError(f"output folder {str(out)!r} is not writable")
    if cfg.format == "sql":
        _engine(cfg).dispose()


@dataclass
class PendingSql:
    """SQL tables held back until the run publishes (see :func:`deferred_sql`)."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    config: ExportConfig | None = None

    def commit(self, before_commit: Callable[[], None] | None = None) -> dict[str, str]:
        """Write the held tables in one transaction; ``before_commit`` runs after the last
        insert and before the commit (an error there rolls everything back)."""
        if not self.tables or self.config is None:
            if before_commit is not None:
                before_commit()
            return {}
        return _write_sql(self.tables, self.config, before_commit=before_commit)


_PENDING_SQL: ContextVar[PendingSql | None] = ContextVar("deadstock_pending_sql", default=None)


@contextlib.contextmanager
def deferred_sql() -> Iterator[PendingSql]:
    """Within this block :func:`write_tables` holds SQL tables instead of writing them; the
    caller writes them with :meth:`PendingSql.commit` when the run publishes, so the SQL
    tables and the output folder change together or not at all."""
    pending = PendingSql()
    token = _PENDING_SQL.set(pending)
    try:
        yield pending
    finally:
        _PENDING_SQL.reset(token)


def _engine(cfg: ExportConfig):
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    assert cfg.sql_url
    masked = re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", cfg.sql_url)
    try:
        engine = create_engine(cfg.sql_url)
        if engine.dialect.name == "sqlite":
            _transactional_ddl(engine)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (ArgumentError, SQLAlchemyError, ImportError) as err:
        raise DataError(f"export database {masked!r} cannot be opened: {err}") from None
    return engine


def _transactional_ddl(engine: Any) -> None:
    """Make SQLite's CREATE TABLE part of the transaction: Python's sqlite3 module runs DDL
    outside any transaction it has not begun yet, so a rolled-back export would still leave
    its first new table behind (SQLAlchemy's documented recipe: the driver stays in
    autocommit and SQLAlchemy emits BEGIN itself)."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")


def write_tables(
    tables: Mapping[str, pd.DataFrame], out_dir: str | Path, cfg: ExportConfig
) -> dict[str, str]:
    """Write every table; returns ``{name: file path or SQL table}``.

    Files are replaced atomically, one by one. SQL tables are written in ONE transaction:
    for each table, rows with the frames' ``plan_key`` are deleted, then the new rows are
    inserted; any error rolls everything back. Inside :func:`deferred_sql` they are held for
    the run's publish step instead.
    """
    for name, frame in tables.items():
        if "plan_key" not in frame.columns:
            raise DataError(f"export table {name!r} has no plan_key column")
    if cfg.format != "sql":
        written = {}
        for name, frame in tables.items():
            target = table_target(out_dir, name, cfg)
            write_frame_atomic(frame, target)
            written[name] = target
        return written
    pending = _PENDING_SQL.get()
    if pending is not None:
        pending.tables.update(tables)
        pending.config = cfg
        return {name: table_target(out_dir, name, cfg) for name in tables}
    return _write_sql(tables, cfg)


def _write_sql(
    tables: Mapping[str, pd.DataFrame],
    cfg: ExportConfig,
    *,
    before_commit: Callable[[], None] | None = None,
) -> dict[str, str]:
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = _engine(cfg)
    written: dict[str, str] = {}
    try:
        with engine.begin() as conn:
            existing = set(inspect(conn).get_table_names())
            for name, frame in tables.items():
                table = table_target("", name, cfg)
                if table in existing:
                    have = {c["name"] for c in inspect(conn).get_columns(table)}
                    missing = [c for c in frame.columns if c not in have]
                    if missing:
                        raise DataError(
                            f"SQL table {table!r} exists without column(s) {missing}; drop it "
                            f"or set export.table_prefix to write new tables"
                        )
                    keys = sorted(set(frame["plan_key"].astype(str)))
                    for key in keys:
                        conn.execute(text(f'DELETE FROM "{table}" WHERE plan_key = :k'), {"k": key})
                if len(frame.columns):
                    frame.to_sql(table, conn, if_exists="append", index=False, chunksize=10_000)
                written[name] = table
            if before_commit is not None:
                before_commit()
    except SQLAlchemyError as err:
        raise DataError(f"writing the exports to SQL failed (nothing was written): {err}") from None
    finally:
        engine.dispose()
    return written


def read_table(name: str, out_dir: str | Path, cfg: ExportConfig) -> pd.DataFrame:
    """Read back an exported table (for checks and the report)."""
    target = table_target(out_dir, name, cfg)
    if cfg.format == "csv":
        return pd.read_csv(target, dtype={"sku": str, "plan_key": str})
    if cfg.format == "parquet":
        return pd.read_parquet(target)
    if cfg.format == "sql":
        engine = _engine(cfg)
        try:
            return pd.read_sql_table(target, engine)
        finally:
            engine.dispose()
    raise ConfigError(f"export.format = {cfg.format!r}")


def export_schedules_bulk(
    policy: Policy,
    catalog: Catalog,
    rules: RulesConfig,
    horizon: int,
    target: str | Path,
    *,
    plan_key: str,
    plan_episodes: int = 4,
    n_episodes: int = 8,
    seed: int = 0,
    chunk_skus: int = 50_000,
    progress: bool = True,
) -> int:
    """Plan and simulate the schedules of a large catalog chunk by chunk and write the
    ``schedules`` table to ``target`` (``.parquet`` or ``.csv``, atomically).

    Memory stays bounded by ``chunk_skus``; returns the number of rows written. Each chunk
    gets its own child seeds from ``seed``: same arguments, same numbers.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ingest.io import atomic_path

    target = Path(target)
    suffix = target.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise DataError(f"bulk export target {str(target)!r}: expected .parquet or .csv")
    n = catalog.n_skus
    starts = list(range(0, n, chunk_skus))
    seeds = np.random.SeedSequence(seed).generate_state(2 * len(starts)).tolist()
    rows = 0
    with atomic_path(target) as tmp:
        writer = None
        try:
            for k, s0 in enumerate(starts):
                part = catalog.take(np.arange(s0, min(n, s0 + chunk_skus)))
                sched, _ = plan_of(
                    policy, part, rules, horizon, seed=int(seeds[2 * k]), n_episodes=plan_episodes
                )
                out = simulate_schedule(
                    part, sched, n_episodes=n_episodes, seed=int(seeds[2 * k + 1])
                )
                frame = schedules_table(out, plan_key)
                rows += len(frame)
                if suffix == ".parquet":
                    table = pa.Table.from_pandas(frame, preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(str(tmp), table.schema)
                    writer.write_table(table)
                else:
                    frame.to_csv(tmp, mode="a", header=k == 0, index=False)
                if progress:
                    logger.info("%s/%s SKUs planned and simulated", min(n, s0 + chunk_skus), n)
        finally:
            if writer is not None:
                writer.close()
    return rows
