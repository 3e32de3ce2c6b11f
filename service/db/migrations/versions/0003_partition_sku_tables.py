"""On PostgreSQL, ``sku_plans`` and ``sku_schedules`` are partitioned by plan (LIST on
``plan_id``), one partition per plan and a default one.

Why: a million-SKU import inserting into tables that already carry their indexes and
foreign keys maintains five B-trees and checks a foreign key row by row, which took most of
its time. With a partition per plan, the import loads a fresh table by ``COPY``, builds its
indexes in one sort each and attaches it (:mod:`service.db.bulk`), in the import's one
transaction. Queries name ``plan_id``, so they read only their plan's partition.

Existing rows move to a partition of their plan. SQLite is unchanged (it has no partitions).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 13:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PLANS_INDEXES = {
    "ix_sku_plans_plan_category_risk": "plan_id, category, risk, sku",
    "ix_sku_plans_plan_gain": "plan_id, profit_vs_none, sku",
    "ix_sku_plans_plan_risk": "plan_id, risk, sku",
    "ix_sku_plans_plan_status": "plan_id, status, sku",
}
OLD = "_0002"


def _constraints() -> None:
    """Keys, foreign keys and indexes of ``sku_plans`` and ``sku_schedules`` (named as
    revision 0001 named them)."""
    op.execute("ALTER TABLE sku_plans ADD CONSTRAINT sku_plans_pkey PRIMARY KEY (plan_id, sku)")
    op.execute(
        "ALTER TABLE sku_plans ADD CONSTRAINT sku_plans_plan_id_fkey "
        "FOREIGN KEY (plan_id) REFERENCES plan_versions (id)"
    )
    for name, cols in PLANS_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON sku_plans ({cols})")
    op.execute(
        "ALTER TABLE sku_schedules ADD CONSTRAINT sku_schedules_pkey PRIMARY KEY (plan_id, sku)"
    )
    op.execute(
        "ALTER TABLE sku_schedules ADD CONSTRAINT sku_schedules_plan_id_sku_fkey "
        "FOREIGN KEY (plan_id, sku) REFERENCES sku_plans (plan_id, sku)"
    )


def _set_aside() -> None:
    """Rename both tables (and their key indexes, whose names are schema-wide) out of the
    way; their other indexes are dropped (the tables are copied and dropped next)."""
    for name in PLANS_INDEXES:
        op.execute(f"DROP INDEX {name}")
    for table in ("sku_schedules", "sku_plans"):
        op.execute(f"ALTER TABLE {table} RENAME TO {table}{OLD}")
        op.execute(f"ALTER INDEX {table}_pkey RENAME TO {table}{OLD}_pkey")


def _copy_back_and_drop() -> None:
    for table in ("sku_plans", "sku_schedules"):
        op.execute(f"INSERT INTO {table} SELECT * FROM {table}{OLD}")
    for table in ("sku_schedules", "sku_plans"):
        op.execute(f"DROP TABLE {table}{OLD}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _set_aside()
    for table in ("sku_plans", "sku_schedules"):
        op.execute(
            f"CREATE TABLE {table} (LIKE {table}{OLD} INCLUDING DEFAULTS) "
            "PARTITION BY LIST (plan_id)"
        )
    _constraints()
    plan_ids = [r[0] for r in op.get_bind().exec_driver_sql(
        f"SELECT DISTINCT plan_id FROM sku_plans{OLD} ORDER BY plan_id"
    )]  # fmt: skip
    for table in ("sku_plans", "sku_schedules"):
        op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
        for pid in plan_ids:
            op.execute(f"CREATE TABLE {table}_p{int(pid)} PARTITION OF {table} "
                       f"FOR VALUES IN ({int(pid)})")  # fmt: skip
    _copy_back_and_drop()


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _set_aside()
    for table in ("sku_plans", "sku_schedules"):
        op.execute(f"CREATE TABLE {table} (LIKE {table}{OLD} INCLUDING DEFAULTS)")
    _constraints()
    _copy_back_and_drop()
