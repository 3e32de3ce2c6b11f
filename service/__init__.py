"""The pricing team's workbench: a REST API (FastAPI, :mod:`service.api`) over its own
database (SQLAlchemy + Alembic, :mod:`service.db`) of plan versions, reviews, exports, users,
run jobs and an append-only audit log. Every call into the library goes through
:mod:`service.library`; see docs/service.md."""
