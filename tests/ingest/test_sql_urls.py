"""SQL URLs are checked before anything connects: malformed URLs, unknown or missing drivers,
and missing SQLite files are clear :class:`DataError` s that create nothing."""

from __future__ import annotations

import importlib.util

import pytest

from ingest.errors import DataError
from ingest.loader import check_source, check_target, load, save
from ingest.sql import parse_sql_url


@pytest.mark.parametrize(
    ("url", "fragments"),
    [
        ("sqlite://:::bad", ["'sqlite://:::bad'", "not a valid SQLite URL", "sqlite:///"]),
        ("sqlite://host/data.db", ["not a valid SQLite URL"]),
        (
            "postgresql+psycopg2://u@localhost:notaport/db",
            ["the port 'notaport' is not a number", "postgresql+psycopg2://user:password@host"],
        ),
        ("postgresql+psycopg2://u@localhost:99999/db", ["port 99999 is out of range 1..65535"]),
        ("postgresql+nosuchdriver://u@localhost/db", ["unknown database driver"]),
    ],
)
def test_malformed_urls_name_the_url_and_the_expected_form(url, fragments):
    with pytest.raises(DataError) as info:
        parse_sql_url(url)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_password_never_shown_in_url_errors():
    with pytest.raises(DataError) as info:
        parse_sql_url("postgresql+psycopg2://user:s3cret@localhost:notaport/db")
    assert "s3cret" not in str(info.value) and "***" in str(info.value)


@pytest.mark.skipif(
    importlib.util.find_spec("psycopg") is not None or importlib.util.find_spec("psycopg2") is None,
    reason="needs psycopg2 installed and psycopg (SQLAlchemy's default driver) absent",
)
def test_url_without_driver_uses_the_installed_one():
    assert parse_sql_url("postgresql://u@localhost/db").drivername == "postgresql+psycopg2"
    # the old 'postgres' alias, which SQLAlchemy no longer accepts, works too
    assert parse_sql_url("postgres://u@localhost/db").drivername == "postgresql+psycopg2"


def test_explicit_missing_driver_says_it_is_not_installed():
    if importlib.util.find_spec("pg8000") is not None:
        pytest.skip("pg8000 is installed here")
    with pytest.raises(DataError, match="driver of 'postgresql\\+pg8000' is not installed"):
        parse_sql_url("postgresql+pg8000://u@localhost/db")


def test_missing_sqlite_file_is_refused_and_not_created(tmp_path):
    db = tmp_path / "missing.db"
    url = f"sqlite:///{db}"
    for call in (lambda: load(url), lambda: check_source(url)):
        with pytest.raises(DataError) as info:
            call()
        assert f"the SQLite database file {str(db)!r} does not exist" in str(info.value)
        assert "required table" not in str(info.value)
    assert not db.exists()


def test_sqlite_target_may_be_new_but_its_folder_must_exist(tiny, tmp_path):
    check_target(f"sqlite:///{tmp_path / 'new.db'}")  # SQLite creates the file
    url = f"sqlite:///{tmp_path / 'nofolder' / 'new.db'}"
    with pytest.raises(DataError, match="does not exist"):
        save(tiny, url)
    assert not (tmp_path / "nofolder").exists()


def test_check_source_refuses_what_load_refuses(tmp_path):
    check_source("completejourney")
    check_source(tmp_path)
    with pytest.raises(DataError, match="not found"):
        check_source(tmp_path / "nope")
    with pytest.raises(DataError, match="is not a number"):
        check_source("postgresql+psycopg2://u@localhost:notaport/db")
