"""Exports and runs (pricing lead, admin): send the approved schedules to the
price-execution export and download it, start or cancel a pipeline run, read the audit
log."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

import pandas as pd
import streamlit as st

from service.dashboard.client import ApiError
from service.dashboard.session import Ctx, forget, show_error

FORMATS = ("csv", "parquet", "sql")
ACTIVE_RUN = ("queued", "running")


def _when(text: str | None) -> str:
    return (text or "")[:19].replace("T", " ")


def exports(ctx: Ctx) -> None:
    plan = ctx.plan
    approved = plan.raw.get("by_status", {})
    ready = approved.get("approved", 0) + approved.get("overridden", 0)
    st.caption(f"Only approved and overridden schedules are exported ({ready:,} SKU(s) of this "
               "plan when the page was opened).")  # fmt: skip
    with st.form("export"):
        c = st.columns([1, 3])
        fmt_ = c[0].selectbox("format", FORMATS, key="ex-format")
        go = c[1].form_submit_button("Export the approved schedules", type="primary")
    if go:
        try:
            e = ctx.client.export(plan.id, fmt_)
            forget()
            st.success(f"export {e['id']}: {e['n_skus']:,} SKU(s), {e['n_rows']:,} rows -> "
                       f"{e['target']}")  # fmt: skip
        except ApiError as err:
            show_error(err, "The export")
    try:
        page = ctx.client.exports(plan.id)
    except ApiError as err:
        show_error(err, "The exports")
        return
    if not page["items"]:
        return
    st.dataframe(
        pd.DataFrame([{"export": e["id"], "when": _when(e["created_at"]), "format": e["format"],
                       "SKUs": e["n_skus"], "rows": e["n_rows"], "by decision": e["by_status"],
                       "where": e["target"], "user": e["user_id"]} for e in page["items"]]),
        hide_index=True, width="stretch",
    )  # fmt: skip
    latest = next((e for e in page["items"] if e["format"] != "sql"), None)
    if latest is not None:
        try:
            data = ctx.client.export_file(latest["id"])
            st.download_button(f"Download export {latest['id']}", data,
                               file_name=PurePath(latest["target"]).name)  # fmt: skip
        except ApiError as err:
            show_error(err, "The download")


def runs(ctx: Ctx) -> None:
    with st.form("run"):
        c = st.columns([2, 2, 1, 1])
        data = c[0].text_input("data (empty: the configured source)", key="run-data")
        config = c[1].text_input("config file (optional)", key="run-config")
        quick = c[2].checkbox("quick", key="run-quick")
        go = c[3].form_submit_button("Start a run")
    if go:
        body: dict[str, Any] = {"quick": bool(quick)}
        body.update({k: v.strip() for k, v in (("data", data), ("config_path", config))
                     if v.strip()})  # fmt: skip
        try:
            job = ctx.client.start_run(body)
            st.success(f"run {job['id']} started in {job['out_dir']}")
        except ApiError as err:
            show_error(err, "The run")
    try:
        page = ctx.client.runs()
    except ApiError as err:
        show_error(err, "The runs")
        return
    for job in page["items"]:
        line = (f"run {job['id']} · **{job['status']}** · started {_when(job['started_at'])}"
                + (f" · plan {job['plan_id']}" if job.get("plan_id") else ""))  # fmt: skip
        st.markdown(line)
        if job["status"] in ACTIVE_RUN:
            if st.button(f"Cancel run {job['id']}", key=f"cancel-run-{job['id']}"):
                try:
                    ctx.client.cancel_run(job["id"])
                except ApiError as err:
                    show_error(err, "The cancel")
            st.code(job.get("log_tail") or "", language=None)


def audit(ctx: Ctx) -> None:
    try:
        page = ctx.client.audit(limit=50)
    except ApiError as err:
        show_error(err, "The audit log")
        return
    st.caption(f"{page['total']:,} entries, newest first")
    st.dataframe(
        pd.DataFrame([{"when": _when(a["at"]), "who": a["actor"], "action": a["action"],
                       "object": f"{a['object_type']} {a['object_id']}",
                       "after": a["after"]} for a in page["items"]]),
        hide_index=True, width="stretch",
    )  # fmt: skip


def render(ctx: Ctx) -> None:
    if not ctx.is_lead:
        st.info("Exports, runs and the audit log are for pricing leads and admins.")
        return
    ex, rn, au = st.tabs(["Export", "Pipeline runs", "Audit log"])
    with ex:
        exports(ctx)
    with rn:
        runs(ctx)
    with au:
        audit(ctx)
