"""Health and version, the caller, users and tokens, pipeline runs, the audit log and the
experiments leaderboard."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from sqlalchemy.exc import SQLAlchemyError

from ingest.errors import DeadstockError
from service import audit, jobs, users
from service.api import schemas as sc
from service.api.deps import Caller, Db, State, require
from service.api.routes_plans import ERRORS, Limit, Offset
from service.db.engine import current_revision, head_revision
from service.db.models import Job, User
from service.errors import Conflict, NotFound

router = APIRouter(responses=ERRORS)

JobId = Annotated[int, Path(ge=1, le=2**31 - 1, description="run job id")]
AdminUser = Annotated[User, Depends(require(*users.CAN_ADMIN))]
LeadUser = Annotated[User, Depends(require(*users.CAN_LEAD))]
UserName = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")]


def _version() -> str:
    try:
        return dist_version("deadstock")
    except PackageNotFoundError:
        return "unknown"


@router.get(
    "/health", response_model=sc.Health, tags=["meta"], responses={503: {"model": sc.Message}}
)
def health(state: State) -> Any:
    """Liveness and the database's reachability (no token needed)."""
    try:
        revision = current_revision(state.db.engine)
    except SQLAlchemyError:
        raise HTTPException(503, "database unreachable") from None
    return {"status": "ok", "database": state.db.dialect, "revision": revision}


@router.get("/version", response_model=sc.Version, tags=["meta"])
def version(state: State) -> Any:
    """The package version, the API version and the database's schema revision."""
    return {"version": _version(), "api": "1", "database_revision": current_revision(state.db.engine),
            "head_revision": head_revision()}  # fmt: skip


def _user(u: User, n_tokens: int | None = None) -> dict[str, Any]:
    return {"id": u.id, "name": u.name, "role": u.role, "categories": list(u.categories or []),
            "active": u.active, "created_at": u.created_at, "n_tokens": n_tokens}  # fmt: skip


@router.get("/me", response_model=sc.UserOut, tags=["users"])
def me(user: Caller) -> Any:
    """The caller: name, role and categories."""
    return _user(user)


@router.get("/users", response_model=list[sc.UserOut], tags=["users"])
def list_users(session: Db, user: AdminUser) -> Any:
    """Every user with their number of valid tokens (admin)."""
    return [_user(u, n) for u, n in users.list_users(session)]


@router.post("/users", response_model=sc.TokenOut, status_code=status.HTTP_201_CREATED,
             tags=["users"])  # fmt: skip
def add_user(body: sc.UserCreate, session: Db, user: AdminUser, state: State) -> Any:
    """Create a user and their first token (admin). The token is shown this once."""
    try:
        new, token = users.add_user(session, body.name, body.role, body.categories, actor=user)
    except DeadstockError as err:
        raise Conflict(str(err)) if "already exists" in str(err) else err from None
    session.commit()
    return {"user": _user(new, 1), "token": token}


@router.post("/users/{name}/tokens", response_model=sc.TokenOut,
             status_code=status.HTTP_201_CREATED, tags=["users"])  # fmt: skip
def new_token(name: UserName, session: Db, user: AdminUser, state: State) -> Any:
    """A new token for a user (admin); shown this once."""
    target = _find_user(session, name)
    if not target.active:
        raise Conflict(f"user {name!r} is revoked")
    token = users.issue_token(session, target, actor=user)
    session.commit()
    return {"user": _user(target), "token": token}


@router.post("/users/{name}/revoke", response_model=sc.UserOut, tags=["users"])
def revoke_user(name: UserName, session: Db, user: AdminUser, state: State) -> Any:
    """Deactivate a user and revoke their tokens (admin; not yourself)."""
    target = _find_user(session, name)
    if target.id == user.id:
        raise Conflict("you cannot revoke yourself; ask another admin")
    users.revoke_user(session, target, actor=user)
    session.commit()
    state.tokens.clear()
    return _user(target, 0)


def _find_user(session: Any, name: str) -> User:
    found = session.scalar(sa.select(User).where(User.name == name))
    if found is None:
        raise NotFound(f"no user named {name!r}")
    return found


# ------------------------------------------------------------------------------ runs
def _job(j: Job, live: bool = False) -> dict[str, Any]:
    out = {k: getattr(j, k) for k in sc.JobOut.model_fields}
    if live and j.status in ("queued", "running"):
        out["log_tail"] = jobs.tail(j.log_path)
    out["log_tail"] = out["log_tail"] or ""
    return out


@router.get("/runs", response_model=sc.JobPage, tags=["runs"])
def list_runs(session: Db, user: Caller, offset: Offset = 0, limit: Limit = 20) -> Any:
    """Pipeline runs started through the API, newest first."""
    total = session.scalar(sa.select(sa.func.count()).select_from(Job)) or 0
    rows = session.scalars(sa.select(Job).order_by(Job.id.desc()).offset(offset).limit(limit))
    return {"total": total, "offset": offset, "limit": limit,
            "items": [_job(j) for j in rows]}  # fmt: skip


@router.post("/runs", response_model=sc.JobOut, status_code=status.HTTP_202_ACCEPTED,
             tags=["runs"])  # fmt: skip
def start_run(body: sc.RunRequest, user: LeadUser, state: State) -> Any:
    """Start ``deadstock run`` in a new output folder (pricing lead, admin); its plan is
    imported when it succeeds. One run at a time (409 while another goes)."""
    job = state.jobs.start(user, body.model_dump(exclude_none=True))
    return _job(job)


@router.get("/runs/{job_id}", response_model=sc.JobOut, tags=["runs"])
def get_run(job_id: JobId, session: Db, user: Caller) -> Any:
    """A run's status, exit code, plan and the tail of its log (live while it runs)."""
    return _job(jobs.get_job(session, job_id), live=True)


@router.post("/runs/{job_id}/cancel", response_model=sc.JobOut, tags=["runs"])
def cancel_run(job_id: JobId, user: LeadUser, state: State, session: Db) -> Any:
    """Cancel a running run (pricing lead, admin): SIGTERM, then SIGKILL after a grace
    period. The previous outputs of other runs are untouched."""
    state.jobs.cancel(user, job_id)
    state.jobs.wait(job_id, jobs.CANCEL_GRACE_SECONDS + 5)
    session.expire_all()
    return _job(jobs.get_job(session, job_id))


# ------------------------------------------------------------------------------ audit, MLflow
@router.get("/audit", response_model=sc.AuditPage, tags=["audit"])
def audit_log(
    session: Db,
    user: LeadUser,
    object_type: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z_]+$")] = None,
    object_id: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f]+$")] = None,
    actor: Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00-\x1f]+$")] = None,
    action: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z_.]+$")] = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> Any:
    """The audit log, newest first (pricing lead, admin): who changed what, when, before
    and after."""
    rows, total = audit.entries(session, object_type=object_type, object_id=object_id,
                                actor=actor, action=action, offset=offset, limit=limit)  # fmt: skip
    items = [{k: getattr(e, k) for k in sc.AuditOut.model_fields} for e in rows]
    return {"total": total, "offset": offset, "limit": limit, "items": items}


@router.get("/experiments/leaderboard", response_model=sc.Leaderboard, tags=["experiments"])
def leaderboard(user: Caller, state: State) -> Any:
    """The agents' leaderboard across MLflow runs (mean and CI of % of the DP optimum per
    agent) and the link to the MLflow UI."""
    from service import library

    try:
        rows, n_runs = library.leaderboard()
        error = None
    except Exception as err:  # noqa: BLE001 - an unreachable store is reported, not raised
        rows, n_runs, error = [], 0, f"MLflow store unreadable: {type(err).__name__}"
    return {"mlflow_ui_url": state.settings.mlflow_ui_url, "n_runs": n_runs, "rows": rows,
            "error": error}  # fmt: skip
