"""Every page of the dashboard (Streamlit's AppTest) against a running API: uvicorn in a
thread on a free port, over the session's real quick pipeline run, with a pricing lead, a
viewer and a category manager. The dashboard reaches the API only over HTTP."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "service" / "dashboard" / "app.py"
RUN_S = 90
"""Seconds one script run may take in AppTest (a what-if is about a second; the machine is
shared)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveApi:
    """An API server on a free port, its users' tokens and the imported plan."""

    url: str
    tokens: dict[str, str]
    plan_id: int
    categories: list[str]
    skus_by_category: dict[str, list[str]] = field(default_factory=dict)

    def client(self, who: str = "lead"):
        from service.dashboard.client import ApiClient

        return ApiClient(self.url, self.tokens[who])


@pytest.fixture(scope="module")
def live_api(pipeline_run, tmp_path_factory) -> Iterator[LiveApi]:
    import uvicorn

    from service import library, plans
    from service.api.app import build_state, create_app
    from service.settings import Settings
    from service.users import add_user

    work = tmp_path_factory.mktemp("dash-api")
    settings = Settings(db_url=f"sqlite:///{work / 'service.db'}", runs_dir=str(work / "runs"),
                        exports_dir=str(work / "exports"),
                        run_command=(sys.executable, "-c", "import sys; sys.exit(0)"))  # fmt: skip
    state = build_state(settings)
    summary = pd.read_csv(pipeline_run.folder / "sku_summary.csv", dtype={"sku": str})
    by_cat = {k: sorted(v) for k, v in summary.groupby("category")["sku"].apply(list).items()}
    cats = sorted(by_cat, key=lambda c: (-len(by_cat[c]), c))
    tokens = {}
    with state.db.session() as s:
        _, tokens["lead"] = add_user(s, "lena", "pricing_lead")
        _, tokens["viewer"] = add_user(s, "vic", "viewer")
        _, tokens["cm"] = add_user(s, "carl", "category_manager", [cats[0]])
        plan, _ = plans.import_run(s, library.read_run_folder(pipeline_run.folder), user=None)
        plan_id = plan.id
        s.commit()
    port = free_port()
    config = uvicorn.Config(create_app(state=state), host="127.0.0.1", port=port,
                            log_level="warning", loop="asyncio")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the API did not start"
        time.sleep(0.05)
    try:
        yield LiveApi(f"http://127.0.0.1:{port}", tokens, plan_id, cats, by_cat)
    finally:
        server.should_exit = True
        thread.join(15)
        state.db.dispose()


@pytest.fixture
def dash(live_api, monkeypatch):
    """A function that opens the dashboard signed in as ``who`` on ``page``."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DEADSTOCK_API_URL", live_api.url)

    def open_as(who: str = "lead", page: str | None = None) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=RUN_S)
        at.run()
        at.text_input(key="token-input").input(live_api.tokens[who])
        _button(at, "Sign in").click().run()
        _ok(at)
        if page is not None:
            at.sidebar.radio(key="page").set_value(page).run()
            _ok(at)
        return at

    return open_as


def _button(at, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r} among {[b.label for b in at.button]}"
    return found[0]


def _ok(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _charts(at) -> int:
    return len(at.get("vega_lite_chart"))


# ------------------------------------------------------------------------------ sign-in
def test_sign_in_refuses_a_bad_token_and_shows_the_user(live_api, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DEADSTOCK_API_URL", live_api.url)
    at = AppTest.from_file(str(APP), default_timeout=RUN_S)
    at.run()
    at.text_input(key="token-input").input("ds_not-a-token")
    _button(at, "Sign in").click().run()
    assert [e.value for e in at.error] == ["The API refused this token (unknown or revoked)."]
    assert "user" not in at.session_state
    at.text_input(key="token-input").input(live_api.tokens["cm"])
    _button(at, "Sign in").click().run()
    _ok(at)
    shown = " ".join(m.value for m in at.sidebar.markdown)
    assert f"carl** · category manager ({live_api.categories[0]})" in shown


# ------------------------------------------------------------------------------ overview
def test_overview_shows_the_plan_in_numbers_and_charts(dash, live_api):
    at = dash("lead")
    ov = live_api.client().overview(live_api.plan_id)
    m = _metrics(at)
    assert m["at-risk SKUs in the plan"] == f"{ov['n_skus']:,}"
    assert m["waiting for review"] == f"{ov['pending_review']:,}"
    profit = next(r for r in ov["roi_lines"] if r["key"] == "profit")
    assert m["profit vs doing nothing"].endswith(" USD")
    assert float(m["profit vs doing nothing"][:-4].replace(",", "")) == pytest.approx(
        profit["mean"], abs=0.51
    )
    assert _charts(at) == 3  # SKUs by category and tier, risk histogram, gain with CIs
    roi, cats = at.dataframe[0].value, at.dataframe[1].value
    assert "= profit vs doing nothing" in roi[""].tolist()
    assert list(cats["category"]) == [c["category"] for c in ov["categories"]]
    assert cats["at-risk SKUs"].sum() == ov["n_skus"]
    assert all(str(v).endswith("]") for v in cats["expected gain (USD)"])


def test_a_category_manager_sees_only_their_category(dash, live_api):
    at = dash("cm")
    cats = at.dataframe[1].value
    assert list(cats["category"]) == [live_api.categories[0]]
    assert _metrics(at)["at-risk SKUs in the plan"] == str(
        len(live_api.skus_by_category[live_api.categories[0]])
    )


# ------------------------------------------------------------------------------ SKU explorer
def test_explorer_filters_opens_a_sku_and_reruns_a_what_if(dash, live_api):
    at = dash("lead", "SKU explorer")
    cat = live_api.categories[0]
    at.multiselect(key="f-category").set_value([cat]).run()
    _ok(at)
    table = at.dataframe[0].value
    assert set(table["category"]) == {cat}
    assert sorted(table["SKU"]) == live_api.skus_by_category[cat]
    assert list(table["risk"]) == sorted(table["risk"], reverse=True)  # sorted by risk

    sku = live_api.skus_by_category[cat][0]
    at.selectbox(key="sku").select(sku).run()
    _ok(at)
    detail = live_api.client().sku(live_api.plan_id, sku)["summary"]
    assert at.subheader[0].value == f"{sku} · {detail['description']}"
    drivers = [d.strip() for d in detail["top_drivers"].split(";")]
    assert any(all(d in md.value for d in drivers) for md in at.markdown)
    alternatives = next(d.value for d in at.dataframe if "plan" in d.value.columns)
    assert {"recommended", "no_markdown", "dp"} <= set(alternatives["plan"])
    nothing = alternatives.set_index("plan").loc["no_markdown", "gain vs doing nothing"]
    assert nothing.startswith("0.00 USD")  # paired: doing nothing differs from itself by 0
    n_before = _charts(at)

    at.slider(key=f"wi-max-{sku}").set_value(30)
    at.number_input(key=f"wi-exit-{sku}").set_value(3)
    at.checkbox(key=f"wi-coupons-{sku}").uncheck()
    at.select_slider(key=f"wi-episodes-{sku}").set_value(200)
    _button(at, "Simulate").click().run()
    _ok(at)
    said = [md.value for md in at.markdown if md.value.startswith("**What-if:**")]
    assert said == ["**What-if:** recommended schedule, at most 30 % off, exit after week 3, "
                    "coupons off, 200 paired paths"]  # fmt: skip
    body = {"skus": [sku], "policy": "recommended", "max_discount": 0.3, "exit_week": 3,
            "coupons": False, "n_episodes": 200}  # fmt: skip
    expected = live_api.client().whatif(live_api.plan_id, body)["skus"][0]
    assert max(expected["discount"]) <= 0.3 and len(expected["discount"]) == 3
    outcome = next(d.value for d in at.dataframe if "what-if" in d.value.columns)
    profit = outcome.set_index("outcome").loc["profit"]
    o = expected["outcomes"]["profit"]
    assert profit["what-if"] == f"{o['mean']:,.2f} USD"  # same seed, same paths, same number
    assert profit["vs doing nothing"] == f"{o['vs_no_markdown']:,.2f} USD"
    assert _charts(at) == n_before + 2  # the weekly stock and sales bands


def test_category_what_if_runs_as_a_task_with_progress(dash, live_api):
    at = dash("viewer", "SKU explorer")
    cat = live_api.categories[1]
    at.selectbox(key="cw-category").select(cat)
    at.select_slider(key="cw-episodes").set_value(100)
    _button(at, "Simulate the category").click().run()
    _ok(at)
    (bar,) = at.get("progress")
    n = len(live_api.skus_by_category[cat])
    assert bar.proto.text == f"{n:,} of {n:,} SKUs simulated"
    per_sku = next(d.value for d in at.dataframe if list(d.value.columns)[0] == "SKU"
                   and "95 % CI" in d.value.columns and len(d.value.columns) == 3)  # fmt: skip
    assert sorted(per_sku["SKU"]) == live_api.skus_by_category[cat]
    total = next(d.value for d in at.dataframe if "category total" in d.value.columns)
    assert "profit" in set(total["outcome"])


# ------------------------------------------------------------------------------ review queue
def test_review_queue_approves_and_shows_the_broken_rule(dash, live_api):
    client = live_api.client()
    cat = live_api.categories[0]
    sku = live_api.skus_by_category[cat][-1]
    at = dash("lead", "Review queue")
    pending = client.skus(live_api.plan_id, status=["pending"])["total"]
    assert _metrics(at)["waiting for review"] == f"{pending:,}"
    at.selectbox(key="rq-sku").select(sku).run()
    _ok(at)

    # an override that deepens, then lightens the discount breaks markdown_only
    edit_key = f"rq-edit-{live_api.plan_id}-{sku}"
    at.session_state[edit_key] = {
        "edited_rows": {0: {"discount (%)": 50.0}, 1: {"discount (%)": 30.0}},
        "added_rows": [],
        "deleted_rows": [],
    }
    form = f"rq-review-{live_api.plan_id}-{sku}"
    at.text_area(key=f"{form}-reason").input("cap the depth after the first week")
    _button(at, "Override with the edited schedule").click().run()
    (err,) = at.error
    assert "breaks the rule **markdown_only** in week 2" in err.value
    assert client.sku(live_api.plan_id, sku)["summary"]["status"] == "pending"

    at.text_area(key=f"{form}-reason").input("clears the stock before the season ends")
    _button(at, "Approve").click().run()
    _ok(at)
    assert any(f"SKU {sku}: approved" in s.value for s in at.success)
    state = client.sku(live_api.plan_id, sku)
    assert state["summary"]["status"] == "approved"
    assert state["reviews"][0]["reason"] == "clears the stock before the season ends"
    latest = next(d.value for d in at.dataframe if "before" in d.value.columns)
    assert latest.iloc[0]["SKU"] == sku and latest.iloc[0]["action"] == "approve"


def test_review_a_category_and_a_viewer_cannot(dash, live_api):
    cat = live_api.categories[1]
    at = dash("lead", "Review queue")
    at.selectbox(key="rq-category").select(cat).run()
    _ok(at)
    form = f"rq-cat-review-{live_api.plan_id}-{cat}"
    at.text_area(key=f"{form}-reason").input("this category is being delisted")
    _button(at, "Reject").click().run()
    _ok(at)
    n = len(live_api.skus_by_category[cat])
    assert any(f"every SKU of {cat}: rejected ({n} SKU(s))" in s.value for s in at.success)
    rows = live_api.client().skus(live_api.plan_id, category=[cat])["items"]
    assert {r["status"] for r in rows} == {"rejected"}

    viewer = dash("viewer", "Review queue")
    viewer.selectbox(key="rq-category").select(cat).run()
    assert any("can look but not review" in i.value for i in viewer.info)
    assert not [b for b in viewer.button if b.label in ("Approve", "Reject")]


# ------------------------------------------------------------------------------ experiments
def test_experiments_leaderboard_and_the_mlflow_link(dash, live_api, tmp_path, monkeypatch):
    import mlflow

    from experiments import tracking
    from experiments.compare import SUITE_VERSION

    before = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'board.db'}")
    try:
        mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'board.db'}")
        exp = mlflow.set_experiment(tracking.DEFAULT_EXPERIMENT)
        for agent, seed, share in (("ppo", 0, 99.5), ("ppo", 1, 99.7), ("fixed", 0, 91.0)):
            with mlflow.start_run(experiment_id=exp.experiment_id):
                mlflow.set_tags({"agent": agent, "seed": seed, "suite_version": SUITE_VERSION})
                mlflow.log_metrics({"eval/median_pct_of_dp": share, "eval/worst_pct_of_dp": share - 2,
                                    "eval/mean_pct_of_dp": share - 1, "eval/violations": 0})  # fmt: skip
        at = dash("viewer", "Experiments")
        _ok(at)
    finally:
        mlflow.set_tracking_uri(before)
    board = at.dataframe[0].value.set_index("agent")
    assert board.loc["ppo", "runs"] == 2 and board.loc["fixed", "runs"] == 1
    assert board.loc["ppo", "% of DP, median scenario"].startswith("99.60 % ± ")
    assert board.loc["fixed", "% of DP, median scenario"] == "91.00 %"  # one run: no CI
    assert _charts(at) == 1
    (link,) = at.get("link_button")
    assert link.proto.url == "http://127.0.0.1:5000"


def test_lead_page_exports_what_was_approved(dash, live_api):
    viewer = dash("viewer", "Exports and runs")
    assert any("for pricing leads and admins" in i.value for i in viewer.info)
    client = live_api.client()
    cat = live_api.categories[0]
    sku = live_api.skus_by_category[cat][0]
    client.review(live_api.plan_id, action="approve", reason="ok", sku=sku)
    at = dash("lead", "Exports and runs")
    _button(at, "Export the approved schedules").click().run()
    _ok(at)
    (done,) = at.success
    assert done.value.startswith("export ")
    exports = client.exports(live_api.plan_id)["items"]
    assert exports[0]["n_skus"] >= 1
    data = client.export_file(exports[0]["id"]).decode()
    assert f",{sku}," in data
