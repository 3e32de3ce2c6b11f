"""MLflow tracking: where artifacts go, the store check before any work, and run statuses."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import mlflow
import pytest

from app.cli.main import main
from experiments import tracking
from ingest.errors import ConfigError


@pytest.fixture
def restore_tracking():
    """Put MLflow back on the session's store after a test that points it elsewhere."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if before is not None:
        os.environ["MLFLOW_TRACKING_URI"] = before
    mlflow.set_tracking_uri(before)


def test_default_local_store_keeps_artifacts_in_mlartifacts(
    tmp_path, monkeypatch, restore_tracking
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    exp_id = tracking.setup("artifacts-check")
    exp = mlflow.get_experiment(exp_id)
    assert exp.artifact_location == (tmp_path / "mlartifacts").as_uri()
    assert (tmp_path / "mlflow.db").is_file()
    with tracking.start_run("x", experiment="artifacts-check"):
        mlflow.log_text("hello", "note.txt")
    assert list((tmp_path / "mlartifacts").rglob("note.txt"))
    assert not (tmp_path / "mlruns").exists()


def test_a_sqlite_store_elsewhere_keeps_artifacts_beside_its_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'store' / 'm.db'}"
    assert tracking.artifact_root(uri, local=False) == (tmp_path / "store" / "mlartifacts").as_uri()
    assert tracking.artifact_root("http://host:5000", local=False) is None


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("sqlite:///{tmp}/no/such/folder/m.db", "folder .* does not exist"),
        ("{tmp}/no/such/folder/mlruns", "folder .* does not exist"),
        ("nosuchscheme://x/y", "cannot be used"),
        ("sqlite:///{tmp}/", "is not a file"),  # a folder where the database should be
        ("sqlite:///{tmp}/junk.db", "not a database"),
    ],
    ids=[
        "missing-sqlite-folder",
        "missing-file-store-folder",
        "unknown-scheme",
        "db-is-folder",
        "db-is-junk",
    ],  # fmt: skip
)
def test_a_bad_store_is_one_clear_error(tmp_path, uri, match):
    (tmp_path / "junk.db").write_text("not a database at all" * 10)
    uri = uri.format(tmp=tmp_path)
    with pytest.raises(ConfigError, match=match) as err:
        tracking.check_store(uri)
    assert uri in str(err.value) and "MLFLOW_TRACKING_URI" in str(err.value)
    assert not (tmp_path / "no").exists()  # nothing created


def test_a_tracked_command_fails_before_any_work_on_a_bad_store(
    tmp_path, monkeypatch, capsys, restore_tracking
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/missing/m.db")
    out = tmp_path / "out"
    code = main(["run", "--data", str(tmp_path / "nope"), "--out", str(out), "--quick"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "does not exist" in err and "Traceback" not in err
    assert not out.exists()
    assert main(["compare", "--experiment", "x"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_runs_end_failed_on_an_error_and_killed_on_a_signal():
    # the handler before the block: SIG_DFL, or Ray's own once a test started the session's Ray
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(ValueError), tracking.start_run("fails", experiment="status-check") as run:
        raise ValueError("boom")
    assert mlflow.get_run(run.info.run_id).info.status == "FAILED"

    with pytest.raises(tracking.RunInterrupted) as stop, tracking.ending_runs_on_signals():
        with tracking.start_run("parent", experiment="status-check") as parent:
            with tracking.start_run("child", nested=True) as child:
                os.kill(os.getpid(), signal.SIGTERM)
    assert stop.value.code == 143 and stop.value.signal_name == "SIGTERM"
    assert mlflow.get_run(parent.info.run_id).info.status == "KILLED"
    assert mlflow.get_run(child.info.run_id).info.status == "KILLED"
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored


def test_a_run_left_running_by_a_kill_is_ended_killed():
    client = mlflow.MlflowClient()
    tracking.setup("stale-check")
    exp = mlflow.get_experiment_by_name("stale-check")
    parent = client.create_run(exp.experiment_id)
    child = client.create_run(exp.experiment_id, tags={"mlflow.parentRunId": parent.info.run_id})
    ended = tracking.end_stale_run(parent.info.run_id)
    assert set(ended) == {parent.info.run_id, child.info.run_id}
    assert client.get_run(parent.info.run_id).info.status == "KILLED"
    assert tracking.end_stale_run(parent.info.run_id) == []  # already ended: nothing to do


def test_ui_uses_one_worker_and_no_job_runner():
    from app.cli.ui import UI_ENV, ui_command

    cmd = ui_command(port=5001, backend_store_uri=f"sqlite:///{Path('/tmp/x/m.db')}")
    assert cmd[cmd.index("--workers") + 1] == "1"
    assert cmd[cmd.index("--default-artifact-root") + 1] == "file:///tmp/x/mlartifacts"
    assert UI_ENV["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


class _KillsOnDelete:
    def __del__(self) -> None:
        # The handler raises here, where Python ignores exceptions (as in a GC callback).
        os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_signal_swallowed_where_python_ignores_exceptions_is_raised_again():
    before = signal.getsignal(signal.SIGTERM)
    reached = []
    with pytest.raises(tracking.RunInterrupted), tracking.ending_runs_on_signals():
        _KillsOnDelete()  # collected at once; prints "Exception ignored in ..."
        reached.append("after")  # the program went on ...
        tracking.raise_if_interrupted()  # ... until the next safe point
        reached.append("never")
    assert reached == ["after"]
    with pytest.raises(tracking.RunInterrupted), tracking.ending_runs_on_signals():
        _KillsOnDelete()  # swallowed, and no safe point: the block's end raises it
    assert signal.getsignal(signal.SIGTERM) is before


def test_signals_are_held_while_publishing():
    done = []
    with pytest.raises(tracking.RunInterrupted), tracking.ending_runs_on_signals():
        with tracking.deferring_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("publish finished")
    assert done == ["publish finished"]
