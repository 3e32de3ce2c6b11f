"""Every endpoint, every role, on SQLite and on a live PostgreSQL (the ``api`` fixture),
over a real quick pipeline run: reads, what-ifs, reviews (with refused overrides), exports
and the audit log after each change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def _audit(api, object_id: str, action: str | None = None) -> list[dict]:
    params = {"object_id": object_id}
    if action:
        params["action"] = action
    r = api.get("/audit", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_health_and_version_need_no_token(api):
    r = api.client.get("/api/v1/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert r.json()["database"] == ("sqlite" if api.backend == "sqlite" else "postgresql")
    v = api.client.get("/api/v1/version").json()
    assert v["database_revision"] == v["head_revision"] is not None


def test_no_token_is_401_and_bad_token_is_401(api):
    assert api.client.get(f"/api/v1/plans/{api.plan_id}/skus").status_code == 401
    r = api.client.get("/api/v1/plans", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json() == {"detail": "invalid or revoked token"}


def test_me_names_role_and_categories(api):
    me = api.get("/me", "cm").json()
    assert me["role"] == "category_manager" and me["categories"] == [api.categories[0]]


def test_plans_list_and_detail(api, pipeline_run):
    plans = api.get("/plans", "viewer").json()
    assert plans["total"] == 1
    plan = api.get(f"/plans/{api.plan_id}", "viewer").json()
    assert plan["run_id"] and plan["data_fingerprint"]
    assert plan["metadata_source"].startswith("MLflow run")
    assert plan["horizon_weeks"] == 6
    n = sum(len(v) for v in api.skus_by_category.values())
    assert plan["n_skus"] == n and plan["by_status"].get("pending", 0) >= 1
    assert plan["rules"]["markdown_only"] is True
    assert "roi/profit" in plan["roi"]
    assert api.get("/plans/999999", "viewer").status_code == 404


def test_import_is_idempotent_and_audited(api, pipeline_run):
    r = api.post("/plans/import", "lead", json={"path": str(pipeline_run.folder)})
    assert r.status_code == 200 and r.json()["created"] is False
    assert r.json()["plan"]["id"] == api.plan_id
    assert api.get("/plans").json()["total"] == 1
    entries = _audit(api, str(api.plan_id), "plan.import")
    assert len(entries) == 1 and entries[0]["after"]["plan_key"] == r.json()["plan"]["plan_key"]
    assert api.post("/plans/import", "viewer", json={"path": "x"}).status_code == 403
    bad = api.post("/plans/import", "lead", json={"path": "/no/such/folder"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "path"]
    assert "does not exist" in bad.json()["detail"][0]["msg"]


def test_sku_list_filters_sorts_and_pages(api):
    cat = api.categories[0]
    r = api.get(f"/plans/{api.plan_id}/skus", "viewer",
                params={"category": cat, "sort": "-risk", "limit": 2})  # fmt: skip
    body = r.json()
    assert r.status_code == 200 and body["total"] == len(api.skus_by_category[cat])
    risks = [i["risk"] for i in body["items"]]
    assert len(risks) == min(2, body["total"]) and risks == sorted(risks, reverse=True)
    everything = api.get(f"/plans/{api.plan_id}/skus", "viewer", params={"sort": "sku"}).json()
    skus = [i["sku"] for i in everything["items"]]
    assert skus == sorted(skus)
    gain = api.get(f"/plans/{api.plan_id}/skus", "viewer",
                   params={"min_gain": 0, "sort": "gain"}).json()  # fmt: skip
    gains = [i["profit_vs_none"] for i in gain["items"]]
    assert all(g >= 0 for g in gains) and gains == sorted(gains)
    bad = api.get(f"/plans/{api.plan_id}/skus", "viewer", params={"sort": "price"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "sort"]
    bad = api.get(f"/plans/{api.plan_id}/skus", "viewer", params={"limit": 100000})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "limit"]


def test_category_manager_sees_only_their_categories(api):
    mine, other = api.categories[0], api.categories[1]
    listed = api.get(f"/plans/{api.plan_id}/skus", "cm").json()
    assert {i["category"] for i in listed["items"]} == {mine}
    assert (
        api.get(f"/plans/{api.plan_id}/skus", "cm", params={"category": other}).status_code == 403
    )
    other_sku = api.skus_by_category[other][0]
    assert api.get(f"/plans/{api.plan_id}/skus/{other_sku}", "cm").status_code == 403
    my_sku = api.skus_by_category[mine][0]
    assert api.get(f"/plans/{api.plan_id}/skus/{my_sku}", "cm").status_code == 200
    ov = api.get(f"/plans/{api.plan_id}/overview", "cm").json()
    assert [c["category"] for c in ov["categories"]] == [mine]


def test_overview_aggregates_match_the_sku_list(api):
    ov = api.get(f"/plans/{api.plan_id}/overview", "viewer").json()
    items = api.get(f"/plans/{api.plan_id}/skus", "viewer", params={"limit": 500}).json()["items"]
    frame = pd.DataFrame(items)
    for cat in ov["categories"]:
        rows = frame[frame["category"] == cat["category"]]
        assert cat["n_skus"] == len(rows)
        assert cat["expected_gain"] == pytest.approx(rows["profit_vs_none"].sum())
        assert cat["expected_gain_ci_low"] <= cat["expected_gain"] <= cat["expected_gain_ci_high"]
    assert sum(ov["risk_histogram"]["counts"]) == len(frame)
    assert ov["n_skus"] == len(frame)


def test_sku_detail_has_schedule_drivers_and_outcomes(api):
    sku = api.skus_by_category[api.categories[0]][0]
    d = api.get(f"/plans/{api.plan_id}/skus/{sku}", "viewer").json()
    assert d["summary"]["sku"] == sku and d["summary"]["top_drivers"]
    assert d["summary"]["rec_profit_ci_low"] <= d["summary"]["rec_profit"]
    assert len(d["recommended"]["discount"]) == 6 and len(d["expected"]["units"]) == 6
    assert d["effective_source"] in ("recommended", "override")
    assert api.get(f"/plans/{api.plan_id}/skus/NOPE", "viewer").status_code == 404


def test_alternatives_show_dp_heuristics_and_nothing_on_paired_paths(api):
    sku = api.skus_by_category[api.categories[0]][0]
    r = api.get(f"/plans/{api.plan_id}/skus/{sku}/alternatives", "viewer",
                params={"n_episodes": 50})  # fmt: skip
    assert r.status_code == 200, r.text
    alts = {a["policy"]: a for a in r.json()["alternatives"]}
    assert {"recommended", "no_markdown", "dp"} <= set(alts)
    assert len(alts) >= 5
    # the run drew the parameters (the default): QMDP is an alternative, as it was a candidate
    assert "qmdp" in alts and (alts["qmdp"]["available"] or alts["qmdp"]["note"])
    # doing nothing against itself differs by exactly zero on the same paths
    assert alts["no_markdown"]["outcomes"]["profit"]["vs_no_markdown"] == 0.0
    dp = alts["dp"]
    assert (
        dp["available"]
        and dp["outcomes"]["profit"]["mean"]
        >= (alts["no_markdown"]["outcomes"]["profit"]["mean"] - 1e-9)
        or not dp["available"]
    )


def test_what_if_one_sku_against_doing_nothing(api):
    sku = api.skus_by_category[api.categories[0]][0]
    body = {"skus": [sku], "policy": "fixed:0.3", "max_discount": 0.2, "n_episodes": 200}
    r = api.post(f"/plans/{api.plan_id}/whatif", "viewer", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert max(out["skus"][0]["discount"]) <= 0.2  # the cap, snapped to the ladder
    prof = out["skus"][0]["outcomes"]["profit"]
    assert prof["ci_low"] <= prof["mean"] <= prof["ci_high"]
    assert len(out["weekly"]["stock_left"]["mean"]) == 6
    none = {"skus": [sku], "policy": "fixed:0", "n_episodes": 50}
    zero = api.post(f"/plans/{api.plan_id}/whatif", "viewer", json=none).json()
    assert zero["skus"][0]["outcomes"]["profit"]["vs_no_markdown"] == 0.0


def test_what_if_limits_and_bad_input(api):
    sku = api.skus_by_category[api.categories[0]][0]
    r = api.post(f"/plans/{api.plan_id}/whatif", "viewer",
                 json={"skus": [sku], "n_episodes": 10**6})  # fmt: skip
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "n_episodes"]
    r = api.post(f"/plans/{api.plan_id}/whatif", "viewer",
                 json={"skus": [sku], "policy": "half price"})  # fmt: skip
    assert r.status_code == 422 and "fixed:D" in r.json()["detail"][0]["msg"]
    r = api.post(f"/plans/{api.plan_id}/whatif", "viewer", json={"skus": [sku], "bogus": 1})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "bogus"]
    other = api.skus_by_category[api.categories[1]][0]
    assert api.post(f"/plans/{api.plan_id}/whatif", "cm", json={"skus": [other]}).status_code == 403


def test_what_if_task_for_a_category_reports_progress(api):
    cat = api.categories[0]
    r = api.post(f"/plans/{api.plan_id}/whatif/tasks", "viewer",
                 json={"category": cat, "policy": "recommended", "n_episodes": 40})  # fmt: skip
    assert r.status_code == 202, r.text
    task = r.json()
    assert task["total"] == len(api.skus_by_category[cat])
    import time

    for _ in range(300):
        task = api.get(f"/whatif/tasks/{task['id']}", "viewer").json()
        if task["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    assert task["status"] == "succeeded", task
    assert task["done"] == task["total"]
    res = task["result"]
    assert {s["sku"] for s in res["skus"]} == set(api.skus_by_category[cat])
    total = res["totals"]["profit"]
    assert total["mean"] == pytest.approx(sum(s["outcomes"]["profit"]["mean"] for s in res["skus"]))
    assert api.get(f"/whatif/tasks/{task['id']}", "cm").status_code == 403


def _rules(api) -> dict:
    return api.get(f"/plans/{api.plan_id}").json()["rules"]


def test_reviews_roles_audit_and_refused_overrides(api):
    mine, other = api.categories[0], api.categories[1]
    sku = api.skus_by_category[mine][0]
    base = f"/plans/{api.plan_id}/reviews"
    # viewer may not review; a category manager may not review another category
    assert api.post(base, "viewer", json={"sku": sku, "action": "approve",
                                          "reason": "ok"}).status_code == 403  # fmt: skip
    o_sku = api.skus_by_category[other][0]
    assert api.post(base, "cm", json={"sku": o_sku, "action": "approve",
                                      "reason": "ok"}).status_code == 403  # fmt: skip
    assert api.post(base, "cm", json={"category": other, "action": "approve",
                                      "reason": "ok"}).status_code == 403  # fmt: skip
    # a reason is required
    r = api.post(base, "cm", json={"sku": sku, "action": "approve", "reason": "  "})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "reason"]
    # approve: state and audit
    r = api.post(base, "cm", json={"sku": sku, "action": "approve", "reason": "fits the plan"})
    assert r.status_code == 201 and r.json()["status"] == "approved"
    entry = _audit(api, f"{api.plan_id}/{sku}", "sku.approve")[0]
    assert entry["actor"] == f"cm-{api.backend}"
    assert entry["before"]["status"] == "pending" and entry["after"]["status"] == "approved"
    # an override that raises the price after a markdown breaks markdown_only
    rules = _rules(api)
    assert rules["markdown_only"]
    h = 6
    deep, shallow = rules["discount_levels"][2], rules["discount_levels"][1]
    bad = [deep] * 2 + [shallow] * (h - 2)
    r = api.post(base, "cm", json={"sku": sku, "action": "override", "reason": "try",
                                   "discount": bad})  # fmt: skip
    assert r.status_code == 422, r.text
    err = r.json()["detail"][0]
    assert err["type"] == "rule_violation" and err["rule"] == "markdown_only"
    assert err["week"] == 3 and err["loc"] == ["body", "discount", 2] and sku in err["msg"]
    off_ladder = [0.15] * h
    r = api.post(base, "cm", json={"sku": sku, "action": "override", "reason": "try",
                                   "discount": off_ladder})  # fmt: skip
    assert r.status_code == 422 and r.json()["detail"][0]["rule"] == "ladder"
    r = api.post(base, "cm", json={"sku": sku, "action": "override", "reason": "try",
                                   "discount": [0.1] * 3})  # fmt: skip
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "discount"]
    # a valid override is stored, becomes the effective schedule, and is audited
    good = [0.0, shallow, shallow, deep, deep, deep]
    r = api.post(base, "cm", json={"sku": sku, "action": "override", "reason": "clear faster",
                                   "discount": good})  # fmt: skip
    assert r.status_code == 201, r.text
    d = api.get(f"/plans/{api.plan_id}/skus/{sku}", "cm").json()
    assert d["effective_source"] == "override" and d["effective"]["discount"] == good
    assert d["summary"]["status"] == "overridden" and len(d["reviews"]) == 2
    entry = _audit(api, f"{api.plan_id}/{sku}", "sku.override")[0]
    assert entry["before"]["status"] == "approved" and entry["after"]["discount"] == good
    # a whole category, rejected by the pricing lead
    r = api.post(base, "lead", json={"category": other, "action": "reject", "reason": "later"})
    assert r.status_code == 201 and r.json()["n_skus"] == len(api.skus_by_category[other])
    for s in api.skus_by_category[other]:
        assert _audit(api, f"{api.plan_id}/{s}", "sku.reject")[0]["after"]["scope"] == "category"
    listed = api.get(base, "cm").json()
    assert {i["category"] for i in listed["items"]} == {mine}
    assert api.post(base, "lead", json={"sku": "NOPE", "action": "approve",
                                        "reason": "x"}).status_code == 404  # fmt: skip


def test_exports_only_approved_and_overridden(api, tmp_path):
    mine, other = api.categories[0], api.categories[1]
    base = f"/plans/{api.plan_id}"
    # make the states known: mine approved as a category, then one SKU overridden; other rejected
    api.post(f"{base}/reviews", "lead", json={"category": mine, "action": "approve",
                                              "reason": "go"})  # fmt: skip
    api.post(f"{base}/reviews", "lead", json={"category": other, "action": "reject",
                                              "reason": "no"})  # fmt: skip
    sku = api.skus_by_category[mine][0]
    rules = _rules(api)
    edited = [rules["discount_levels"][1]] * 6
    r = api.post(f"{base}/reviews", "lead", json={"sku": sku, "action": "override",
                                                  "reason": "softer", "discount": edited})  # fmt: skip
    assert r.status_code == 201, r.text
    assert api.post(f"{base}/exports", "cm", json={"format": "csv"}).status_code == 403
    assert api.post(f"{base}/exports", "cm", json={"format": "csv",
                                                   "categories": [other]}).status_code == 403  # fmt: skip
    assert api.post(f"{base}/exports", "viewer", json={}).status_code == 403
    r = api.post(f"{base}/exports", "lead", json={"format": "csv"})
    assert r.status_code == 201, r.text
    exp = r.json()
    n_mine = len(api.skus_by_category[mine])
    assert exp["n_skus"] == n_mine and exp["n_rows"] == n_mine * 6
    assert exp["by_status"] == ({"approved": n_mine - 1, "overridden": 1} if n_mine > 1
                                else {"overridden": 1})  # fmt: skip
    frame = pd.read_csv(exp["target"], dtype={"sku": str})
    assert set(frame["sku"]) == set(api.skus_by_category[mine])
    assert frame.loc[frame["sku"] == sku, "discount"].tolist() == edited
    # what the price system needs: the shelf price to the cent, in the plan's currency
    assert list(frame.columns) == ["plan_key", "sku", "category", "week", "week_start",
                                   "discount", "coupon", "list_price", "net_price", "currency",
                                   "decision"]  # fmt: skip
    expected = (frame["list_price"] * (1 - frame["discount"])).round(2)
    assert np.allclose(frame["net_price"], expected) and (frame["net_price"] > 0).all()
    got = api.client.get(f"/api/v1/exports/{exp['id']}/file", headers=api.h("lead"))
    assert got.status_code == 200 and got.content.startswith(b"plan_key,sku")
    # the SKUs are now exported; the audit log has the export
    listed = api.get(f"{base}/skus", "lead", params={"status": "exported", "limit": 500}).json()
    assert listed["total"] == n_mine
    entry = _audit(api, str(exp["id"]), "export.create")[0]
    assert entry["after"]["n_skus"] == n_mine and entry["actor"] == f"lead-{api.backend}"
    assert api.get(f"{base}/exports", "viewer").json()["total"] >= 1
    assert api.get(f"/exports/{exp['id']}", "viewer").json()["target"] == exp["target"]
    # parquet and a SQL table in the service database
    pq = api.post(f"{base}/exports", "lead", json={"format": "parquet", "categories": [mine]})
    assert pq.status_code == 201 and len(pd.read_parquet(pq.json()["target"])) == n_mine * 6
    sql = api.post(f"{base}/exports", "lead", json={"format": "sql"})
    assert sql.status_code == 201 and sql.json()["target"] == "table deadstock_price_execution"
    import sqlalchemy as sa

    engine = sa.create_engine(api.settings.db_url)
    back = pd.read_sql_table("deadstock_price_execution", engine)
    engine.dispose()
    assert len(back) == n_mine * 6 and set(back["decision"]) <= {"approved", "overridden"}
    # nothing approved in the rejected category: 409
    r = api.post(f"{base}/exports", "lead", json={"format": "csv", "categories": [other]})
    assert r.status_code == 409 and "no approved" in r.json()["detail"]


def test_runs_jobs_endpoints(api):
    assert api.post("/runs", "viewer", json={}).status_code == 403
    r = api.post("/runs", "lead", json={"quick": True, "seed": 1})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] in ("running", "queued", "succeeded", "failed")
    api.state.jobs.wait(job["id"], 60)
    done = api.get(f"/runs/{job['id']}", "viewer").json()
    # the test's run command exits 0 without output: the run succeeds, its import fails
    assert done["status"] == "succeeded" and done["exit_code"] == 0
    assert "could not be imported" in done["error"]
    assert api.get("/runs", "viewer").json()["total"] >= 1
    assert api.post(f"/runs/{job['id']}/cancel", "lead").status_code == 409
    assert api.get("/runs/424242", "viewer").status_code == 404
    acts = [e["action"] for e in _audit(api, str(job["id"]))]
    assert "job.start" in acts and "job.succeeded" in acts


def test_users_endpoints_admin_only(api):
    assert api.get("/users", "lead").status_code == 403
    r = api.post("/users", "admin", json={"name": f"new-{api.backend}", "role": "viewer"})
    assert r.status_code == 201
    token = r.json()["token"]
    hdr = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/api/v1/me", headers=hdr).json()["role"] == "viewer"
    dup = api.post("/users", "admin", json={"name": f"new-{api.backend}", "role": "viewer"})
    assert dup.status_code == 409
    bad = api.post("/users", "admin", json={"name": "x", "role": "category_manager"})
    assert bad.status_code == 422 and "categories" in bad.json()["detail"][0]["msg"]
    r = api.post(f"/users/new-{api.backend}/revoke", "admin")
    assert r.status_code == 200 and r.json()["active"] is False
    assert api.client.get("/api/v1/me", headers=hdr).status_code == 401
    assert api.post(f"/users/admin-{api.backend}/revoke", "admin").status_code == 409
    users = {u["name"]: u for u in api.get("/users", "admin").json()}
    assert users[f"new-{api.backend}"]["n_tokens"] == 0
    entry = _audit(api, f"new-{api.backend}", "user.revoke")[0]
    assert entry["before"]["active"] is True and entry["after"]["active"] is False


def test_audit_log_is_for_leads_and_append_only(api):
    assert api.get("/audit", "viewer").status_code == 403
    assert api.get("/audit", "cm").status_code == 403
    import sqlalchemy as sa

    engine = sa.create_engine(api.settings.db_url)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE audit_log SET actor = 'x'"))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM audit_log"))
    engine.dispose()
    assert api.get("/audit", "lead").json()["total"] > 0


def test_leaderboard_links_mlflow(api):
    r = api.get("/experiments/leaderboard", "viewer")
    assert r.status_code == 200
    assert r.json()["mlflow_ui_url"].startswith("http")
    assert isinstance(np.asarray(r.json()["rows"]).tolist(), list)


def test_body_limit_is_413(api):
    big = "x" * (api.settings.limits.max_body_bytes + 10)
    r = api.client.post(f"/api/v1/plans/{api.plan_id}/reviews", headers=api.h("lead"),
                        content=big, params={})  # fmt: skip
    assert r.status_code == 413 and "bytes" in r.json()["detail"]


def test_sku_list_counts_stay_true_after_reviews(api):
    # Counts of filters without a review state are kept per process (a plan's other columns
    # never change); a count by review state is taken afresh, so a review shows at once.
    cat = api.categories[-1]
    skus = api.skus_by_category[cat]
    url = f"/plans/{api.plan_id}/skus"

    def total(**params):
        r = api.get(url, "lead", params={"category": cat, "limit": 1, **params})
        assert r.status_code == 200, r.text
        return r.json()["total"]

    api.state.counts.drop_plan(api.plan_id)
    assert total() == len(skus) and total(offset=1) == len(skus)
    assert len(api.state.counts) >= 1  # the category's count is kept
    approved = total(status="approved")
    base = f"/plans/{api.plan_id}/reviews"
    r = api.post(base, "lead", json={"sku": skus[0], "action": "approve", "reason": "count"})
    assert r.status_code == 201, r.text
    assert total(status="approved") == approved + 1
    assert total() == len(skus)
    # rejected again, so the export test's counts do not see this SKU as approved
    r = api.post(base, "lead", json={"sku": skus[0], "action": "reject", "reason": "count"})
    assert r.status_code == 201, r.text
    assert total(status="approved") == approved
    assert total(status=["approved", "rejected"]) == approved + total(status="rejected")


def test_sku_list_filters_as_query_parameters(api):
    # the filters are one query model: each still validated and named in a 422
    url = f"/plans/{api.plan_id}/skus"
    r = api.get(url, "viewer", params={"min_risk": 2})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "min_risk"]
    r = api.get(url, "viewer", params={"status": "maybe"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "status"]
    items = api.get(url, "viewer", params={"min_risk": 0.5, "sort": "risk", "limit": 500}).json()
    risks = [i["risk"] for i in items["items"]]
    assert risks == sorted(risks) and all(x >= 0.5 for x in risks)
    assert items["total"] == len(risks)
    spec = api.client.get("/openapi.json").json()  # type: ignore[attr-defined]
    names = {p["name"] for p in spec["paths"]["/api/v1/plans/{plan_id}/skus"]["get"]["parameters"]}
    assert {"category", "tier", "status", "planner", "min_risk", "min_gain", "q", "sort",
            "offset", "limit"} <= names  # fmt: skip


def test_a_second_api_process_sees_tasks_reviews_and_revoked_tokens(api):
    # Two app instances on one database stand for two `deadstock serve --workers` processes:
    # each keeps its own caches, so what one writes must reach the other's next request.
    from fastapi.testclient import TestClient

    from service.api.app import build_state, create_app

    state = build_state(api.settings)
    cat = api.categories[-1]
    with TestClient(create_app(state=state)) as other:
        # a what-if task accepted by the first instance, read through the second
        r = api.post(f"/plans/{api.plan_id}/whatif/tasks", "viewer",
                     json={"category": cat, "n_episodes": 20})  # fmt: skip
        assert r.status_code == 202, r.text
        assert api.state.tasks.wait(r.json()["id"], 120) == "succeeded"
        seen = other.get(f"/api/v1/whatif/tasks/{r.json()['id']}", headers=api.h("viewer"))
        assert seen.status_code == 200 and seen.json()["done"] == seen.json()["total"] > 0
        assert seen.json()["result"]["skus"]
        # a page the second instance serves from its cache is dropped by a review on the first
        page = f"/api/v1/plans/{api.plan_id}/skus?category={cat}&sort=sku&limit=50"
        before = other.get(page, headers=api.h("viewer")).json()
        hits = state.list_cache.hits
        assert other.get(page, headers=api.h("viewer")).json() == before
        assert state.list_cache.hits == hits + 1
        item = before["items"][0]
        action, status = ("reject", "rejected") if item["status"] != "rejected" else (
            "approve", "approved")  # fmt: skip
        r = api.post(f"/plans/{api.plan_id}/reviews", "lead",
                     json={"sku": item["sku"], "action": action, "reason": "cache"})  # fmt: skip
        assert r.status_code == 201, r.text
        after = other.get(page, headers=api.h("viewer")).json()
        assert {i["sku"]: i["status"] for i in after["items"]}[item["sku"]] == status
        # a category manager's page is cached apart from everyone's (their scope)
        mine = f"/api/v1/plans/{api.plan_id}/skus?category={cat}&sort=sku&limit=50"
        cm = other.get(mine, headers=api.h("cm"))
        assert cm.status_code == (200 if cat == api.categories[0] else 403)
        # a token checked (and cached) by the second instance, revoked through the first
        name = f"short-lived-{api.backend}"
        token = api.post("/users", "admin", json={"name": name, "role": "viewer"}).json()["token"]
        mine_h = {"Authorization": f"Bearer {token}"}
        assert other.get(page, headers=mine_h).status_code == 200
        assert other.get("/api/v1/me", headers=mine_h).status_code == 200
        assert api.post(f"/users/{name}/revoke", "admin").status_code == 200
        assert other.get(page, headers=mine_h).status_code == 401
        assert other.get("/api/v1/me", headers=mine_h).status_code == 401
    state.db.dispose()
