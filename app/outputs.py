"""A run's output folder: all or nothing, one run at a time.

A run never writes into its output folder (``--out``). It writes everything (tables, catalog,
policy, report, alerts, data reports) into a staging folder beside it,
``.<name>.staging-<id>``, adds ``manifest.json`` (every file with its size and SHA-256), and
then replaces the output folder in one step:

- on Linux, ``renameat2(RENAME_EXCHANGE)`` swaps the two folders atomically: at every instant
  the output folder's path holds either the complete previous output or the complete new one;
  the previous one, now under the staging name, is then removed;
- where the file system or OS cannot swap (NFS, macOS), two renames: ``out ->
  .<name>.old-<id>``, ``staging -> out``. Between them the output path does not exist for a
  moment; a run killed exactly there is repaired at the next start (the newest complete
  folder is put back).

A lock (``fcntl.flock`` on ``.<name>.lock`` beside the folder) refuses a second run into the
same output, naming the run that holds it (pid, host, start time). The lock file also records
the holder's MLflow run id; a holder that died without releasing it (SIGKILL) is detected by
the next run, which removes its stale staging and temporary files and reports its MLflow run.

The output folder must be empty, absent or one written by deadstock (a ``manifest.json`` or only
the names in :data:`KNOWN_OUTPUTS`): the run replaces the whole folder, so a folder holding
other files is refused rather than deleted.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.errors import DataError
from ingest.io import TEMP_GLOB, write_text_atomic

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
#: What a deadstock run writes into its output folder (files by stem, folders by name); a
#: folder holding only these (or a ``manifest.json``) may be replaced by a run.
KNOWN_OUTPUTS = frozenset(
    {
        "schedules",
        "sku_summary",
        "alerts",
        "new_product_flags",
        "catalog",
        "report",
        "data",
        "policy",
        "manifest",
    }
)
_STAGING = "staging"
_OLD = "old"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


# ------------------------------------------------------------------------------ the swap
def exchange_folders(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False when the OS or the file system cannot (the caller falls back to renames);
    raises ``OSError`` for any other failure.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]  # fmt: skip
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


# ------------------------------------------------------------------------------ manifest
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def folder_files(folder: Path) -> dict[str, dict[str, Any]]:
    """Every file under ``folder`` except the manifest: ``{relative path: {bytes, sha256}}``."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel != MANIFEST:
            out[rel] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    return out


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The manifest of an output folder, or None when there is none (or it is unreadable)."""
    try:
        return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def manifest_problems(folder: str | Path) -> list[str]:
    """What differs between an output folder and its manifest (empty: the folder is complete
    and holds nothing else)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        return [f"{folder}: no readable {MANIFEST}"]
    want, have = manifest.get("files", {}), folder_files(folder)
    problems = [f"missing {k}" for k in sorted(set(want) - set(have))]
    problems += [f"not in the manifest: {k}" for k in sorted(set(have) - set(want))]
    problems += [f"changed: {k}" for k in sorted(set(want) & set(have)) if want[k] != have[k]]
    return problems


# ------------------------------------------------------------------------------ the lock
@dataclass
class Holder:
    """Who holds (or last held) an output folder's lock."""

    pid: int
    host: str
    started: str
    run_name: str = ""
    mlflow_run_id: str = ""

    def describe(self) -> str:
        name = f" {self.run_name}" if self.run_name else ""
        return f"run{name} (pid {self.pid} on {self.host}, started {self.started})"


def _read_holder(text: str) -> Holder | None:
    try:
        values = json.loads(text)
        return Holder(**{k: values[k] for k in Holder.__dataclass_fields__ if k in values})
    except (ValueError, TypeError, KeyError):
        return None


# ------------------------------------------------------------------------------ the run folder
@dataclass
class RunOutput:
    """The output folder of one run while it runs (see the module docstring).

    Use :func:`open_run_output`; write everything under :attr:`staging`, then call
    :meth:`publish`.
    """

    final: Path
    holder: Holder
    previous: Holder | None = None
    cleaned: list[str] = field(default_factory=list)
    published: bool = False
    _lock_fd: int = -1
    _staging: Path | None = None

    @property
    def staging(self) -> Path:
        """The folder the run writes into."""
        if self._staging is None:
            raise RuntimeError("the run's staging folder is not created yet")
        return self._staging

    def set_mlflow_run(self, run_id: str) -> None:
        """Record the run's MLflow run id in the lock file (for the next run to find if this
        one is killed)."""
        self.holder.mlflow_run_id = run_id
        self._write_holder()

    def _write_holder(self) -> None:
        data = json.dumps(self.holder.__dict__).encode()
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, data, 0)

    def seal(self, info: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Write ``manifest.json`` (every file with its size and SHA-256, and ``info``: run
        name, MLflow run id, plan key ...) into the staging folder: nothing may be written
        there afterwards. Returns the manifest."""
        manifest = {
            **dict(info or {}),
            "pid": self.holder.pid,
            "started": self.holder.started,
            "finished": _now(),
            "files": folder_files(self.staging),
        }
        write_text_atomic(self.staging / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        return manifest

    def publish(self, *, commit_with: Callable[[Callable[[], None]], Any] | None = None) -> Path:
        """Make the sealed staging folder the output folder (see the module docstring).

        Parameters
        ----------
        commit_with : callable, optional
            Called with the swap (a function of no arguments); it must call it once, for
            example between a transaction's last insert and its commit, so the SQL tables and
            the folder change together. If it raises, the previous folder is put back.

        A caller that handles signals holds them during this call (the pipeline uses
        :func:`experiments.tracking.deferring_signals`).
        """
        if read_manifest(self.staging) is None:
            raise RuntimeError("seal() the staging folder before publishing it")
        _fsync_tree(self.staging)
        state: dict[str, Path | None] = {}

        def swap() -> None:
            state["old"] = self._swap_in()

        try:
            (commit_with or (lambda f: f()))(swap)
            if "old" not in state:
                raise RuntimeError("commit_with did not call the swap")
        except BaseException:
            if "old" in state:
                self._swap_back(state["old"])
            raise
        self.published = True
        old = state["old"]
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.final

    def _swap_in(self) -> Path | None:
        """Put the staging folder at the final path; returns where the previous output now
        is (None when there was none)."""
        if not self.final.exists():
            os.rename(self.staging, self.final)
            return None
        if exchange_folders(self.staging, self.final):
            return self.staging
        old = self.final.parent / f".{self.final.name}.{_OLD}-{self.staging.name.split('-', 1)[-1]}"
        os.rename(self.final, old)
        os.rename(self.staging, self.final)
        return old

    def _swap_back(self, old: Path | None) -> None:
        if old is None:
            os.rename(self.final, self.staging)
        elif old == self.staging:
            exchange_folders(self.staging, self.final)
        else:
            os.rename(self.final, self.staging)
            os.rename(old, self.final)

    def close(self) -> None:
        """Remove the staging folder (when not published) and release the lock."""
        if not self.published and self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
        if self._lock_fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self._lock_fd, 0)  # an empty lock file: released cleanly
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1


def lock_path(final: Path) -> Path:
    """The lock file of output folder ``final`` (beside it)."""
    return final.parent / f".{final.name}.lock"


@contextlib.contextmanager
def open_run_output(out_dir: str | os.PathLike[str], *, run_name: str = "") -> Iterator[RunOutput]:
    """Lock ``out_dir``, clean what killed runs left, and yield a fresh staging folder.

    Raises
    ------
    DataError
        When another run holds the folder, when the folder holds files deadstock did not
        write, or when its parent cannot be created or written.
    """
    final = _final_path(out_dir)
    parent = final.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create output folder {str(final)!r}: {err.strerror}") from None
    if final.exists() and not final.is_dir():
        raise DataError(f"output folder {str(final)!r} is a file; give a folder")
    try:
        fd = os.open(lock_path(final), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise DataError(f"output folder {str(parent)!r} is not writable: {err.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = _read_holder(os.pread(fd, 4096, 0).decode(errors="replace"))
        os.close(fd)
        who = other.describe() if other else "another run"
        raise DataError(
            f"output folder {str(final)!r} is in use by {who}; wait for it to finish or give "
            "another --out"
        ) from None
    previous = _read_holder(os.pread(fd, 4096, 0).decode(errors="replace"))
    holder = Holder(os.getpid(), socket.gethostname(), _now(), run_name)
    run = RunOutput(final, holder, previous=previous, _lock_fd=fd)
    try:
        run._write_holder()
        run.cleaned = _clean_stale(final)
        _check_replaceable(final)
        run._staging = _make_staging(final)
        yield run
    finally:
        run.close()


def _final_path(out_dir: str | os.PathLike[str]) -> Path:
    final = Path(out_dir).expanduser()
    if final.is_symlink():
        final = final.resolve()
    final = final.absolute()
    if not final.name or final.name in (".", "..") or final == Path(final.anchor):
        raise DataError(
            f"output folder {str(out_dir)!r}: a run replaces its whole output folder; give a "
            "folder of its own (for example outputs/run)"
        )
    return final


def _make_staging(final: Path) -> Path:
    stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    staging = final.parent / f".{final.name}.{_STAGING}-{stamp}"
    # os.mkdir (not tempfile.mkdtemp, which makes 0700 folders) so the umask decides.
    try:
        os.mkdir(staging)
    except OSError as err:
        raise DataError(f"cannot create {str(staging)!r}: {err.strerror}") from None
    return staging


def _stale(final: Path) -> list[Path]:
    """Staging and old folders and temporary files that runs into ``final`` left behind."""
    parent = final.parent
    found = [
        *parent.glob(f".{final.name}.{_STAGING}-*"),
        *parent.glob(f".{final.name}.{_OLD}-*"),
    ]
    found += [p for p in parent.glob(TEMP_GLOB) if p.name.startswith(f".{final.name}.")]
    if final.is_dir():
        found += list(final.rglob(TEMP_GLOB))
    return sorted(found)


def _clean_stale(final: Path) -> list[str]:
    """Repair an interrupted swap, then remove what killed runs left (caller holds the lock)."""
    stale = _stale(final)
    if not final.exists():
        complete = [p for p in stale if p.is_dir() and read_manifest(p) is not None]
        if complete:
            # A sealed staging folder is the newer output (it was being published).
            newest = max(
                complete,
                key=lambda p: (f".{_STAGING}-" in p.name, str(read_manifest(p).get("finished"))),  # type: ignore[union-attr]
            )
            os.rename(newest, final)
            logger.warning("restored %s from %s (a run was killed while publishing)", final, newest)
            stale.remove(newest)
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    if stale:
        logger.info(
            "removed %d stale staging folder(s) or temporary file(s) of killed runs", len(stale)
        )
    return [str(p) for p in stale]


def _check_replaceable(final: Path) -> None:
    if not final.is_dir() or read_manifest(final) is not None:
        return
    foreign = sorted(
        p.name for p in final.iterdir() if (p.stem if p.is_file() else p.name) not in KNOWN_OUTPUTS
    )
    if foreign:
        raise DataError(
            f"output folder {str(final)!r} holds files a deadstock run did not write "
            f"({', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}); a run replaces "
            "its whole output folder, so give an empty or new folder"
        )


def _fsync_tree(folder: Path) -> None:
    """Flush the staging folder's files and folders to disk before it replaces the output,
    so a power cut after the swap cannot leave the new folder with empty files."""
    for path in [*folder.rglob("*"), folder]:
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
