"""A folder of ``<table>.csv`` or ``<table>.parquet`` files as a source, and as a target.

Reading never raises on a bad file: an unreadable, empty or non-UTF-8 file becomes a
:class:`~ingest.validate.Problem` so that validation reports it with all the others.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from ingest.dataset import Dataset
from ingest.errors import DataError
from ingest.io import write_frame_atomic
from ingest.schema import TABLES
from ingest.validate import (
    COMMA_SEPARATED,
    Problem,
    RawTable,
    other_separator,
    separator_message,
)

SUFFIXES = (".csv", ".parquet")


def table_files(folder: Path) -> dict[str, Path]:
    """Map each canonical table present in ``folder`` to its file.

    Raises
    ------
    DataError
        When a table exists both as CSV and as Parquet (which one is meant is unclear).
    """
    found: dict[str, Path] = {}
    for name in TABLES:
        paths = [folder / f"{name}{s}" for s in SUFFIXES if (folder / f"{name}{s}").is_file()]
        if len(paths) > 1:
            raise DataError(
                f"folder {str(folder)!r} has both {paths[0].name} and {paths[1].name}; "
                "keep exactly one file per table"
            )
        if paths:
            found[name] = paths[0]
    return found


def _read_csv(path: Path, name: str) -> RawTable:
    loc = str(path)
    spec = TABLES[name]
    if path.stat().st_size == 0:
        return RawTable(pd.DataFrame(), loc, 2, [_file_problem(name, loc, "the file is empty")])
    text_cols = {c.name: "string" for c in spec.columns if c.dtype == "str"}
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark
        frame = pd.read_csv(path, dtype=text_cols, encoding="utf-8-sig", low_memory=False)  # type: ignore[arg-type]
    except UnicodeDecodeError as err:
        bad = err.object[err.start : err.start + 1]
        msg = f"not UTF-8: byte {bad!r} at byte offset {err.start} cannot be decoded"
        return RawTable(pd.DataFrame(), loc, 2, [_file_problem(name, loc, msg, "UTF-8 text")])
    except pd.errors.EmptyDataError:
        return RawTable(pd.DataFrame(), loc, 2, [_file_problem(name, loc, "the file is empty")])
    except (pd.errors.ParserError, ValueError) as err:
        header = _first_line(path)
        sep = other_separator(header)
        if sep is not None:
            msg = "cannot be parsed as CSV: " + separator_message(header, sep)
            return RawTable(
                pd.DataFrame(), loc, 2, [_file_problem(name, loc, msg, COMMA_SEPARATED)]
            )
        msg = f"cannot be parsed as CSV: {str(err).strip()}"
        return RawTable(pd.DataFrame(), loc, 2, [_file_problem(name, loc, msg, "well-formed CSV")])
    frame.columns = [str(c).strip() for c in frame.columns]
    return RawTable(frame, loc, 2)


def _first_line(path: Path) -> str:
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        return fh.readline().strip()


def _read_parquet(path: Path, name: str) -> RawTable:
    loc = str(path)
    try:
        frame = pq.read_table(path).to_pandas()
    except Exception as err:  # noqa: BLE001 - any reader failure is a problem with the file
        msg = f"cannot be read as Parquet: {err}"
        return RawTable(pd.DataFrame(), loc, 1, [_file_problem(name, loc, msg, "a Parquet file")])
    return RawTable(frame, loc, 1)


def _file_problem(name: str, loc: str, message: str, expected: str = "a header and data rows"):
    return Problem(name, loc, None, message, expected)


def read_folder(folder: str | os.PathLike[str]) -> tuple[dict[str, RawTable], str]:
    """Read every canonical table file in ``folder``; return raw tables and a fingerprint.

    The fingerprint is the SHA-256 of the table files' names and bytes.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"source folder {str(folder)!r} does not exist or is not a folder")
    files = table_files(folder)
    digest = hashlib.sha256()
    raw: dict[str, RawTable] = {}
    for name, path in files.items():
        digest.update(path.name.encode())
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
            raw[name] = (
                _read_csv(path, name) if path.suffix == ".csv" else _read_parquet(path, name)
            )
        except OSError as err:
            raise DataError(f"cannot read {str(path)!r}: {err.strerror or err}") from None
    return raw, digest.hexdigest()[:16]


def write_folder(dataset: Dataset, folder: str | os.PathLike[str], fmt: str = "csv") -> Path:
    """Write each table of ``dataset`` to ``folder/<table>.<fmt>`` atomically.

    A stale file of the other format for the same table is removed, so the folder reads back
    as exactly this dataset.
    """
    if fmt not in ("csv", "parquet"):
        raise DataError(f"output format {fmt!r} is not supported; expected 'csv' or 'parquet'")
    folder = Path(folder)
    other = ".parquet" if fmt == "csv" else ".csv"
    for name, frame in dataset.tables.items():
        write_frame_atomic(frame, folder / f"{name}.{fmt}")
        stale = folder / f"{name}{other}"
        if stale.exists():
            stale.unlink()
    return folder
