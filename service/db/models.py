"""The service database's tables (SQLAlchemy 2).

What the review-and-approve workflow creates lives here; the plans themselves come from the
pipeline's output folder and are copied in at import, so the service keeps working when that
folder is replaced by the next run.

``plan_versions``
    One row per imported plan (``plan_key`` is unique: importing it again creates nothing).
``plan_artifacts``
    Files a plan needs later, stored as bytes in parts of at most 16 MB: the at-risk SKUs'
    fitted catalog (what-ifs and the alternatives simulate it).
``sku_plans``
    One row per plan and SKU: the pipeline's ``sku_summary`` row (risk, drivers, outcomes
    with CIs) and the SKU's review state (``status``) and last export.
``sku_schedules``
    One row per plan and SKU: the recommended weekly discount and coupon depths and their
    expected weekly outcomes (units, revenue, margin, stock left), as raw float arrays (see
    :mod:`service.db.arrays`; one row per SKU, not per week, keeps a 1 M-SKU import to 1 M
    rows).
``reviews``
    Every approve, reject or override, with its reason and the edited schedule.
``exports``
    Every price-execution export: who, when, which plan, where, how many SKUs.
``users`` and ``api_tokens``
    Who may do what; tokens are stored as SHA-256 hashes only.
``jobs``
    Pipeline runs started through the API: status, log tail, exit code.
``audit_log``
    Append-only record of every state change (no update or delete path exists in the code;
    the migration adds triggers that refuse both).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

REVIEW_STATUSES = ("pending", "approved", "rejected", "overridden")
"""Review states of a SKU's schedule; ``pending`` until someone reviews it."""

EXPORTABLE = ("approved", "overridden")
"""States whose schedule goes to the price-execution export."""

ROLES = ("viewer", "category_manager", "pricing_lead", "admin")

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
ACTIVE_JOB_STATUSES = ("queued", "running")

TASK_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
"""States of a what-if task (as of a job: one left active by a stopped process reads
``interrupted``)."""

COUNTERS = ("reviews", "tokens")
"""Change counters of :class:`Counter`: ``reviews`` moves with every write that changes what
the SKU list shows (reviews, exports, imports), ``tokens`` with every revoked token or user."""

# The sku_summary columns of app.exports.sku_summary_table stored as floats: the outcomes of
# the recommended plan (rec), doing nothing (none) and the best heuristic (heur), and the
# paired differences. Columns of a summary that are not listed here go to ``extra``.
_POLICY_METRICS = ("sell_through", "leftover_units", "margin_given_away", "profit")
SUMMARY_FLOATS: tuple[str, ...] = (
    "risk",
    "initial_stock",
    "list_price",
    "unit_cost",
    *(
        f"{prefix}_{m}"
        for prefix in ("rec", "none", "heur")
        for m in (*_POLICY_METRICS, "profit_ci_low", "profit_ci_high")
    ),
    *(
        name
        for other in ("none", "heur")
        for name in (
            f"profit_vs_{other}",
            f"leftover_units_vs_{other}",
            f"margin_given_away_vs_{other}",
            f"profit_vs_{other}_ci_low",
            f"profit_vs_{other}_ci_high",
        )
    ),
)
SUMMARY_TEXTS: tuple[str, ...] = (
    "category",
    "description",
    "tier",
    "top_drivers",
    "recommended_policy",
    "best_heuristic",
)

SKU_LENGTH = 64
CATEGORY_LENGTH = 128


def utcnow() -> datetime:
    """The current time in UTC (every timestamp of the database)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: sa.JSON, list[Any]: sa.JSON}


class Timestamp(sa.types.TypeDecorator):
    """A UTC timestamp that comes back timezone-aware on every database (SQLite stores none:
    its values are read back as UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    role: Mapped[str] = mapped_column(sa.String(32))
    categories: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp())


class PlanVersion(Base):
    __tablename__ = "plan_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    run_id: Mapped[str | None] = mapped_column(sa.String(64))
    data_fingerprint: Mapped[str | None] = mapped_column(sa.String(128))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rules: Mapped[dict[str, Any]] = mapped_column(default=dict)
    horizon_weeks: Mapped[int]
    n_skus: Mapped[int]
    source_dir: Mapped[str] = mapped_column(sa.Text)
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    roi: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    metadata_source: Mapped[str] = mapped_column(sa.Text, default="")
    week_starts: Mapped[list[Any] | None] = mapped_column(sa.JSON)
    currency: Mapped[str | None] = mapped_column(sa.String(8))
    imported_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    imported_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


ARTIFACT_PART_BYTES = 16 * 2**20
"""Largest part of a stored file (a 1 M-SKU catalog is a few hundred MB)."""


class PlanArtifact(Base):
    __tablename__ = "plan_artifacts"

    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("plan_versions.id"), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    part: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)


sku_plans = sa.Table(
    "sku_plans",
    Base.metadata,
    sa.Column("plan_id", sa.ForeignKey("plan_versions.id"), primary_key=True),
    sa.Column("sku", sa.String(SKU_LENGTH), primary_key=True),
    sa.Column("category", sa.String(CATEGORY_LENGTH), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("tier", sa.String(16)),
    sa.Column("top_drivers", sa.Text),
    sa.Column("recommended_policy", sa.String(64)),
    sa.Column("best_heuristic", sa.String(64)),
    *(sa.Column(name, sa.Float) for name in SUMMARY_FLOATS),
    sa.Column("extra", sa.JSON),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("reviewed_at", Timestamp()),
    sa.Column("export_id", sa.Integer),
    # The SKU list filters by category and sorts by risk or gain, SKU breaking ties in the
    # same direction, so one index scan serves a page.
    sa.Index("ix_sku_plans_plan_category_risk", "plan_id", "category", "risk", "sku"),
    sa.Index("ix_sku_plans_plan_risk", "plan_id", "risk", "sku"),
    sa.Index("ix_sku_plans_plan_gain", "plan_id", "profit_vs_none", "sku"),
    sa.Index("ix_sku_plans_plan_status", "plan_id", "status", "sku"),
    postgresql_partition_by="LIST (plan_id)",
)
"""Core table (the list endpoint and the bulk import use Core, not the ORM). On PostgreSQL
it is partitioned by plan (see :data:`PARTITIONED`)."""

sku_schedules = sa.Table(
    "sku_schedules",
    Base.metadata,
    sa.Column("plan_id", sa.Integer, primary_key=True),
    sa.Column("sku", sa.String(SKU_LENGTH), primary_key=True),
    sa.Column("discount", sa.LargeBinary, nullable=False),
    sa.Column("coupon", sa.LargeBinary, nullable=False),
    sa.Column("expected", sa.LargeBinary, nullable=False),
    sa.ForeignKeyConstraint(["plan_id", "sku"], ["sku_plans.plan_id", "sku_plans.sku"]),
    postgresql_partition_by="LIST (plan_id)",
)

PARTITIONED = ("sku_plans", "sku_schedules")
"""Tables partitioned by ``plan_id`` on PostgreSQL (migration 0003): each plan's rows live in
their own partition, ``<table>_p<plan_id>``, loaded by ``COPY`` into a fresh table that gets
its indexes after the load and is then attached (:mod:`service.db.bulk`); rows of a plan
without its own partition land in ``<table>_default``. SQLite keeps plain tables."""

_PARTITION_NAME = re.compile(rf"^({'|'.join(PARTITIONED)})_(p\d+|default)$")


def partition_name(table: str, plan_id: int) -> str:
    """The name of a plan's partition of ``table``."""
    return f"{table}_p{int(plan_id)}"


def is_partition(name: str | None) -> bool:
    """Whether a table name is one of the partitions of :data:`PARTITIONED` (they hold the
    partitioned tables' rows and are no models of their own: schema comparisons skip them)."""
    return name is not None and _PARTITION_NAME.match(name) is not None


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's ``include_object`` hook: leave the partitions out of schema comparisons,
    with the foreign keys PostgreSQL clones onto each partition of a referenced table."""
    if type_ == "table":
        return not is_partition(name)
    if type_ == "foreign_key_constraint":
        return not is_partition(obj.referred_table.name) and not is_partition(obj.table.name)
    table = getattr(obj, "table", None)
    return not is_partition(getattr(table, "name", None))


class Review(Base):
    __tablename__ = "reviews"
    __table_args__ = (sa.Index("ix_reviews_plan_sku", "plan_id", "sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("plan_versions.id"))
    sku: Mapped[str] = mapped_column(sa.String(SKU_LENGTH))
    category: Mapped[str] = mapped_column(sa.String(CATEGORY_LENGTH))
    scope: Mapped[str] = mapped_column(sa.String(16))
    action: Mapped[str] = mapped_column(sa.String(16))
    status_before: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.Text)
    discount: Mapped[list[Any] | None] = mapped_column(sa.JSON)
    coupon: Mapped[list[Any] | None] = mapped_column(sa.JSON)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)


class Export(Base):
    __tablename__ = "exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("plan_versions.id"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    format: Mapped[str] = mapped_column(sa.String(16))
    target: Mapped[str] = mapped_column(sa.Text)
    categories: Mapped[list[Any] | None] = mapped_column(sa.JSON)
    n_skus: Mapped[int]
    n_rows: Mapped[int]
    by_status: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    out_dir: Mapped[str] = mapped_column(sa.Text)
    log_path: Mapped[str] = mapped_column(sa.Text)
    pid: Mapped[int | None]
    owner: Mapped[str | None] = mapped_column(sa.String(128))
    cancel_requested: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    exit_code: Mapped[int | None]
    log_tail: Mapped[str] = mapped_column(sa.Text, default="")
    error: Mapped[str | None] = mapped_column(sa.Text)
    plan_id: Mapped[int | None] = mapped_column(sa.ForeignKey("plan_versions.id"))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp())
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp())


class WhatIfTask(Base):
    """A background what-if. It runs in the API process that accepted it (``owner``); its
    progress and result are here, so any worker process can answer for it."""

    __tablename__ = "whatif_tasks"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("plan_versions.id"))
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int]
    result: Mapped[str | None] = mapped_column(sa.Text)
    error: Mapped[str | None] = mapped_column(sa.Text)
    owner: Mapped[str] = mapped_column(sa.String(128))
    cancel_requested: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp())


class Counter(Base):
    """A change counter (:data:`COUNTERS`): API processes compare it, one indexed read per
    request, to know whether what they cached (SKU list pages, checked tokens) still holds."""

    __tablename__ = "change_counters"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    value: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(sa.String(100))
    action: Mapped[str] = mapped_column(sa.String(64))
    object_type: Mapped[str] = mapped_column(sa.String(32))
    object_id: Mapped[str] = mapped_column(sa.String(200))
    before: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
