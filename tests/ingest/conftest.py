"""Small canonical datasets shared by the ingest tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingest.dataset import Dataset


def tiny_tables(with_optional: bool = True) -> dict[str, pd.DataFrame]:
    """Three SKUs over weeks 1..6 with gaps, a coupon week, costs for some SKUs only."""
    products = pd.DataFrame(
        {
            "sku": ["A1", "A2", "B1"],
            "category": ["COOKIES", "COOKIES", "SOAP"],
            "department": ["GROCERY", "GROCERY", "DRUG GM"],
            "brand": ["National", "Private", "National"],
            "list_price": [4.0, np.nan, 5.0],
            "unit_cost": [3.0, np.nan, np.nan],
            "launch_week": pd.array([1, pd.NA, 2], dtype="Int64"),
        }
    )
    sales = pd.DataFrame(
        {
            "sku": ["A1", "A1", "A2", "A2", "B1"],
            "week": [1, 4, 2, 3, 5],
            "units": [10.0, 4.0, 5.0, 2.0, 3.0],
            "revenue": [40.0, 12.0, 10.0, 5.0, 13.0],
            "discount_amount": [0.0, 4.0, 0.0, 1.0, 0.0],
            "coupon_amount": [0.0, 0.0, 0.0, 0.0, 2.0],
            "returns": [0.0, 1.0, 0.0, 0.0, 0.0],
        }
    )
    tables = {"products": products, "sales": sales}
    if with_optional:
        tables["stock"] = pd.DataFrame(
            {"sku": ["A1", "B1"], "week": [4, 6], "on_hand": [20.0, 7.0]}
        )
        tables["promotions"] = pd.DataFrame(
            {"sku": ["A1"], "week": [4], "display": [0.5], "mailer": [0.25]}
        )
        tables["interactions"] = pd.DataFrame(
            {"sku": ["A2"], "week": [3], "views": [100.0], "clicks": [10.0],
             "add_to_cart": [3.0], "purchases": [2.0]}
        )  # fmt: skip
        tables["baskets"] = pd.DataFrame(
            {"household_id": ["h1", "h2", "h1"], "basket_id": ["b1", "b2", "b3"],
             "sku": ["A1", "A1", "A1"], "week": [1, 1, 4], "units": [6.0, 4.0, 4.0],
             "revenue": [24.0, 16.0, 12.0]}
        )  # fmt: skip
    for frame in tables.values():
        for col in ("sku", "category", "department", "brand", "household_id", "basket_id"):
            if col in frame:
                frame[col] = frame[col].astype("string")
    return tables


@pytest.fixture
def tiny() -> Dataset:
    return Dataset(tiny_tables(), source="tiny", fingerprint="tiny0001")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private, empty cache folder for the test."""
    path = tmp_path / "cache"
    monkeypatch.setenv("DEADSTOCK_CACHE_DIR", str(path))
    return path
