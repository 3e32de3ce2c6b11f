"""Reviews and exports: approve, reject or override SKUs or categories, and send the
approved schedules to the price-execution export."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path as FsPath
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path, status
from fastapi.responses import FileResponse

from service import exports, library, reviews
from service.api import schemas as sc
from service.api.deps import Caller, Db, State
from service.api.routes_plans import ERRORS, Limit, Offset, PlanId
from service.db.models import Export
from service.errors import Conflict, Forbidden
from service.users import CAN_LEAD

router = APIRouter(responses=ERRORS)

ExportId = Annotated[int, Path(ge=1, le=2**31 - 1, description="export id")]


def _review(r: Any) -> dict[str, Any]:
    return {k: getattr(r, k) for k in sc.ReviewOut.model_fields}


@router.post(
    "/plans/{plan_id}/reviews",
    response_model=sc.ReviewBatch,
    status_code=status.HTTP_201_CREATED,
    tags=["reviews"],
)
def create_review(
    plan_id: PlanId, body: sc.ReviewRequest, session: Db, user: Caller, state: State
) -> Any:
    """Approve, reject or override one SKU or every SKU of a category, with a reason. An
    override that breaks a business rule is refused (422) with the rule, the week and the
    SKU; a category manager may review only their categories (403)."""
    plan = state.plan(session, plan_id)
    stored = reviews.review(
        session,
        user,
        plan,
        action=body.action,
        reason=body.reason,
        sku=body.sku,
        category=body.category,
        discount=body.discount,
        coupon=body.coupon,
        catalog_for=lambda skus: state_catalog(state, session, plan_id, skus),
    )
    session.commit()
    return {"status": reviews.ACTIONS[body.action], "n_skus": len(stored),
            "reviews": [_review(r) for r in stored[:1000]]}  # fmt: skip


def state_catalog(state: Any, session: Any, plan_id: int, skus: Sequence[str]) -> Any:
    """The plan's catalog rows of ``skus`` (for the rule check of an override)."""
    return library.take_skus(state.catalog(session, plan_id), skus)


@router.get("/plans/{plan_id}/reviews", response_model=sc.ReviewPage, tags=["reviews"])
def list_reviews(
    plan_id: PlanId, state: State, session: Db, user: Caller, offset: Offset = 0, limit: Limit = 100
) -> Any:
    """A plan's reviews, newest first (a category manager sees their categories')."""
    plan = state.plan(session, plan_id)
    rows, total = reviews.list_reviews(session, user, plan, offset=offset, limit=limit)
    return {"total": total, "offset": offset, "limit": limit,
            "items": [_review(r) for r in rows]}  # fmt: skip


def _export(e: Export) -> dict[str, Any]:
    return {k: getattr(e, k) for k in sc.ExportOut.model_fields}


@router.post(
    "/plans/{plan_id}/exports",
    response_model=sc.ExportOut,
    status_code=status.HTTP_201_CREATED,
    tags=["exports"],
)
def create_export(
    plan_id: PlanId, body: sc.ExportRequest, session: Db, user: Caller, state: State
) -> Any:
    """Export the plan's approved and overridden schedules (all categories or some) to the
    price-execution system as CSV, Parquet or a SQL table (pricing lead, admin). 409 when
    nothing is approved."""
    plan = state.plan(session, plan_id)
    exp = exports.create_export(session, user, plan, state.settings, fmt=body.format,
                                categories=body.categories)  # fmt: skip
    session.commit()
    return _export(exp)


@router.get("/plans/{plan_id}/exports", response_model=sc.ExportPage, tags=["exports"])
def list_exports(
    plan_id: PlanId, state: State, session: Db, user: Caller, offset: Offset = 0, limit: Limit = 100
) -> Any:
    """A plan's exports, newest first."""
    state.plan(session, plan_id)
    q = sa.select(Export).where(Export.plan_id == plan_id)
    total = session.scalar(sa.select(sa.func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(q.order_by(Export.id.desc()).offset(offset).limit(limit)).all()
    return {"total": total, "offset": offset, "limit": limit,
            "items": [_export(e) for e in rows]}  # fmt: skip


@router.get("/exports/{export_id}", response_model=sc.ExportOut, tags=["exports"])
def get_export(export_id: ExportId, session: Db, user: Caller) -> Any:
    """One export: who, when, which plan, where, how many SKUs by decision."""
    return _export(exports.get_export(session, export_id))


@router.get(
    "/exports/{export_id}/file",
    tags=["exports"],
    response_class=FileResponse,
    responses={
        200: {
            "content": {"text/csv": {}, "application/octet-stream": {}},
            "description": "the exported file",
        }
    },  # fmt: skip
)
def export_file(export_id: ExportId, session: Db, user: Caller) -> Any:
    """Download an export's file (CSV or Parquet; pricing lead, admin)."""
    if user.role not in CAN_LEAD:
        raise Forbidden(f"role {user.role!r} cannot download exports; {list(CAN_LEAD)} can")
    exp = exports.get_export(session, export_id)
    path = FsPath(exp.target)
    if exp.format == "sql" or not path.is_file():
        raise Conflict(f"export {export_id} has no file here ({exp.target})")
    media = "text/csv" if exp.format == "csv" else "application/octet-stream"
    return FileResponse(path, media_type=media, filename=path.name)
