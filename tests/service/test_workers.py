"""Several API processes on one database: the what-if task table (a task accepted by one
runner is read and cancelled through another; a task whose process stopped reads
"interrupted"), the change counters behind the caches, and ``deadstock serve --workers``."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from app.cli.main import main
from service import counters
from service.db.engine import open_database
from service.db.models import PlanVersion, WhatIfTask, utcnow
from service.owner import owner_alive, process_owner
from service.tasks import TaskManager


@pytest.fixture
def db(tmp_path):
    """A SQLite service database with one user and one (empty) plan version."""
    from service.users import add_user

    database = open_database(f"sqlite:///{tmp_path / 'svc.db'}")
    with database.session() as s:
        user, _ = add_user(s, "ann", "viewer")
        s.add(PlanVersion(plan_key="k", config={}, rules={}, horizon_weeks=4, n_skus=0,
                          source_dir="x", content_hash="h"))  # fmt: skip
        s.commit()
        database.user_id = user.id  # type: ignore[attr-defined]
    yield database
    database.dispose()


def _work(release: threading.Event, steps: int = 3):
    def work(progress, cancelled):
        for i in range(steps):
            if cancelled():
                from ingest.errors import DataError

                raise DataError("cancelled")
            release.wait(10)
            progress(i + 1, steps)
        return {"value": 1.5, "nan": float("nan")}

    return work


def test_task_accepted_by_one_runner_is_read_and_cancelled_through_another(db):
    uid = db.user_id
    one, two = TaskManager(db, keep=4), TaskManager(db, keep=4)
    one.cancel_poll_seconds = 0.0  # read the flag at every chunk: the test has three
    go = threading.Event()
    task = one.submit(uid, 1, 3, _work(go))
    assert two.get(task["id"], uid, False)["status"] in ("queued", "running")
    go.set()
    assert one.wait(task["id"], 10) == "succeeded"
    seen = two.get(task["id"], uid, False)
    assert seen["done"] == seen["total"] == 3
    assert seen["result"]["value"] == 1.5 and seen["result"]["nan"] != seen["result"]["nan"]
    with pytest.raises(Exception, match="another user"):
        two.get(task["id"], uid + 1, False)
    assert two.get(task["id"], uid + 1, True)["status"] == "succeeded"  # a lead reads any
    # a cancel sent to the process that does not run the task stops it there
    stop = threading.Event()
    task = one.submit(uid, 1, 3, _work(stop))
    two.cancel(task["id"], uid, False)
    stop.set()
    assert one.wait(task["id"], 10) == "cancelled"
    one.shutdown()
    two.shutdown()


def test_tasks_of_a_stopped_process_read_interrupted(db):
    uid = db.user_id
    me = process_owner()
    host, pid, start, _ = me.split(":")
    dead = f"{host}:{pid}:{int(start) + 1}:gone"  # this pid, another start: a reused pid
    assert owner_alive(me) and not owner_alive(dead) and not owner_alive(None)
    with db.session() as s:
        for i, owner in enumerate((dead, dead, me)):
            s.add(WhatIfTask(id=f"{i:032x}", user_id=uid, plan_id=1, status="running", done=0,
                             total=2, owner=owner, created_at=utcnow()))  # fmt: skip
        s.commit()
    runner = TaskManager(db, keep=4)
    assert runner.get(f"{0:032x}", uid, False)["status"] == "interrupted"  # read: marked
    assert runner.recover() == 1  # the other dead one; the live owner's is left alone
    assert runner.get(f"{1:032x}", uid, False)["status"] == "interrupted"
    assert runner.get(f"{2:032x}", uid, False)["status"] == "running"
    # a process stopping marks its own unfinished task interrupted, never leaves it running
    hold = threading.Event()
    task = runner.submit(uid, 1, 3, _work(hold, steps=50))
    for _ in range(100):
        if runner.get(task["id"], uid, False)["status"] == "running":
            break
        time.sleep(0.02)
    stopper = threading.Thread(target=runner.shutdown)
    stopper.start()
    time.sleep(0.3)
    hold.set()
    stopper.join(10)
    with db.session() as s:
        row = s.get(WhatIfTask, task["id"])
        assert row is not None and row.status == "interrupted", row.status


def test_full_task_queue_is_refused_and_old_tasks_are_pruned(db):
    uid = db.user_id
    runner = TaskManager(db, keep=2)
    hold = threading.Event()
    a, b = runner.submit(uid, 1, 1, _work(hold, 1)), runner.submit(uid, 1, 1, _work(hold, 1))
    with pytest.raises(Exception, match="what-if tasks are waiting"):
        runner.submit(uid, 1, 1, _work(hold, 1))
    hold.set()
    for t in (a, b):
        assert runner.wait(t["id"], 10) == "succeeded"
    for _ in range(3):
        runner.wait(runner.submit(uid, 1, 1, _work(hold, 1))["id"], 10)
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(WhatIfTask)) <= 3
    runner.shutdown()


def test_counters_move_with_their_writes(db):
    from service.users import get_user, revoke_user

    with db.session() as s:
        before = counters.read(s)
        revoke_user(s, get_user(s, "ann"))
        s.commit()
    with db.session() as s:
        after = counters.read(s)
    assert after[counters.TOKENS] == before[counters.TOKENS] + 1
    assert after[counters.REVIEWS] == before[counters.REVIEWS]
    with db.session() as s, pytest.raises(ValueError):
        counters.bump(s, "nothing")


def test_serve_refuses_bad_worker_counts(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert main(["serve", "--workers", "0", "--db", url]) == 2
    assert "--workers 0: expected 1..32" in capsys.readouterr().err
    assert main(["serve", "--workers", "2", "--db", "sqlite://"]) == 2
    assert "in-memory" in capsys.readouterr().err
