"""The run-level output folder: staged, published in one swap, locked, cleaned after kills."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from app import outputs
from app.outputs import (
    MANIFEST,
    manifest_problems,
    open_run_output,
    read_manifest,
)
from ingest.errors import DataError
from ingest.io import write_text_atomic


def _write_run(out: Path, tag: str, n_files: int = 4) -> None:
    with open_run_output(out, run_name=tag) as run:
        for k in range(n_files):
            write_text_atomic(run.staging / f"t{k}.csv", f"{tag}\n")
        write_text_atomic(run.staging / "report" / "report.md", tag)
        run.seal({"run_name": tag})
        run.publish()


def _siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name != out.name)


def test_publish_makes_a_complete_folder_and_replaces_the_previous_one(tmp_path):
    out = tmp_path / "run"
    _write_run(out, "first", n_files=4)
    assert manifest_problems(out) == []
    assert read_manifest(out)["run_name"] == "first"
    _write_run(out, "second", n_files=2)
    assert manifest_problems(out) == []
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "report", "t0.csv", "t1.csv"]
    assert (out / "t0.csv").read_text() == "second\n"
    assert _siblings(out) == [".run.lock"]  # no staging or old folder left


def test_a_failing_run_leaves_the_previous_output_whole(tmp_path):
    out = tmp_path / "run"
    _write_run(out, "first")
    with pytest.raises(RuntimeError), open_run_output(out) as run:
        write_text_atomic(run.staging / "t0.csv", "half\n")
        raise RuntimeError("export failed")
    assert manifest_problems(out) == [] and read_manifest(out)["run_name"] == "first"
    assert _siblings(out) == [".run.lock"]


def test_a_failed_commit_puts_the_previous_folder_back(tmp_path):
    out = tmp_path / "run"
    _write_run(out, "first")

    def commit_fails(swap) -> None:
        swap()
        assert read_manifest(out)["run_name"] == "second"  # swapped in ...
        raise DataError("SQL commit failed")  # ... and put back

    with pytest.raises(DataError, match="SQL"), open_run_output(out) as run:
        write_text_atomic(run.staging / "t0.csv", "second\n")
        run.seal({"run_name": "second"})
        run.publish(commit_with=commit_fails)
    assert read_manifest(out)["run_name"] == "first" and manifest_problems(out) == []
    assert _siblings(out) == [".run.lock"]


def test_without_an_atomic_exchange_two_renames_are_used(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "exchange_folders", lambda a, b: False)
    out = tmp_path / "run"
    _write_run(out, "first")
    _write_run(out, "second")
    assert read_manifest(out)["run_name"] == "second" and manifest_problems(out) == []
    assert _siblings(out) == [".run.lock"]


def test_a_run_killed_between_two_renames_is_repaired_at_the_next_start(tmp_path):
    out = tmp_path / "run"
    _write_run(out, "first")
    _write_run(tmp_path / "other", "second")
    # The state the two-rename fallback leaves when killed between its renames.
    os.rename(out, tmp_path / ".run.old-1")
    os.rename(tmp_path / "other", tmp_path / ".run.staging-2")
    with open_run_output(out) as run:
        assert read_manifest(out)["run_name"] == "second"
        assert len(run.cleaned) == 1
    assert _siblings(out) == [".other.lock", ".run.lock"]


def test_a_second_run_into_the_same_folder_is_refused_with_the_holder(tmp_path):
    out = tmp_path / "run"
    with open_run_output(out, run_name="pipeline__a") as first:
        first.set_mlflow_run("abc123")
        with pytest.raises(DataError, match=rf"in use by run pipeline__a \(pid {os.getpid()} "):
            with open_run_output(out):
                pass
        assert first.staging.is_dir()
    with open_run_output(out) as again:  # released
        assert again.previous is None  # released cleanly: no stale holder


def test_a_folder_with_other_files_is_refused_not_deleted(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match=r"notes\.txt.*empty or new folder"):
        with open_run_output(out):
            pass
    assert (out / "notes.txt").read_text() == "keep me"
    legacy = tmp_path / "legacy"  # an output folder of an older version (no manifest)
    (legacy / "report").mkdir(parents=True)
    (legacy / "schedules.csv").write_text("x")
    _write_run(legacy, "new")
    assert read_manifest(legacy)["run_name"] == "new"
    with pytest.raises(DataError, match="of its own"):
        with open_run_output("/"):
            pass


def test_staging_folder_and_files_follow_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        _write_run(tmp_path / "run", "first")
    finally:
        os.umask(old)
    out = tmp_path / "run"
    assert stat.S_IMODE(out.stat().st_mode) == 0o775
    assert stat.S_IMODE((out / "t0.csv").stat().st_mode) == 0o664


_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from app.outputs import open_run_output
    from ingest.io import write_text_atomic

    out, tag = Path(sys.argv[1]), sys.argv[2]
    with open_run_output(out, run_name=tag) as run:
        for k in range(N_FILES):
            print(f"write {k}", flush=True)
            write_text_atomic(run.staging / f"t{k}.csv", tag * 1000)
        print("seal", flush=True)
        run.seal({"run_name": tag})
        print("publish", flush=True)
        run.publish()
        print("published", flush=True)
    """
)
N_FILES = 12
# The lines the writer prints before each step; a kill lands after the k-th.
N_STEPS = N_FILES + 3


@pytest.mark.slow
def test_a_writer_killed_at_random_points_leaves_the_old_or_the_new_folder(tmp_path):
    """SIGKILL at seeded random points of a writer's life (after its k-th step line and a
    random few milliseconds), publish included."""
    out = tmp_path / "run"
    _write_run(out, "r0", n_files=N_FILES)
    rng = np.random.default_rng(11)
    root = Path(__file__).resolve().parents[2]
    child = _CHILD.replace("N_FILES", str(N_FILES))
    points = [N_STEPS - 1, N_STEPS - 2, *rng.integers(0, N_STEPS, 6).tolist()]
    outcome = []
    for trial, k in enumerate(points):
        tag = f"r{trial + 1}"
        proc = subprocess.Popen(
            [sys.executable, "-c", child, str(out), tag],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        for _ in range(k + 1):
            proc.stdout.readline()
        time.sleep(float(rng.uniform(0.0, 0.01)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert manifest_problems(out) == [], (trial, k)
        outcome.append(read_manifest(out)["run_name"] == tag)
        # The next start cleans what the killed writer left.
        with open_run_output(out):
            pass
        assert _siblings(out) == [".run.lock"], (trial, k)
    assert outcome[0]  # killed after "published": the new folder
    assert not all(outcome)  # some kills landed before the swap
