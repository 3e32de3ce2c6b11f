"""Category-manager alerts: one readable Markdown report per category.

Each report lists the category's at-risk SKUs, what they are, why they are at risk (the top
drivers of the score, in words), what is recommended (the discount schedule in words, or none
where no price sells), what to check (net prices below unit cost) and what it is worth
(expected profit against doing nothing, with its CI, and the dead stock avoided). Every figure comes
from the simulated ``sku_summary`` and ``schedules`` tables, never from a claim.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ingest.io import write_text_atomic
from planning.diagnostics import NO_DEMAND_NOTE

LOW_RISK = 0.3
"""Risk below which a SKU sold below cost is called out (the markdown is least justified)."""


def describe_schedule(weeks: pd.DataFrame) -> str:
    """A schedule in words: runs of equal depth, e.g. ``"wk 1-3 full price; wk 4-12 30 % off
    (+10 % coupon wk 5)"``.

    Parameters
    ----------
    weeks : DataFrame
        One SKU's rows of the ``schedules`` table (``week``, ``discount``, ``coupon``).
    """
    w = weeks.sort_values("week")
    wk = w["week"].to_numpy(dtype=int)
    d = np.round(w["discount"].to_numpy(dtype=float), 4)
    c = np.round(w["coupon"].to_numpy(dtype=float), 4)
    parts: list[str] = []
    start = 0
    for i in range(1, len(d) + 1):
        if i == len(d) or d[i] != d[start]:
            span = f"wk {wk[start]}" if i - 1 == start else f"wk {wk[start]}-{wk[i - 1]}"
            what = "full price" if d[start] == 0 else f"{d[start]:.0%} off"
            parts.append(f"{span} {what}")
            start = i
    coupons = [f"{cv:.0%} coupon wk {int(k)}" for k, cv in zip(wk, c, strict=True) if cv > 0]
    text = "; ".join(parts)
    if coupons:
        shown = coupons[:4] + (["..."] if len(coupons) > 4 else [])
        text += " (+" + ", ".join(shown) + ")"
    return text


def slug(name: str) -> str:
    """A file-name-safe version of a category name."""
    s = re.sub(r"[^A-Za-z0-9]+", "-", str(name)).strip("-").lower()
    return s or "uncategorised"


def flags_text(summary: pd.DataFrame) -> pd.Series:
    """What a category manager must check per SKU: no demand at any price, or weeks whose
    net price is below the unit cost (with the risk, since a low-risk SKU sold below cost is
    the first thing to question)."""
    out = []
    for r in summary.to_dict("records"):
        parts = []
        if bool(r.get("no_demand_at_any_price", False)):
            parts.append(NO_DEMAND_NOTE)
        weeks = int(r.get("weeks_below_cost", 0) or 0)
        if weeks:
            parts.append(
                f"net price {float(r['min_net_price']):,.2f} below unit cost "
                f"{float(r['unit_cost']):,.2f} in {weeks} week(s) from week "
                f"{int(r['first_week_below_cost'])}"
            )
        out.append("; ".join(parts))
    return pd.Series(out, index=summary.index, dtype=object)


def alerts_table(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per at-risk SKU: category, what it is, risk, why, what is recommended, what to
    check, and what it is worth (from the ``sku_summary`` table)."""
    out = pd.DataFrame(
        {
            "plan_key": summary["plan_key"],
            "category": summary["category"],
            "sku": summary["sku"],
            "description": summary.get("description", pd.Series("", index=summary.index)),
            "risk": summary["risk"],
            "tier": summary["tier"],
            "why": summary["top_drivers"],
            "recommendation": summary["recommendation"],
            "check": flags_text(summary),
            "currency": summary.get("currency", pd.Series("", index=summary.index)),
            "expected_profit_vs_no_markdown": summary["profit_vs_none"],
            "ci_low": summary["profit_vs_none_ci_low"],
            "ci_high": summary["profit_vs_none_ci_high"],
            "dead_units_avoided": -summary["leftover_units_vs_none"] + 0.0,
            "margin_given_away": summary["rec_margin_given_away"],
        }
    )
    return out.sort_values(["category", "risk"], ascending=[True, False]).reset_index(drop=True)


def category_report(
    category: str,
    rows: pd.DataFrame,
    *,
    stock_assumption: str,
    horizon_weeks: int,
    simulation: str,
    low_risk: float = LOW_RISK,
) -> str:
    """The Markdown report for one category manager (``rows``: the category's alert rows).

    ``simulation`` states how the outcomes were simulated
    (:meth:`planning.outcomes.SimulationSettings.describe`).
    """
    worth = rows["expected_profit_vs_no_markdown"].sum()
    avoided = rows["dead_units_avoided"].sum()
    currency = str(rows["currency"].iloc[0]) if "currency" in rows and len(rows) else ""
    below = rows["check"].str.contains("below unit cost", regex=False)
    no_demand = rows["check"].str.contains(NO_DEMAND_NOTE, regex=False)
    lines = [
        f"# Dead-stock alert: {category}",
        "",
        f"**{len(rows)} SKU(s) at risk.** Following the recommended {horizon_weeks}-week plans is "
        f"expected to add **{worth:,.2f} {currency}** profit against doing nothing and to avoid "
        f"**{avoided:,.0f}** units of dead stock at the exit week.",
        "",
    ]
    if below.any():
        low = below & (rows["risk"].astype(float) < low_risk)
        lines += [
            f"**Check: {int(below.sum())} SKU(s) would sell below unit cost** in some weeks"
            + (f", {int(low.sum())} of them with risk below {low_risk:g}" if low.any() else "")
            + ". The business rule `margin_floor` forbids such prices when it is set (see "
            "docs/pipeline.md).",
            "",
        ]
    if no_demand.any():
        lines += [
            f"**{int(no_demand.sum())} SKU(s) have no demand at any price:** no markdown is "
            "recommended for them; consider another channel (a liquidator, a return to the "
            "supplier, a donation).",
            "",
        ]
    lines += [
        f"Expected values: {simulation}. Brackets are CIs of the paired difference against "
        f"doing nothing. Stock assumption: {stock_assumption}.",
        "",
        f"| SKU | product | risk | why (top drivers) | recommended | check | profit vs doing "
        f"nothing ({currency}) | dead units avoided | margin given away ({currency}) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows.to_dict("records"):
        why = str(r["why"]).replace("|", "/") or "-"
        what = str(r.get("description", "")).replace("|", "/") or "-"
        check = str(r["check"]).replace("|", "/") or "-"
        lines.append(
            f"| {r['sku']} | {what} | {float(r['risk']):.2f} ({r['tier']}) | {why} "
            f"| {r['recommendation']} | {check} "
            f"| {r['expected_profit_vs_no_markdown']:+,.2f} [{r['ci_low']:+,.2f}, "
            f"{r['ci_high']:+,.2f}] | {r['dead_units_avoided']:,.1f} | "
            f"{r['margin_given_away']:,.2f} |"
        )
    lines += [
        "",
        "A negative profit difference means the simulation expects the markdown to cost more "
        "margin than it saves; keep such SKUs at full price or review their stock.",
        "",
    ]
    return "\n".join(lines)


def write_alerts(
    alerts: pd.DataFrame,
    out_dir: str | Path,
    *,
    stock_assumption: str,
    horizon_weeks: int,
    simulation: str,
) -> dict[str, Path]:
    """Write one Markdown report per category under ``out_dir/alerts``; returns their paths.

    Reports of categories that no longer have at-risk SKUs are removed, so the folder always
    matches the ``alerts`` table.
    """
    folder = Path(out_dir) / "alerts"
    written: dict[str, Path] = {}
    for category, rows in alerts.groupby("category", sort=True, observed=True):
        target = folder / f"{slug(str(category))}.md"
        text = category_report(
            str(category),
            rows,
            stock_assumption=stock_assumption,
            horizon_weeks=horizon_weeks,
            simulation=simulation,
        )
        written[str(category)] = write_text_atomic(target, text)
    if folder.exists():
        keep = {p.name for p in written.values()}
        for stale in folder.glob("*.md"):
            if stale.name not in keep:
                stale.unlink()
    return written
