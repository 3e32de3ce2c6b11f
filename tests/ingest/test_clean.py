"""Cleaning: each imputation rule, the drops, and the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ingest.clean import CleaningConfig, clean, is_clean
from ingest.dataset import Dataset
from ingest.errors import ConfigError


def test_imputes_list_price_launch_week_and_cost_from_margins(tiny):
    cleaned, report = clean(tiny)
    p = cleaned.products.set_index("sku")
    # A2: weekly shelf prices 2.0 and 3.0 -> 0.9 quantile = 2.9
    assert p.loc["A2", "list_price"] == pytest.approx(2.9)
    assert p.loc["A2", "launch_week"] == 2  # first sale
    # A1 margin 1 - 3/4 = 0.25 is the COOKIES median; SOAP has no cost -> all-SKU median
    assert p.loc["A2", "unit_cost"] == pytest.approx(2.9 * 0.75)
    assert p.loc["B1", "unit_cost"] == pytest.approx(5.0 * 0.75)
    assert p.loc["A1", "unit_cost"] == 3.0  # given values are kept
    assert is_clean(cleaned) and not is_clean(tiny)
    reasons = " | ".join(str(e["reason"]) for e in report.entries)
    assert "median margin of the category" in reasons
    assert "median margin of all SKUs" in reasons
    assert tiny.products["list_price"].isna().sum() == 1  # input untouched


def test_default_margin_is_assumed_and_flagged_when_no_costs(tiny):
    tables = dict(tiny.tables)
    tables["products"] = tiny.products.assign(unit_cost=np.nan)
    cleaned, report = clean(Dataset(tables, "t", "f"), CleaningConfig(default_margin=0.4))
    p = cleaned.products.set_index("sku")
    assert p.loc["A1", "unit_cost"] == pytest.approx(4.0 * 0.6)
    assumed = [e for e in report.entries if e["action"] == "assumed"]
    assert assumed and assumed[0]["rows"] == 3 and "assumption" in str(assumed[0]["reason"])


def test_unpriceable_product_and_its_rows_are_dropped_and_counted(tiny):
    tables = dict(tiny.tables)
    extra = pd.DataFrame(
        {"sku": ["C9"], "category": ["X"], "department": ["Y"], "brand": [pd.NA],
         "list_price": [np.nan], "unit_cost": [np.nan], "launch_week": pd.array([pd.NA], "Int64")}
    )  # fmt: skip
    tables["products"] = pd.concat([tiny.products, extra.astype(tiny.products.dtypes)])
    tables["stock"] = pd.concat(
        [tiny.tables["stock"], pd.DataFrame({"sku": ["C9"], "week": [2], "on_hand": [5.0]})]
    )
    cleaned, report = clean(Dataset(tables, "t", "f"))
    assert "C9" not in set(cleaned.products["sku"])
    assert "C9" not in set(cleaned.tables["stock"]["sku"])
    dropped = {(e["table"], e["rows"]) for e in report.entries if e["action"] == "dropped"}
    assert ("products", 1) in dropped and ("stock", 1) in dropped
    assert report.rows_out["products"] == 3 and report.rows_in["products"] == 4


def test_launch_week_after_first_sale_is_corrected(tiny):
    tables = dict(tiny.tables)
    tables["products"] = tiny.products.assign(launch_week=pd.array([3, 1, 2], dtype="Int64"))
    cleaned, report = clean(Dataset(tables, "t", "f"))
    assert cleaned.products.set_index("sku").loc["A1", "launch_week"] == 1
    assert any(e["action"] == "corrected" for e in report.entries)


def test_report_written_as_json_and_text(tiny, tmp_path):
    _, report = clean(tiny)
    j, t = report.write(tmp_path / "out")
    data = json.loads(j.read_text())
    assert data["fingerprint"] == "tiny0001"
    assert data["entries"] == report.entries
    assert "imputed" in t.read_text() and "list_price" in t.read_text()
    assert not list((tmp_path / "out").glob("*.tmp"))


@pytest.mark.parametrize(
    "kwargs, field",
    [({"default_margin": 1.0}, "default_margin"), ({"list_price_quantile": 1.5}, "quantile")],
)
def test_config_rejects_bad_values(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        CleaningConfig(**kwargs)
