"""A folder of partitioned Parquet tables as a source, read whole or streamed by SKU shard.

Layout: per table, a folder of Parquet files, optionally in Hive-style partition folders::

    data/
      products.parquet            (or products/part-0.parquet, ...)
      sales/week=1/part-0.parquet
      sales/week=1/part-1.parquet
      sales/week=2/part-0.parquet
      stock/week=1/part-0.parquet (optional tables likewise)

A ``key=value`` folder adds the column ``key`` to every row of the files below it (the value
is converted to the column's schema type; ``week=abc`` is an error naming the folder). Every
file is checked on its own with :func:`ingest.validate.check_table`, so a bad partition is
reported with its path, the column, the bad value and what was expected.

Two ways to read it:

- :func:`read_partitioned` concatenates each table into one raw table for the ordinary,
  in-memory :func:`ingest.loader.load` (small and medium sources).
- :func:`iter_shards` streams: it splits the sorted SKU ids of ``products`` into shards and
  yields one validated :class:`~ingest.dataset.Dataset` per shard, reading from each file
  only the row groups whose SKU range can overlap the shard (Parquet statistics through
  :mod:`pyarrow.dataset`). Memory is bounded by one shard's rows, not by the table. A SKU's
  panel rows and per-SKU features depend only on that SKU's rows, so shard by shard gives
  the same panel as the whole table (:func:`ingest.partitioned.stream_panel`).

The streaming path asks SKU ids to be stored as text (Arrow ``string``) in every file, so a
shard can be selected by a string range; :func:`check_partitioned` says so when they are not.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from ingest.clean import CleaningConfig, is_clean
from ingest.dataset import Dataset
from ingest.errors import DataError
from ingest.keys import positions
from ingest.panel import build_panel
from ingest.schema import TABLES
from ingest.validate import (
    MAX_SHOWN,
    DataValidationError,
    Problem,
    RawTable,
    check_table,
    coerce_table,
)

log = logging.getLogger(__name__)

PARQUET = ".parquet"
#: SKUs per shard when streaming: a shard of 12 weekly rows per SKU is a few hundred MB.
DEFAULT_SHARD_SKUS = 250_000
_INT_EXPECTED = "an integer partition value (for example week=12)"


def table_sources(folder: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """Map each canonical table of a partitioned folder to its Parquet files (sorted).

    A table is either a folder ``<table>/`` of ``*.parquet`` files (searched recursively) or a
    single ``<table>.parquet`` file next to the table folders.

    Raises
    ------
    DataError
        When a table exists both as a folder and as a file.
    """
    folder = Path(folder)
    found: dict[str, list[Path]] = {}
    for name in TABLES:
        sub = folder / name
        files = sorted(sub.rglob(f"*{PARQUET}")) if sub.is_dir() else []
        single = [
            folder / f"{name}{s}" for s in (".csv", PARQUET) if (folder / f"{name}{s}").is_file()
        ]
        if files and single:
            raise DataError(
                f"folder {str(folder)!r} has both {name}/ and {single[0].name}; keep exactly "
                "one of them per table"
            )
        if single and single[0].suffix == PARQUET:
            found[name] = single
        elif files:
            found[name] = files
    return found


def is_partitioned(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds at least one table as a folder of Parquet files."""
    folder = Path(folder)
    return folder.is_dir() and any(
        (folder / name).is_dir() and any((folder / name).rglob(f"*{PARQUET}")) for name in TABLES
    )


def _partition_keys(path: Path, root: Path) -> dict[str, str]:
    """The ``key=value`` folders between ``root`` and ``path``."""
    keys: dict[str, str] = {}
    for part in path.relative_to(root).parts[:-1]:
        if "=" in part:
            k, v = part.split("=", 1)
            keys[k] = v
    return keys


def _with_partition_columns(
    frame: pd.DataFrame, name: str, path: Path, root: Path
) -> tuple[pd.DataFrame, list[Problem]]:
    """Add the partition folders' columns to ``frame``; a bad value is a problem."""
    spec = TABLES[name]
    dtypes = {c.name: c.dtype for c in spec.columns}
    problems: list[Problem] = []
    for key, value in _partition_keys(path, root).items():
        if key not in dtypes:
            problems.append(
                Problem(
                    name,
                    str(path),
                    key,
                    f"partition folder {key}={value!r} is not a column of {name}",
                    f"partition keys among {list(dtypes)}",
                )
            )
            continue
        if dtypes[key] == "int":
            try:
                parsed: int | float | str = int(value)
            except ValueError:
                problems.append(
                    Problem(
                        name,
                        str(path),
                        key,
                        f"partition folder {key}={value!r} is not an integer",
                        _INT_EXPECTED,
                        (),
                        (value,),
                        1,
                    )
                )
                continue
        elif dtypes[key] == "float":
            try:
                parsed = float(value)
            except ValueError:
                problems.append(
                    Problem(
                        name,
                        str(path),
                        key,
                        f"partition folder {key}={value!r} is not a number",
                        "a numeric partition value",
                    )
                )
                continue
        else:
            parsed = value
        if key in frame.columns and len(frame):
            col = pd.to_numeric(frame[key], errors="coerce") if dtypes[key] != "str" else frame[key]
            off = np.flatnonzero((col != parsed).to_numpy())
            if off.size:
                problems.append(
                    Problem(
                        name,
                        str(path),
                        key,
                        f"column {key!r} disagrees with its partition folder {key}={value}",
                        f"{key} = {value} in every row",
                        tuple(int(i) + 1 for i in off[:5]),
                        tuple(str(v) for v in frame[key].iloc[off[:5]]),
                        int(off.size),
                    )
                )
            continue
        frame[key] = parsed
    return frame, problems


def read_partition_file(
    path: Path, name: str, root: Path, *, filter: pc.Expression | None = None
) -> RawTable:
    """One partition file as a raw table (partition columns added), never raising on a
    bad file: an unreadable file or bad partition value becomes a problem."""
    loc = str(path)
    try:
        if filter is None:
            table = pq.read_table(path)
        else:
            table = pads.dataset(path, format="parquet").to_table(filter=filter)
    except Exception as err:  # noqa: BLE001 - any reader failure is a problem with the file
        msg = f"cannot be read as Parquet: {err}"
        return RawTable(pd.DataFrame(), loc, 1, [Problem(name, loc, None, msg, "a Parquet file")])
    frame = table.to_pandas()
    frame.columns = [str(c).strip() for c in frame.columns]
    frame, problems = _with_partition_columns(frame, name, path, Path(root))
    return RawTable(frame, loc, 1, problems)


def _fingerprint(root: Path, sources: dict[str, list[Path]]) -> str:
    """SHA-256 of the files' relative paths, sizes and modification times: reading the bytes
    of a source too large for memory only to hash them would double the cost of a run."""
    digest = hashlib.sha256()
    for files in sources.values():
        for p in files:
            st = p.stat()
            digest.update(f"{p.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def read_partitioned(folder: str | os.PathLike[str]) -> tuple[dict[str, RawTable], str]:
    """Read every table of a partitioned folder whole (for :func:`ingest.loader.load`).

    Each file is checked on its own first, so a problem names its file; then each table is
    concatenated into one raw table that the ordinary validation checks across files
    (duplicate keys, SKUs missing from products).

    Raises
    ------
    DataValidationError
        With every problem of every file, when there is at least one.
    """
    root = Path(folder)
    sources = table_sources(root)
    raw: dict[str, RawTable] = {}
    problems: list[Problem] = []
    for name, files in sources.items():
        parts = [read_partition_file(p, name, root) for p in files]
        for part in parts:
            problems.extend(check_table(TABLES[name], part))
        frames = [p.frame for p in parts if len(p.frame)]
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        loc = str(files[0]) if len(files) == 1 else str(root / name)
        raw[name] = RawTable(frame, loc, 1)
    if problems:
        raise DataValidationError(problems, str(root))
    return raw, _fingerprint(root, sources)


# ---------------------------------------------------------------------------- streaming


def check_partitioned(folder: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """Check every file's columns and partition folders from the Parquet footers only.

    Catches a missing required column, SKU ids not stored as text and a partition value that
    does not parse, without reading any data; bad values (a column of the wrong type) are
    found when the rows are read, with the rows and values shown. Returns the files per
    table.

    Raises
    ------
    DataValidationError
        With every problem found, each naming its file.
    """
    root = Path(folder)
    sources = table_sources(root)
    problems: list[Problem] = []
    for name in ("products", "sales"):
        if name not in sources:
            problems.append(
                Problem(
                    name,
                    str(root),
                    None,
                    f"required table {name!r} not found",
                    f"{name}/ folder of Parquet files or {name}.parquet",
                )
            )
    for name, files in sources.items():
        spec = TABLES[name]
        for path in files:
            loc = str(path)
            try:
                schema = pq.read_schema(path)
            except Exception as err:  # noqa: BLE001 - any reader failure is a problem
                problems.append(
                    Problem(name, loc, None, f"cannot be read as Parquet: {err}", "a Parquet file")
                )
                continue
            _, bad = _with_partition_columns(pd.DataFrame(), name, path, root)
            problems.extend(bad)
            present = set(schema.names) | set(_partition_keys(path, root))
            for col in spec.required_columns:
                if col not in present:
                    problems.append(
                        Problem(
                            name,
                            loc,
                            col,
                            f"required column {col!r} is missing; columns found: {schema.names}",
                            f"columns {list(spec.required_columns)}",
                        )
                    )
            if "sku" in schema.names:
                sku_type = schema.field("sku").type
                if not (pa.types.is_string(sku_type) or pa.types.is_large_string(sku_type)):
                    problems.append(
                        Problem(
                            name,
                            loc,
                            "sku",
                            f"column 'sku' is stored as {sku_type}; a partitioned source is "
                            "streamed by ranges of SKU ids",
                            "text (string) ids (deadstock data partition writes them so)",
                        )
                    )
    if problems:
        raise DataValidationError(problems, str(root))
    return sources


def sku_bounds(files: list[Path], shard_skus: int) -> list[tuple[str, str]]:
    """Inclusive (first, last) SKU id of each shard of ``shard_skus`` sorted products."""
    if shard_skus < 1:
        raise DataError(f"shard size {shard_skus!r}; expected at least 1 SKU per shard")
    skus = pa.concat_arrays(
        [c for p in files for c in pq.read_table(p, columns=["sku"])["sku"].chunks]
    )
    skus = pc.unique(skus.cast(pa.string()))
    skus = skus.take(pc.sort_indices(skus))
    n = len(skus)
    return [
        (skus[i].as_py(), skus[min(i + shard_skus, n) - 1].as_py()) for i in range(0, n, shard_skus)
    ]


def last_week(sources: dict[str, list[Path]], root: str | os.PathLike[str]) -> int | None:
    """The last week of any weekly table, from partition folders or the ``week`` column's
    Parquet statistics (reads no data pages)."""
    best: int | None = None
    for name, files in sources.items():
        if name == "products":
            continue
        for path in files:
            keys = _partition_keys(path, Path(root))
            if "week" in keys:
                w = int(keys["week"])
            else:
                meta = pq.ParquetFile(path).metadata
                if "week" not in meta.schema.names:
                    continue
                col = meta.schema.names.index("week")
                stats = [
                    meta.row_group(g).column(col).statistics for g in range(meta.num_row_groups)
                ]
                if not stats or any(s is None or not s.has_min_max for s in stats):
                    w = int(pq.read_table(path, columns=["week"])["week"].to_numpy().max())
                else:
                    w = int(max(s.max for s in stats))
            best = w if best is None else max(best, w)
    return best


def _across_files(raw: dict[str, RawTable], source: str) -> list[Problem]:
    """What a per-file check cannot see: SKUs missing from products and (sku, week) keys
    repeated across files. Integer keys, so a shard of millions of rows takes a second."""
    products = raw["products"].frame
    known = products["sku"].astype("string")
    problems: list[Problem] = []
    for name, table in raw.items():
        frame = table.frame
        if name == "products" or not len(frame) or "sku" not in frame:
            continue
        code = positions(frame["sku"], known)
        unknown = np.flatnonzero(code < 0)
        if unknown.size:
            shown = unknown[:MAX_SHOWN]
            problems.append(
                Problem(
                    name,
                    table.location,
                    "sku",
                    f"{pd.unique(frame['sku'].iloc[unknown]).size} SKU(s) not in products",
                    "every SKU to have a row in products",
                    tuple(int(i) + 1 for i in shown),
                    tuple(str(v) for v in frame["sku"].iloc[shown]),
                    int(unknown.size),
                )
            )
            continue
        if TABLES[name].key != ("sku", "week"):
            dup = frame.duplicated(list(TABLES[name].key), keep=False).to_numpy()
        else:
            week = frame["week"].to_numpy(dtype=np.int64)
            key = code * (int(week.max()) + 1) + week
            _, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
            dup = counts[inv] > 1
        where = np.flatnonzero(dup)
        if where.size:
            shown = where[:MAX_SHOWN]
            keys = frame[list(TABLES[name].key)].iloc[shown].astype(str).agg("/".join, axis=1)
            problems.append(
                Problem(
                    name,
                    table.location,
                    "/".join(TABLES[name].key),
                    f"duplicate keys {TABLES[name].key} across files",
                    f"one row per {'/'.join(TABLES[name].key)}",
                    tuple(int(i) + 1 for i in shown),
                    tuple(keys),
                    int(where.size),
                )
            )
    return problems


def _sku_range(path: Path) -> tuple[str, str] | None:
    """Smallest and largest SKU id of a file from its footer statistics (None if unknown)."""
    meta = pq.ParquetFile(path).metadata
    names = meta.schema.names
    if "sku" not in names or meta.num_row_groups == 0:
        return None
    col = names.index("sku")
    stats = [meta.row_group(g).column(col).statistics for g in range(meta.num_row_groups)]
    if any(s is None or not s.has_min_max for s in stats):
        return None
    return min(str(s.min) for s in stats), max(str(s.max) for s in stats)


def _overlaps(span: tuple[str, str] | None, lo: str, hi: str) -> bool:
    return span is None or (span[0] <= hi and span[1] >= lo)


def iter_shards(
    folder: str | os.PathLike[str], shard_skus: int = DEFAULT_SHARD_SKUS
) -> Iterator[Dataset]:
    """Stream a partitioned source as one validated :class:`Dataset` per shard of SKUs.

    Shards follow the sorted SKU ids of ``products``; each yields the products of its SKUs
    and the rows of every other table for them. A file's row groups whose SKU statistics
    fall outside the shard are skipped unread. Every file's part is checked on its own (a
    problem names the file) and the shard is checked across files (duplicate keys, SKUs
    missing from products).

    Raises
    ------
    DataValidationError
        On the first shard with a problem.
    """
    root = Path(folder)
    sources = check_partitioned(root)
    bounds = sku_bounds(sources["products"], shard_skus)
    fp = _fingerprint(root, sources)
    ranges = {p: _sku_range(p) for files in sources.values() for p in files}
    log.info("streaming %s in %d shard(s) of up to %s SKUs", root, len(bounds), f"{shard_skus:,}")
    for k, (lo, hi) in enumerate(bounds):
        expr = (pc.field("sku") >= lo) & (pc.field("sku") <= hi)
        raw: dict[str, RawTable] = {}
        problems: list[Problem] = []
        for name, all_files in sources.items():
            # Files whose SKU range misses the shard are not opened at all.
            files = [p for p in all_files if _overlaps(ranges[p], lo, hi)] or all_files[:1]
            parts = [read_partition_file(p, name, root, filter=expr) for p in files]
            for part in parts:
                if len(part.frame) or part.problems:
                    problems.extend(check_table(TABLES[name], part))
            frames = [p.frame for p in parts if len(p.frame)]
            frame = pd.concat(frames, ignore_index=True) if frames else parts[0].frame
            raw[name] = RawTable(frame, f"{root / name} (SKUs {lo}..{hi})", 1)
        if not problems:
            problems = _across_files(raw, str(root))
        if problems:
            raise DataValidationError(problems, str(root))
        tables = {n: coerce_table(TABLES[n], t.frame) for n, t in raw.items()}
        log.info("shard %d/%d: %s SKUs", k + 1, len(bounds), f"{len(tables['products']):,}")
        yield Dataset(tables=tables, source=str(root), fingerprint=f"{fp}-s{k}")


def stream_panel(
    folder: str | os.PathLike[str],
    *,
    shard_skus: int = DEFAULT_SHARD_SKUS,
    config: CleaningConfig | None = None,
) -> Iterator[tuple[Dataset, pd.DataFrame]]:
    """The weekly panel of a partitioned source, one shard of SKUs at a time.

    Yields each shard's dataset and its panel rows; concatenated in order, the panels equal
    :func:`ingest.panel.build_panel` of the whole source loaded at once (a SKU's rows depend only on its
    own rows and the source's last week). Memory is bounded by one shard.

    A source that still needs cleaning (a missing list price, cost or launch week) is
    cleaned shard by shard: imputations that pool a category then pool it within the shard,
    so clean such a source first (``deadstock data clean``) when it is to match exactly.
    """
    sources = check_partitioned(folder)
    end = last_week(sources, folder)
    for shard in iter_shards(folder, shard_skus):
        if not is_clean(shard):
            log.warning("shard of %s needs cleaning: category imputations pool within it", folder)
        yield shard, build_panel(shard, config, last_week=end)


# ---------------------------------------------------------------------------- writing
#: Rows per Parquet row group: small enough that a SKU-range filter skips most of a file.
ROW_GROUP_ROWS = 64_000
#: Tables written as one file rather than partitioned by week.
UNPARTITIONED = ("products", "calendar")


class PartitionedWriter:
    """Write tables block by block into a partitioned folder, committed atomically.

    Each :meth:`write` call appends one block (any number of SKUs): weekly tables go to
    ``<table>/week=<w>/part-<block>.parquet``, the others to ``<table>/part-<block>.parquet``,
    each file sorted by SKU with small row groups so that a SKU shard reads little of it.
    Everything is written into a hidden folder beside ``out``; :meth:`commit` swaps it in,
    so a failed or killed run leaves a previous ``out`` whole. Use as a context manager: on
    an exception the hidden folder is removed.
    """

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise DataError(f"target {str(self.out)!r} is a file; expected a folder")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.out.parent / f".{self.out.name}.{os.getpid()}.partial"
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir()
        self.blocks: dict[str, int] = {}
        self.rows: dict[str, int] = {}

    def write(self, name: str, frame: pd.DataFrame) -> None:
        """Append ``frame`` as the next block of table ``name``."""
        if name not in TABLES:
            raise DataError(f"cannot write table {name!r}: not a canonical table {sorted(TABLES)}")
        k = self.blocks.get(name, 0)
        self.blocks[name] = k + 1
        self.rows[name] = self.rows.get(name, 0) + len(frame)
        frame = frame.sort_values([c for c in ("sku", "week") if c in frame], kind="stable")
        if name in UNPARTITIONED or "week" not in frame:
            self._file(frame, self.tmp / name / f"part-{k:05d}{PARQUET}")
            return
        weeks = frame["week"].to_numpy()
        for w in np.unique(weeks):
            part = frame.loc[weeks == w].drop(columns="week")
            self._file(part, self.tmp / name / f"week={int(w)}" / f"part-{k:05d}{PARQUET}")

    @staticmethod
    def _file(frame: pd.DataFrame, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if "sku" in table.column_names:  # text ids: the streaming reader selects by range
            i = table.column_names.index("sku")
            table = table.set_column(i, "sku", table["sku"].cast(pa.string()))
        pq.write_table(table, path, row_group_size=ROW_GROUP_ROWS)

    def commit(self) -> Path:
        """Swap the written folder in for ``out`` (the previous one is removed after)."""
        old = self.out.parent / f".{self.out.name}.{os.getpid()}.old"
        if self.out.exists():
            os.replace(self.out, old)
        os.replace(self.tmp, self.out)
        if old.exists():
            shutil.rmtree(old)
        return self.out

    def abort(self) -> None:
        """Remove the hidden folder; ``out`` stays as it was."""
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> PartitionedWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_partitioned(
    dataset: Dataset, out: str | os.PathLike[str], block_skus: int = DEFAULT_SHARD_SKUS
) -> Path:
    """Write ``dataset`` as a partitioned folder, ``block_skus`` SKUs per file."""
    skus = np.sort(dataset.products["sku"].astype(str).unique())
    with PartitionedWriter(out) as writer:
        for s0 in range(0, max(len(skus), 1), block_skus):
            block = pd.Index(skus[s0 : s0 + block_skus])
            for name, frame in dataset.tables.items():
                if "sku" in frame:
                    writer.write(name, frame[frame["sku"].astype(str).isin(block)])
                elif s0 == 0:
                    writer.write(name, frame)
    return Path(out)
