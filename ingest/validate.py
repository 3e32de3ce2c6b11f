"""Validation of raw tables against the canonical schemas in :mod:`ingest.schema`.

Every loader reads a source into raw frames (one per table, with the file or URL it came
from) and hands them to :func:`check_tables`, which returns one :class:`Problem` per issue
found, and to :func:`coerce_tables`, which turns them into canonical dtypes. :func:`validate`
does both and raises :class:`DataValidationError` with *all* problems at once, so a user
fixes a file in one pass instead of one error per run.

Rules (also in ``docs/data.md``)
-------------------------------
- a required table must exist and have at least one row; a file must be UTF-8 and not empty;
- every required column must be present; an unknown column close to a missing one is named
  as the likely rename;
- numeric columns hold numbers; ``int`` columns (weeks) hold whole numbers;
- missing values only in nullable columns; values within the column's bounds (no negative
  units or prices, nothing absurdly large, weeks in ``0..MAX_WEEK``);
- keys are unique; every SKU in another table exists in ``products``.
- weeks may come in any order and may have gaps (a SKU's missing weeks are zero-sales weeks);
  only a non-integer, negative or absurd week index is an error.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ingest.errors import DataError
from ingest.keys import isin
from ingest.schema import REQUIRED_TABLES, TABLES, ColumnSpec, TableSpec

#: Largest week index accepted (about 190 years of weeks): anything above is a unit error.
MAX_WEEK = 10_000
#: How many offending rows a problem lists.
MAX_SHOWN = 5


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input.

    Parameters
    ----------
    table : str
        Canonical table name.
    location : str
        File path or URL (password masked) the table came from.
    column : str or None
        Column concerned, ``None`` for table- or file-level problems.
    message : str
        What is wrong.
    expected : str
        What was expected instead.
    rows : tuple of int
        First offending rows, numbered as a person sees them (CSV line numbers, counting the
        header as line 1; 1-based row numbers for Parquet and SQL).
    values : tuple of str
        The offending values, aligned with ``rows``.
    n_rows : int
        How many rows offend in all (``rows`` shows the first few).
    """

    table: str
    location: str
    column: str | None
    message: str
    expected: str
    rows: tuple[int, ...] = ()
    values: tuple[str, ...] = ()
    n_rows: int = 0

    def __str__(self) -> str:
        where = f"{self.table} ({self.location})"
        if self.column is not None:
            where += f", column {self.column!r}"
        text = f"{where}: {self.message}"
        if self.rows:
            shown = ", ".join(f"{r}: {v}" for r, v in zip(self.rows, self.values, strict=True))
            more = (
                f" (+{self.n_rows - len(self.rows)} more)" if self.n_rows > len(self.rows) else ""
            )
            text += f"; rows {shown}{more}"
        return f"{text}; expected {self.expected}"


class DataValidationError(DataError):
    """Raised with every :class:`Problem` found in a source."""

    def __init__(self, problems: list[Problem], source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        head = f"{len(self.problems)} problem(s) in {source or 'the data'}:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


@dataclass
class RawTable:
    """A table as read from the source, before any type conversion.

    ``row_offset`` turns a 0-based frame position into the row number a person sees
    (2 for CSV: the header is line 1; 1 for Parquet and SQL).
    """

    frame: pd.DataFrame
    location: str
    row_offset: int = 1
    problems: list[Problem] = field(default_factory=list)


def _shown(values: pd.Series, positions: np.ndarray, offset: int) -> tuple[tuple, tuple, int]:
    first = positions[:MAX_SHOWN]
    rows = tuple(int(p) + offset for p in first)
    vals = tuple(repr(v) if isinstance(v, str) else str(v) for v in values.iloc[first].tolist())
    return rows, vals, len(positions)


def _numeric(col: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Numbers of ``col`` and positions of entries that are present but not numbers."""
    if pd.api.types.is_bool_dtype(col):
        return col.astype(float), np.array([], dtype=np.intp)
    if pd.api.types.is_numeric_dtype(col):
        return col.astype(float), np.array([], dtype=np.intp)
    text = col.astype("string").str.strip()
    num = pd.to_numeric(text, errors="coerce")
    bad = np.flatnonzero((num.isna() & text.notna() & (text != "")).to_numpy())
    return num.astype(float), bad


def _is_missing(col: pd.Series) -> np.ndarray:
    miss = np.array(col.isna().to_numpy(dtype=bool), copy=True)
    if not pd.api.types.is_numeric_dtype(col):
        miss |= (col.astype("string").str.strip() == "").fillna(True).to_numpy(dtype=bool)
    return miss


def _check_column(spec: ColumnSpec, col: pd.Series, raw: RawTable, table: str) -> list[Problem]:
    out: list[Problem] = []
    loc, off = raw.location, raw.row_offset

    def problem(message: str, expected: str, positions: np.ndarray) -> None:
        rows, vals, n = _shown(col, positions, off)
        out.append(Problem(table, loc, spec.name, message, expected, rows, vals, n))

    missing = _is_missing(col)
    if not spec.nullable and missing.any():
        problem("missing values", "a value in every row", np.flatnonzero(missing))
    if spec.dtype == "str":
        return out
    num, bad = _numeric(col)
    if bad.size:
        problem("text in a numeric column", f"numbers ({spec.dtype})", bad)
    finite = num.to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        inf = np.isinf(finite)
        if inf.any():
            problem("infinite values", "finite numbers", np.flatnonzero(inf))
        if spec.dtype == "int":
            frac = np.flatnonzero(np.isfinite(finite) & (finite != np.round(finite)))
            if frac.size:
                problem("non-integer values", "whole numbers", frac)
        lo = spec.min_value
        hi = spec.max_value
        if spec.name in ("week", "launch_week"):
            hi = MAX_WEEK
        if lo is not None:
            below = np.flatnonzero(finite < lo)
            if below.size:
                problem(f"values below {lo:g}", f"values >= {lo:g}", below)
        if hi is not None:
            above = np.flatnonzero(np.isfinite(finite) & (finite > hi))
            if above.size:
                problem(f"absurdly large values (above {hi:g})", f"values <= {hi:g}", above)
    return out


def check_table(spec: TableSpec, raw: RawTable) -> list[Problem]:
    """Return the problems of one raw table (columns, types, bounds, duplicate keys)."""
    problems = list(raw.problems)
    if problems:  # unreadable file: nothing more to check
        return problems
    frame = raw.frame
    if len(frame.columns) == 0:
        return [
            Problem(spec.name, raw.location, None, "the file is empty", "a header row and data")
        ]
    present = [str(c) for c in frame.columns]
    unknown = [c for c in present if c not in spec.column_names]
    for name in spec.required_columns:
        if name in present:
            continue
        close = difflib.get_close_matches(name, unknown, n=1, cutoff=0.6)
        hint = f" (found {close[0]!r}: renamed?)" if close else ""
        problems.append(
            Problem(
                spec.name,
                raw.location,
                name,
                f"required column {name!r} is missing{hint}; columns found: {present}",
                f"columns {list(spec.required_columns)}",
            )
        )
    if len(frame) == 0:
        problems.append(
            Problem(spec.name, raw.location, None, "the file has a header but no rows", "data rows")
        )
        return problems
    for cspec in spec.columns:
        if cspec.name in frame.columns:
            problems.extend(_check_column(cspec, frame[cspec.name], raw, spec.name))
    if all(k in frame.columns for k in spec.key):
        keys = frame[list(spec.key)]
        dup = np.flatnonzero(keys.duplicated(keep=False).to_numpy())
        if dup.size:
            shown = dup[:MAX_SHOWN]
            vals = tuple(
                "/".join(str(v) for v in row) for row in keys.iloc[shown].itertuples(index=False)
            )
            problems.append(
                Problem(
                    spec.name,
                    raw.location,
                    "/".join(spec.key),
                    f"duplicate keys {spec.key}",
                    f"one row per {'/'.join(spec.key)}",
                    tuple(int(p) + raw.row_offset for p in shown),
                    vals,
                    int(dup.size),
                )
            )
    return problems


def normalize_ids(col: pd.Series) -> pd.Series:
    """Id column as strings; whole floats (``1001.0``, as CSV readers make them) lose ``.0``."""
    if pd.api.types.is_float_dtype(col):
        whole = col.dropna()
        if (whole == np.round(whole)).all():
            return col.astype("Int64").astype("string")
    return col.astype("string").str.strip()


def check_tables(raw: Mapping[str, RawTable], source: str = "") -> list[Problem]:
    """Return every problem of a source's raw tables, including cross-table SKU checks."""
    problems: list[Problem] = []
    for name in REQUIRED_TABLES:
        if name not in raw:
            problems.append(
                Problem(
                    name,
                    source,
                    None,
                    f"required table {name!r} not found (tables found: {sorted(raw)})",
                    f"a {name} table ({name}.csv, {name}.parquet or a SQL table {name!r})",
                )
            )
    per_table = {}
    for name, table in raw.items():
        per_table[name] = check_table(TABLES[name], table)
        problems.extend(per_table[name])
    products = raw.get("products")
    if products is None or per_table.get("products") or "sku" not in products.frame:
        return problems
    known = normalize_ids(products.frame["sku"]).dropna()
    for name, table in raw.items():
        if name == "products" or "sku" not in table.frame.columns or per_table[name]:
            continue
        skus = normalize_ids(table.frame["sku"])
        unknown = np.flatnonzero(~isin(skus, known))
        if unknown.size:
            rows, vals, n = _shown(skus, unknown, table.row_offset)
            n_skus = skus.iloc[unknown].nunique()
            problems.append(
                Problem(
                    name,
                    table.location,
                    "sku",
                    f"{n_skus} SKU(s) not in products",
                    "every SKU to have a row in products",
                    rows,
                    vals,
                    n,
                )
            )
    return problems


def coerce_table(spec: TableSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """Canonical dtypes and column order; absent optional columns get their default.

    Columns outside the schema are kept after the canonical ones. Call only on a table that
    :func:`check_table` passed.
    """
    out: dict[str, pd.Series] = {}
    n = len(frame)
    for c in spec.columns:
        if c.name not in frame.columns:
            if c.dtype == "str":
                out[c.name] = pd.Series([c.default] * n, dtype="string", index=frame.index)
            else:
                fill = np.nan if c.default is None else float(c.default)  # type: ignore[arg-type]
                out[c.name] = pd.Series(np.full(n, fill), index=frame.index)
            continue
        col = frame[c.name]
        if c.dtype == "str":
            out[c.name] = normalize_ids(col)
            if c.nullable:
                out[c.name] = out[c.name].replace("", pd.NA)
        elif c.dtype == "int":
            num, _ = _numeric(col)
            out[c.name] = num.astype("Int64") if c.nullable else num.astype(np.int64)
        elif c.dtype == "bool":
            out[c.name] = col.astype(bool)
        else:
            out[c.name], _ = _numeric(col)
    extra = {str(k): frame[k] for k in frame.columns if k not in spec.column_names}
    return pd.DataFrame({**out, **extra}, index=frame.index).reset_index(drop=True)


def validate(raw: Mapping[str, RawTable], source: str = "") -> dict[str, pd.DataFrame]:
    """Check raw tables and return them in canonical form.

    Raises
    ------
    DataValidationError
        With every problem found, when there is at least one.
    """
    problems = check_tables(raw, source)
    if problems:
        raise DataValidationError(problems, source)
    return {name: coerce_table(TABLES[name], t.frame) for name, t in raw.items()}
