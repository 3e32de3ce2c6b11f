"""On-disk cache of canonical datasets and panels, keyed by content fingerprints.

The cache folder is ``$DEADSTOCK_CACHE_DIR`` or ``.cache/deadstock`` in the working folder.
Entries are written atomically (a dataset entry is a folder built beside its final name and
renamed into place), so a crash never leaves a half-written entry that a later run trusts.
Deleting the folder is always safe.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from ingest.dataset import Dataset
from ingest.errors import DataError

CACHE_ENV = "DEADSTOCK_CACHE_DIR"


def cache_dir() -> Path:
    """The cache folder (``$DEADSTOCK_CACHE_DIR`` or ``./.cache/deadstock``)."""
    return Path(os.environ.get(CACHE_ENV) or Path.cwd() / ".cache" / "deadstock")


def load_cached_dataset(key: str) -> Dataset | None:
    """The dataset cached under ``key``, or ``None`` when there is none (or it is unreadable)."""
    folder = cache_dir() / "datasets" / key
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        tables = {name: pd.read_parquet(folder / f"{name}.parquet") for name in meta["tables"]}
    except (OSError, ValueError, KeyError):
        return None  # a damaged entry is rebuilt, never trusted
    return Dataset(
        tables=tables,
        source=meta["source"],
        fingerprint=meta["fingerprint"],
        notes=list(meta["notes"]),
        report=list(meta["report"]),
    )


def save_cached_dataset(dataset: Dataset, key: str) -> Path:
    """Cache ``dataset`` under ``key`` (atomically: a temporary folder renamed into place)."""
    root = cache_dir() / "datasets"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create cache folder {str(root)!r}: {err.strerror}") from None
    final = root / key
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
    try:
        for name, frame in dataset.tables.items():
            frame.to_parquet(tmp / f"{name}.parquet", index=False)
        meta = {
            "tables": list(dataset.tables),
            "source": dataset.source,
            "fingerprint": dataset.fingerprint,
            "notes": dataset.notes,
            "report": dataset.report,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str), encoding="utf-8")
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    return final


def panel_path(key: str) -> Path:
    """Where the panel cached under ``key`` lives."""
    return cache_dir() / "panels" / f"{key}.parquet"
