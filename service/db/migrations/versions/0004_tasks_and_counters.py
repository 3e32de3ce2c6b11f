"""What-if tasks move from one process's memory into the database, jobs record which API
process watches them, and change counters let several API processes share caches.

Why: ``deadstock serve --workers N`` runs several processes. A task accepted by one must be
readable from the others, and a task or job whose process stopped must read
``interrupted``, never ``running``: ``owner`` names the process (host, pid, start time), so
a starting process can tell a dead owner from a live sibling. A cancel may reach any process,
so it is a flag (``cancel_requested``) the owner polls. ``change_counters`` holds one number
per kind of change (reviews, revoked tokens) that every process reads per request to
invalidate its caches.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COUNTERS = ("reviews", "tokens")


def upgrade() -> None:
    op.create_table(
        "whatif_tasks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["plan_id"], ["plan_versions.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_whatif_tasks_status"), "whatif_tasks", ["status"], unique=False)
    op.create_index(
        op.f("ix_whatif_tasks_created_at"), "whatif_tasks", ["created_at"], unique=False
    )
    counters = op.create_table(
        "change_counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(counters, [{"name": n, "value": 0} for n in COUNTERS])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=128), nullable=True))
        batch.add_column(
            sa.Column("cancel_requested", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("cancel_requested")
        batch.drop_column("owner")
    op.drop_table("change_counters")
    op.drop_index(op.f("ix_whatif_tasks_created_at"), table_name="whatif_tasks")
    op.drop_index(op.f("ix_whatif_tasks_status"), table_name="whatif_tasks")
    op.drop_table("whatif_tasks")
