"""The service database: migrations match the models, the audit log refuses updates and
deletes, imports are idempotent, and a job left running becomes "interrupted"."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from service.db.engine import current_revision, head_revision, open_database
from service.errors import Conflict


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'svc.db'}"
    from tests.pg import fresh_database

    return fresh_database(request.getfixturevalue("postgres_server"))


def test_migrations_create_exactly_the_models(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from service.db.models import Base, include_object

    db = open_database(db_url)
    assert current_revision(db.engine) == head_revision() is not None
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": include_object})
        diff = compare_metadata(ctx, Base.metadata)
    db.dispose()
    assert diff == [], diff
    again = open_database(db_url)  # upgrading an up-to-date database is a no-op
    assert current_revision(again.engine) == head_revision()
    again.dispose()


def test_audit_log_is_append_only_in_the_database(db_url):
    from service.audit import record

    db = open_database(db_url)
    with db.session() as s:
        record(s, None, "test.write", "thing", "1", None, {"x": float("nan"), "y": [1, 2]})
        s.commit()
    with db.engine.connect() as conn:
        after = conn.execute(sa.text("SELECT after FROM audit_log")).scalar_one()
    assert (after if isinstance(after, dict) else __import__("json").loads(after)) == {
        "x": None,
        "y": [1, 2],
    }
    for stmt in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with db.engine.begin() as conn:
                conn.execute(sa.text(stmt))
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one() == 1
    db.dispose()


def test_bad_database_url_is_one_clear_error(tmp_path):
    from ingest.errors import ConfigError, DataError

    with pytest.raises(ConfigError, match="not usable"):
        open_database("nosuchdialect://x")
    with pytest.raises(DataError, match="cannot be opened"):
        open_database(f"sqlite:///{tmp_path}/no/such/dir/x.db")


@pytest.mark.slow
def test_import_twice_creates_nothing_and_other_content_conflicts(db_url, pipeline_run):
    from service import library, plans

    db = open_database(db_url)
    run = library.read_run_folder(pipeline_run.folder)
    with db.session() as s:
        plan, created = plans.import_run(s, run, user=None)
        s.commit()
        assert created and plan.n_skus == len(run.summary)
    counts = {}
    with db.engine.connect() as conn:
        for t in ("plan_versions", "sku_plans", "sku_schedules", "plan_artifacts", "audit_log"):
            counts[t] = conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
    with db.session() as s:
        again, created = plans.import_run(s, library.read_run_folder(pipeline_run.folder),
                                          user=None)  # fmt: skip
        s.commit()
        assert not created and again.id == plan.id
    with db.engine.connect() as conn:
        for t, n in counts.items():
            assert conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() == n, t
    changed = library.read_run_folder(pipeline_run.folder)
    changed.discount = np.where(changed.discount > 0, 0.0, changed.discount + 0.1)
    with db.session() as s, pytest.raises(Conflict, match="other schedules"):
        plans.import_run(s, changed, user=None)
    db.dispose()


def test_running_job_becomes_interrupted_at_startup(db_url, tmp_path):
    from service.db.models import AuditEntry, Job
    from service.jobs import JobRunner
    from service.settings import Settings

    db = open_database(db_url)
    with db.session() as s:
        s.add(Job(kind="pipeline_run", status="running", params={}, out_dir=str(tmp_path / "x"),
                  log_path=str(tmp_path / "x.log"), pid=2**22 + 7))  # fmt: skip
        s.add(Job(kind="pipeline_run", status="succeeded", params={}, out_dir="y", log_path=""))
        s.commit()
    runner = JobRunner(db, Settings(db_url=db_url, runs_dir=str(tmp_path)))
    assert runner.recover() == 1
    with db.session() as s:
        statuses = sorted(j.status for j in s.scalars(sa.select(Job)))
        entry = s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "job.interrupt")).one()
    assert statuses == ["interrupted", "succeeded"]
    assert entry.before["status"] == "running" and entry.after["status"] == "interrupted"
    assert runner.recover() == 0
    db.dispose()


@pytest.mark.slow
def test_failed_import_leaves_nothing(db_url, pipeline_run, monkeypatch):
    from service import library, plans
    from service.db import bulk

    real = bulk.insert_plan_rows

    def fail_on_schedules(conn, table, frame, plan_id):
        if table.name == "sku_schedules":
            raise RuntimeError("disk full")
        return real(conn, table, frame, plan_id)

    monkeypatch.setattr(plans, "insert_plan_rows", fail_on_schedules)
    db = open_database(db_url)
    run = library.read_run_folder(pipeline_run.folder)
    with db.session() as s, pytest.raises(RuntimeError, match="disk full"):
        plans.import_run(s, run, user=None)
    with db.engine.connect() as conn:
        for t in ("plan_versions", "sku_plans", "sku_schedules", "plan_artifacts", "audit_log"):
            assert conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() == 0, t
    from service.db.models import is_partition

    tables = sa.inspect(db.engine).get_table_names()
    assert not [t for t in tables if is_partition(t) and not t.endswith("_default")]
    monkeypatch.setattr(plans, "insert_plan_rows", real)
    with db.session() as s:  # and the same run then imports whole
        plan, created = plans.import_run(s, run, user=None)
        s.commit()
    with db.engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM sku_schedules")).scalar_one()
    assert created and n == plan.n_skus
    db.dispose()


@pytest.mark.slow
@pytest.mark.postgres
def test_partition_migration_keeps_rows_both_ways(postgres_server, pipeline_run):
    from alembic import command

    from service import library, plans
    from service.db.engine import alembic_config, upgrade
    from service.db.models import is_partition, partition_name
    from tests.pg import fresh_database

    db = open_database(fresh_database(postgres_server))
    with db.session() as s:
        plan, _ = plans.import_run(s, library.read_run_folder(pipeline_run.folder), user=None)
        s.commit()

    def rows() -> dict[str, int]:
        with db.engine.connect() as conn:
            return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t} WHERE plan_id = "
                                            f"{plan.id}")).scalar_one()
                    for t in ("sku_plans", "sku_schedules")}  # fmt: skip

    def partitions() -> set[str]:
        return {t for t in sa.inspect(db.engine).get_table_names() if is_partition(t)}

    before = rows()
    assert before["sku_plans"] == before["sku_schedules"] == plan.n_skus
    assert partition_name("sku_plans", plan.id) in partitions()
    with db.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0002")
    assert current_revision(db.engine) == "0002"
    assert rows() == before and not partitions()
    assert upgrade(db.engine) == head_revision()
    assert rows() == before
    assert {partition_name("sku_plans", plan.id), "sku_plans_default"} <= partitions()
    with db.engine.connect() as conn:  # the plan's rows are in its own partition
        own = conn.execute(sa.text(f"SELECT count(*) FROM {partition_name('sku_plans', plan.id)}"))
        assert own.scalar_one() == plan.n_skus
    db.dispose()


@pytest.mark.postgres
def test_binary_copy_round_trips_every_column_kind(postgres_url):
    # floats (NaN becomes NULL, infinities stay), integers, text with non-ASCII, JSON text,
    # bytes and NULLs of each, written by the import's binary COPY and read back
    from service.db.bulk import insert_frame

    meta = sa.MetaData()
    t = sa.Table(
        "copy_kinds", meta,
        sa.Column("i", sa.Integer, primary_key=True), sa.Column("f", sa.Float),
        sa.Column("s", sa.String(20)), sa.Column("x", sa.Text), sa.Column("j", sa.JSON),
        sa.Column("b", sa.LargeBinary), sa.Column("n", sa.Integer),
    )  # fmt: skip
    frame = pd.DataFrame({
        "i": [1, 2, 3],
        "f": [1.5, np.nan, -np.inf],
        "s": ["a", None, "ünïcode €"],
        "x": ["", "two\nlines", None],
        "j": ['{"k": [1, 2]}', None, "null"],
        "b": [b"\x00\x01\xff", b"", None],
        "n": [7.0, np.nan, -2.0],
    })  # fmt: skip
    engine = sa.create_engine(postgres_url)
    meta.create_all(engine)
    with engine.begin() as conn:
        assert insert_frame(conn, t, frame) == 3
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t).order_by(t.c.i)).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        (1, 1.5, "a", "", {"k": [1, 2]}, b"\x00\x01\xff", 7),
        (2, None, None, "two\nlines", None, b"", None),
        (3, -np.inf, "ünïcode €", None, None, None, -2),
    ]
