"""The price-execution export: approved and overridden schedules only.

One row per SKU and week (``plan_key, sku, category, week, week_start, discount, coupon,
list_price, net_price, currency, decision``; ``week_start`` is the week's first day when the plan
has a calendar, empty otherwise; ``net_price`` is the shelf price the price system sets, list
price x (1 - discount), to the cent): an approved SKU exports its recommended schedule, an overridden one the schedule of its latest
override; pending and rejected SKUs are left out. The table is written by
:func:`service.library.write_price_export` (CSV or Parquet, atomically, under the exports
folder; or a SQL table ``deadstock_price_execution`` whose rows of the plan are replaced in
one transaction). Each export is recorded (who, when, which plan, where, how many) and
marks its SKUs as exported.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from service import counters, library
from service.audit import record
from service.db import arrays
from service.db.models import EXPORTABLE, Export, PlanVersion, Review, User, sku_plans, utcnow
from service.db.models import sku_schedules as sched
from service.errors import Conflict, Forbidden, NotFound
from service.settings import Settings
from service.users import CAN_LEAD

FORMATS = ("csv", "parquet", "sql")
SQL_TABLE = "price_execution"
"""Name of the exported table (``deadstock_`` is prefixed in SQL)."""


def export_frame(
    session: Session, plan: PlanVersion, categories: Sequence[str] | None
) -> pd.DataFrame:
    """The export's rows (see the module docstring)."""
    c = sku_plans.c
    where = [c.plan_id == plan.id, c.status.in_(EXPORTABLE)]
    if categories:
        where.append(c.category.in_(list(categories)))
    rows = session.execute(
        sa.select(c.sku, c.category, c.status, c.list_price, sched.c.discount, sched.c.coupon)
        .join(sched, (sched.c.plan_id == c.plan_id) & (sched.c.sku == c.sku))
        .where(*where)
        .order_by(c.sku)
    ).all()
    overridden = [r.sku for r in rows if r.status == "overridden"]
    edits: dict[str, tuple[list[float], list[float]]] = {}
    for start in range(0, len(overridden), 500):
        part = overridden[start : start + 500]
        latest = (
            sa.select(Review.sku, sa.func.max(Review.id).label("id"))
            .where(Review.plan_id == plan.id, Review.action == "override", Review.sku.in_(part))
            .group_by(Review.sku)
            .subquery()
        )
        for rv in session.scalars(sa.select(Review).join(latest, latest.c.id == Review.id)):
            edits[rv.sku] = (list(rv.discount or []), list(rv.coupon or []))
    h = plan.horizon_weeks
    n = len(rows)

    def grid(blobs: list[bytes]) -> np.ndarray:
        return np.frombuffer(b"".join(blobs), dtype=arrays.DEPTH).reshape(n, h).astype(float)

    disc = grid([r.discount for r in rows])
    coup = grid([r.coupon for r in rows])
    for i, r in enumerate(rows):
        if r.sku in edits:
            disc[i], coup[i] = edits[r.sku]
    list_price = np.repeat(np.array([r.list_price for r in rows], dtype=float), h)
    starts = list(plan.week_starts or [])
    week_start = np.tile(np.array(starts if len(starts) == h else [None] * h, dtype=object), n)
    return pd.DataFrame(
        {
            "plan_key": plan.plan_key,
            "sku": np.repeat([r.sku for r in rows], h),
            "category": np.repeat([r.category for r in rows], h),
            "week": np.tile(np.arange(1, h + 1), n),
            "week_start": week_start,
            "discount": disc.ravel(),
            "coupon": coup.ravel(),
            "list_price": list_price,
            "net_price": np.round(list_price * (1.0 - disc.ravel()), 2),
            "currency": plan.currency,
            "decision": np.repeat([r.status for r in rows], h),
        }
    )


def create_export(
    session: Session,
    user: User,
    plan: PlanVersion,
    settings: Settings,
    *,
    fmt: str,
    categories: Sequence[str] | None = None,
) -> Export:
    """Write the export and record it (the caller commits)."""
    if user.role not in CAN_LEAD:
        raise Forbidden(f"role {user.role!r} cannot export; {list(CAN_LEAD)} can")
    if fmt not in FORMATS:
        raise ValueError(fmt)
    frame = export_frame(session, plan, categories)
    if frame.empty:
        scope = f" in {list(categories)}" if categories else ""
        raise Conflict(f"plan {plan.id} has no approved or overridden schedule{scope} to export")
    stamp = utcnow().strftime("%Y%m%dT%H%M%S")
    if fmt == "sql":
        name = SQL_TABLE
        out_dir = ""
    else:
        name = f"{SQL_TABLE}_{stamp}_{uuid.uuid4().hex[:8]}"
        out_dir = str(Path(settings.exports_dir) / plan.plan_key)
    # Written before the export row is added: the service database may be the SQL target,
    # and on SQLite this session must not hold a write lock while another engine writes.
    target = library.write_price_export(
        frame, fmt, out_dir, name, settings.export_sql_url or settings.db_url
    )
    by_status = frame.drop_duplicates("sku")["decision"].value_counts().to_dict()
    skus = frame["sku"].unique().tolist()
    exp = Export(
        plan_id=plan.id,
        user_id=user.id,
        format=fmt,
        target=str(Path(target).resolve()) if fmt != "sql" else f"table {target}",
        categories=list(categories) if categories else None,
        n_skus=len(skus),
        n_rows=len(frame),
        by_status={str(k): int(v) for k, v in by_status.items()},
    )
    session.add(exp)
    session.flush()
    for start in range(0, len(skus), 500):
        session.execute(
            sa.update(sku_plans)
            .where(sku_plans.c.plan_id == plan.id, sku_plans.c.sku.in_(skus[start : start + 500]))
            .values(export_id=exp.id)
        )
    counters.bump(session, counters.REVIEWS)  # the SKUs' export_id changed
    record(session, user, "export.create", "export", str(exp.id), None, export_dict(exp))
    return exp


def export_dict(exp: Export) -> dict[str, Any]:
    return {
        "id": exp.id,
        "plan_id": exp.plan_id,
        "format": exp.format,
        "target": exp.target,
        "categories": exp.categories,
        "n_skus": exp.n_skus,
        "n_rows": exp.n_rows,
        "by_status": exp.by_status,
    }


def get_export(session: Session, export_id: int) -> Export:
    exp = session.get(Export, export_id)
    if exp is None:
        raise NotFound(f"export {export_id} not found")
    return exp
