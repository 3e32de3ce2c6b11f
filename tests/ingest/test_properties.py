"""Laws that hold for any valid dataset: a folder round trip keeps every value, and validation
rejects every negative quantity wherever it sits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.dataset import Dataset
from ingest.loader import load, save
from ingest.validate import DataValidationError, RawTable, check_tables

SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@st.composite
def valid_tables(draw):
    n = draw(st.integers(1, 6))
    skus = [f"{draw(st.sampled_from(['', 'X', '00']))}{i}" for i in range(n)]
    products = pd.DataFrame(
        {"sku": skus, "category": "C", "department": "D",
         "list_price": draw(st.lists(st.floats(0.01, 1e4), min_size=n, max_size=n))}
    )  # fmt: skip
    rows = []
    for sku in skus:
        for w in draw(st.lists(st.integers(0, 200), max_size=5, unique=True)):
            rows.append((sku, w, float(draw(st.integers(0, 10**6))), draw(st.floats(0, 1e6))))
    if not rows:
        rows.append((skus[0], 1, 1.0, 1.0))
    sales = pd.DataFrame(rows, columns=["sku", "week", "units", "revenue"])
    return {"products": products, "sales": sales}


@SETTINGS
@given(valid_tables(), st.sampled_from(["csv", "parquet"]))
def test_folder_round_trip_keeps_values(tmp_path_factory, tables, fmt):
    folder = tmp_path_factory.mktemp("rt")
    first = Dataset({k: v.astype({"sku": "string"}) for k, v in tables.items()}, "h", "h")
    save(first, folder, fmt=fmt)
    back = load(folder)
    assert back.sales["sku"].tolist() == first.sales["sku"].tolist()  # "007" stays "007"
    np.testing.assert_allclose(back.sales["revenue"], first.sales["revenue"], rtol=1e-12)
    assert back.sales["units"].sum() == first.sales["units"].sum()
    assert (back.sales["week"].to_numpy() == first.sales["week"].to_numpy()).all()


@SETTINGS
@given(valid_tables(), st.data())
def test_any_negative_value_is_reported_at_its_row(tables, data):
    sales = tables["sales"].copy()
    col = data.draw(st.sampled_from(["units", "revenue", "week"]))
    row = data.draw(st.integers(0, len(sales) - 1))
    sales.loc[row, col] = -data.draw(st.integers(1, 1000))
    raw = {
        "products": RawTable(tables["products"], "p.csv", 2),
        "sales": RawTable(sales, "s.csv", 2),
    }
    problems = [p for p in check_tables(raw) if p.column == col]
    assert len(problems) == 1 and problems[0].rows[0] == row + 2
    with pytest.raises(DataValidationError):
        from ingest.validate import validate

        validate(raw)
