"""Atomic file output: write to a temporary file beside the target, then rename.

A crash or a bad input never leaves a half-written output behind. Files are created with
the mode the process's umask gives (``0o666 & ~umask``, as ``open`` would), not the ``0600``
of :func:`tempfile.mkstemp`, so outputs in a shared team folder stay readable by the team.
A temporary file is named ``.<target name>.<random>.tmp``; one left behind by a killed
process matches :data:`TEMP_GLOB`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ingest.errors import DataError

#: Resolution of every saved figure (dots per inch).
FIGURE_DPI = 110

#: Glob of the temporary files :func:`atomic_path` creates (``.<name>.<hex>.tmp``).
TEMP_GLOB = ".*.tmp"
# Permission bits before the umask, as for any file ``open`` creates.
_FILE_MODE = 0o666


def _create_temp(parent: Path, name: str) -> Path:
    """Create an empty, unique temporary file in ``parent`` with the umask's mode."""
    while True:
        tmp = parent / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, _FILE_MODE)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target``.

    On any exception the temporary file is removed and ``target`` is left untouched.
    """
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create output folder {str(parent)!r}: {err.strerror}") from None
    if not os.access(parent, os.W_OK):
        raise DataError(f"output folder {str(parent)!r} is not writable")
    try:
        tmp_path = _create_temp(parent, target.name)
    except OSError as err:
        raise DataError(f"cannot write in output folder {str(parent)!r}: {err.strerror}") from None
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text_atomic(target: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``target`` atomically (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_frame_atomic(frame: pd.DataFrame, target: str | os.PathLike[str]) -> Path:
    """Write a frame as Parquet or CSV (by the target's suffix) atomically."""
    target = Path(target)
    suffix = target.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise DataError(
            f"output {str(target)!r}: unsupported suffix {suffix!r}; expected .parquet or .csv"
        )
    with atomic_path(target) as tmp:
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
    return target


def write_figure_atomic(fig: Any, target: str | os.PathLike[str], **savefig_kwargs: Any) -> Path:
    """Save a matplotlib figure to ``target`` atomically (format from the suffix, PNG when
    there is none).

    Figures are built with :class:`matplotlib.figure.Figure` directly, never through pyplot, so
    saving one needs no backend and touches no global state.
    """
    target = Path(target)
    fmt = target.suffix.lstrip(".").lower() or "png"
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise DataError(
            f"figure {str(target)!r}: unsupported suffix {target.suffix!r}; expected one of "
            f"{', '.join('.' + s for s in sorted(supported))}"
        )
    options = {"dpi": FIGURE_DPI, **savefig_kwargs}
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format=fmt, **options)
    return target
