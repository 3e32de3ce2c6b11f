"""Plan versions carry their weeks' calendar dates and their currency (the dashboard dates
the plan's weeks and writes money with its currency).

Both columns are nullable: a plan imported before this revision, or from data without a
calendar, has none.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("plan_versions") as batch:
        batch.add_column(sa.Column("week_starts", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("currency", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("plan_versions") as batch:
        batch.drop_column("currency")
        batch.drop_column("week_starts")
