"""A SQL database (any SQLAlchemy URL) as a source, and as a target.

Tables are named after the canonical tables (``products``, ``sales``, ...). Tested live on
SQLite and PostgreSQL (``postgresql+psycopg2://``); SQL Server (``mssql+pymssql://``) is
supported through the same SQLAlchemy Core statements, checked by compiling them with the
``mssql`` dialect (no SQL Server runs in CI).

Writing is all-or-nothing: every table is dropped, re-created and filled inside one
transaction, so a failure leaves the database as it was. SQLite's Python driver does not
put DDL in a transaction by itself; :func:`make_engine` adds the documented SQLAlchemy
recipe that makes it do so.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.schema import CreateTable, DropTable

from ingest.dataset import Dataset
from ingest.errors import DataError
from ingest.schema import TABLES
from ingest.validate import Problem, RawTable

SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mssql", "mysql", "oracle")
INSERT_CHUNK_ROWS = 20_000

#: What a URL of each dialect looks like (in error messages).
URL_EXAMPLES = {
    "sqlite": "sqlite:///relative/path.db or sqlite:////absolute/path.db",
    "postgresql": "postgresql+psycopg2://user:password@host:5432/database",
    "mssql": "mssql+pymssql://user:password@host:1433/database",
    "mysql": "mysql+pymysql://user:password@host:3306/database",
    "oracle": "oracle+oracledb://user:password@host:1521/service",
}
#: Drivers tried, in order, for a URL that names no driver (``postgresql://``): SQLAlchemy's
#: default driver is not always the one installed (its default for PostgreSQL is psycopg 3).
DRIVERS = {
    "postgresql": ("psycopg", "psycopg2", "pg8000"),
    "mssql": ("pyodbc", "pymssql"),
    "mysql": ("mysqldb", "pymysql", "mysqlconnector"),
    "oracle": ("oracledb", "cx_oracle"),
}
_MEMORY = ("", ":memory:")


def is_sql_url(source: str) -> bool:
    """Whether ``source`` looks like a SQLAlchemy URL (``dialect[+driver]://...``)."""
    head = source.split("://", 1)[0] if "://" in source else ""
    return bool(head) and head.split("+", 1)[0] in SQL_SCHEMES


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (for messages and logs)."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def _dialect_name(url: str) -> str:
    name = url.split("://", 1)[0].split("+", 1)[0].lower()
    return "postgresql" if name == "postgres" else name


def _url_error(url: str, problem: str) -> DataError:
    example = URL_EXAMPLES.get(_dialect_name(url), URL_EXAMPLES["postgresql"])
    return DataError(f"database URL {mask_url(url)!r}: {problem}; expected a URL like {example}")


def _driver_installed(url: sa.engine.URL) -> bool:
    try:
        url.get_dialect().import_dbapi()
    except ImportError:
        return False
    return True


def parse_sql_url(url: str, *, must_exist: bool = False) -> sa.engine.URL:
    """Parse and check a SQLAlchemy URL before anything connects to it.

    Checks that the URL parses (a port is a number in 1..65535), that its dialect and driver
    are known and installed (a URL without a driver gets the first installed one of
    :data:`DRIVERS`, so ``postgresql://`` works with psycopg2), and that a SQLite file exists
    (``must_exist``, for reading) or that its folder does (for writing: SQLite creates the
    file).

    Returns
    -------
    sqlalchemy.engine.URL

    Raises
    ------
    DataError
        Naming the URL (password masked), what is wrong and what a valid URL looks like.
    """
    try:
        parsed = sa.engine.make_url(url)
    except ValueError as err:
        if _dialect_name(url) == "sqlite":
            raise _url_error(url, "not a valid SQLite URL (a SQLite URL has no host)") from None
        bad = re.search(r"'(.*)'", str(err))
        port = f"the port {bad.group(1)!r}" if bad else "the port"
        raise _url_error(url, f"{port} is not a number") from None
    except ArgumentError as err:
        raise _url_error(url, f"cannot be parsed ({str(err).splitlines()[0]})") from None
    name = parsed.get_backend_name()
    if name == "sqlite" and (parsed.host or parsed.port or parsed.username):
        raise _url_error(url, "not a valid SQLite URL (a SQLite URL has no host)")
    if name == "postgres":  # an old alias SQLAlchemy no longer accepts
        parsed = parsed.set(drivername="postgresql" + parsed.drivername[len("postgres") :])
        name = "postgresql"
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise _url_error(url, f"the port {parsed.port} is out of range 1..65535")
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise _url_error(
            url, f"unknown database driver {parsed.drivername!r} (SQLAlchemy has no such dialect)"
        ) from None
    if "+" not in parsed.drivername and name in DRIVERS and not _driver_installed(parsed):
        for driver in DRIVERS[name]:
            candidate = parsed.set(drivername=f"{name}+{driver}")
            if _driver_installed(candidate):
                parsed = candidate
                break
    if not _driver_installed(parsed):
        raise _url_error(
            url,
            f"the database driver of {parsed.drivername!r} is not installed; install it "
            f"or name an installed driver after '+'",
        )
    if name == "sqlite":
        _check_sqlite_file(url, parsed.database, must_exist=must_exist)
    return parsed


def _check_sqlite_file(url: str, database: str | None, *, must_exist: bool) -> None:
    if database is None or database in _MEMORY or database.startswith("file:"):
        return
    path = Path(database)
    if must_exist and not path.is_file():
        raise DataError(
            f"database URL {mask_url(url)!r}: the SQLite database file {str(path)!r} does not "
            f"exist; expected an existing file ({URL_EXAMPLES['sqlite']})"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise DataError(
            f"database URL {mask_url(url)!r}: the folder {str(parent)!r} of the SQLite "
            "database does not exist"
        )


def make_engine(url: str, *, must_exist: bool = False) -> Engine:
    """Create an engine for a URL checked by :func:`parse_sql_url`; raise :class:`DataError`
    for an unusable URL, a missing driver or (``must_exist``) a missing SQLite file."""
    parsed = parse_sql_url(url, must_exist=must_exist)
    try:
        engine = sa.create_engine(parsed)
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as err:
        raise _url_error(url, str(err).splitlines()[0]) from None
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _no_pysqlite_autotx(dbapi_connection, _record):  # pragma: no cover - driver hook
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn):  # pragma: no cover - driver hook
            conn.exec_driver_sql("BEGIN")

    return engine


def _content_hash(frame: pd.DataFrame) -> str:
    """Order-independent hash of a table: row count, column names and the sum of row hashes."""
    rows = pd.util.hash_pandas_object(frame.astype("string"), index=False).to_numpy(np.uint64)
    total = int(rows.sum(dtype=np.uint64)) if len(rows) else 0
    return f"{len(frame)}:{','.join(map(str, frame.columns))}:{total}"


def read_sql(url: str) -> tuple[dict[str, RawTable], str]:
    """Read every canonical table present in the database.

    Returns the raw tables and a fingerprint: the SHA-256 of each table's row count, column
    names and an order-independent sum of row hashes (SQL rows have no inherent order).
    """
    engine = make_engine(url, must_exist=True)
    shown = mask_url(url)
    raw: dict[str, RawTable] = {}
    digest = hashlib.sha256()
    try:
        with engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
            for name in TABLES:
                if name not in present:
                    continue
                table = sa.Table(name, sa.MetaData(), autoload_with=conn)
                frame = pd.read_sql_query(sa.select(table), conn)
                raw[name] = RawTable(frame, f"{shown} table {name}", 1)
                digest.update(f"{name}={_content_hash(frame)};".encode())
    except SQLAlchemyError as err:
        msg = _first_line(err)
        raise DataError(f"cannot read from database {shown!r}: {msg}") from None
    finally:
        engine.dispose()
    if not raw:
        raw_problem = Problem(
            "products", shown, None, "no canonical tables in the database", "tables products, sales"
        )
        raw["products"] = RawTable(pd.DataFrame(), shown, 1, [raw_problem])
    return raw, digest.hexdigest()[:16]


def _first_line(err: SQLAlchemyError) -> str:
    orig = getattr(err, "orig", None)
    lines = str(orig if orig is not None else err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _sa_type(frame: pd.DataFrame, column: str) -> Any:
    spec_types = {
        "str": sa.String(255),
        "int": sa.BigInteger(),
        "float": sa.Float(),
        "bool": sa.Boolean(),
    }
    for spec in TABLES.values():
        if column in spec.column_names:
            return spec_types[spec.column(column).dtype]
    kind = frame[column].dtype.kind
    return {"i": sa.BigInteger(), "u": sa.BigInteger(), "f": sa.Float(), "b": sa.Boolean()}.get(
        kind, sa.Text()
    )


def table_definition(name: str, frame: pd.DataFrame, metadata: sa.MetaData) -> sa.Table:
    """The SQL table for a canonical table frame: typed columns from the schema."""
    columns = [sa.Column(str(c), _sa_type(frame, str(c))) for c in frame.columns]
    return sa.Table(name, metadata, *columns)


def ddl_statements(table: sa.Table) -> tuple[DropTable, CreateTable]:
    """The DDL :func:`write_sql` issues for one table (``DROP TABLE IF EXISTS``, ``CREATE``);
    SQL Server supports both since 2016."""
    return DropTable(table, if_exists=True), CreateTable(table)


def _records(frame: pd.DataFrame) -> Iterator[list[dict[str, object]]]:
    for start in range(0, len(frame), INSERT_CHUNK_ROWS):
        part = frame.iloc[start : start + INSERT_CHUNK_ROWS].astype(object)
        part = part.where(part.notna(), None)
        yield part.to_dict("records")  # type: ignore[misc]


def write_sql(dataset: Dataset, url: str) -> str:
    """Replace the dataset's tables in the database, all in one transaction.

    Returns the masked URL.
    """
    engine = make_engine(url)
    shown = mask_url(url)
    metadata = sa.MetaData()
    tables = {
        name: table_definition(name, frame, metadata) for name, frame in dataset.tables.items()
    }
    try:
        with engine.begin() as conn:
            for name, table in tables.items():
                for ddl in ddl_statements(table):
                    conn.execute(ddl)
                for chunk in _records(dataset.tables[name]):
                    if chunk:
                        conn.execute(table.insert(), chunk)
    except SQLAlchemyError as err:
        msg = _first_line(err)
        raise DataError(f"cannot write to database {shown!r}: {msg}") from None
    finally:
        engine.dispose()
    return shown
