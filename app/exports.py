"""The plan's tables and where they go: CSV or Parquet files, or SQL tables.

Tables (every row carries ``plan_key``; see :meth:`PipelineConfig.plan_key`). Money is in
``currency`` and rounded to cents, shares to four decimals (:mod:`app.presentation`).

``schedules``
    One row per at-risk SKU and plan week (with its start date where the data has dates):
    the recommended discount, coupon and net price, and the simulated expected units,
    revenue, margin and stock left after the week.
``sku_summary``
    One row per at-risk SKU: what it is, risk, tier and top drivers (in words); the
    planner whose plan it gets (``recommended_by``, chosen per SKU) and its margin over the
    runner-up with a CI (``profit_vs_runner_up``, on paths independent of the choice); the
    recommendation in words (or why there is none); where its net price falls below cost;
    the recommended plan's expected sell-through, leftover units, margin given away and
    profit (with CIs); the same for doing nothing and for the best heuristic; the paired
    differences; and how it was simulated.
``alerts``
    One row per at-risk SKU with the readable recommendation sent to its category manager
    (the per-category reports themselves are Markdown files, see :mod:`app.alerts`).
``new_product_flags``
    A short list of products launched recently whose risk score is high and that are not
    planned already, ranked by risk x stock value: stock them in small lots.

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
import secrets
import shutil
from collections.abc import Callable, Collection, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from agents.policy import Policy
from app.alerts import describe_schedule
from app.engine import Engine
from app.pipeline_config import ExportConfig, NewProductConfig
from app.presentation import TableContext, round_columns
from envs.config import RulesConfig
from ingest.errors import ConfigError, DataError
from ingest.io import atomic_path, write_frame_atomic
from planning.diagnostics import NO_DEMAND_NOTE, net_price_check
from planning.from_policy import plan_of
from planning.outcomes import Outcome, mean_ci, simulate_schedule, simulation_seed
from planning.schedule import rounded_depths
from planning.selection import Choice
from risk_model.feature_labels import driver_label
from simulator.demand import Catalog

logger = logging.getLogger(__name__)

SCHEDULE_COLUMNS = (
    "plan_key",
    "sku",
    "description",
    "week",
    "week_start",
    "discount",
    "coupon",
    "net_price",
    "currency",
    "expected_units",
    "expected_revenue",
    "expected_margin",
    "expected_stock_left",
)
TABLE_NAMES = ("schedules", "sku_summary", "alerts", "new_product_flags")
_POLICY_METRICS = ("sell_through", "leftover_units", "margin_given_away", "profit")

NOT_ESTABLISHED = "not established"
"""The tier shown for a SKU the risk label does not apply to (too few recent sales): its score
is an extrapolation, not a tier."""


def drivers_text(scores: pd.DataFrame) -> pd.Series:
    """One readable string of the top drivers per row of a risk-score frame, e.g.
    ``"weeks since the last sale = 7 (raises risk); units per week (last 4 weeks) = 0.25
    (lowers risk)"``.

    Uses a ``top_drivers`` column when there is one; otherwise the ``driver_<k>`` columns
    (feature names, labelled by :func:`risk_model.feature_labels.driver_label`) with their
    ``driver_<k>_value`` and the sign of ``driver_<k>_contribution`` when present.
    """
    if "top_drivers" in scores.columns:
        return scores["top_drivers"].fillna("").astype(str)
    names = sorted(c for c in scores.columns if re.fullmatch(r"driver_?\d+", c))
    if not names:
        return pd.Series([""] * len(scores), index=scores.index, dtype=object)
    texts = []
    for row in scores.to_dict("records"):
        parts = []
        for col in names:
            name = row.get(col)
            if not isinstance(name, str) or not name:
                continue
            text = driver_label(name)
            value = row.get(f"{col}_value")
            if isinstance(value, int | float) and np.isfinite(value):
                text += f" = {value:.3g}"
            contrib = row.get(f"{col}_contribution")
            if isinstance(contrib, int | float) and np.isfinite(contrib) and contrib != 0:
                text += " (raises risk)" if contrib > 0 else " (lowers risk)"
            parts.append(text)
        texts.append("; ".join(parts))
    return pd.Series(texts, index=scores.index, dtype=object)


def schedules_table(
    outcome: Outcome, plan_key: str, catalog: Catalog, ctx: TableContext | None = None
) -> pd.DataFrame:
    """The ``schedules`` table: one row per SKU and plan week of the recommended schedule
    (``catalog`` in the schedule's SKU order, for the net price)."""
    ctx = ctx or TableContext()
    sched = outcome.schedule
    frame = sched.to_frame()
    frame.insert(0, "plan_key", plan_key)
    labels = ctx.label_columns(frame["sku"].astype(str))
    frame.insert(2, "description", labels["description"].to_numpy())
    frame.insert(4, "week_start", ctx.week_start_column(frame["week"].to_numpy()))
    depth = np.asarray(sched.discount, dtype=float) + np.asarray(sched.coupon, dtype=float)
    frame["net_price"] = (catalog.list_price[:, None] * (1.0 - depth)).ravel()
    frame["currency"] = ctx.currency
    frame["expected_units"] = outcome.weekly_mean["units"].ravel()
    frame["expected_revenue"] = outcome.weekly_mean["revenue"].ravel()
    frame["expected_margin"] = outcome.weekly_mean["margin"].ravel()
    frame["expected_stock_left"] = outcome.weekly_mean["stock_left"].ravel()
    frame = round_columns(
        frame,
        money=("net_price", "expected_revenue", "expected_margin"),
        rates=("discount", "coupon"),
        units=("expected_units", "expected_stock_left"),
    )
    return frame[list(SCHEDULE_COLUMNS)]


def recommendation_text(outcome: Outcome, no_demand: np.ndarray | None = None) -> list[str]:
    """Each SKU's recommended schedule in words, or why there is none."""
    sched = outcome.schedule
    frame = sched.to_frame()
    texts = [describe_schedule(g) for _, g in frame.groupby("sku", sort=False, observed=True)]
    # groupby(sort=False) keeps first-appearance order, which is the schedule's order
    if no_demand is not None:
        texts = [
            f"none: {NO_DEMAND_NOTE}" if flag else text
            for text, flag in zip(texts, np.asarray(no_demand, dtype=bool), strict=True)
        ]
    return texts


def sku_summary_table(
    catalog: Catalog,
    scores: pd.DataFrame,
    outcomes: Mapping[str, Outcome],
    plan_key: str,
    ctx: TableContext | None = None,
    *,
    no_demand: np.ndarray | None = None,
    choice: Choice | None = None,
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
        simulated with one seed (common random numbers per SKU).
    plan_key : str
    ctx : TableContext, optional
        Currency, product labels and the simulation settings.
    no_demand : ndarray of bool, optional
        SKUs with no demand at any allowed price (their recommendation says so).
    choice : Choice, optional
        The per-SKU choice the recommended plan comes from: adds ``recommended_by`` (the
        winning planner, also in ``recommended_policy``), ``runner_up`` and
        ``profit_vs_runner_up`` with its CI (on the evaluation paths).
    """
    ctx = ctx or TableContext()
    for needed in ("recommended", "no_markdown", "best_heuristic"):
        if needed not in outcomes:
            raise DataError(f"sku_summary needs a {needed!r} outcome; got {sorted(outcomes)}")
    rec, none, heur = outcomes["recommended"], outcomes["no_markdown"], outcomes["best_heuristic"]
    sc = scores.assign(sku=scores["sku"].astype(str)).drop_duplicates("sku").set_index("sku")
    skus = pd.Index(np.asarray(catalog.sku, dtype=str))
    sc = sc.reindex(skus)
    labels = ctx.label_columns(skus)
    flags = np.zeros(catalog.n_skus, dtype=bool) if no_demand is None else np.asarray(no_demand)
    check = net_price_check(rec.schedule, catalog)
    frame = pd.DataFrame(
        {
            "plan_key": plan_key,
            "sku": skus,
            "description": labels["description"].to_numpy(),
            "department": labels["department"].to_numpy(),
            "category": np.asarray(catalog.category, dtype=str),
            "currency": ctx.currency,
            "risk": sc["risk"].to_numpy(dtype=float),
            "tier": sc["tier"].astype(object).to_numpy(),
            "top_drivers": drivers_text(sc.reset_index()).to_numpy(),
            "initial_stock": catalog.initial_stock,
            "list_price": catalog.list_price,
            "unit_cost": catalog.unit_cost,
            "recommended_policy": (
                rec.schedule.name if choice is None else choice.recommended_by.astype(str)
            ),
            "best_heuristic": heur.schedule.name,
            "recommendation": recommendation_text(rec, flags),
            "no_demand_at_any_price": flags,
            "min_net_price": check.min_net_price,
            "weeks_below_cost": check.weeks_below_cost,
            "first_week_below_cost": check.first_week_below_cost,
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
    if choice is not None:
        at = list(frame.columns).index("recommended_policy") + 1
        frame.insert(at, "recommended_by", choice.recommended_by.astype(str))
        frame["runner_up"] = choice.runner_up.astype(str)
        frame["profit_vs_runner_up"] = choice.margin
        frame["profit_vs_runner_up_ci_low"] = choice.margin_ci_low
        frame["profit_vs_runner_up_ci_high"] = choice.margin_ci_high
    frame["simulation"] = ctx.settings.describe() if ctx.settings is not None else ""
    cols = list(frame.columns)
    return round_columns(
        frame,
        money=[c for c in cols if "profit" in c or "margin_given_away" in c]
        + ["list_price", "unit_cost", "min_net_price"],
        rates=["risk"] + [c for c in cols if c.endswith("sell_through")],
        units=["initial_stock"] + [c for c in cols if "leftover_units" in c],
    )


@dataclass(frozen=True)
class _TablesBlock:
    """One block of SKUs of the run's ``schedules`` and ``sku_summary`` tables: its
    catalog, scores, product labels (in ``ctx``) and outcome rows, and its rows of the
    per-SKU choice."""

    catalog: Catalog
    scores: pd.DataFrame
    outcomes: dict[str, Outcome]
    ctx: TableContext
    no_demand: np.ndarray | None
    choice: Choice | None


def _tables_block(plan_key: str, block: _TablesBlock) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One block's ``schedules`` and ``sku_summary`` rows (runs wherever the engine puts
    it)."""
    schedules = schedules_table(block.outcomes["recommended"], plan_key, block.catalog, block.ctx)
    summary = sku_summary_table(
        block.catalog,
        block.scores,
        block.outcomes,
        plan_key,
        block.ctx,
        no_demand=block.no_demand,
        choice=block.choice,
    )
    return schedules, summary


def _choice_rows(choice: Choice, s0: int, s1: int) -> Choice:
    """SKUs ``s0:s1`` of the per-SKU choice: the columns ``sku_summary`` reads (winner,
    runner-up, margin and its CI) and the selection means. Its outcomes are left out (the
    block carries the three it shows), so the block's ``recommended`` is not available from
    it."""
    return replace(
        choice,
        recommended_by=np.asarray(choice.recommended_by)[s0:s1],
        runner_up=np.asarray(choice.runner_up)[s0:s1],
        margin=np.asarray(choice.margin)[s0:s1],
        margin_ci_low=np.asarray(choice.margin_ci_low)[s0:s1],
        margin_ci_high=np.asarray(choice.margin_ci_high)[s0:s1],
        selection_mean=np.asarray(choice.selection_mean)[:, s0:s1],
        outcomes={},
    )


def _rows_by_sku(frame: pd.DataFrame, *, as_text: bool) -> pd.DataFrame:
    """``frame``'s first row per ``sku`` (as text when ``as_text``), indexed by sku: what the
    table builders look each SKU up in."""
    if as_text:
        frame = frame.assign(sku=frame["sku"].astype(str))
    return frame.drop_duplicates("sku").set_index("sku")


def _rows_of(by_sku: pd.DataFrame, skus: pd.Index) -> pd.DataFrame:
    """The rows of ``by_sku`` (from :func:`_rows_by_sku`) for ``skus`` that it has, with
    ``sku`` back as a column: a block's share, found through the index's hash table (built
    once) instead of a scan of every row per block."""
    pos = by_sku.index.get_indexer(skus)
    return by_sku.iloc[pos[pos >= 0]].reset_index()


def plan_tables(
    catalog: Catalog,
    scores: pd.DataFrame,
    outcomes: Mapping[str, Outcome],
    plan_key: str,
    ctx: TableContext | None = None,
    *,
    no_demand: np.ndarray | None = None,
    choice: Choice | None = None,
    engine: Engine | None = None,
    block_skus: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``schedules`` and ``sku_summary`` tables (:func:`schedules_table`,
    :func:`sku_summary_table`, same arguments), built in blocks of ``block_skus`` SKUs of
    ``catalog`` on ``engine`` (default: this process, one block) and concatenated in block
    order.

    Every row of both tables depends on its own SKU only, so the blocks change no byte of
    them. Each block carries only its SKUs' rows of the scores, the product labels, the
    three shown outcomes (``recommended``, ``no_markdown``, ``best_heuristic``) and the
    choice, not the whole run's.

    Raises
    ------
    ConfigError
        For ``block_skus`` < 1.
    DataError
        When an outcome the tables need is missing.
    """
    from app.blocks import block_ranges, outcome_rows
    from app.engine import LocalEngine

    if block_skus is not None and block_skus < 1:
        raise ConfigError(f"block_skus = {block_skus!r}: expected >= 1")
    ctx = ctx or TableContext()
    for needed in ("recommended", "no_markdown", "best_heuristic"):
        if needed not in outcomes:
            raise DataError(f"sku_summary needs a {needed!r} outcome; got {sorted(outcomes)}")
    shown = {k: outcomes[k] for k in ("recommended", "no_markdown", "best_heuristic")}
    n = catalog.n_skus
    ranges = block_ranges(n, block_skus or n) if n else [(0, 0)]
    skus = pd.Index(np.asarray(catalog.sku, dtype=str))
    # as the builders look them up: scores by the SKU as text, labels by the SKU as given
    scores_by_sku = _rows_by_sku(scores, as_text=True)
    labels_by_sku = None if ctx.labels is None else _rows_by_sku(ctx.labels, as_text=False)
    blocks = (
        _TablesBlock(
            catalog=catalog.take(np.arange(s0, s1)),
            scores=_rows_of(scores_by_sku, skus[s0:s1]),
            outcomes={k: outcome_rows(v, s0, s1) for k, v in shown.items()},
            ctx=replace(
                ctx,
                labels=None if labels_by_sku is None else _rows_of(labels_by_sku, skus[s0:s1]),
            ),
            no_demand=None if no_demand is None else np.asarray(no_demand)[s0:s1],
            choice=None if choice is None else _choice_rows(choice, s0, s1),
        )
        for s0, s1 in ranges
    )
    runner = engine or LocalEngine()
    parts = list(runner.map_blocks(_tables_block, blocks, plan_key))
    return _join_blocks([p[0] for p in parts]), _join_blocks([p[1] for p in parts])


def _join_blocks(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """``parts`` one after the other, with the column types of the table built in one piece.

    pandas infers a text column from its values: a block whose column holds only missing
    values (a SKU without a risk score) is ``object`` where the whole column is text. Such a
    column is inferred again from all its values, as the table in one piece was.
    """
    if len(parts) == 1:
        return parts[0]
    out = pd.concat(parts, ignore_index=True)
    for col in out.columns:
        if out[col].dtype == object and len({str(p[col].dtype) for p in parts}) > 1:
            out[col] = pd.Series(out[col].to_numpy(dtype=object), index=out.index)
    return out


def stock_value_estimate(
    panel: pd.DataFrame,
    products: pd.DataFrame,
    skus: Collection[str],
    *,
    weeks_of_cover: float,
    velocity_weeks: int,
) -> pd.Series:
    """Stock on hand at cost per SKU in ``skus``: the last known ``on_hand`` where the panel
    has it, else ``weeks_of_cover`` x mean weekly units over the last ``velocity_weeks``
    weeks (the run's stock assumption); times the products table's ``unit_cost``."""
    want = set(map(str, skus))
    last = int(panel["week"].max())
    has_stock = "on_hand" in panel.columns and panel["on_hand"].notna().any()
    # only the recent weeks matter unless there is a stock table (a full panel is millions
    # of rows; its SKU ids are converted to text only for the rows kept)
    part = panel if has_stock else panel[panel["week"] > last - velocity_weeks]
    sku = part["sku"].astype(str)
    part = part[sku.isin(want).to_numpy()].assign(sku=sku[sku.isin(want).to_numpy()])
    recent = part[part["week"] > last - velocity_weeks]
    velocity = recent.groupby("sku")["units"].sum() / velocity_weeks
    stock = weeks_of_cover * velocity
    if has_stock:
        known = part.dropna(subset=["on_hand"]).sort_values("week").groupby("sku")["on_hand"]
        stock = known.last().combine_first(stock)
    cost = products.assign(sku=products["sku"].astype(str)).drop_duplicates("sku")
    unit_cost = cost.set_index("sku")["unit_cost"].astype(float)
    index = pd.Index(sorted(want))
    return (stock.reindex(index).fillna(0.0) * unit_cost.reindex(index).fillna(0.0)).rename(
        "stock_value"
    )


def new_product_flags_table(
    scores: pd.DataFrame,
    products: pd.DataFrame,
    panel: pd.DataFrame,
    last_week: int,
    rule: NewProductConfig,
    plan_key: str,
    ctx: TableContext | None = None,
    *,
    exclude: Collection[str] = (),
    weeks_of_cover: float = 8.0,
    velocity_weeks: int = 13,
) -> tuple[pd.DataFrame, int]:
    """A short list of new products to stock in small lots, and how many matched the rule.

    A product matches when it launched at most ``rule.max_age_weeks`` weeks before the last
    week of the data, its risk score is at least ``rule.min_risk`` and it is not in
    ``exclude`` (the SKUs the plan already covers). The matches are ranked by risk x stock
    value at cost (:func:`stock_value_estimate`) and the first ``rule.max_flags`` are kept.
    A SKU the risk label does not apply to shows the tier ``"not established"``. The launch
    week is the products table's ``launch_week`` (imputed as the first sale week by cleaning
    when a source lacks it).
    """
    ctx = ctx or TableContext()
    cols = ["plan_key", "sku", "description", "department", "category", "currency",
            "launch_week", "age_weeks", "risk", "tier", "top_drivers", "stock_value",
            "priority", "recommendation", "rule"]  # fmt: skip
    if "launch_week" not in products.columns:
        return pd.DataFrame(columns=cols), 0
    prod = products[["sku", "category", "launch_week"]].assign(sku=products["sku"].astype(str))
    sc = scores.assign(sku=scores["sku"].astype(str))
    tier = sc["tier"].astype(str)
    if "established" in sc.columns:
        tier = tier.where(sc["established"].astype(bool), NOT_ESTABLISHED)
    keep_cols = ["sku", "risk", "tier"] + [
        c for c in sc.columns if c.startswith("driver_") or c == "top_drivers"
    ]
    merged = sc.assign(tier=tier)[keep_cols].merge(prod, on="sku", how="inner")
    launch = pd.to_numeric(merged["launch_week"], errors="coerce")
    merged["age_weeks"] = last_week - launch
    keep = (
        launch.notna()
        & (merged["age_weeks"] <= rule.max_age_weeks)
        & (merged["risk"].astype(float) >= rule.min_risk)
        & ~merged["sku"].isin(set(map(str, exclude)))
    )
    out = merged[keep].copy()
    n_matching = len(out)
    value = stock_value_estimate(
        panel,
        products,
        out["sku"],
        weeks_of_cover=weeks_of_cover,
        velocity_weeks=velocity_weeks,
    )
    out["stock_value"] = out["sku"].map(value).fillna(0.0).to_numpy()
    out["priority"] = out["risk"].astype(float) * out["stock_value"]
    out = out.sort_values(["priority", "risk", "sku"], ascending=[False, False, True])
    out = out.head(rule.max_flags).copy()
    out["top_drivers"] = drivers_text(out).to_numpy()
    out["launch_week"] = out["launch_week"].astype(int)
    out["age_weeks"] = out["age_weeks"].astype(int)
    labels = ctx.label_columns(out["sku"])
    out["description"] = labels["description"].to_numpy()
    out["department"] = labels["department"].to_numpy()
    out["currency"] = ctx.currency
    out["recommendation"] = "stock in small lots and reorder on sell-through"
    out["rule"] = rule.describe()
    out.insert(0, "plan_key", plan_key)
    out = round_columns(out, money=("stock_value", "priority"), rates=("risk",))
    return out[cols].reset_index(drop=True), n_matching


# ------------------------------------------------------------------------------ writers
def table_target(out_dir: str | Path, name: str, cfg: ExportConfig) -> str:
    """Where table ``name`` goes: a file path, or the SQL table name."""
    if cfg.format == "sql":
        return f"{cfg.table_prefix}{name}"
    return str(Path(out_dir) / f"{name}.{cfg.format}")


def check_export_target(out_dir: str | Path, cfg: ExportConfig) -> None:
    """Fail early (before any work) when the exports cannot be written.

    Checks the SQL URL first (it parses, its driver is installed: nothing is created for a bad
    one), then that the output folder can be created and written, and for SQL that the
    database accepts a connection.
    """
    if cfg.format == "sql":
        from ingest.sql import parse_sql_url

        parse_sql_url(str(cfg.sql_url))

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
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from ingest.sql import make_engine, mask_url

    assert cfg.sql_url
    engine = make_engine(cfg.sql_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as err:
        engine.dispose()
        first = str(getattr(err, "orig", None) or err).strip().splitlines()
        raise DataError(
            f"export database {mask_url(cfg.sql_url)!r} cannot be opened: "
            f"{first[0] if first else type(err).__name__}"
        ) from None
    return engine


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


#: Glob of the staging folders of :func:`export_schedules_bulk` beside its target
#: (``.<name>.parts-<hex>``): a killed export leaves one, which the next export removes.
BULK_STAGING_GLOB = ".{name}.parts-*"


@dataclass(frozen=True)
class _BulkShared:
    """What every block of a bulk export shares (sent to each worker once)."""

    policy: Policy
    rules: RulesConfig
    horizon: int
    plan_key: str
    plan_episodes: int
    n_episodes: int
    sim_seed: int
    ctx: TableContext | None
    staging: str
    suffix: str


@dataclass(frozen=True)
class _BulkBlock:
    """One block of SKUs of a bulk export: its index, its catalog and its planning seed."""

    index: int
    catalog: Catalog
    plan_seed: int


def bulk_blocks(n_skus: int, chunk_skus: int, seed: int) -> list[tuple[int, int, int]]:
    """``(start, stop, plan seed)`` of every block of a bulk export: the blocks are cut by
    ``chunk_skus`` alone and block ``k``'s seed is derived from ``seed`` and ``k``, so any
    engine plans the same blocks with the same seeds."""
    if chunk_skus < 1:
        raise ConfigError(f"chunk_skus = {chunk_skus}: expected >= 1")
    starts = list(range(0, n_skus, chunk_skus))
    seeds = np.random.SeedSequence(seed).generate_state(2 * len(starts)).tolist()
    return [(s0, min(n_skus, s0 + chunk_skus), int(seeds[2 * k])) for k, s0 in enumerate(starts)]


def _bulk_part_name(index: int, suffix: str) -> str:
    return f"part-{index:05d}{suffix}"


def _export_block(shared: _BulkShared, block: _BulkBlock) -> tuple[str, int]:
    """Plan, simulate and write one block as a part file in the staging folder; returns the
    part's path and its number of rows (runs wherever the engine puts it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    part = block.catalog
    sched, _ = plan_of(
        shared.policy,
        part,
        shared.rules,
        shared.horizon,
        seed=block.plan_seed,
        n_episodes=shared.plan_episodes,
    )
    out = simulate_schedule(
        part, rounded_depths(sched), n_episodes=shared.n_episodes, seed=shared.sim_seed
    )
    frame = schedules_table(out, shared.plan_key, part, shared.ctx)
    path = Path(shared.staging) / _bulk_part_name(block.index, shared.suffix)
    # Each part is itself written atomically: a part that exists is whole.
    with atomic_path(path) as tmp:
        if shared.suffix == ".parquet":
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), str(tmp))
        else:
            # one header, in the first part: the parts concatenate into one CSV file
            frame.to_csv(tmp, header=block.index == 0, index=False)
    return str(path), len(frame)


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
    ctx: TableContext | None = None,
    engine: Engine | str = "local",
) -> int:
    """Plan and simulate the schedules of a large catalog block by block and write the
    ``schedules`` table to ``target`` (one ``.parquet`` or ``.csv`` file).

    Each block of ``chunk_skus`` SKUs is planned with its own child seed of ``seed``
    (:func:`bulk_blocks`) and simulated with :func:`planning.outcomes.simulation_seed` of
    ``seed`` (a SKU's simulated numbers are keyed by its id, so the blocks do not change
    them), then written as a part file into a staging folder beside ``target``
    (``.<name>.parts-<hex>``). When every block is written, the parts are joined in block
    order into a temporary file that replaces ``target`` in one rename: a failed or killed
    export leaves the previous ``target`` whole (and a staging folder the next export
    removes). ``engine`` (``"local"``, ``"ray"`` or an :class:`app.engine.Engine`) runs the
    blocks, with the policy loaded once per worker; same arguments, same bytes on either.
    Memory stays bounded by a few blocks. Returns the number of rows written.

    With a Ray cluster the staging folder must be on storage every node sees.
    """
    import pyarrow.parquet as pq

    from app.engine import make_engine

    target = Path(target)
    suffix = target.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise DataError(f"bulk export target {str(target)!r}: expected .parquet or .csv")
    blocks = bulk_blocks(catalog.n_skus, chunk_skus, seed)
    runner = make_engine(engine) if isinstance(engine, str) else engine
    parent = target.parent if str(target.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    for stale in parent.glob(BULK_STAGING_GLOB.format(name=target.name)):
        logger.info("removing %s, left by a killed bulk export", stale)
        shutil.rmtree(stale, ignore_errors=True)
    staging = parent / f".{target.name}.parts-{secrets.token_hex(6)}"
    staging.mkdir()
    shared = _BulkShared(
        policy=policy,
        rules=rules,
        horizon=horizon,
        plan_key=plan_key,
        plan_episodes=plan_episodes,
        n_episodes=n_episodes,
        sim_seed=simulation_seed(seed),
        ctx=ctx,
        staging=str(staging),
        suffix=suffix,
    )
    work = (
        _BulkBlock(k, catalog.take(np.arange(s0, s1)), plan_seed)
        for k, (s0, s1, plan_seed) in enumerate(blocks)
    )
    rows = 0
    n = catalog.n_skus
    try:
        with atomic_path(target) as tmp:
            writer = None
            try:
                with open(tmp, "ab") if suffix == ".csv" else contextlib.nullcontext() as csv_out:
                    for k, (path, n_rows) in enumerate(
                        runner.map_blocks(_export_block, work, shared)
                    ):
                        if suffix == ".parquet":
                            table = pq.read_table(path)
                            if writer is None:
                                writer = pq.ParquetWriter(str(tmp), table.schema)
                            writer.write_table(table)
                        else:
                            assert csv_out is not None  # opened for a .csv target
                            with open(path, "rb") as part_in:
                                shutil.copyfileobj(part_in, csv_out)
                        rows += n_rows
                        if progress:
                            logger.info(
                                "%s/%s SKUs planned and simulated (%s engine)",
                                blocks[k][1],
                                n,
                                runner.name,
                            )
            finally:
                if writer is not None:
                    writer.close()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return rows
