"""Experiments: the agents' leaderboard across MLflow runs (share of the exact DP optimum
each reaches, with CIs across runs) and a link to the MLflow UI."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from service.dashboard import charts, fmt
from service.dashboard.client import ApiError
from service.dashboard.session import Ctx, show_error

SHARES = (
    ("median_pct_of_dp", "median scenario"),
    ("worst_pct_of_dp", "worst scenario"),
    ("mean_pct_of_dp", "mean over scenarios"),
)
"""The leaderboard's columns: % of the DP optimum, per kind of scenario."""


def _pm(mean: Any, half: Any) -> str:
    if not isinstance(mean, int | float) or not math.isfinite(mean):
        return fmt.MISSING
    ok = isinstance(half, int | float) and math.isfinite(half)
    return f"{mean:.2f} %" + (f" ± {half:.2f}" if ok else "")


def board_table(rows: list[dict]) -> pd.DataFrame:
    """The leaderboard as people read it: % of the DP optimum ± the CI's half-width."""
    out = []
    for r in rows:
        row: dict[str, Any] = {"agent": r.get("agent"), "runs": r.get("n_runs")}
        for key, label in SHARES:
            row[f"% of DP, {label}"] = _pm(r.get(key), r.get(f"{key}_ci"))
        row["rule violations"] = fmt.number(r.get("violations"))
        out.append(row)
    return pd.DataFrame(out)


def board_chart_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [{"agent": r["agent"], "share": r.get("median_pct_of_dp"),
          "half": r.get("median_pct_of_dp_ci")} for r in rows]
    )  # fmt: skip
    frame = frame.dropna(subset=["share"])
    half = frame["half"].fillna(0.0)
    return frame.assign(low=frame["share"] - half, high=frame["share"] + half)


def render(ctx: Ctx) -> None:
    try:
        board = ctx.client.leaderboard()
    except ApiError as err:
        show_error(err, "The leaderboard")
        return
    url = board.get("mlflow_ui_url")
    c = st.columns([3, 1])
    c[0].caption(f"{board['n_runs']:,} MLflow run(s) with evaluation metrics. Each agent's "
                 "profit as a share of the exact DP optimum on the evaluation suite's "
                 "scenarios; ± is the 95 % CI across runs.")  # fmt: skip
    if url:
        c[1].link_button("Open the MLflow UI", url)
    if board.get("error"):
        st.warning(board["error"])
    rows = board.get("rows") or []
    if not rows:
        st.info("No evaluation runs yet: `deadstock evaluate` or `deadstock train` writes them.")
        return
    frame = board_chart_frame(rows)
    if not frame.empty:
        st.altair_chart(
            charts.bars_with_ci(frame, "agent", "share", "low", "high",
                                "Median scenario: % of the DP optimum (95 % CI across runs)",
                                "% of DP"),
            width="stretch",
        )  # fmt: skip
    st.dataframe(board_table(rows), hide_index=True, width="stretch")
