"""Alembic environment of the service database.

The engine or connection comes from the caller (:func:`service.db.engine.upgrade` passes its
connection in ``config.attributes["connection"]``); ``alembic -x url=...`` works too.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from service.db.models import Base, include_object

target_metadata = Base.metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, include_object=include_object
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("give the database: alembic -x url=sqlite:///deadstock.db ...")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        context.configure(
            connection=conn, target_metadata=target_metadata, include_object=include_object
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
