"""Atomic file writes: all or nothing, no temporary file left, and the umask's mode."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from ingest.errors import DataError
from ingest.io import TEMP_GLOB, atomic_path, write_frame_atomic, write_text_atomic


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        text = write_text_atomic(tmp_path / "a.txt", "x")
        frame = write_frame_atomic(pd.DataFrame({"a": [1]}), tmp_path / "a.csv")
    finally:
        os.umask(old)
    assert _mode(text) == 0o666 & ~umask
    assert _mode(frame) == 0o666 & ~umask


def test_failed_write_leaves_target_and_no_temp_file(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert not list(tmp_path.glob(TEMP_GLOB))


def test_success_replaces_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    assert not list(tmp_path.glob(TEMP_GLOB))


def test_unwritable_folder_is_a_clear_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):  # running as root: permissions are not enforced
            pytest.skip("permissions are not enforced for this user")
        with pytest.raises(DataError, match="not writable"):
            write_text_atomic(folder / "x.txt", "x")
    finally:
        folder.chmod(0o755)
