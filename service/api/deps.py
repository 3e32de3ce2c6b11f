"""What every route needs: the service's state, a database session per request, and the
caller (from the ``Authorization: Bearer`` token)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service import counters, library, plans
from service.api.skulist import SCOPE_KEY, ListCache
from service.db.engine import Database
from service.db.models import PlanVersion, User
from service.errors import Forbidden
from service.jobs import JobRunner
from service.settings import Settings
from service.tasks import CatalogCache, TaskManager
from service.users import TokenCache, authenticate

PLANS_KEPT = 64

bearer = HTTPBearer(auto_error=False, description="An API token from `deadstock users add`.")


@dataclass
class ServiceState:
    """Everything one API process holds."""

    settings: Settings
    db: Database
    jobs: JobRunner
    tasks: TaskManager
    catalogs: CatalogCache
    tokens: TokenCache = field(default_factory=TokenCache)
    plans_seen: dict[int, PlanVersion] = field(default_factory=dict)
    counts: plans.CountCache = field(default_factory=plans.CountCache)
    list_cache: ListCache = field(default_factory=ListCache)

    def plan(self, session: Session, plan_id: int) -> PlanVersion:
        """A plan version (404 when absent). Plan versions never change once imported, so
        each is read from the database once per process."""
        plan = self.plans_seen.get(plan_id)
        if plan is None:
            plan = plans.get_plan(session, plan_id)
            session.expunge(plan)
            if len(self.plans_seen) >= PLANS_KEPT:
                self.plans_seen.pop(next(iter(self.plans_seen)))
            self.plans_seen[plan_id] = plan
        return plan

    def catalog(self, session: Session, plan_id: int) -> Any:
        """The plan's fitted catalog (decoded once, then cached)."""
        return self.catalogs.get(
            plan_id,
            lambda: library.catalog_from_bytes(
                plans.catalog_bytes(session, plan_id), source=f"plan {plan_id} catalog"
            ),
        )


async def get_state(request: Request) -> ServiceState:
    """The process's state (async: a plain ``def`` dependency costs a hop to FastAPI's
    thread pool and back on every request)."""
    return request.app.state.service


# The two dependencies every route has are async: FastAPI runs a plain ``def`` dependency
# in its thread pool, and two thread hops per request cost more than the cached token
# lookup and the session they make.
async def get_session(state: Annotated[ServiceState, Depends(get_state)]) -> AsyncIterator[Session]:
    with state.db.session() as session:
        yield session


async def current_user(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    session: Annotated[Session, Depends(get_session)],
) -> User:
    """The caller; 401 without a valid token."""
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(401, "missing token: send 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    state: ServiceState = request.app.state.service
    # the change counters: read by the list cache's middleware already, or here (a checked
    # token is trusted only while no token was revoked since, by any process)
    seen = request.scope.get("state", {}).get(SCOPE_KEY) or counters.read(session)
    user = state.tokens.get(creds.credentials, seen[counters.TOKENS])
    if user is None:
        user = authenticate(session, creds.credentials)
        if user is not None:
            session.expunge(user)
            state.tokens.put(creds.credentials, user, seen[counters.TOKENS])
    if user is None:
        raise HTTPException(401, "invalid or revoked token",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    return user


def require(*roles: str):
    """A dependency that lets only ``roles`` through (403 otherwise)."""

    def check(user: Annotated[User, Depends(current_user)]) -> User:
        if user.role not in roles:
            raise Forbidden(f"role {user.role!r} may not do this; {list(roles)} may")
        return user

    return check


State = Annotated[ServiceState, Depends(get_state)]
Db = Annotated[Session, Depends(get_session)]
Caller = Annotated[User, Depends(current_user)]
