"""Category-manager alerts: one readable Markdown report per category.

Each report lists the category's at-risk SKUs, why they are at risk (the top drivers of the
score), what is recommended (the discount schedule in words) and what it is worth (expected
profit against doing nothing, with its CI, and the dead stock avoided). Every figure comes
from the simulated ``sku_summary`` and ``schedules`` tables, never from a claim.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ingest.io import write_text_atomic


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


def alerts_table(summary: pd.DataFrame, schedules: pd.DataFrame) -> pd.DataFrame:
    """One row per at-risk SKU: category, risk, why, what is recommended, what it is worth."""
    desc = {
        sku: describe_schedule(g) for sku, g in schedules.groupby("sku", sort=False, observed=True)
    }
    out = pd.DataFrame(
        {
            "plan_key": summary["plan_key"],
            "category": summary["category"],
            "sku": summary["sku"],
            "risk": summary["risk"],
            "tier": summary["tier"],
            "why": summary["top_drivers"],
            "recommendation": summary["sku"].map(desc).fillna(""),
            "expected_profit_vs_no_markdown": summary["profit_vs_none"],
            "ci_low": summary["profit_vs_none_ci_low"],
            "ci_high": summary["profit_vs_none_ci_high"],
            "dead_units_avoided": -summary["leftover_units_vs_none"],
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
    n_episodes: int,
    ci_level: float,
) -> str:
    """The Markdown report for one category manager (``rows``: the category's alert rows)."""
    worth = rows["expected_profit_vs_no_markdown"].sum()
    avoided = rows["dead_units_avoided"].sum()
    lines = [
        f"# Dead-stock alert: {category}",
        "",
        f"**{len(rows)} SKU(s) at risk.** Following the recommended {horizon_weeks}-week plans is "
        f"expected to add **{worth:,.2f}** profit against doing nothing and to avoid "
        f"**{avoided:,.0f}** units of dead stock at the exit week.",
        "",
        f"Expected values are means over {n_episodes} simulated episodes per SKU; brackets are "
        f"{ci_level:.0%} CIs. Stock assumption: {stock_assumption}.",
        "",
        "| SKU | risk | why (top drivers) | recommended | profit vs doing nothing "
        "| dead units avoided | margin given away |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows.to_dict("records"):
        why = str(r["why"]).replace("|", "/") or "-"
        lines.append(
            f"| {r['sku']} | {float(r['risk']):.2f} ({r['tier']}) | {why} | {r['recommendation']} "
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
    n_episodes: int,
    ci_level: float,
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
            n_episodes=n_episodes,
            ci_level=ci_level,
        )
        written[str(category)] = write_text_atomic(target, text)
    if folder.exists():
        keep = {p.name for p in written.values()}
        for stale in folder.glob("*.md"):
            if stale.name not in keep:
                stale.unlink()
    return written
