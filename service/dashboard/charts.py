"""The dashboard's charts (Altair, drawn by Streamlit as Vega-Lite): built from plain
frames, so each can be checked without a browser."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

CHART_HEIGHT = 260
RECOMMENDED = "recommended"


def bars_with_ci(
    frame: pd.DataFrame, x: str, y: str, lo: str, hi: str, title: str, y_title: str
) -> alt.LayerChart:
    """Bars of ``y`` by ``x`` with CI whiskers from ``lo`` to ``hi``."""
    base = alt.Chart(frame).encode(x=alt.X(f"{x}:N", title=None, sort=None))
    bars = base.mark_bar(color="#4c78a8").encode(
        y=alt.Y(f"{y}:Q", title=y_title),
        tooltip=[alt.Tooltip(f"{x}:N"), alt.Tooltip(f"{y}:Q", format=",.2f"),
                 alt.Tooltip(f"{lo}:Q", format=",.2f"), alt.Tooltip(f"{hi}:Q", format=",.2f")],
    )  # fmt: skip
    whiskers = base.mark_rule(color="#333").encode(y=f"{lo}:Q", y2=f"{hi}:Q")
    return (bars + whiskers).properties(title=title, height=CHART_HEIGHT)


def stacked_counts(
    frame: pd.DataFrame, x: str, color: str, n: str, title: str, order: Sequence[str] | None = None
) -> alt.Chart:
    """Counts of ``n`` by ``x`` (in ``order``), stacked by ``color`` (e.g. at-risk SKUs by
    category and tier)."""
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(f"{x}:N", title=None, sort=list(order) if order is not None else "ascending"),
            y=alt.Y(f"{n}:Q", title="SKUs"),
            color=alt.Color(f"{color}:N", title=color),
            tooltip=[f"{x}:N", f"{color}:N", f"{n}:Q"],
        )
        .properties(title=title, height=CHART_HEIGHT)
    )


def histogram(edges: Sequence[float], counts: Sequence[int], title: str) -> alt.Chart:
    """A histogram from the API's bin edges and counts (risk 0..1 as percentages)."""
    frame = pd.DataFrame(
        {
            "from": [100.0 * e for e in edges[:-1]],
            "to": [100.0 * e for e in edges[1:]],
            "SKUs": list(counts),
        }
    )
    return (
        alt.Chart(frame)
        .mark_bar(color="#e45756")
        .encode(
            x=alt.X(
                "from:Q",
                bin="binned",
                title="risk of going dead (%)",
                scale=alt.Scale(domain=[0, 100]),
            ),
            x2="to:Q",
            y=alt.Y("SKUs:Q"),
            tooltip=["from:Q", "to:Q", "SKUs:Q"],
        )  # fmt: skip
        .properties(title=title, height=CHART_HEIGHT)
    )


def schedules(frame: pd.DataFrame, title: str) -> alt.Chart:
    """Weekly discount depth per plan (columns ``week``, ``plan``, ``discount`` in %), as
    steps; the recommended plan drawn thicker."""
    order = list(dict.fromkeys(frame["plan"]))
    return (
        alt.Chart(frame)
        .mark_line(interpolate="step-after", point=True)
        .encode(
            x=alt.X("week:N", sort=None, title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("discount:Q", title="discount (%)", scale=alt.Scale(domain=[0, 100])),
            color=alt.Color("plan:N", sort=order, title="plan"),
            strokeWidth=alt.condition(alt.datum.plan == RECOMMENDED, alt.value(4), alt.value(1.5)),
            tooltip=["plan:N", "week:N", alt.Tooltip("discount:Q", format=".0f")],
        )
        .properties(title=title, height=CHART_HEIGHT)
    )


def band(frame: pd.DataFrame, y_title: str, title: str) -> alt.LayerChart:
    """A weekly mean line inside its 5-95 % band (columns ``week``, ``mean``, ``p05``,
    ``p95``)."""
    base = alt.Chart(frame).encode(
        x=alt.X("week:N", sort=None, title=None, axis=alt.Axis(labelAngle=0))
    )
    area = base.mark_area(opacity=0.25, color="#4c78a8").encode(
        y=alt.Y("p05:Q", title=y_title), y2="p95:Q"
    )
    line = base.mark_line(point=True, color="#4c78a8").encode(
        y="mean:Q", tooltip=["week:N", alt.Tooltip("mean:Q", format=",.1f"),
                             alt.Tooltip("p05:Q", format=",.1f"),
                             alt.Tooltip("p95:Q", format=",.1f")],
    )  # fmt: skip
    return (area + line).properties(title=title, height=CHART_HEIGHT)
