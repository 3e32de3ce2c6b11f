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
  units or prices, no list price of 0, nothing absurdly large, weeks in ``0..MAX_WEEK``);
- keys are unique; every SKU in another table exists in ``products``.
- weeks may come in any order and may have gaps (a SKU's missing weeks are zero-sales weeks);
  only a non-integer, negative or absurd week index is an error.

:func:`plausibility_warnings` flags values that are valid but implausible (a unit cost far
above the list price, a discount far above the row's revenue); the loader logs them and keeps
them in ``Dataset.notes``.
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
            bound = f"values >= {lo:g}" if spec.min_inclusive else f"values > {lo:g}"
            below = np.flatnonzero(finite < lo)
            if below.size:
                problem(f"values below {lo:g}", bound, below)
            at = np.flatnonzero(finite == lo)
            if not spec.min_inclusive and at.size:
                problem(f"values of {lo:g}", bound, at)
        if hi is not None:
            above = np.flatnonzero(np.isfinite(finite) & (finite > hi))
            if above.size:
                problem(f"absurdly large values (above {hi:g})", f"values <= {hi:g}", above)
    return out


#: Separators a spreadsheet may have written instead of ``,`` (locales with a decimal comma
#: write ``;``).
OTHER_SEPARATORS: tuple[str, ...] = (";", "\t", "|")
COMMA_SEPARATED = "comma-separated values (save the file with ',' as the separator)"


def other_separator(header: str) -> str | None:
    """The separator a CSV header line uses instead of ``,`` (``None`` when it has a comma or
    none of :data:`OTHER_SEPARATORS`)."""
    if "," in header:
        return None
    counts = {sep: header.count(sep) for sep in OTHER_SEPARATORS}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] else None


def separator_message(header: str, separator: str) -> str:
    """What to tell about a file whose header is ``separator``-separated."""
    return f"the file looks {separator!r}-separated (header {header[:60]!r})"


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
    missing = [name for name in spec.required_columns if name not in present]
    separator = other_separator(present[0]) if missing and len(present) == 1 else None
    if separator is not None:
        return [
            Problem(
                spec.name,
                raw.location,
                None,
                f"required columns {missing} are missing: "
                + separator_message(present[0], separator),
                COMMA_SEPARATED,
            )
        ]
    lower = {c.lower(): c for c in unknown}
    for name in missing:
        if name in lower:
            hint = f" (found {lower[name]!r}: column names are lower-case)"
        else:
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


#: Key columns holding ids: a whole number written as a float (``1001.0``) is the id ``1001``.
ID_COLUMNS: tuple[str, ...] = ("sku", "household_id", "basket_id")
_WHOLE_FLOAT = r"^([+-]?\d+)\.0+$"


def normalize_text(col: pd.Series) -> pd.Series:
    """A text column as strings; a float column of whole numbers loses ``.0``."""
    if pd.api.types.is_float_dtype(col):
        whole = col.dropna()
        if (whole == np.round(whole)).all():
            return col.astype("Int64").astype("string")
    return col.astype("string").str.strip()


def normalize_ids(col: pd.Series) -> pd.Series:
    """Id column as strings, the same from every file format: whole numbers written as
    floats lose ``.0`` whether they were read as numbers (Parquet) or as text (``"1001.0"``
    in a CSV exported from a spreadsheet)."""
    text = normalize_text(col)
    if text.str.contains(".", regex=False).any():
        text = text.str.replace(_WHOLE_FLOAT, r"\1", regex=True)
    return text


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
            out[c.name] = normalize_ids(col) if c.name in ID_COLUMNS else normalize_text(col)
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


#: A unit cost above this multiple of the list price is flagged: every sale would lose more
#: than the price, more likely a unit or column mix-up than a fact.
MAX_COST_TO_PRICE = 2.0


def _max_discount_to_revenue() -> float:
    # A sales row's implied discount depth is (discount + coupon) / (revenue + discount +
    # coupon); deeper than the panel's cap means discount + coupon > cap / (1 - cap) x revenue.
    from ingest.panel import MAX_DISCOUNT_DEPTH

    return MAX_DISCOUNT_DEPTH / (1.0 - MAX_DISCOUNT_DEPTH)


def plausibility_warnings(
    raw: Mapping[str, RawTable], tables: Mapping[str, pd.DataFrame]
) -> list[Problem]:
    """Values that are valid but implausible, to warn about (never an error).

    - ``products``: ``unit_cost`` above :data:`MAX_COST_TO_PRICE` x ``list_price``;
    - ``sales``: rows with units sold whose ``discount_amount + coupon_amount`` is more than
      19x the ``revenue`` (an implied discount deeper than the panel's 95 % cap, which the
      panel then clips).

    ``tables`` are :func:`validate`'s output for ``raw`` (same row order).
    """
    out: list[Problem] = []

    def warn(name: str, column: str, mask: np.ndarray, message: str, expected: str) -> None:
        positions = np.flatnonzero(mask)
        if positions.size:
            rows, vals, n = _shown(tables[name][column], positions, raw[name].row_offset)
            out.append(Problem(name, raw[name].location, column, message, expected, rows, vals, n))

    products = tables.get("products")
    if products is not None and len(products):
        cost = products["unit_cost"].to_numpy(dtype=float)
        price = products["list_price"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            high = cost > MAX_COST_TO_PRICE * price
        warn(
            "products",
            "unit_cost",
            high,
            f"{int(high.sum())} SKU(s) with unit_cost above {MAX_COST_TO_PRICE:g}x list_price",
            "a unit cost below the list price (same currency, per unit)",
        )
    sales = tables.get("sales")
    if sales is not None and len(sales):
        ratio = _max_discount_to_revenue()
        given = (sales["discount_amount"] + sales["coupon_amount"]).to_numpy(dtype=float)
        revenue = sales["revenue"].to_numpy(dtype=float)
        sold = sales["units"].to_numpy(dtype=float) > 0
        deep = sold & (given > ratio * revenue)
        warn(
            "sales",
            "discount_amount",
            deep,
            f"{int(deep.sum())} row(s) with discount_amount + coupon_amount above {ratio:g}x "
            "the revenue (a discount deeper than 95 %; the panel caps the depth at 95 %)",
            "discounts and coupons in the same currency as revenue, as amounts per row",
        )
    return out
