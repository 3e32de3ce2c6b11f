"""The service database: SQLAlchemy models (:mod:`service.db.models`), the engine and its
Alembic migrations (:mod:`service.db.engine`)."""
