"""The service database's engine, sessions and migrations.

:func:`open_database` creates the engine for a SQLAlchemy URL and brings the schema to the
newest Alembic revision (``alembic upgrade head``, run programmatically), so ``deadstock
serve`` and ``deadstock users`` work on a new file or an old one alike. SQLite gets a busy
timeout, WAL journaling and foreign keys; PostgreSQL is used as it is.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ingest.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_MS = 30_000
"""How long a SQLite writer waits for another one (the API writes from several threads)."""


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (for messages and logs)."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url``; a clear :class:`ConfigError` for a malformed URL."""
    kwargs: dict[str, Any] = {}
    is_sqlite = url.startswith("sqlite")
    if is_sqlite:
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": SQLITE_BUSY_MS / 1000}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
    try:
        engine = sa.create_engine(url, **kwargs)
    except (ArgumentError, ImportError, ValueError) as err:
        raise ConfigError(f"database URL {mask_url(url)!r} is not usable: {err}") from None
    if is_sqlite:

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
            if ":memory:" not in url and url.rstrip("/") != "sqlite:":
                cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

    return engine


def alembic_config(connection: sa.Connection | None = None) -> Any:
    """The Alembic config of the service's migrations (no ``alembic.ini`` needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> str | None:
    """Run the migrations up to ``revision``; returns the revision the database is at."""
    from alembic import command

    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
    except SQLAlchemyError as err:
        raise DataError(
            f"database {mask_url(str(engine.url))!r} could not be migrated: {err}"
        ) from None
    return current_revision(engine)


def current_revision(engine: sa.Engine) -> str | None:
    """The Alembic revision of the database (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision among the migration scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@dataclass
class Database:
    """An engine and its session factory."""

    engine: sa.Engine
    sessions: sessionmaker[Session]

    @property
    def url(self) -> str:
        return mask_url(self.engine.url.render_as_string(hide_password=False))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        return self.sessions()

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str, *, migrate: bool = True) -> Database:
    """Open the database at ``url`` and (by default) upgrade its schema to the newest
    revision.

    Raises
    ------
    ConfigError
        For a malformed URL.
    DataError
        When the database cannot be reached or migrated.
    """
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except SQLAlchemyError as err:
        engine.dispose()
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"database {mask_url(url)!r} cannot be opened: {first}") from None
    if migrate:
        upgrade(engine)
    return Database(engine, sessionmaker(engine, expire_on_commit=False))
