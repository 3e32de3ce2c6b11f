"""Loaders and writers: folders (CSV, Parquet), SQLite, the MSSQL dialect, and their errors."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from ingest.dataset import Dataset
from ingest.errors import DataError
from ingest.loader import load, save
from ingest.sql import ddl_statements, is_sql_url, mask_url, table_definition, write_sql
from ingest.validate import DataValidationError


def assert_same_tables(a: Dataset, b: Dataset) -> None:
    assert set(a.tables) == set(b.tables)
    for name, frame in a.tables.items():
        key = list(frame.columns[:2]) if name != "products" else ["sku"]
        left = frame.sort_values(key).reset_index(drop=True)
        right = b.tables[name][list(frame.columns)].sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(left, right, check_dtype=False, obj=name)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_folder_round_trip(tiny, tmp_path, fmt):
    save(tiny, tmp_path / "d", fmt=fmt)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(
        f"{n}.{fmt}" for n in tiny.tables
    )
    back = load(tmp_path / "d")
    assert_same_tables(tiny, back)
    assert back.products["sku"].tolist() == ["A1", "A2", "B1"]
    assert back.products["launch_week"].dtype == "Int64"
    assert back.notes == []  # every optional table is present


def test_folder_fingerprint_follows_content(tiny, tmp_path):
    save(tiny, tmp_path / "d")
    first = load(tmp_path / "d").fingerprint
    assert load(tmp_path / "d").fingerprint == first
    sales = tmp_path / "d" / "sales.csv"
    sales.write_text(sales.read_text().replace("40.0", "41.0"))
    assert load(tmp_path / "d").fingerprint != first


def test_numeric_ids_become_strings_without_decimal_suffix(tmp_path):
    (tmp_path / "products.csv").write_text("sku,category,department\n1001,C,D\n1002,C,D\n")
    (tmp_path / "sales.csv").write_text("sku,week,units,revenue\n1001,1,2,4.0\n1002,1,1,2.0\n")
    d = load(tmp_path)
    assert d.sales["sku"].tolist() == ["1001", "1002"]
    assert d.sales["coupon_amount"].tolist() == [0.0, 0.0]  # optional column defaulted
    assert "no stock table in this source: on_hand is NaN" in d.notes


def test_whole_float_ids_in_csv_match_integer_ids(tmp_path):
    """``1001.0`` in a CSV (a spreadsheet export) is the SKU ``1001``, as in Parquet."""
    (tmp_path / "products.csv").write_text("sku,category,department\n1001,C,D\n1002.0,C,D\n")
    (tmp_path / "sales.csv").write_text(
        "sku,week,units,revenue\n1001.0,1,2,4.0\n1002,1,1,2.0\n1001.5,1,1,2.0\n"
    )
    with pytest.raises(DataValidationError) as info:
        load(tmp_path)  # 1001.5 is not a whole number: it stays an unknown SKU
    assert len(info.value.problems) == 1 and "'1001.5'" in str(info.value)
    sales = tmp_path / "sales.csv"
    sales.write_text(sales.read_text().replace("1001.5,1,1,2.0\n", ""))
    d = load(tmp_path)
    assert d.products["sku"].tolist() == ["1001", "1002"]
    assert d.sales["sku"].tolist() == ["1001", "1002"]


def test_upper_case_header_gets_a_hint(tmp_path):
    (tmp_path / "products.csv").write_text("SKU,Category,department\nA,C,D\n")
    (tmp_path / "sales.csv").write_text("sku,week,units,revenue\nA,1,2,4.0\n")
    with pytest.raises(DataValidationError) as info:
        load(tmp_path)
    text = str(info.value)
    assert "required column 'sku' is missing (found 'SKU': column names are lower-case)" in text
    assert "(found 'Category': column names are lower-case)" in text


@pytest.mark.parametrize("sep", [";", "\t"])
def test_other_separator_gets_one_clear_problem(tmp_path, sep):
    (tmp_path / "products.csv").write_text("sku,category,department\nA,C,D\n")
    rows = ["sku,week,units,revenue", "A,1,2,4.5"]
    (tmp_path / "sales.csv").write_text("\n".join(r.replace(",", sep) for r in rows) + "\n")
    with pytest.raises(DataValidationError) as info:
        load(tmp_path)
    assert len(info.value.problems) == 1
    assert f"the file looks {sep!r}-separated" in str(info.value)
    # with decimal commas the rows split on ',' and pandas cannot parse the file at all
    (tmp_path / "sales.csv").write_text("sku;week;units;revenue\nA;1;2;4,5\nA;2;1;1,25\n")
    with pytest.raises(DataValidationError, match="the file looks ';'-separated"):
        load(tmp_path)


def test_zero_list_price_is_refused(tmp_path):
    (tmp_path / "products.csv").write_text(
        "sku,category,department,list_price\nA,C,D,0\nB,C,D,2.5\n"
    )
    (tmp_path / "sales.csv").write_text("sku,week,units,revenue\nA,1,2,4.0\n")
    with pytest.raises(DataValidationError) as info:
        load(tmp_path)
    assert [p.column for p in info.value.problems] == ["list_price"]
    assert "values of 0; rows 2: 0.0; expected values > 0" in str(info.value)


def test_implausible_costs_and_discounts_are_warned_about(tmp_path, caplog):
    (tmp_path / "products.csv").write_text(
        "sku,category,department,list_price,unit_cost\nA,C,D,2.0,4.5\nB,C,D,2.0,3.9\n"
    )
    (tmp_path / "sales.csv").write_text(
        "sku,week,units,revenue,discount_amount\nA,1,2,1.0,19.5\nA,2,2,1.0,18.5\nB,1,0,0,5\n"
    )
    with caplog.at_level("WARNING", logger="ingest.loader"):
        d = load(tmp_path)
    warnings = [n for n in d.notes if n.startswith("warning:")]
    assert len(warnings) == 2 and len(caplog.records) == 2
    # A's cost is above 2x its price, B's (3.9 < 4.0) is not
    cost = "column 'unit_cost': 1 SKU(s) with unit_cost above 2x list_price; rows 2: 4.5"
    assert cost in warnings[0]
    # 19.5 > 19 x 1.0 is flagged; 18.5 is not, nor a row with no units sold
    assert "column 'discount_amount': 1 row(s)" in warnings[1] and "rows 2: 19.5" in warnings[1]


def test_all_problems_reported_together(tmp_path):
    (tmp_path / "products.csv").write_text("sku,category,department,list_price\nA,C,D,-1\n")
    (tmp_path / "sales.csv").write_text("sku,week,units,revenue\nA,1,-2,x\nZ,1.5,1,1\n")
    with pytest.raises(DataValidationError) as info:
        load(tmp_path)
    text = str(info.value)
    assert len(info.value.problems) == 4
    for fragment in ("list_price", "'units': values below 0", "'revenue': text", "non-integer"):
        assert fragment in text


def test_missing_source_and_ambiguous_folder(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load(tmp_path / "nope")
    (tmp_path / "sales.csv").write_text("x\n")
    (tmp_path / "sales.parquet").write_bytes(b"")
    with pytest.raises(DataError, match="both sales.csv and sales.parquet"):
        load(tmp_path)


def test_sqlite_round_trip_replaces_tables(tiny, tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    save(tiny, url)
    back = load(url)
    assert_same_tables(tiny, back)
    assert back.source == url
    # writing again replaces, not appends
    save(tiny, url)
    assert len(load(url).sales) == len(tiny.sales)
    assert load(url).fingerprint == back.fingerprint


def test_sql_write_is_all_or_nothing(tiny, tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    save(tiny, url)
    broken = dict(tiny.tables)
    # a value SQLite cannot bind makes the last insert fail after earlier tables were written
    broken["baskets"] = tiny.tables["baskets"].assign(units=[object(), 1.0, 2.0])
    with pytest.raises(DataError, match="cannot write to database"):
        write_sql(Dataset(broken, "t", "f"), url)
    assert_same_tables(tiny, load(url))


def test_sql_errors_are_data_errors_with_masked_password(tmp_path):
    url = "postgresql+psycopg2://u:secret@127.0.0.1:1/none"
    assert is_sql_url(url) and "secret" not in mask_url(url)
    with pytest.raises(DataError) as info:
        load(url)
    assert "secret" not in str(info.value) and "cannot read from database" in str(info.value)
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    sa.create_engine(empty).connect().close()
    with pytest.raises(DataValidationError, match="no canonical tables"):
        load(empty)


def test_mssql_statements_compile(tiny):
    """The statements write_sql issues, compiled for SQL Server (none runs in CI)."""
    dialect = mssql.dialect()
    metadata = sa.MetaData()
    for name, frame in tiny.tables.items():
        table = table_definition(name, frame, metadata)
        drop_ddl, create_ddl = ddl_statements(table)
        create = str(create_ddl.compile(dialect=dialect))
        assert f"CREATE TABLE {name}" in create
        if "sku" in frame:
            assert "sku VARCHAR(255)" in create
        if "week" in frame:
            assert "week BIGINT" in create
        drop = str(drop_ddl.compile(dialect=dialect)).strip()
        assert drop.startswith(f"DROP TABLE IF EXISTS {name}")
        insert = str(table.insert().compile(dialect=dialect))
        assert insert.startswith(f"INSERT INTO {name} (")
        select = str(sa.select(table).compile(dialect=dialect))
        assert select.startswith("SELECT") and f"FROM {name}" in select
    assert mssql.dialect().name == "mssql"


def test_csv_with_byte_order_mark_reads_clean_header(tmp_path):
    (tmp_path / "products.csv").write_text("sku,category,department\nA,C,D\n", encoding="utf-8-sig")
    (tmp_path / "sales.csv").write_text("sku,week,units,revenue\nA,1,2,4.0\n")
    assert load(tmp_path).products.columns[0] == "sku"
