"""Plan versions: importing a run's output folder, and reading plans back (SKU lists with
filters and sorting, one SKU's detail, a plan's overview by category).

Importing is idempotent: the plan's ``plan_key`` (same data and settings, same key) is
unique, so the same run imported twice returns the version already there. A second import
under the same key whose schedules differ is refused: the first version's reviews were made
on other numbers.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from service import counters, library
from service.audit import record
from service.db import arrays
from service.db.bulk import insert_plan_rows
from service.db.models import (
    ARTIFACT_PART_BYTES,
    SUMMARY_FLOATS,
    SUMMARY_TEXTS,
    PlanArtifact,
    PlanVersion,
    Review,
    User,
    sku_plans,
    sku_schedules,
)
from service.errors import Conflict, Forbidden, NotFound
from service.users import visible_categories

SORTABLE = {
    "sku": "sku",
    "category": "category",
    "risk": "risk",
    "tier": "tier",
    "status": "status",
    "gain": "profit_vs_none",
    "profit": "rec_profit",
    "initial_stock": "initial_stock",
    "planner": "recommended_policy",
}
"""Sort keys of the SKU list (``-key`` sorts descending); ``gain`` is the expected profit
against doing nothing, ``planner`` the policy that made the recommended schedule."""

LIST_COLUMNS = (
    "sku", "category", "description", "tier", "risk", "status", "recommended_policy",
    "best_heuristic", "initial_stock", "list_price", "unit_cost", "rec_profit",
    "profit_vs_none", "profit_vs_none_ci_low", "profit_vs_none_ci_high",
    "rec_sell_through", "leftover_units_vs_none", "rec_margin_given_away", "export_id",
)  # fmt: skip
_LIST_SQL = ", ".join(LIST_COLUMNS)
RISK_BINS = 10


# ------------------------------------------------------------------------------ import
def _schedule_rows(run: library.RunFolder, plan_id: int) -> pd.DataFrame:
    """One row per SKU with its weekly arrays as bytes (:mod:`service.db.arrays`)."""
    expected = np.concatenate([run.expected[k] for k in library.WEEKLY_KEYS], axis=1)
    return pd.DataFrame(
        {
            "plan_id": plan_id,
            "sku": run.skus,
            "discount": arrays.encode_rows(run.discount, arrays.DEPTH),
            "coupon": arrays.encode_rows(run.coupon, arrays.DEPTH),
            "expected": arrays.encode_rows(expected, arrays.OUTCOME),
        }
    )


def _summary_rows(run: library.RunFolder, plan_id: int) -> pd.DataFrame:
    s = run.summary
    out = pd.DataFrame({"plan_id": plan_id, "sku": s["sku"].astype(str)})
    for col in SUMMARY_TEXTS:
        out[col] = s[col].astype(object).where(s[col].notna(), None) if col in s else None
    for col in SUMMARY_FLOATS:
        out[col] = pd.to_numeric(s[col], errors="coerce") if col in s else np.nan
    known = {"plan_key", "sku", *SUMMARY_TEXTS, *SUMMARY_FLOATS}
    extra_cols = [c for c in s.columns if c not in known]
    if extra_cols:
        out["extra"] = [
            json.dumps({k: _json_value(v) for k, v in row.items()})
            for row in s[extra_cols].to_dict(orient="records")
        ]
    else:
        out["extra"] = None
    out["status"] = "pending"
    return out


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v.item() if hasattr(v, "item") else v


def import_run(
    session: Session,
    run: library.RunFolder,
    *,
    user: User | None,
    actor_name: str = "system",
) -> tuple[PlanVersion, bool]:
    """Store a run's plan; returns (plan version, whether it was created now).

    Raises
    ------
    Conflict
        When the plan_key is already imported with other schedules.
    """
    content_hash = run.content_hash()
    existing = session.scalar(sa.select(PlanVersion).where(PlanVersion.plan_key == run.plan_key))
    if existing is not None:
        if existing.content_hash != content_hash:
            raise Conflict(
                f"plan_key {run.plan_key} is already imported (plan {existing.id}, run "
                f"{existing.run_id}) with other schedules; a plan version is never replaced"
            )
        return existing, False
    plan = PlanVersion(
        plan_key=run.plan_key,
        run_id=run.run_id,
        data_fingerprint=run.data_fingerprint,
        config=library_json(run.config),
        rules=library_json(run.rules),
        horizon_weeks=run.horizon_weeks,
        n_skus=len(run.summary),
        source_dir=str(run.folder),
        content_hash=content_hash,
        roi=run.roi,
        metadata_source=run.metadata_source,
        week_starts=run.week_starts,
        currency=run.currency or _config_currency(run.config),
        imported_by_id=user.id if user is not None else None,
    )
    session.add(plan)
    session.flush()
    blob = run.catalog_bytes
    for part, start in enumerate(range(0, len(blob), ARTIFACT_PART_BYTES)):
        session.add(PlanArtifact(plan_id=plan.id, name=library.CATALOG_ARTIFACT, part=part,
                                 content=blob[start : start + ARTIFACT_PART_BYTES]))  # fmt: skip
        session.flush()
    conn = session.connection()
    insert_plan_rows(conn, sku_plans, _summary_rows(run, plan.id), plan.id)
    insert_plan_rows(conn, sku_schedules, _schedule_rows(run, plan.id), plan.id)
    counters.bump(session, counters.REVIEWS)  # a plan id re-used after a manual removal
    record(session, user, "plan.import", "plan", str(plan.id), None, plan_dict(plan),
           actor_name=actor_name)  # fmt: skip
    return plan, True


def _config_currency(config: dict[str, Any]) -> str | None:
    """``[export] currency`` of the run's config, for runs whose tables carry none."""
    value = (config.get("export") or {}).get("currency") if isinstance(config, dict) else None
    return str(value) if value else None


def library_json(values: Any) -> Any:
    """A JSON-safe copy of plain config values."""
    return json.loads(json.dumps(values, default=str))


def plan_dict(plan: PlanVersion) -> dict[str, Any]:
    return {
        "id": plan.id,
        "plan_key": plan.plan_key,
        "run_id": plan.run_id,
        "data_fingerprint": plan.data_fingerprint,
        "n_skus": plan.n_skus,
        "horizon_weeks": plan.horizon_weeks,
        "source_dir": plan.source_dir,
    }


# ------------------------------------------------------------------------------ reading
def get_plan(session: Session, plan_id: int) -> PlanVersion:
    plan = session.get(PlanVersion, plan_id)
    if plan is None:
        raise NotFound(f"plan {plan_id} not found")
    return plan


def catalog_bytes(session: Session, plan_id: int) -> bytes:
    """The plan's stored catalog file (its parts joined)."""
    parts = session.scalars(
        sa.select(PlanArtifact.content)
        .where(PlanArtifact.plan_id == plan_id, PlanArtifact.name == library.CATALOG_ARTIFACT)
        .order_by(PlanArtifact.part)
    ).all()
    if not parts:
        raise NotFound(f"plan {plan_id} has no stored catalog")
    return b"".join(parts)


@dataclass(frozen=True)
class SkuFilter:
    """Filters of the SKU list (all optional, combined with AND)."""

    categories: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    planners: tuple[str, ...] = ()
    min_risk: float | None = None
    max_risk: float | None = None
    min_gain: float | None = None
    max_gain: float | None = None
    sku_contains: str | None = None


def _scoped(user: User, plan_id: int, f: SkuFilter) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of a filter, limited to what ``user`` may see, as SQL text with
    named parameters (columns come from a fixed list; values are always bound).

    Text rather than a Core expression: the SKU list is the hottest request, and building
    and compiling the expression cost more than running the query.
    """
    parts = ["plan_id = :plan_id"]
    params: dict[str, Any] = {"plan_id": plan_id}

    def one_of(column: str, values: Sequence[Any]) -> str:
        keys = [f"{column}_{i}" for i in range(len(values))]
        params.update(zip(keys, values, strict=True))
        return f"{column} IN ({', '.join(':' + k for k in keys)})"

    allowed = visible_categories(user)
    if allowed is not None:
        outside = [k for k in f.categories if k not in allowed]
        if outside:
            raise Forbidden(f"category {outside[0]!r} is not one of yours ({allowed})")
        parts.append(one_of("category", list(f.categories) or allowed))
    elif f.categories:
        parts.append(one_of("category", f.categories))
    if f.tiers:
        parts.append(one_of("tier", f.tiers))
    if f.statuses:
        plain = [s for s in f.statuses if s != "exported"]
        conds = [one_of("status", plain)] if plain else []
        if "exported" in f.statuses:
            conds.append("export_id IS NOT NULL")
        parts.append("(" + " OR ".join(conds) + ")")
    if f.planners:
        parts.append(one_of("recommended_policy", f.planners))
    for column, lo, hi in (("risk", f.min_risk, f.max_risk),
                           ("profit_vs_none", f.min_gain, f.max_gain)):  # fmt: skip
        if lo is not None:
            parts.append(f"{column} >= :{column}_lo")
            params[f"{column}_lo"] = lo
        if hi is not None:
            parts.append(f"{column} <= :{column}_hi")
            params[f"{column}_hi"] = hi
    if f.sku_contains:
        escaped = f.sku_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        parts.append("sku LIKE :sku_like ESCAPE '\\'")
        params["sku_like"] = f"%{escaped}%"
    return " AND ".join(parts), params


COUNTS_KEPT = 4096


class CountCache:
    """Numbers of SKUs matching a filter, per plan and filter (one per API process).

    A count is kept only when its filter leaves the review state alone: reviews change a
    SKU's ``status`` and exports its ``export_id`` (the ``exported`` state), but no other
    column of a plan's SKUs changes once imported, so such a count stays true whichever
    process reviews, and nothing needs invalidating. A filter on the review state is
    counted afresh each time; :meth:`drop_plan` forgets a plan's counts
    (a plan removed and imported again under the same id by hand).
    """

    def __init__(self, size: int = COUNTS_KEPT) -> None:
        self.size = size
        self._items: dict[tuple[Any, ...], int] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(
        plan_id: int, f: SkuFilter, where: str, params: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        """The cache key of a filter (its SQL and values, the caller's scope included), or
        None when the filter reads a column reviews or exports change."""
        if f.statuses:
            return None
        return (plan_id, where, tuple(sorted(params.items())))

    def get(self, key: tuple[Any, ...]) -> int | None:
        with self._lock:
            return self._items.get(key)

    def put(self, key: tuple[Any, ...], count: int) -> None:
        with self._lock:
            if len(self._items) >= self.size:
                self._items.pop(next(iter(self._items)))
            self._items[key] = count

    def drop_plan(self, plan_id: int) -> None:
        with self._lock:
            for k in [k for k in self._items if k[0] == plan_id]:
                del self._items[k]

    def __len__(self) -> int:
        return len(self._items)


_NAMED = re.compile(r":(\w+)")


def _driver_sql(sql: str, dialect: str) -> str:
    """``:name`` placeholders in the DB-API driver's own style (sqlite3 takes ``:name``,
    psycopg2 ``%(name)s``); the SQL of :func:`_scoped` holds no other colon or percent."""
    return sql if dialect == "sqlite" else _NAMED.sub(r"%(\1)s", sql)


def _fetch(session: Session, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` through the session's own DB-API connection and transaction: the
    SKU list's fixed, fully bound SQL needs none of SQLAlchemy's compiling or result
    processing, which cost more than the query."""
    conn = session.connection()
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(_driver_sql(sql, conn.dialect.name), params)
        return list(cur.fetchall())
    finally:
        cur.close()


def list_skus(
    session: Session,
    user: User,
    plan_id: int,
    f: SkuFilter,
    *,
    sort: str = "-risk",
    offset: int = 0,
    limit: int = 100,
    counts: CountCache | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of a plan's SKUs and the number matching the filter (kept in ``counts``
    when given, see :class:`CountCache`)."""
    key = sort.lstrip("-")
    if key not in SORTABLE:
        raise ValueError(sort)
    direction = "DESC" if sort.startswith("-") else "ASC"
    where, params = _scoped(user, plan_id, f)
    # Ties broken by SKU in the same direction, so the (.., key, sku) indexes serve the page
    # without a sort. (A window count on the page query would force one: counting apart is
    # cheaper.)
    sql = (
        f"SELECT {_LIST_SQL} FROM sku_plans WHERE {where} "
        f"ORDER BY {SORTABLE[key]} {direction}, sku {direction} LIMIT :limit_ OFFSET :offset_"
    )
    rows = _fetch(session, sql, {**params, "limit_": limit, "offset_": offset})
    cache_key = CountCache.key(plan_id, f, where, params) if counts is not None else None
    cached = counts.get(cache_key) if counts is not None and cache_key is not None else None
    if cached is not None:
        total = cached
    elif offset == 0 and len(rows) < limit:
        total = len(rows)
    else:
        total = int(_fetch(session, f"SELECT count(*) FROM sku_plans WHERE {where}", params)[0][0])
    if counts is not None and cache_key is not None and cached is None:
        counts.put(cache_key, total)
    return [dict(zip(LIST_COLUMNS, row, strict=True)) for row in rows], total


def sku_row(session: Session, user: User, plan_id: int, sku: str) -> dict[str, Any]:
    """One SKU's summary row (403 outside the user's categories, 404 when absent)."""
    row = (
        session.execute(
            sa.select(sku_plans).where(sku_plans.c.plan_id == plan_id, sku_plans.c.sku == sku)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"SKU {sku!r} is not in plan {plan_id}")
    allowed = visible_categories(user)
    if allowed is not None and row["category"] not in allowed:
        raise Forbidden(f"SKU {sku!r} is in category {row['category']!r}, not one of yours")
    return dict(row)


def schedule_of(session: Session, plan_id: int, sku: str) -> dict[str, Any]:
    """The recommended weekly schedule of a SKU and its expected weekly outcomes."""
    row = (
        session.execute(
            sa.select(sku_schedules).where(
                sku_schedules.c.plan_id == plan_id, sku_schedules.c.sku == sku
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"SKU {sku!r} has no schedule in plan {plan_id}")
    keys = library.WEEKLY_KEYS
    expected = arrays.decode(row["expected"], arrays.OUTCOME, len(keys))
    return {
        "discount": arrays.decode(row["discount"], arrays.DEPTH)[0],
        "coupon": arrays.decode(row["coupon"], arrays.DEPTH)[0],
        "expected": dict(zip(keys, expected, strict=True)),
    }


def latest_override(session: Session, plan_id: int, sku: str) -> Review | None:
    return session.scalars(
        sa.select(Review)
        .where(Review.plan_id == plan_id, Review.sku == sku, Review.action == "override")
        .order_by(Review.id.desc())
        .limit(1)
    ).first()


def reviews_of(session: Session, plan_id: int, sku: str) -> list[Review]:
    return list(
        session.scalars(
            sa.select(Review)
            .where(Review.plan_id == plan_id, Review.sku == sku)
            .order_by(Review.id.desc())
        ).all()
    )


def overview(session: Session, user: User, plan: PlanVersion) -> dict[str, Any]:
    """A plan's aggregates by category (counts by tier and status, stock value, expected
    gain with a CI), its risk histogram and its ROI (as the pipeline computed it).

    The category's gain CI adds the per-SKU CI half-widths in quadrature: SKUs are simulated
    on independent random numbers, so their estimation errors are independent.
    """
    c = sku_plans.c
    where_sql, params = _scoped(user, plan.id, SkuFilter())
    where = [sa.text(where_sql).bindparams(**params)]
    half = (c.profit_vs_none_ci_high - c.profit_vs_none_ci_low) / 2.0
    q = (
        sa.select(
            c.category,
            sa.func.count().label("n_skus"),
            sa.func.sum(c.initial_stock * c.unit_cost).label("stock_value_at_cost"),
            sa.func.sum(c.initial_stock).label("stock_units"),
            sa.func.sum(c.profit_vs_none).label("gain"),
            sa.func.sum(half * half).label("gain_var"),
            sa.func.sum(-c.leftover_units_vs_none).label("dead_units_avoided"),
            sa.func.sum(c.rec_margin_given_away).label("margin_given_away"),
            sa.func.avg(c.risk).label("mean_risk"),
        )
        .where(*where)
        .group_by(c.category)
        .order_by(c.category)
    )
    cats: dict[str, dict[str, Any]] = {}
    for r in session.execute(q).mappings():
        sd = math.sqrt(float(r["gain_var"] or 0.0))
        cats[r["category"]] = {
            "category": r["category"],
            "n_skus": int(r["n_skus"]),
            "stock_units": float(r["stock_units"] or 0.0),
            "stock_value_at_cost": float(r["stock_value_at_cost"] or 0.0),
            "expected_gain": float(r["gain"] or 0.0),
            "expected_gain_ci_low": float(r["gain"] or 0.0) - sd,
            "expected_gain_ci_high": float(r["gain"] or 0.0) + sd,
            "dead_units_avoided": float(r["dead_units_avoided"] or 0.0),
            "margin_given_away": float(r["margin_given_away"] or 0.0),
            "mean_risk": float(r["mean_risk"]) if r["mean_risk"] is not None else None,
            "by_tier": {},
            "by_status": {},
        }
    for field, col in (("by_tier", c.tier), ("by_status", c.status)):
        for cat, key, n in session.execute(
            sa.select(c.category, col, sa.func.count()).where(*where).group_by(c.category, col)
        ):
            cats[cat][field][str(key)] = int(n)
    exported = session.execute(
        sa.select(c.category, sa.func.count())
        .where(*where, c.export_id.is_not(None))
        .group_by(c.category)
    )
    for cat, n in exported:
        cats[cat]["by_status"]["exported"] = int(n)
    risks = np.array(session.scalars(sa.select(c.risk).where(*where)).all(), dtype=float)
    risks = risks[np.isfinite(risks)]
    counts, edges = np.histogram(risks, bins=RISK_BINS, range=(0.0, 1.0))
    pending = sum(v["by_status"].get("pending", 0) for v in cats.values())
    return {
        "plan_id": plan.id,
        "categories": list(cats.values()),
        "risk_histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
        "n_skus": int(sum(v["n_skus"] for v in cats.values())),
        "pending_review": int(pending),
        "roi": plan.roi or {},
        "roi_lines": library.roi_lines(plan.roi or {}),
        "currency": plan.currency,
    }
