"""The dashboard in a real browser: headless Chromium through Selenium, against the API and
the dashboard started by the CLI (``deadstock users add``, ``deadstock serve --import``,
``deadstock dashboard``) on free ports over the session's quick pipeline run. It signs in
with a token, opens a SKU, switches the what-if's coupons off and simulates, approves the
SKU, and checks that the database recorded the review.

The walk-through is ``benchmarks/screenshot_dashboard.py``'s, which makes the screenshots in
docs/img; here they go to a temporary folder."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shots():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        yield importlib.import_module("screenshot_dashboard")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_browser_opens_a_sku_runs_a_what_if_and_approves_it(shots, pipeline_run, tmp_path):
    paths = shots.chromium()
    if paths is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs "
                    "them: apt-get install chromium chromium-driver)")  # fmt: skip
    with shots.running_stack(pipeline_run.folder, tmp_path) as stack:
        sku = shots.top_sku(stack)
        with shots.browser(paths) as driver:
            images = shots.walkthrough(driver, stack, sku, tmp_path / "shots")
        h = {"Authorization": f"Bearer {stack.token}"}
        plan = httpx.get(f"{stack.api_url}/api/v1/plans", headers=h).json()["items"][0]
        detail = httpx.get(f"{stack.api_url}/api/v1/plans/{plan['id']}/skus/{sku}",
                           headers=h).json()  # fmt: skip
    assert detail["summary"]["status"] == "approved"

    # the review is in the database, with its reason, its user and an audit entry
    engine = sa.create_engine(stack.db_url)
    try:
        with engine.connect() as conn:
            reviews = conn.execute(
                sa.text("SELECT r.action, r.reason, r.scope, r.status_before, u.name FROM "
                        "reviews r JOIN users u ON u.id = r.user_id WHERE r.sku = :sku"),
                {"sku": sku},
            ).all()  # fmt: skip
            audit = conn.execute(
                sa.text("SELECT action, actor FROM audit_log WHERE object_id = :oid"),
                {"oid": f"{plan['id']}/{sku}"},
            ).all()
            status = conn.execute(
                sa.text("SELECT status FROM sku_plans WHERE plan_id = :p AND sku = :sku"),
                {"p": plan["id"], "sku": sku},
            ).scalar_one()
    finally:
        engine.dispose()
    assert reviews == [("approve", shots.REASON, "sku", "pending", "lena")]
    assert audit == [("sku.approve", "lena")]
    assert status == "approved"

    assert [p.name for p in images] == list(shots.SCREENSHOTS)
    for image in images:
        data = image.read_bytes()
        assert data.startswith(PNG) and len(data) > 20_000, image
