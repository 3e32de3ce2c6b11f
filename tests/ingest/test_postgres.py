"""Round trip through a live PostgreSQL that the tests start themselves (the
``postgres_url`` fixture of ``tests/conftest.py``, see ``tests/pg.py``)."""

from __future__ import annotations

import pytest

from ingest.loader import load, save

from .test_loaders import assert_same_tables

pytestmark = pytest.mark.postgres


def test_postgres_round_trip(tiny, postgres_url):
    save(tiny, postgres_url)
    back = load(postgres_url)
    assert_same_tables(tiny, back)
    assert "pw" not in back.source and "***" in back.source
    save(tiny, postgres_url)  # replaces, does not append
    again = load(postgres_url)
    assert len(again.sales) == len(tiny.sales)
    assert again.fingerprint == back.fingerprint


def test_postgres_bad_table_is_reported(tiny, postgres_url):
    import sqlalchemy as sa

    save(tiny, postgres_url)
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE sales SET units = -1 WHERE sku = 'A2'"))
    engine.dispose()
    from ingest.validate import DataValidationError

    with pytest.raises(DataValidationError) as info:
        load(postgres_url)
    assert "table sales" in str(info.value) and "'units': values below 0" in str(info.value)
