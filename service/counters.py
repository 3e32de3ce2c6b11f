"""Change counters shared by every API process (the ``change_counters`` table).

Each process caches what is costly to recompute (SKU list pages, checked tokens). A write
that makes such a cache wrong bumps its counter in the same transaction (:func:`bump`), and
every request reads the counters first (:func:`read`, one primary-key read of two rows): a
cache entry made under another counter value is not used. So a review or a revoked token is
seen by the next request on every worker, whichever process (or the command line) wrote it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.db.models import COUNTERS, Counter

REVIEWS, TOKENS = COUNTERS

_READ = "SELECT name, value FROM change_counters"


def bump(session: Session, name: str) -> None:
    """Move counter ``name`` on (in the session's transaction: it commits with the change)."""
    if name not in COUNTERS:
        raise ValueError(f"counter {name!r}: expected one of {COUNTERS}")
    done = session.execute(
        sa.update(Counter).where(Counter.name == name).values(value=Counter.value + 1)
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        session.add(Counter(name=name, value=1))
        session.flush()


def read(session: Session) -> dict[str, int]:
    """Every counter's value (0 for one not written yet), through the session's DB-API
    connection: this runs on every request, where SQLAlchemy's compiling costs more than the
    read."""
    conn = session.connection()
    cur: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(_READ)
        values = dict(cur.fetchall())
    finally:
        cur.close()
    return {name: int(values.get(name, 0)) for name in COUNTERS}
