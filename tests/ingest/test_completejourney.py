"""The Complete Journey mapping, on the real data (one cold load per module, cached after)."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ingest.clean import clean
from ingest.completejourney import _data_file
from ingest.keys import isin
from ingest.loader import load
from ingest.panel import PANEL_COLUMNS, load_panel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cj(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cj-cache")
    old = os.environ.get("DEADSTOCK_CACHE_DIR")
    os.environ["DEADSTOCK_CACHE_DIR"] = str(cache)
    try:
        start = time.perf_counter()
        dataset = load("completejourney")
        cold = time.perf_counter() - start
        cleaned, report = clean(dataset)
        panel = load_panel(cleaned)
        start = time.perf_counter()
        again = load("completejourney")
        panel_again = load_panel(again)
        cached = time.perf_counter() - start
        yield dataset, cleaned, report, panel, again, panel_again, cold, cached
    finally:
        if old is None:
            os.environ.pop("DEADSTOCK_CACHE_DIR", None)
        else:
            os.environ["DEADSTOCK_CACHE_DIR"] = old


def test_fuel_kiosk_and_unknown_products_dropped_and_counted(cj):
    dataset = cj[0]
    drops = {str(e["reason"]).split(":")[0]: e for e in dataset.report if e["action"] == "dropped"}
    assert drops["fuel"]["units"] > 1e8
    assert drops["kiosk-gas items"]["units"] > 1e7
    unknown = drops["product not in the product table"]
    assert unknown["skus"] == 17 and unknown["rows"] == 4836
    raw_units = pc.sum(pq.read_table(_data_file("transactions"), columns=["quantity"])["quantity"])
    dropped = sum(float(e["units"]) for e in drops.values())
    assert dataset.sales["units"].sum() + dropped == pytest.approx(raw_units.as_py())
    sold = dataset.products[isin(dataset.products["sku"], dataset.sales["sku"].drop_duplicates())]
    assert not sold["department"].isin(["FUEL"]).any()
    assert not sold["category"].isin(["COUPON/MISC ITEMS"]).any()


def test_canonical_tables(cj):
    dataset = cj[0]
    assert set(dataset.tables) == {"products", "sales", "promotions", "baskets", "calendar"}
    cal = dataset.tables["calendar"].set_index("week")["week_start"]
    assert cal[2] == "2017-01-02" and cal[53] == "2017-12-25" and len(cal) == 53
    assert "APPLE SAUCE 50 OZ" in set(dataset.products["description"].dropna())
    sales = dataset.sales
    assert sales["week"].between(1, 53).all()
    assert not sales.duplicated(["sku", "week"]).any()
    for col in ("discount_amount", "coupon_amount", "revenue", "units"):
        assert (sales[col] >= 0).all(), col
    assert sales["coupon_amount"].gt(0).mean() < 0.05  # coupons are rare
    promo = dataset.tables["promotions"]
    assert promo[["display", "mailer"]].stack().between(0, 1).all()
    assert promo["display"].gt(0).any() and promo["mailer"].gt(0).any()
    baskets = dataset.tables["baskets"]
    assert baskets["units"].sum() == pytest.approx(sales["units"].sum())
    assert baskets["household_id"].nunique() == 2467  # 2 of 2,469 bought only fuel/kiosk
    assert set(dataset.products["brand"].dropna()) == {"National", "Private"}
    assert any("week 1 covers a single day" in n for n in dataset.notes)
    assert any("no stock levels" in n for n in dataset.notes)


def test_cleaning_and_panel(cj):
    _, cleaned, report, panel, *_ = cj
    assert not cleaned.products[["list_price", "unit_cost", "launch_week"]].isna().any().any()
    assert (cleaned.products["list_price"] > 0).all()
    assumed = [e for e in report.entries if e["action"] == "assumed"]
    assert assumed and assumed[0]["column"] == "unit_cost"
    assert tuple(panel.columns) == PANEL_COLUMNS
    assert panel["week"].max() == 53 and panel["on_hand"].isna().all()
    assert panel["n_buyers"].notna().all() and panel["display"].gt(0).any()
    assert not panel[["shelf_price", "effective_price", "discount_depth"]].isna().any().any()
    assert panel["units"].sum() == pytest.approx(cleaned.sales["units"].sum())
    gaps = panel.groupby("sku", sort=False)["week"].diff().dropna()
    assert (gaps == 1).all()
    # nearly all price variation is the loyalty discount: most weeks show some
    assert panel.loc[panel["price_observed"], "discount_depth"].gt(0).mean() > 0.2


def test_cached_load_is_identical_and_fast(cj):
    dataset, _, _, panel, again, panel_again, cold, cached = cj
    assert again.fingerprint == dataset.fingerprint
    for name in ("products", "sales", "promotions"):
        pd.testing.assert_frame_equal(
            dataset.tables[name], again.tables[name], check_dtype=False, obj=name
        )
    # baskets (1.4 M string rows) compared by size and totals: a full compare costs ~10 s
    b0, b1 = dataset.tables["baskets"], again.tables["baskets"]
    assert b0.shape == b1.shape and b0["units"].sum() == b1["units"].sum()
    assert (b0["week"].to_numpy() == b1["week"].to_numpy()).all()
    pd.testing.assert_frame_equal(panel, panel_again)
    assert np.isfinite(cold) and cached < cold


def test_promotion_shares_stay_on_their_own_product_and_week(tmp_path, monkeypatch):
    """Display and mailer shares are counted per (product, week) and kept on that row, whatever
    order the store rows (and Arrow's groups) come in: rows listed with the later product and
    week first, 4 stores in week 1 and 2 in week 2."""
    import ingest.completejourney as cjmod

    rows = pd.DataFrame(
        {
            "product_id": ["B", "B", "A", "A", "A", "A", "B", "A", "A"],
            "store_id": ["s1", "s2", "s1", "s2", "s3", "s4", "s3", "s1", "s2"],
            "display_location": ["1", "0", "0", "0", "0", "7", "2", "3", "3"],
            "mailer_location": ["0", "0", "A", "D", "0", "0", "0", "0", "A"],
            "week": [2, 2, 1, 1, 1, 1, 1, 2, 2],
        }
    )
    path = tmp_path / "promotions.parquet"
    rows.to_parquet(path, index=False)
    monkeypatch.setattr(cjmod, "_data_file", lambda name: path)
    got = cjmod._promotions(np.array(["A", "B"]))
    assert got[["sku", "week"]].astype(str).values.tolist() == [
        ["A", "1"], ["A", "2"], ["B", "1"], ["B", "2"]
    ]  # fmt: skip
    # A wk1: display at s4 of 4 stores, mailer at s1, s2; A wk2: display s1, s2 of 2, mailer s2;
    # B wk1: display s3 of 4; B wk2: display s1 of 2.
    assert got["display"].tolist() == [0.25, 1.0, 0.25, 0.5]
    assert got["mailer"].tolist() == [0.5, 0.5, 0.0, 0.0]
