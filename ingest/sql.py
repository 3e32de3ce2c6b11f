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
from collections.abc import Iterator
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


def is_sql_url(source: str) -> bool:
    """Whether ``source`` looks like a SQLAlchemy URL (``dialect[+driver]://...``)."""
    head = source.split("://", 1)[0] if "://" in source else ""
    return bool(head) and head.split("+", 1)[0] in SQL_SCHEMES


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (for messages and logs)."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@", 1)[-1]


def make_engine(url: str) -> Engine:
    """Create an engine; raise :class:`DataError` for an unusable URL or missing driver."""
    try:
        engine = sa.create_engine(url)
    except (ArgumentError, NoSuchModuleError, ImportError) as err:
        raise DataError(f"cannot use database URL {mask_url(url)!r}: {err}") from None
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
    engine = make_engine(url)
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
