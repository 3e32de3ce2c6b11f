"""The weekly panel: the contract in docs/data.md, exact values on a tiny dataset, caching,
and the bookkeeping law (panel totals = raw totals - what cleaning dropped)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.clean import clean
from ingest.dataset import Dataset
from ingest.panel import PANEL_COLUMNS, build_panel, load_panel

from .conftest import tiny_tables


@pytest.fixture
def panel(tiny) -> pd.DataFrame:
    return build_panel(tiny)


def row(panel: pd.DataFrame, sku: str, week: int) -> pd.Series:
    hit = panel[(panel["sku"] == sku) & (panel["week"] == week)]
    assert len(hit) == 1
    return hit.iloc[0]


def test_contract_columns_types_and_order(panel):
    assert tuple(panel.columns) == PANEL_COLUMNS
    assert panel["week"].dtype == np.int64
    assert panel["price_observed"].dtype == bool
    for c in ("sku", "category", "department"):
        assert pd.api.types.is_string_dtype(panel[c])
    for c in ("units", "revenue", "shelf_price", "on_hand", "views", "n_buyers"):
        assert panel[c].dtype == np.float64
    assert panel.equals(panel.sort_values(["sku", "week"]).reset_index(drop=True))


def test_rows_span_launch_to_last_week_with_zero_weeks(panel):
    # last week of the data is 6 (stock); A1 from launch 1, A2 from first sale 2, B1 launch 2
    spans = panel.groupby("sku")["week"].agg(["min", "max", "size"])
    assert spans.loc["A1"].tolist() == [1, 6, 6]
    assert spans.loc["A2"].tolist() == [2, 6, 5]
    assert spans.loc["B1"].tolist() == [2, 6, 5]
    assert row(panel, "A1", 2)["units"] == 0 and not row(panel, "A1", 2)["price_observed"]


def test_prices_depths_and_carry_forward(panel):
    w4 = row(panel, "A1", 4)
    assert w4["shelf_price"] == pytest.approx(4.0)  # (12 + 4) / 4
    assert w4["effective_price"] == pytest.approx(3.0)
    assert w4["discount_depth"] == pytest.approx(0.25)
    assert row(panel, "A1", 6)["effective_price"] == pytest.approx(3.0)  # carried forward
    assert row(panel, "A1", 3)["effective_price"] == pytest.approx(4.0)
    b = row(panel, "B1", 5)
    assert b["coupon_depth"] == pytest.approx(2.0 / (3 * 5.0))
    assert row(panel, "B1", 2)["shelf_price"] == pytest.approx(5.0)  # back-filled
    assert row(panel, "B1", 6)["coupon_depth"] == 0.0
    assert row(panel, "A2", 4)["list_price"] == pytest.approx(2.9)


def test_optional_tables(panel):
    assert row(panel, "A1", 4)["on_hand"] == 20.0
    assert np.isnan(row(panel, "A1", 3)["on_hand"])
    assert row(panel, "A1", 4)["display"] == 0.5 and row(panel, "A1", 4)["mailer"] == 0.25
    assert row(panel, "A2", 3)["views"] == 100.0 and row(panel, "A2", 4)["views"] == 0.0
    assert row(panel, "A1", 1)["n_buyers"] == 2.0 and row(panel, "A1", 4)["n_buyers"] == 1.0


def test_without_optional_tables_missing_means_nan_or_zero():
    panel = build_panel(Dataset(tiny_tables(with_optional=False), "t", "f"))
    assert panel["on_hand"].isna().all() and panel["views"].isna().all()
    assert panel["n_buyers"].isna().all()
    assert (panel["display"] == 0).all() and (panel["mailer"] == 0).all()
    assert panel["week"].max() == 5  # last week of the data is the last sale


def test_cached_panel_equals_built_and_is_reused(tiny, cache_dir):
    first = load_panel(tiny)
    files = list(cache_dir.rglob("*.parquet"))
    assert len(files) == 1 and "tiny0001" in files[0].name
    stamp = files[0].stat().st_mtime_ns
    second = load_panel(tiny)
    pd.testing.assert_frame_equal(first, second)
    assert files[0].stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(first, build_panel(tiny))


@st.composite
def datasets(draw):
    n_skus = draw(st.integers(1, 5))
    skus = [f"S{i}" for i in range(n_skus)]
    rows = []
    for sku in skus:
        weeks = draw(st.lists(st.integers(1, 12), max_size=6, unique=True))
        for w in weeks:
            units = draw(st.integers(0, 50))
            price = draw(st.floats(0.5, 20))
            rev = round(units * price * draw(st.floats(0.5, 1.0)), 2)
            rows.append((sku, w, float(units), rev, round(units * price - rev, 2), 0.0, 0.0))
    sales = pd.DataFrame(rows, columns=["sku", "week", "units", "revenue", "discount_amount",
                                        "coupon_amount", "returns"])  # fmt: skip
    sales["week"] = sales["week"].astype(np.int64)
    known = [draw(st.booleans()) for _ in skus]
    products = pd.DataFrame(
        {"sku": skus, "category": "C", "department": "D", "brand": "N",
         "list_price": [5.0 if k else np.nan for k in known], "unit_cost": np.nan,
         "launch_week": pd.array([pd.NA] * n_skus, dtype="Int64")}
    )  # fmt: skip
    for f in (products, sales):
        f["sku"] = f["sku"].astype("string")
    return Dataset({"products": products, "sales": sales}, "hyp", "hyp")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_panel_totals_equal_raw_totals_minus_dropped(dataset):
    cleaned, report = clean(dataset)
    panel = build_panel(cleaned)
    for col in ("units", "revenue"):
        raw = dataset.sales[col].sum()
        assert panel[col].sum() == pytest.approx(raw - report.dropped("sales", col), abs=1e-6)
    assert set(panel["sku"]) == set(cleaned.products["sku"])
    assert (panel.groupby("sku")["week"].diff().dropna() == 1).all()
    assert panel["discount_depth"].between(0, 0.95).all()


def test_zero_list_price_gives_zero_depths_not_infinities():
    tables = tiny_tables(with_optional=False)
    tables["products"] = tables["products"].assign(list_price=[0.0, 2.0, 5.0])
    panel = build_panel(Dataset(tables, "t", "f"))
    a1 = panel[panel["sku"] == "A1"]
    assert (a1["discount_depth"] == 0).all() and (a1["coupon_depth"] == 0).all()
    assert np.isfinite(panel[["discount_depth", "coupon_depth"]].to_numpy()).all()
