"""Bulk inserts of a frame into a table: ``COPY`` on PostgreSQL, batched ``executemany``
elsewhere. A plan of a million SKUs is a million rows per table; row-by-row ORM inserts
would take tens of minutes, ``COPY`` takes seconds.

A plan's rows of the tables partitioned by plan (:data:`service.db.models.PARTITIONED`) go
through :func:`insert_plan_rows`: on PostgreSQL into a fresh table that gets its indexes
after the load and is then attached as the plan's partition. Inserting into a table that
already carries its indexes maintains each B-tree row by row and checks foreign keys row by
row, several times slower than building each index in one sort and checking the keys in one
join. All of it runs in the caller's transaction, so a failed import leaves nothing.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
import sqlalchemy as sa

BATCH_ROWS = 100_000
"""Rows per ``executemany`` batch (and per ``COPY`` buffer): bounds memory."""

INDEX_BUILD_MEMORY = "256MB"
"""PostgreSQL's ``maintenance_work_mem`` while a new partition's indexes are built (the
server default, 64 MB, spills a million-row sort to disk)."""


def _batches(frame: pd.DataFrame) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), BATCH_ROWS):
        yield frame.iloc[start : start + BATCH_ROWS]


def insert_frame(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame) -> int:
    """Insert every row of ``frame`` (columns named like the table's) inside the caller's
    transaction; NaN becomes NULL. JSON columns hold JSON text. Returns the rows inserted."""
    if frame.empty:
        return 0
    if conn.dialect.name == "postgresql":
        return _copy(conn, table, frame)
    json_cols = [c for c in frame.columns if isinstance(table.c[c].type, sa.JSON)]
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        # SQLite stores JSON as its text: insert the text as it is, through the driver.
        cols = ", ".join(f'"{c}"' for c in frame.columns)
        marks = ", ".join("?" for _ in frame.columns)
        sql = f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks})'
    n = 0
    for part in _batches(frame):
        plain = part.astype(object).where(part.notna(), None)
        if sqlite:
            conn.exec_driver_sql(sql, list(plain.itertuples(index=False, name=None)))
        else:
            for c in json_cols:
                plain[c] = [None if v is None else json.loads(v) for v in plain[c]]
            records: list[dict[str, Any]] = plain.to_dict(orient="records")  # type: ignore[assignment]
            conn.execute(table.insert(), records)
        n += len(plain)
    return n


def insert_plan_rows(
    conn: sa.Connection, table: sa.Table, frame: pd.DataFrame, plan_id: int
) -> int:
    """Insert one plan's rows of a table partitioned by plan (all rows of ``frame`` have
    ``plan_id``), in the caller's transaction; returns the rows inserted.

    On PostgreSQL the rows are copied into a new table ``<table>_p<plan_id>`` without indexes
    (``COPY ... FREEZE``: the table is new in this transaction), which is then attached as the
    plan's partition: PostgreSQL builds its indexes, and checks its foreign keys, in one pass
    each. A ``CHECK`` on ``plan_id`` spares the attach a scan to prove the rows belong there.
    Elsewhere it is :func:`insert_frame`.
    """
    if conn.dialect.name != "postgresql":
        return insert_frame(conn, table, frame)
    from service.db.models import partition_name

    name = partition_name(table.name, plan_id)
    pid = int(plan_id)
    conn.exec_driver_sql(
        f'CREATE TABLE "{name}" (LIKE "{table.name}" INCLUDING DEFAULTS, '
        f'CONSTRAINT "{name}_plan" CHECK (plan_id = {pid}))'
    )
    n = _copy(conn, table, frame, into=name, freeze=True) if not frame.empty else 0
    conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
    conn.exec_driver_sql(
        f'ALTER TABLE "{table.name}" ATTACH PARTITION "{name}" FOR VALUES IN ({pid})'
    )
    return n


def _copy(
    conn: sa.Connection,
    table: sa.Table,
    frame: pd.DataFrame,
    *,
    into: str | None = None,
    freeze: bool = False,
) -> int:
    """``COPY ... FROM STDIN`` in CSV written by Arrow (C++: formatting floats in Python
    would dominate a million-row import), on the connection's own transaction. Bytes go as
    ``\\x<hex>`` (PostgreSQL's bytea text form); an empty unquoted field is NULL."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    cols = ", ".join(f'"{c}"' for c in frame.columns)
    options = "FORMAT csv, FREEZE" if freeze else "FORMAT csv"
    sql = f'COPY "{into or table.name}" ({cols}) FROM STDIN WITH ({options})'
    binary = [c for c in frame.columns if isinstance(table.c[c].type, sa.LargeBinary)]
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cur = raw.cursor()
    try:
        for part in _batches(frame):
            if binary:
                part = part.assign(**{c: ["\\x" + b.hex() for b in part[c]] for c in binary})
            buf = io.BytesIO()
            table_ = pa.Table.from_pandas(part, preserve_index=False)
            pcsv.write_csv(table_, buf, pcsv.WriteOptions(include_header=False))
            buf.seek(0)
            cur.copy_expert(sql, buf)  # type: ignore[attr-defined]
    finally:
        cur.close()
    return len(frame)
