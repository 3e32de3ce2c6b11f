"""What the API gained for the dashboard: a plan's currency and the calendar dates of its
weeks, the ROI as the report's labelled lines, and a SKU's recommendation in words without
a suffixed duplicate."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from ingest.errors import DataError


def _dated_copy(run_folder, dest, plan_key: str):
    """The run folder under another plan key, its weeks dated from 2026-03-02."""
    shutil.copytree(run_folder, dest)
    sched = pd.read_csv(dest / "schedules.csv", dtype={"sku": str, "plan_key": str})
    summary = pd.read_csv(dest / "sku_summary.csv", dtype={"sku": str, "plan_key": str})
    dates = pd.date_range("2026-03-02", periods=int(sched["week"].max()), freq="7D")
    sched["week_start"] = [dates[w - 1].strftime("%Y-%m-%d") for w in sched["week"]]
    sched["plan_key"] = plan_key
    summary["plan_key"] = plan_key
    sched.to_csv(dest / "schedules.csv", index=False)
    summary.to_csv(dest / "sku_summary.csv", index=False)
    return [d.strftime("%Y-%m-%d") for d in dates]


def test_plan_has_its_currency(api):
    plan = api.get(f"/plans/{api.plan_id}").json()
    assert plan["currency"] == "USD"
    # the synthetic world has no calendar: no dates, rather than invented ones
    assert plan["week_starts"] is None


def test_dated_run_gives_its_week_dates(api, pipeline_run, tmp_path):
    key = f"dated{api.backend}"
    dates = _dated_copy(pipeline_run.folder, tmp_path / "dated", key)
    r = api.post("/plans/import", who="lead", json={"path": str(tmp_path / "dated")})
    assert r.status_code == 201, r.text
    plan = r.json()["plan"]
    assert plan["plan_key"] == key
    assert plan["week_starts"] == dates
    assert len(dates) == plan["horizon_weeks"]
    listed = api.get("/plans", params={"limit": 50}).json()["items"]
    assert next(p for p in listed if p["id"] == plan["id"])["week_starts"] == dates


def test_two_currencies_in_one_plan_are_refused(pipeline_run, tmp_path):
    from service.library import read_run_folder

    dest = tmp_path / "mixed"
    shutil.copytree(pipeline_run.folder, dest)
    summary = pd.read_csv(dest / "sku_summary.csv", dtype={"sku": str, "plan_key": str})
    summary.loc[summary.index[0], "currency"] = "EUR"
    summary.to_csv(dest / "sku_summary.csv", index=False)
    with pytest.raises(DataError, match=r"sku_summary: column currency holds \['EUR', 'USD'\]"):
        read_run_folder(dest)


def test_overview_roi_lines_are_labelled_and_add_up(api):
    ov = api.get(f"/plans/{api.plan_id}/overview").json()
    assert ov["currency"] == "USD"
    lines = ov["roi_lines"]
    assert lines, "the fixture run's ROI comes from its MLflow run"
    by_part = {p: [r for r in lines if r["part"] == p] for p in ("line", "total", "memo")}
    (total,) = by_part["total"]
    assert total["key"] == "profit" and total["item"] == "profit vs doing nothing"
    # the report rounds the lines so that they add up to the printed total
    assert sum(r["mean"] for r in by_part["line"]) == pytest.approx(total["mean"], abs=0.011)
    for r in lines:
        assert r["ci_low"] <= r["mean"] <= r["ci_high"], r
    assert {r["unit"] for r in by_part["memo"]} == {"units", "currency"}
    roi = api.get(f"/plans/{api.plan_id}").json()["roi"]
    assert total["mean"] == roi["roi/profit"]


def test_sku_detail_has_one_recommendation(api):
    sku = api.skus_by_category[api.categories[0]][0]
    summary = api.get(f"/plans/{api.plan_id}/skus/{sku}").json()["summary"]
    assert isinstance(summary["recommendation"], str) and summary["recommendation"]
    assert not [k for k in summary if k.startswith("recommendation_")]
    assert summary["currency"] == "USD"
