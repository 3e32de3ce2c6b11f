"""Initial schema: plans, SKU plans and schedules, reviews, exports, users, tokens, jobs and
the append-only audit log.

Created with ``alembic revision --autogenerate`` from :mod:`service.db.models`; the triggers
that refuse UPDATE and DELETE on ``audit_log`` were added by hand (autogenerate does not see
triggers).

Revision ID: 0001
Revises:
Create Date: 2026-11-30 09:46:40
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"], unique=False)
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=200), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_object", "audit_log", ["object_type", "object_id"], unique=False)
    op.create_table(
        "plan_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_key", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("data_fingerprint", sa.String(length=128), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("horizon_weeks", sa.Integer(), nullable=False),
        sa.Column("n_skus", sa.Integer(), nullable=False),
        sa.Column("source_dir", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("roi", sa.JSON(), nullable=True),
        sa.Column("metadata_source", sa.Text(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["imported_by_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plan_key"),
    )
    op.create_table(
        "exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=True),
        sa.Column("n_skus", sa.Integer(), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("by_status", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plan_versions.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_exports_plan_id"), "exports", ["plan_id"], unique=False)
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("out_dir", sa.Text(), nullable=False),
        sa.Column("log_path", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("log_tail", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plan_versions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_jobs_status"), "jobs", ["status"], unique=False)
    op.create_table(
        "plan_artifacts",
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("part", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plan_versions.id"],
        ),
        sa.PrimaryKeyConstraint("plan_id", "name", "part"),
    )
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=128), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("status_before", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("discount", sa.JSON(), nullable=True),
        sa.Column("coupon", sa.JSON(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plan_versions.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reviews_plan_sku", "reviews", ["plan_id", "sku"], unique=False)
    op.create_table(
        "sku_plans",
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tier", sa.String(length=16), nullable=True),
        sa.Column("top_drivers", sa.Text(), nullable=True),
        sa.Column("recommended_policy", sa.String(length=64), nullable=True),
        sa.Column("best_heuristic", sa.String(length=64), nullable=True),
        sa.Column("risk", sa.Float(), nullable=True),
        sa.Column("initial_stock", sa.Float(), nullable=True),
        sa.Column("list_price", sa.Float(), nullable=True),
        sa.Column("unit_cost", sa.Float(), nullable=True),
        sa.Column("rec_sell_through", sa.Float(), nullable=True),
        sa.Column("rec_leftover_units", sa.Float(), nullable=True),
        sa.Column("rec_margin_given_away", sa.Float(), nullable=True),
        sa.Column("rec_profit", sa.Float(), nullable=True),
        sa.Column("rec_profit_ci_low", sa.Float(), nullable=True),
        sa.Column("rec_profit_ci_high", sa.Float(), nullable=True),
        sa.Column("none_sell_through", sa.Float(), nullable=True),
        sa.Column("none_leftover_units", sa.Float(), nullable=True),
        sa.Column("none_margin_given_away", sa.Float(), nullable=True),
        sa.Column("none_profit", sa.Float(), nullable=True),
        sa.Column("none_profit_ci_low", sa.Float(), nullable=True),
        sa.Column("none_profit_ci_high", sa.Float(), nullable=True),
        sa.Column("heur_sell_through", sa.Float(), nullable=True),
        sa.Column("heur_leftover_units", sa.Float(), nullable=True),
        sa.Column("heur_margin_given_away", sa.Float(), nullable=True),
        sa.Column("heur_profit", sa.Float(), nullable=True),
        sa.Column("heur_profit_ci_low", sa.Float(), nullable=True),
        sa.Column("heur_profit_ci_high", sa.Float(), nullable=True),
        sa.Column("profit_vs_none", sa.Float(), nullable=True),
        sa.Column("leftover_units_vs_none", sa.Float(), nullable=True),
        sa.Column("margin_given_away_vs_none", sa.Float(), nullable=True),
        sa.Column("profit_vs_none_ci_low", sa.Float(), nullable=True),
        sa.Column("profit_vs_none_ci_high", sa.Float(), nullable=True),
        sa.Column("profit_vs_heur", sa.Float(), nullable=True),
        sa.Column("leftover_units_vs_heur", sa.Float(), nullable=True),
        sa.Column("margin_given_away_vs_heur", sa.Float(), nullable=True),
        sa.Column("profit_vs_heur_ci_low", sa.Float(), nullable=True),
        sa.Column("profit_vs_heur_ci_high", sa.Float(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("export_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plan_versions.id"],
        ),
        sa.PrimaryKeyConstraint("plan_id", "sku"),
    )
    op.create_index(
        "ix_sku_plans_plan_category_risk",
        "sku_plans",
        ["plan_id", "category", "risk", "sku"],
        unique=False,
    )
    op.create_index(
        "ix_sku_plans_plan_gain", "sku_plans", ["plan_id", "profit_vs_none", "sku"], unique=False
    )
    op.create_index("ix_sku_plans_plan_risk", "sku_plans", ["plan_id", "risk", "sku"], unique=False)
    op.create_index(
        "ix_sku_plans_plan_status", "sku_plans", ["plan_id", "status", "sku"], unique=False
    )
    op.create_table(
        "sku_schedules",
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("discount", sa.LargeBinary(), nullable=False),
        sa.Column("coupon", sa.LargeBinary(), nullable=False),
        sa.Column("expected", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id", "sku"],
            ["sku_plans.plan_id", "sku_plans.sku"],
        ),
        sa.PrimaryKeyConstraint("plan_id", "sku"),
    )

    _audit_triggers()


APPEND_ONLY = "audit log is append-only"

_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log
    BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"""
    for verb in ("UPDATE", "DELETE")
]
_POSTGRES_TRIGGERS = [
    f"""CREATE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$""",
    """CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse()""",
    """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse()""",
]


def _audit_triggers() -> None:
    """Refuse UPDATE and DELETE on the audit log in the database itself (not only by having
    no code path for them)."""
    dialect = op.get_bind().dialect.name
    statements = {"sqlite": _SQLITE_TRIGGERS, "postgresql": _POSTGRES_TRIGGERS}.get(dialect, [])
    for stmt in statements:
        op.execute(stmt)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_refuse()")
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    op.drop_table("sku_schedules")
    op.drop_index("ix_sku_plans_plan_status", table_name="sku_plans")
    op.drop_index("ix_sku_plans_plan_risk", table_name="sku_plans")
    op.drop_index("ix_sku_plans_plan_gain", table_name="sku_plans")
    op.drop_index("ix_sku_plans_plan_category_risk", table_name="sku_plans")
    op.drop_table("sku_plans")
    op.drop_index("ix_reviews_plan_sku", table_name="reviews")
    op.drop_table("reviews")
    op.drop_table("plan_artifacts")
    op.drop_index(op.f("ix_jobs_status"), table_name="jobs")
    op.drop_table("jobs")
    op.drop_index(op.f("ix_exports_plan_id"), table_name="exports")
    op.drop_table("exports")
    op.drop_table("plan_versions")
    op.drop_index("ix_audit_object", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(op.f("ix_api_tokens_user_id"), table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("users")
