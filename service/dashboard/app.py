"""The pricing team's dashboard (Streamlit): ``deadstock dashboard`` runs this script.

Sign in with an API token; pick a plan version; the pages are the overview, the SKU
explorer, the review queue, the experiments leaderboard, and for pricing leads the exports,
runs and audit log. Every number comes from the REST API at ``$DEADSTOCK_API_URL``
(default ``http://127.0.0.1:8000``): the dashboard never opens the database.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import streamlit as st

from service.dashboard import (
    page_experiments,
    page_explorer,
    page_lead,
    page_overview,
    page_review,
)
from service.dashboard.client import DEFAULT_API_URL, ApiClient, ApiError
from service.dashboard.session import Ctx, Plan, forget, show_error

API_URL_ENV = "DEADSTOCK_API_URL"
TITLE = "deadstock · pricing workbench"
PAGES: dict[str, Callable[[Ctx], None]] = {
    "Overview": page_overview.render,
    "SKU explorer": page_explorer.render,
    "Review queue": page_review.render,
    "Experiments": page_experiments.render,
    "Exports and runs": page_lead.render,
}
ROLE_NAMES = {
    "viewer": "viewer",
    "category_manager": "category manager",
    "pricing_lead": "pricing lead",
    "admin": "admin",
}


def _client(api_url: str, token: str) -> ApiClient:
    """This session's client (one connection pool per token)."""
    held = st.session_state.get("_client")
    if held is None or held[0] != (api_url, token):
        if held is not None:
            held[1].close()
        st.session_state["_client"] = ((api_url, token), ApiClient(api_url, token))
    return st.session_state["_client"][1]


def _sign_out() -> None:
    for key in ("token", "user", "_client", "plan_id"):
        st.session_state.pop(key, None)
    forget()


def sign_in(api_url: str) -> tuple[ApiClient, dict] | None:
    """The signed-in user and their client, or the sign-in form."""
    token = st.session_state.get("token")
    if token and "user" in st.session_state:
        return _client(api_url, token), st.session_state["user"]
    st.title(TITLE)
    st.caption(f"API: {api_url}")
    with st.form("sign-in"):
        entered = st.text_input("API token", type="password", key="token-input",
                                help="from `deadstock users add NAME --role ROLE`")  # fmt: skip
        go = st.form_submit_button("Sign in", type="primary")
    if go and entered.strip():
        client = _client(api_url, entered.strip())
        try:
            user = client.me()
        except ApiError as err:
            if err.status == 401:
                st.error("The API refused this token (unknown or revoked).")
            else:
                show_error(err, "Signing in")
            return None
        st.session_state["token"] = entered.strip()
        st.session_state["user"] = user
        st.rerun()
    return None


def choose_plan(client: ApiClient) -> Plan | None:
    try:
        plans = client.plans(limit=20)
    except ApiError as err:
        show_error(err, "The plan list")
        return None
    if not plans:
        st.info("No plan yet: run `deadstock run`, then `deadstock serve --import outputs/run` "
                "(or start a run on the 'Exports and runs' page).")  # fmt: skip
        return None
    by_id = {int(p["id"]): p for p in plans}

    def label(pid: int) -> str:
        p = by_id[pid]
        return f"plan {pid} · {p['imported_at'][:10]} · {p['n_skus']:,} SKUs"

    pid = st.sidebar.selectbox("plan version", list(by_id), format_func=label, key="plan_id")
    return Plan.from_api(by_id[int(pid)])


def main() -> None:
    st.set_page_config(page_title=TITLE, layout="wide")
    api_url = os.environ.get(API_URL_ENV, DEFAULT_API_URL)
    signed = sign_in(api_url)
    if signed is None:
        return
    client, user = signed
    role = ROLE_NAMES.get(user["role"], user["role"])
    cats = f" ({', '.join(user['categories'])})" if user.get("categories") else ""
    st.sidebar.markdown(f"**{user['name']}** · {role}{cats}")
    st.sidebar.button("Sign out", on_click=_sign_out, key="sign-out")
    page = st.sidebar.radio("page", list(PAGES), key="page")
    plan = choose_plan(client)
    if plan is None:
        return
    st.header(page)
    PAGES[page](Ctx(client=client, user=user, plan=plan))


if __name__ == "__main__":
    main()
