"""One entry point for every source: :func:`load` and its inverse :func:`save`.

``source`` is one of

- ``"completejourney"``: the Complete Journey data from its PyPI package;
- a folder holding ``<table>.csv`` or ``<table>.parquet`` files (``products``, ``sales`` and
  any optional table), or per table a folder of partitioned Parquet files
  (``sales/week=12/part-0.parquet``, see :mod:`ingest.partitioned`);
- a SQLAlchemy URL: ``sqlite:///path.db``, ``postgresql+psycopg2://user:pw@host/db``,
  ``mssql+pymssql://user:pw@host/db``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ingest.completejourney import SOURCE_NAME, CompleteJourneyConfig, load_completejourney
from ingest.dataset import Dataset
from ingest.errors import DataError
from ingest.files import read_folder, write_folder
from ingest.partitioned import is_partitioned, read_partitioned
from ingest.schema import TABLES
from ingest.sql import is_sql_url, mask_url, parse_sql_url, read_sql, write_sql
from ingest.validate import plausibility_warnings, validate

log = logging.getLogger(__name__)

_ABSENT_NOTES = {
    "stock": "no stock table in this source: on_hand is NaN",
    "interactions": "no interactions table in this source: views/clicks/add_to_cart/purchases are NaN",
    "promotions": "no promotions table in this source: display and mailer are 0",
    "baskets": "no baskets table in this source: n_buyers is NaN",
}


def describe_source(source: str | os.PathLike[str]) -> str:
    """A printable name for ``source`` (the URL with its password masked)."""
    text = str(source)
    return mask_url(text) if is_sql_url(text) else text


def _not_found(text: str) -> DataError:
    return DataError(
        f"source {text!r} not found: expected 'completejourney', an existing folder of "
        "<table>.csv/.parquet files, or a SQLAlchemy URL such as sqlite:///data.db"
    )


def check_source(source: str | os.PathLike[str]) -> None:
    """Fail fast, before any work, on a source that cannot be read: a folder that does not
    exist, a malformed SQL URL, a missing driver or a missing SQLite file. Reads nothing.

    Raises
    ------
    DataError
        With the same message :func:`load` would give.
    """
    text = str(source)
    if text.lower() == SOURCE_NAME:
        return
    if is_sql_url(text):
        parse_sql_url(text, must_exist=True)
    elif not Path(text).exists():
        raise _not_found(text)


def check_target(target: str | os.PathLike[str]) -> None:
    """Fail fast on a :func:`save` target that cannot be written to: a malformed SQL URL, a
    missing driver, or a SQLite file in a folder that does not exist. Writes nothing."""
    text = str(target)
    if is_sql_url(text):
        parse_sql_url(text)
    elif Path(text).exists() and not Path(text).is_dir():
        raise DataError(f"target {text!r} is a file; expected a folder or a SQLAlchemy URL")


def load(
    source: str | os.PathLike[str],
    *,
    check: bool = True,
    cj_config: CompleteJourneyConfig | None = None,
) -> Dataset:
    """Load a source into canonical tables.

    Parameters
    ----------
    source : str or path
        ``"completejourney"``, a folder of table files, or a SQLAlchemy URL.
    check : bool
        Validate the tables against :mod:`ingest.schema`. Folders and SQL tables are always
        validated (they must be converted anyway); Complete Journey is validated when its
        canonical tables are built, before they are cached.
    cj_config : CompleteJourneyConfig, optional
        Mapping options for the Complete Journey source.

    Returns
    -------
    Dataset

    Raises
    ------
    DataValidationError
        With every problem found (a :class:`~ingest.errors.DataError`).
    DataError
        When the source does not exist or cannot be read at all.
    """
    text = str(source)
    if text.lower() == SOURCE_NAME:
        dataset = load_completejourney(cj_config, check=check)
        return dataset
    if is_sql_url(text):
        log.info("reading tables from %s", mask_url(text))
        raw, fp = read_sql(text)
    elif Path(text).exists():
        if is_partitioned(text):
            log.info("reading partitioned tables from %s", text)
            raw, fp = read_partitioned(text)
        else:
            log.info("reading table files from %s", text)
            raw, fp = read_folder(text)
    else:
        raise _not_found(text)
    shown = describe_source(text)
    tables = validate(raw, shown)
    notes = [note for name, note in _ABSENT_NOTES.items() if name not in tables]
    for warning in plausibility_warnings(raw, tables):
        log.warning("%s", warning)
        notes.append(f"warning: {warning}")
    return Dataset(tables=tables, source=shown, fingerprint=fp, notes=notes)


def save(dataset: Dataset, target: str | os.PathLike[str], fmt: str = "csv") -> str:
    """Write a dataset to a folder (``fmt`` ``"csv"`` or ``"parquet"``) or a SQL URL.

    Every file is written atomically; a SQL target is replaced in one transaction. Returns
    the printable target.
    """
    text = str(target)
    check_target(text)
    unknown = sorted(set(dataset.tables) - set(TABLES))
    if unknown:
        raise DataError(f"cannot save tables {unknown}: not canonical tables {sorted(TABLES)}")
    if is_sql_url(text):
        return write_sql(dataset, text)
    write_folder(dataset, text, fmt)
    return text
