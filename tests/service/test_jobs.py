"""Pipeline runs as background jobs: the real quick run (made by the session fixture through
the job runner), and cancel, log tail and one-run-at-a-time with a stand-in command."""

from __future__ import annotations

import sys
import time

import pytest

from service.db.engine import open_database
from service.db.models import Job
from service.errors import Conflict, Forbidden
from service.jobs import JobRunner
from service.settings import Settings
from service.users import add_user

SLEEPER = "import sys, time; print('started', sys.argv[1:3], flush=True); time.sleep(120)"


@pytest.mark.slow
def test_real_run_through_the_job_runner(pipeline_run):
    job = pipeline_run.job
    assert job["status"] == "succeeded" and job["exit_code"] == 0
    assert job["plan_id"] is not None and job["error"] is None
    assert job["out_dir"].endswith(f"job-{job['id']}")
    for name in ("schedules.csv", "sku_summary.csv", "catalog.parquet", "alerts.csv"):
        assert (pipeline_run.folder / name).is_file(), name
    assert "[run] done" in pipeline_run.log


def test_cancel_log_tail_and_one_run_at_a_time(tmp_path):
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'j.db'}", runs_dir=str(tmp_path / "runs"),
                        run_command=(sys.executable, "-c", SLEEPER))  # fmt: skip
    db = open_database(settings.db_url)
    with db.session() as s:
        lead, _ = add_user(s, "lead", "pricing_lead")
        viewer, _ = add_user(s, "viewer", "viewer")
        s.commit()
    runner = JobRunner(db, settings)
    with pytest.raises(Forbidden):
        runner.start(viewer, {})
    job = runner.start(lead, {"quick": True})
    assert job.status == "running" and job.pid
    with pytest.raises(Conflict, match="one pipeline run goes at a time"):
        runner.start(lead, {})
    for _ in range(100):
        with db.session() as s:
            tail = s.get(Job, job.id).log_tail
        if "started" in tail:
            break
        time.sleep(0.1)
    assert "started" in tail and "'run', '--out'" in tail
    t0 = time.perf_counter()
    runner.cancel(lead, job.id)
    runner.wait(job.id, 30)
    assert time.perf_counter() - t0 < 15
    with db.session() as s:
        done = s.get(Job, job.id)
        assert done.status == "cancelled" and done.exit_code != 0
    with pytest.raises(Conflict, match="not running"):
        runner.cancel(lead, job.id)
    second = runner.start(lead, {})  # the slot is free again
    runner.shutdown()
    with db.session() as s:
        assert s.get(Job, second.id).status == "cancelled"
    db.dispose()
