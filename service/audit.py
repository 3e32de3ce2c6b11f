"""The append-only audit log: who changed what, when, from what to what.

:func:`record` is the only function that writes it, and it only inserts; nothing in the code
updates or deletes an entry (the migration also installs triggers that refuse both on SQLite
and PostgreSQL). Each entry is added in the same transaction as the change it records, so a
change is never saved without its entry, nor an entry without its change.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.db.models import AuditEntry, User


def _plain(value: Any) -> Any:
    """JSON-safe copy: timestamps as ISO strings, arrays as lists, NaN and inf as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def record(
    session: Session,
    user: User | None,
    action: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    *,
    actor_name: str = "system",
) -> AuditEntry:
    """Add one audit entry to ``session`` (committed with the change it records).

    Parameters
    ----------
    user : User or None
        Who made the change; None for the command line or the service itself, named by
        ``actor_name``.
    action : str
        ``"<object>.<verb>"``, e.g. ``"sku.approve"``, ``"plan.import"``.
    object_type, object_id : str
        What changed (``"sku"``, ``"plan/sku"`` ...).
    before, after : dict or None
        The object's state before and after the change.
    """
    entry = AuditEntry(
        user_id=user.id if user is not None else None,
        actor=user.name if user is not None else actor_name,
        action=action,
        object_type=object_type,
        object_id=str(object_id)[:200],
        before=_plain(before) if before is not None else None,
        after=_plain(after) if after is not None else None,
    )
    session.add(entry)
    return entry


def entries(
    session: Session,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[list[AuditEntry], int]:
    """Entries newest first, filtered; and how many match."""
    q = sa.select(AuditEntry)
    if object_type:
        q = q.where(AuditEntry.object_type == object_type)
    if object_id:
        q = q.where(AuditEntry.object_id == object_id)
    if actor:
        q = q.where(AuditEntry.actor == actor)
    if action:
        q = q.where(AuditEntry.action == action)
    total = session.scalar(sa.select(sa.func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(q.order_by(AuditEntry.id.desc()).offset(offset).limit(limit)).all()
    return list(rows), int(total)
