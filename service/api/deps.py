"""What every route needs: the service's state, a database session per request, and the
caller (from the ``Authorization: Bearer`` token)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service import library, plans
from service.db.engine import Database
from service.db.models import User
from service.errors import Forbidden
from service.jobs import JobRunner
from service.settings import Settings
from service.tasks import CatalogCache, TaskManager
from service.users import authenticate

bearer = HTTPBearer(auto_error=False, description="An API token from `deadstock users add`.")


@dataclass
class ServiceState:
    """Everything one API process holds."""

    settings: Settings
    db: Database
    jobs: JobRunner
    tasks: TaskManager
    catalogs: CatalogCache

    def catalog(self, session: Session, plan_id: int) -> Any:
        """The plan's fitted catalog (decoded once, then cached)."""
        return self.catalogs.get(
            plan_id,
            lambda: library.catalog_from_bytes(
                plans.catalog_bytes(session, plan_id), source=f"plan {plan_id} catalog"
            ),
        )


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


def get_session(state: Annotated[ServiceState, Depends(get_state)]) -> Iterator[Session]:
    with state.db.session() as session:
        yield session


def current_user(
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    session: Annotated[Session, Depends(get_session)],
) -> User:
    """The caller; 401 without a valid token."""
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(401, "missing token: send 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    user = authenticate(session, creds.credentials)
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
