"""What-if tasks: a what-if over many SKUs (a category) runs in the background and reports
its progress, so the dashboard can show a bar instead of a request that hangs.

Tasks live in the service database (``whatif_tasks``), so with ``deadstock serve --workers
N`` any worker process answers for a task another one accepted. A task runs in the process
that accepted it, one at a time on one worker thread (what-ifs never take more than one core
from that process); its progress, result or error are written to its row. A cancel is a
flag on the row that the running process polls. A task whose process stopped reads
``interrupted``, never ``running``: the process marks its own unfinished tasks so at
shutdown, and a process that finds a task of a dead owner (:func:`service.owner.owner_alive`:
a crash, a kill) marks it at startup or when asked about it. At most
:attr:`Limits.max_running_tasks` tasks wait or run at once, and the newest as many finished
ones are kept (a result is a simulation anyone can rerun with the same seed; it is not a
record of the workflow).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa
from pydantic_core import to_json

from ingest.errors import DeadstockError
from service.db.engine import Database
from service.db.models import ACTIVE_JOB_STATUSES, WhatIfTask, utcnow
from service.errors import Conflict, Forbidden, NotFound
from service.owner import owner_alive, process_owner

logger = logging.getLogger(__name__)

ACTIVE = ACTIVE_JOB_STATUSES
PROGRESS_SECONDS = 0.25
"""Least time between two progress writes of one task (a chunk of SKUs can take less)."""
CANCEL_POLL_SECONDS = 0.25
"""Least time between two reads of a running task's cancel flag."""
INTERRUPTED = "the API process running this task stopped; submit it again"


def task_dict(task: WhatIfTask) -> dict[str, Any]:
    """A task as the API shows it (the result decoded)."""
    out = {k: getattr(task, k) for k in ("id", "plan_id", "status", "done", "total", "error",
                                         "created_at", "finished_at")}  # fmt: skip
    out["result"] = json.loads(task.result) if task.result else None
    return out


class TaskManager:
    """Runs this process's what-if tasks on one worker thread; reads anyone's from the
    database."""

    def __init__(self, db: Database, keep: int) -> None:
        self.db = db
        self.keep = keep
        self.owner = process_owner()
        self.cancel_poll_seconds = CANCEL_POLL_SECONDS
        self._lock = threading.Lock()
        self._cancelled: set[str] = set()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whatif")

    # ---------------------------------------------------------------- lifecycle
    def recover(self) -> int:
        """Mark unfinished tasks of processes that no longer run ``interrupted``; returns how
        many (a live sibling's tasks are left alone)."""
        with self.db.session() as s:
            rows = s.scalars(sa.select(WhatIfTask).where(WhatIfTask.status.in_(ACTIVE))).all()
            n = sum(self._interrupt_if_orphan(t) for t in rows)
            s.commit()
        return n

    def shutdown(self) -> None:
        """Stop this process's tasks: the running one between chunks, the queued ones at
        once; all of them read ``interrupted``."""
        with self._lock, self.db.session() as s:
            mine = s.scalars(
                sa.select(WhatIfTask.id).where(
                    WhatIfTask.owner == self.owner, WhatIfTask.status.in_(ACTIVE)
                )
            ).all()
            self._cancelled.update(mine)
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self.db.session() as s:
            s.execute(
                sa.update(WhatIfTask)
                .where(WhatIfTask.owner == self.owner, WhatIfTask.status.in_(ACTIVE))
                .values(status="interrupted", error=INTERRUPTED, finished_at=utcnow())
            )
            s.commit()

    @staticmethod
    def _interrupt_if_orphan(task: WhatIfTask) -> bool:
        if task.status not in ACTIVE or owner_alive(task.owner):
            return False
        task.status, task.error, task.finished_at = "interrupted", INTERRUPTED, utcnow()
        return True

    # ---------------------------------------------------------------- submit and run
    def submit(
        self,
        user_id: int,
        plan_id: int,
        total: int,
        work: Callable[[Callable[[int, int], None], Callable[[], bool]], dict[str, Any]],
    ) -> dict[str, Any]:
        """Queue ``work(progress, cancelled)``; returns the task (:func:`task_dict`)."""
        with self._lock, self.db.session() as s:
            active = s.scalar(
                sa.select(sa.func.count()).select_from(WhatIfTask)
                .where(WhatIfTask.status.in_(ACTIVE))
            ) or 0  # fmt: skip
            if active >= self.keep:
                raise Conflict(f"{active} what-if tasks are waiting; try again when they finish")
            task = WhatIfTask(id=uuid.uuid4().hex, user_id=user_id, plan_id=plan_id, total=total,
                              status="queued", done=0, owner=self.owner, created_at=utcnow())  # fmt: skip
            s.add(task)
            s.flush()
            self._prune(s)
            s.commit()
            out = task_dict(task)
        self._pool.submit(self._run, task.id, work)
        return out

    def _prune(self, s: Any) -> None:
        """Delete finished tasks but the newest ``keep``."""
        old = s.scalars(
            sa.select(WhatIfTask.id)
            .where(WhatIfTask.status.not_in(ACTIVE))
            .order_by(WhatIfTask.created_at.desc(), WhatIfTask.id)
            .offset(self.keep)
        ).all()
        if old:
            s.execute(sa.delete(WhatIfTask).where(WhatIfTask.id.in_(old)))

    def _update(self, task_id: str, **values: Any) -> None:
        with self.db.session() as s:
            s.execute(sa.update(WhatIfTask).where(WhatIfTask.id == task_id).values(**values))
            s.commit()

    def _cancel_flag(self, task_id: str) -> bool:
        if task_id in self._cancelled:
            return True
        with self.db.session() as s:
            flag = s.scalar(sa.select(WhatIfTask.cancel_requested).where(WhatIfTask.id == task_id))
        if flag:
            self._cancelled.add(task_id)
        return bool(flag)

    def _run(self, task_id: str, work: Callable[..., dict[str, Any]]) -> None:
        if self._cancel_flag(task_id):
            self._update(task_id, status="cancelled", finished_at=utcnow())
            return
        self._update(task_id, status="running")
        last = {"progress": 0.0, "cancel": time.monotonic()}

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last["progress"] >= PROGRESS_SECONDS or done >= total:
                last["progress"] = now
                self._update(task_id, done=done, total=total)

        def cancelled() -> bool:
            now = time.monotonic()
            if task_id in self._cancelled:
                return True
            if now - last["cancel"] < self.cancel_poll_seconds:
                return False
            last["cancel"] = now
            return self._cancel_flag(task_id)

        values: dict[str, Any]
        try:
            result = work(progress, cancelled)
            # NaN and infinities as JSON's constants: the result is read back as it was made
            text = to_json(result, inf_nan_mode="constants").decode()
            values = {"status": "succeeded", "result": text}
        except DeadstockError as err:
            stopped = task_id in self._cancelled
            values = {"status": "cancelled" if stopped else "failed", "error": str(err)}
        except Exception as err:  # noqa: BLE001 - a task's failure is reported, not raised
            logger.exception("what-if task %s failed", task_id)
            values = {"status": "failed",
                      "error": f"the simulation failed ({type(err).__name__})"}  # fmt: skip
        if values["status"] == "cancelled" and self._stopping(task_id):
            values = {"status": "interrupted", "error": INTERRUPTED}
        if values["status"] == "succeeded":
            with self.db.session() as s:
                total = s.scalar(sa.select(WhatIfTask.total).where(WhatIfTask.id == task_id))
            values["done"] = total or 0
        self._update(task_id, finished_at=utcnow(), **values)

    def _stopping(self, task_id: str) -> bool:
        """Whether the task was stopped by this process's shutdown (not by a user)."""
        with self.db.session() as s:
            flag = s.scalar(sa.select(WhatIfTask.cancel_requested).where(WhatIfTask.id == task_id))
        return not flag

    # ---------------------------------------------------------------- read and cancel
    def _load(self, s: Any, task_id: str, user_id: int, is_lead: bool) -> WhatIfTask:
        task = s.get(WhatIfTask, task_id)
        if task is None:
            raise NotFound(f"what-if task {task_id!r} not found")
        if task.user_id != user_id and not is_lead:
            raise Forbidden("this what-if task belongs to another user")
        if self._interrupt_if_orphan(task):
            s.commit()
        return task

    def get(self, task_id: str, user_id: int, is_lead: bool) -> dict[str, Any]:
        """A task (404 when absent, 403 when another user's and the caller no lead)."""
        with self.db.session() as s:
            return task_dict(self._load(s, task_id, user_id, is_lead))

    def cancel(self, task_id: str, user_id: int, is_lead: bool) -> dict[str, Any]:
        """Ask a task to stop (whichever process runs it stops it between chunks)."""
        with self.db.session() as s:
            task = self._load(s, task_id, user_id, is_lead)
            if task.status in ACTIVE:
                task.cancel_requested = True
                s.commit()
            if task.owner == self.owner:
                self._cancelled.add(task_id)
            return task_dict(task)

    def wait(self, task_id: str, timeout: float) -> str:
        """Poll until the task is finished or ``timeout`` passed; its status (tests)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.db.session() as s:
                status = s.scalar(sa.select(WhatIfTask.status).where(WhatIfTask.id == task_id))
            if status not in ACTIVE or time.monotonic() > deadline:
                return str(status)
            time.sleep(0.05)


class CatalogCache:
    """Decoded plan catalogs, the newest ``size`` kept (decoding a large one takes seconds)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._items: OrderedDict[int, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, plan_id: int, load: Callable[[], Any]) -> Any:
        with self._lock:
            if plan_id in self._items:
                self._items.move_to_end(plan_id)
                return self._items[plan_id]
        value = load()
        with self._lock:
            self._items[plan_id] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value
