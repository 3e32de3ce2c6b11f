"""Users, roles and API tokens.

A token is a random string shown once when it is created; the database keeps only its
SHA-256 hash (and a short prefix to tell tokens apart), so a stolen database holds no usable
token. Roles, from least to most:

``viewer``
    Reads every category: plans, SKUs, what-ifs, jobs, the leaderboard.
``category_manager``
    Reads and reviews only the categories listed on the user.
``pricing_lead``
    Every category; reviews, imports plans, starts and cancels runs, exports, reads the
    audit log.
``admin``
    Everything a pricing lead may do, and manages users and tokens.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ingest.errors import ConfigError, DataError
from service import counters
from service.audit import record
from service.db.models import ROLES, ApiToken, User, utcnow

TOKEN_PREFIX = "ds_"
TOKEN_BYTES = 32
"""Random bytes in a token (256 bits: guessing one is hopeless)."""
SHOWN_PREFIX = 10
"""Characters of a token kept in clear to tell tokens apart in listings."""

CAN_REVIEW = ("category_manager", "pricing_lead", "admin")
CAN_LEAD = ("pricing_lead", "admin")
CAN_ADMIN = ("admin",)


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a token (what the database stores)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def user_dict(user: User) -> dict:
    """The audit log's view of a user."""
    return {"name": user.name, "role": user.role, "categories": list(user.categories or []),
            "active": user.active}  # fmt: skip


def check_user_fields(name: str, role: str, categories: Sequence[str]) -> list[str]:
    """Validated (name, role, categories); the categories, stripped and deduplicated."""
    if not name or not name.strip() or len(name) > 100 or name != name.strip():
        raise ConfigError(f"user name {name!r}: expected 1..100 characters without edge spaces")
    if role not in ROLES:
        raise ConfigError(f"role {role!r}: expected one of {list(ROLES)}")
    cats = sorted({str(c).strip() for c in categories if str(c).strip()})
    if role == "category_manager" and not cats:
        raise ConfigError("role category_manager needs --categories (the categories managed)")
    if role != "category_manager" and cats:
        raise ConfigError(f"--categories is for category managers; role {role!r} sees all")
    return cats


def add_user(
    session: Session,
    name: str,
    role: str,
    categories: Sequence[str] = (),
    *,
    actor: User | None = None,
    actor_name: str = "cli",
) -> tuple[User, str]:
    """Create a user with one token; returns the user and the token (shown once)."""
    cats = check_user_fields(name, role, categories)
    if session.scalar(sa.select(User).where(User.name == name)) is not None:
        raise DataError(f"user {name!r} already exists")
    user = User(name=name, role=role, categories=cats, active=True)
    session.add(user)
    session.flush()
    token = _add_token(session, user)
    record(session, actor, "user.create", "user", user.name, None, user_dict(user),
           actor_name=actor_name)  # fmt: skip
    return user, token


def _add_token(session: Session, user: User) -> str:
    token = new_token()
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token),
                         prefix=token[:SHOWN_PREFIX]))  # fmt: skip
    return token


def get_user(session: Session, name: str) -> User:
    user = session.scalar(sa.select(User).where(User.name == name))
    if user is None:
        raise DataError(f"no user named {name!r}")
    return user


def issue_token(
    session: Session, user: User, *, actor: User | None = None, actor_name: str = "cli"
) -> str:
    """A new token for an active user (the old ones stay valid until revoked)."""
    if not user.active:
        raise DataError(f"user {user.name!r} is revoked; add a new user instead")
    token = _add_token(session, user)
    record(session, actor, "token.create", "user", user.name, None,
           {"prefix": token[:SHOWN_PREFIX]}, actor_name=actor_name)  # fmt: skip
    return token


def revoke_user(
    session: Session, user: User, *, actor: User | None = None, actor_name: str = "cli"
) -> int:
    """Deactivate a user and revoke all their tokens; returns the tokens revoked."""
    before = user_dict(user)
    tokens = session.scalars(
        sa.select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ).all()
    now = utcnow()
    for t in tokens:
        t.revoked_at = now
    user.active = False
    counters.bump(session, counters.TOKENS)  # every process's checked tokens are re-checked
    after = {**user_dict(user), "tokens_revoked": len(tokens)}
    record(session, actor, "user.revoke", "user", user.name, before, after,
           actor_name=actor_name)  # fmt: skip
    return len(tokens)


def authenticate(session: Session, token: str) -> User | None:
    """The active user holding this unrevoked token, or None."""
    if not token or len(token) > 200:
        return None
    row = session.execute(
        sa.select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(
            ApiToken.token_hash == hash_token(token),
            ApiToken.revoked_at.is_(None),
            User.active.is_(True),
        )
    ).first()
    return row[0] if row else None


def list_users(session: Session) -> list[tuple[User, int]]:
    """Every user with their number of valid tokens, by name."""
    live = (
        sa.select(ApiToken.user_id, sa.func.count().label("n"))
        .where(ApiToken.revoked_at.is_(None))
        .group_by(ApiToken.user_id)
        .subquery()
    )
    rows = session.execute(
        sa.select(User, sa.func.coalesce(live.c.n, 0))
        .outerjoin(live, live.c.user_id == User.id)
        .order_by(User.name)
    ).all()
    return [(u, int(n)) for u, n in rows]


class TokenCache:
    """Users of recently checked tokens, for ``ttl_seconds`` and while the ``tokens`` change
    counter (:mod:`service.counters`) keeps the value it had when the token was checked:
    most requests then skip the token lookup, and a token revoked anywhere (another worker
    process, the command line) fails on the next request of every process.
    """

    def __init__(self, ttl_seconds: float = 300.0, size: int = 1024) -> None:
        self.ttl_seconds = ttl_seconds
        self.size = size
        self._items: dict[str, tuple[float, int, User]] = {}
        self._lock = threading.Lock()

    def get(self, token: str, generation: int = 0) -> User | None:
        """The user of a token checked under counter value ``generation``, or None."""
        key = hash_token(token)
        with self._lock:
            hit = self._items.get(key)
            if hit is None or hit[1] != generation or time.monotonic() - hit[0] > self.ttl_seconds:
                self._items.pop(key, None)
                return None
            return hit[2]

    def put(self, token: str, user: User, generation: int = 0) -> None:
        with self._lock:
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[hash_token(token)] = (time.monotonic(), generation, user)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def sees_category(user: User, category: str) -> bool:
    """Whether ``user`` may see (and, by role, review) SKUs of ``category``."""
    return user.role != "category_manager" or category in (user.categories or [])


def visible_categories(user: User) -> list[str] | None:
    """The categories a user is limited to (None: all)."""
    return list(user.categories or []) if user.role == "category_manager" else None
