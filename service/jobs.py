"""Pipeline runs started through the API, as background jobs.

Each job runs ``deadstock run --out RUNS_DIR/job-<id>`` in a subprocess of its own process
group, so it can be cancelled (SIGTERM to the group, SIGKILL after a grace period) and its
log tailed while it runs. Each job gets its own output folder, and only one pipeline run
goes at a time (the machine's cores are the limit), so two runs never write into one output.
When the run succeeds its output folder is imported as a plan version.

The job table lives in the service database. Each job names the API process that watches
it (``owner``); a job that was queued or running when its process stopped is marked
``interrupted`` at the next start (:meth:`JobRunner.recover`): it is never left "running"
with nobody watching it, and a job of a live sibling worker (``deadstock serve --workers
N``) is left alone. A cancel may reach any worker: the one that does not hold the run sets
``cancel_requested`` and the watching one stops the run within :data:`POLL_SECONDS`.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from service import library
from service.audit import record
from service.db.engine import Database
from service.db.models import ACTIVE_JOB_STATUSES, Job, User, utcnow
from service.errors import Conflict, Forbidden, NotFound
from service.owner import owner_alive, process_owner
from service.settings import Settings
from service.users import CAN_LEAD

logger = logging.getLogger(__name__)

KIND = "pipeline_run"
TAIL_LINES = 40
"""Lines of the log kept as the job's tail."""
POLL_SECONDS = 1.0
"""How often a running job's log tail is saved to the database."""
CANCEL_GRACE_SECONDS = 10.0
"""How long a cancelled run may take to stop after SIGTERM before it is killed."""


def tail(path: str | Path, n: int = TAIL_LINES) -> str:
    """The last ``n`` lines of a text file ('' when it does not exist)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(deque(fh, maxlen=n))
    except OSError:
        return ""


def job_dict(job: Job) -> dict[str, Any]:
    return {"id": job.id, "status": job.status, "out_dir": job.out_dir, "params": job.params,
            "exit_code": job.exit_code, "plan_id": job.plan_id, "error": job.error}  # fmt: skip


class JobRunner:
    """Starts, watches and cancels pipeline runs (one at a time)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.owner = process_owner()
        self._lock = threading.Lock()
        self._procs: dict[int, subprocess.Popen] = {}
        self._cancelled: set[int] = set()
        self._threads: list[threading.Thread] = []

    # ---------------------------------------------------------------- lifecycle
    def recover(self) -> int:
        """Mark queued or running jobs of an API process that no longer runs ``interrupted``;
        stop their run process when it is still there. Returns how many were marked."""
        with self.db.session() as s:
            active = s.scalars(sa.select(Job).where(Job.status.in_(ACTIVE_JOB_STATUSES))).all()
            stale = [job for job in active if not owner_alive(job.owner)]
            for job in stale:
                before = job_dict(job)
                _stop_orphan(job)
                job.status = "interrupted"
                job.finished_at = utcnow()
                job.log_tail = tail(job.log_path)
                job.error = "the API stopped while this run was going; start it again"
                record(s, None, "job.interrupt", "job", str(job.id), before, job_dict(job),
                       actor_name="system")  # fmt: skip
            s.commit()
            return len(stale)

    def shutdown(self) -> None:
        """Cancel every running job (the API is stopping)."""
        for job_id in list(self._procs):
            self._terminate(job_id)
        for t in self._threads:
            t.join(timeout=CANCEL_GRACE_SECONDS + 5)

    # ---------------------------------------------------------------- start
    def start(self, user: User, params: dict[str, Any]) -> Job:
        """Start a run with ``params`` (``data``, ``config_path``, ``quick``, ``seed``,
        ``policy``); refused while another run is going."""
        if user.role not in CAN_LEAD:
            raise Forbidden(f"role {user.role!r} cannot start runs; {list(CAN_LEAD)} can")
        with self._lock, self.db.session() as s:
            busy = s.scalar(sa.select(Job).where(Job.status.in_(ACTIVE_JOB_STATUSES)).limit(1))
            if busy is not None:
                raise Conflict(
                    f"run job {busy.id} is {busy.status}; one pipeline run goes at a time "
                    f"(cancel it or wait)"
                )
            job = Job(kind=KIND, status="queued", params=params, out_dir="", log_path="",
                      created_by_id=user.id, owner=self.owner)  # fmt: skip
            s.add(job)
            s.flush()
            runs = Path(self.settings.runs_dir).resolve()
            job.out_dir = str(runs / f"job-{job.id}")
            job.log_path = str(runs / f"job-{job.id}.log")
            record(s, user, "job.start", "job", str(job.id), None, job_dict(job))
            s.commit()
            job_id = job.id
            cmd = library.pipeline_command(job.out_dir, base=self.settings.run_command, **params)
            runs.mkdir(parents=True, exist_ok=True)
            log = open(job.log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed by the watcher
            try:
                proc = subprocess.Popen(
                    cmd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
            except OSError as err:
                log.close()
                job.status, job.error, job.finished_at = "failed", str(err), utcnow()
                s.commit()
                return job
            job.status, job.pid, job.started_at = "running", proc.pid, utcnow()
            s.commit()
            self._procs[job_id] = proc
        thread = threading.Thread(
            target=self._watch, args=(job_id, proc, log, user.id), daemon=True, name=f"job-{job_id}"
        )
        self._threads.append(thread)
        thread.start()
        return job

    # ---------------------------------------------------------------- watch
    def _watch(self, job_id: int, proc: subprocess.Popen, log: Any, user_id: int) -> None:
        try:
            while proc.poll() is None:
                time.sleep(POLL_SECONDS)
                with self.db.session() as s:
                    job = s.get(Job, job_id)
                    if job is not None:
                        job.log_tail = tail(job.log_path)
                        s.commit()
                        if job.cancel_requested and job_id not in self._cancelled:
                            self._terminate(job_id)  # another worker took the cancel
        finally:
            log.close()
            self._procs.pop(job_id, None)
        self._finish(job_id, proc.returncode, user_id)

    def _finish(self, job_id: int, code: int, user_id: int) -> None:
        with self.db.session() as s:
            job = s.get(Job, job_id)
            if job is None:
                return
            user = s.get(User, user_id)
            before = job_dict(job)
            job.exit_code = code
            job.finished_at = utcnow()
            job.log_tail = tail(job.log_path)
            if job_id in self._cancelled:
                job.status = "cancelled"
            elif code == 0:
                job.status = "succeeded"
            else:
                job.status = "failed"
                job.error = f"deadstock run exited with {code}; see the log tail"
            record(s, user, f"job.{job.status}", "job", str(job.id), before, job_dict(job))
            s.commit()
            if job.status == "succeeded":
                self._import(s, job, user)

    def _import(self, s: Any, job: Job, user: User | None) -> None:
        """Import a finished run's output folder as a plan version."""
        from service.plans import import_run

        try:
            run = library.read_run_folder(
                job.out_dir, run_id_hint=library.run_id_from_log(tail(job.log_path, 400))
            )
            plan, _ = import_run(s, run, user=user)
            job.plan_id = plan.id
            s.commit()
        except Exception as err:  # noqa: BLE001 - the run's result stays; say why no plan
            logger.warning("job %s: importing %s failed: %s", job.id, job.out_dir, err)
            s.rollback()
            job.error = f"the run succeeded but its output could not be imported: {err}"
            s.commit()

    # ---------------------------------------------------------------- cancel
    def cancel(self, user: User, job_id: int) -> Job:
        if user.role not in CAN_LEAD:
            raise Forbidden(f"role {user.role!r} cannot cancel runs; {list(CAN_LEAD)} can")
        with self.db.session() as s:
            job = s.get(Job, job_id)
            if job is None:
                raise NotFound(f"job {job_id} not found")
            held = job_id in self._procs
            if job.status not in ACTIVE_JOB_STATUSES or not (held or owner_alive(job.owner)):
                raise Conflict(f"job {job_id} is {job.status}, not running")
            record(s, user, "job.cancel", "job", str(job.id), job_dict(job),
                   {**job_dict(job), "status": "cancelling"})  # fmt: skip
            job.cancel_requested = True
            s.commit()
        if held:
            self._cancelled.add(job_id)
            self._terminate(job_id)
        return job

    def _terminate(self, job_id: int) -> None:
        proc = self._procs.get(job_id)
        if proc is None or proc.poll() is not None:
            return
        self._cancelled.add(job_id)
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=CANCEL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(self, job_id: int, timeout: float) -> None:
        """Wait for a job's watcher to finish (tests, shutdown)."""
        for t in self._threads:
            if t.name == f"job-{job_id}":
                t.join(timeout)


def _stop_orphan(job: Job) -> None:
    """Stop a previous API's run process when it is still ours (its command line names the
    job's output folder); a reused pid is left alone."""
    if not job.pid or not job.out_dir:
        return
    try:
        cmdline = Path(f"/proc/{job.pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return
    if job.out_dir in cmdline.split("\0"):
        try:
            os.killpg(job.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass


def get_job(db_session: Any, job_id: int) -> Job:
    job = db_session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job
