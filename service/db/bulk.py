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

import numpy as np
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
    """``COPY ... FROM STDIN`` in PostgreSQL's binary format, on the connection's own
    transaction (see :func:`binary_copy_payload`)."""
    cols = ", ".join(f'"{c}"' for c in frame.columns)
    options = "FORMAT binary, FREEZE" if freeze else "FORMAT binary"
    sql = f'COPY "{into or table.name}" ({cols}) FROM STDIN WITH ({options})'
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cur = raw.cursor()
    try:
        for part in _batches(frame):
            buf = io.BytesIO(binary_copy_payload(table, part))
            cur.copy_expert(sql, buf)  # type: ignore[attr-defined]
    finally:
        cur.close()
    return len(frame)


# PostgreSQL's binary COPY format: a header, then per row the field count (int16) and per
# field its byte length (int32, -1 for NULL) and its bytes in network order; then -1 (int16).
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"
_NULL_FIELD = b"\xff\xff\xff\xff"


def _as_binary(raw: bytes, width: int, n: int) -> Any:
    """``n`` values of ``width`` bytes each, packed in ``raw``, as an Arrow binary array."""
    import pyarrow as pa

    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, pa.py_buffer(raw)])
    return fixed.cast(pa.binary())


def _fixed_fields(values: np.ndarray, dtype: str, null: np.ndarray) -> Any:
    """Fields of a fixed-width column (length prefix and big-endian value) as Arrow binary."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rec = np.empty(len(values), dtype=[("len", ">i4"), ("v", dtype)])
    rec["len"] = np.dtype(dtype).itemsize
    rec["v"] = values
    fields = _as_binary(rec.tobytes(), rec.dtype.itemsize, len(values))
    if null.any():
        fields = pc.if_else(pa.array(null), pa.scalar(_NULL_FIELD, pa.binary()), fields)
    return fields


def _variable_fields(values: pd.Series) -> Any:
    """Fields of a text or bytes column (length prefix and the bytes) as Arrow binary."""
    import pyarrow as pa
    import pyarrow.compute as pc

    plain = values.astype(object).where(values.notna(), None)
    first = next((v for v in plain if v is not None), None)
    body = pa.array(plain, type=pa.binary() if isinstance(first, bytes) else pa.string())
    body = body.cast(pa.binary())
    lengths = pc.binary_length(body).fill_null(-1).to_numpy(zero_copy_only=False)
    prefix = _as_binary(np.ascontiguousarray(lengths, dtype=">i4").tobytes(), 4, len(values))
    return pc.binary_join_element_wise(prefix, body.fill_null(b""), b"")


def binary_copy_payload(table: sa.Table, frame: pd.DataFrame) -> bytes:
    """The rows of ``frame`` in PostgreSQL's binary ``COPY`` format for ``table``'s columns.

    Built column by column in Arrow's C++ (each field's length prefix and bytes, then the
    fields of a row joined), so neither Python nor the server formats or parses a float as
    text: text parsing of 40 float columns was most of a million-row import. Floats go as
    float8 (NaN as NULL, as the other databases store it), integers as int4, text, JSON and
    bytes as their bytes.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(frame)
    fields = [_as_binary(np.full(n, len(frame.columns), dtype=">i2").tobytes(), 2, n)]
    for c in frame.columns:
        kind = table.c[c].type
        if isinstance(kind, sa.Float):
            v = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
            null = np.isnan(v)
            fields.append(_fixed_fields(np.where(null, 0.0, v), ">f8", null))
        elif isinstance(kind, sa.Integer):
            num = pd.to_numeric(frame[c], errors="coerce")
            null = num.isna().to_numpy()
            fields.append(_fixed_fields(num.fillna(0).to_numpy(dtype=np.int64), ">i4", null))
        elif isinstance(kind, sa.String | sa.Text | sa.JSON | sa.LargeBinary):
            fields.append(_variable_fields(frame[c]))
        else:
            raise TypeError(f"column {table.name}.{c}: no binary COPY for {kind!r}")
    rows = pc.binary_join_element_wise(*fields, b"")
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)[rows.offset : rows.offset + n + 1]
    data = memoryview(rows.buffers()[2])[int(offsets[0]) : int(offsets[-1])]
    return b"".join((_COPY_HEADER, data, _COPY_TRAILER))
