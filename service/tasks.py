"""What-if tasks: a what-if over many SKUs (a category) runs in the background and reports
its progress, so the dashboard can show a bar instead of a request that hangs.

Tasks live in memory (a result is a simulation anyone can rerun with the same seed; it is
not a record of the workflow) and run one at a time on one worker thread, so what-ifs never
take more than one core from the API. The newest :attr:`Limits.max_running_tasks` tasks are
kept.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingest.errors import DeadstockError
from service.db.models import utcnow
from service.errors import Conflict, Forbidden, NotFound

logger = logging.getLogger(__name__)


@dataclass
class Task:
    """One background what-if."""

    id: str
    user_id: int
    plan_id: int
    total: int
    status: str = "queued"
    done: int = 0
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    cancel_requested: bool = False


class TaskManager:
    """Runs what-if tasks on one worker thread and keeps the newest ``keep`` of them."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._tasks: OrderedDict[str, Task] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whatif")

    def submit(
        self,
        user_id: int,
        plan_id: int,
        total: int,
        work: Callable[[Callable[[int, int], None], Callable[[], bool]], dict[str, Any]],
    ) -> Task:
        """Queue ``work(progress, cancelled)``; returns the task."""
        task = Task(id=uuid.uuid4().hex, user_id=user_id, plan_id=plan_id, total=total)
        with self._lock:
            active = sum(t.status in ("queued", "running") for t in self._tasks.values())
            if active >= self.keep:
                raise Conflict(f"{active} what-if tasks are waiting; try again when they finish")
            self._tasks[task.id] = task
            while len(self._tasks) > self.keep:
                oldest = next(iter(self._tasks.values()))
                if oldest.status in ("queued", "running"):
                    break
                self._tasks.popitem(last=False)
        self._pool.submit(self._run, task, work)
        return task

    def _run(self, task: Task, work: Callable[..., dict[str, Any]]) -> None:
        if task.cancel_requested:
            task.status, task.finished_at = "cancelled", utcnow()
            return
        task.status = "running"

        def progress(done: int, total: int) -> None:
            task.done, task.total = done, total

        try:
            task.result = work(progress, lambda: task.cancel_requested)
            task.status = "succeeded"
            task.done = task.total
        except DeadstockError as err:
            task.status = "cancelled" if task.cancel_requested else "failed"
            task.error = str(err)
        except Exception as err:  # noqa: BLE001 - a task's failure is reported, not raised
            logger.exception("what-if task %s failed", task.id)
            task.status = "failed"
            task.error = f"the simulation failed ({type(err).__name__})"
        task.finished_at = utcnow()

    def get(self, task_id: str, user_id: int, is_lead: bool) -> Task:
        task = self._tasks.get(task_id)
        if task is None:
            raise NotFound(f"what-if task {task_id!r} not found (tasks are kept in memory)")
        if task.user_id != user_id and not is_lead:
            raise Forbidden("this what-if task belongs to another user")
        return task

    def cancel(self, task_id: str, user_id: int, is_lead: bool) -> Task:
        task = self.get(task_id, user_id, is_lead)
        task.cancel_requested = True
        return task

    def shutdown(self) -> None:
        with self._lock:
            for t in self._tasks.values():
                t.cancel_requested = True
        self._pool.shutdown(wait=True, cancel_futures=True)


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
