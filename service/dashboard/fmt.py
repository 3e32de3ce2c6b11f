"""How the dashboard writes numbers for people: money with its currency, shares as
percentages, CIs in brackets, weeks with their calendar dates, SKUs with their product
description. Plain functions of plain values (tested without Streamlit)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

MISSING = "–"
"""Shown where the API has no value (a SKU the risk model did not score)."""

BIG_MONEY = 1000.0
"""Amounts at least this large are shown without cents: the cents are noise next to the
CI's width."""


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def number(x: Any, decimals: int = 0) -> str:
    """``1234.5`` -> ``"1,235"``; missing -> ``"–"``."""
    return f"{x:,.{decimals}f}" if _finite(x) else MISSING


def money(x: Any, currency: str | None = None, *, decimals: int | None = None) -> str:
    """``-1234.5, "USD"`` -> ``"-1,235 USD"``; small amounts keep their cents."""
    if not _finite(x):
        return MISSING
    if decimals is None:
        decimals = 0 if abs(x) >= BIG_MONEY else 2
    text = f"{x:,.{decimals}f}"
    return f"{text} {currency}" if currency else text


def ci(lo: Any, hi: Any, decimals: int = 0) -> str:
    """``"[1,200, 1,300]"`` (both ends missing -> empty)."""
    if not _finite(lo) and not _finite(hi):
        return ""
    return f"[{number(lo, decimals)}, {number(hi, decimals)}]"


def money_ci(mean: Any, lo: Any, hi: Any, currency: str | None = None) -> str:
    """``"2,762 USD [2,723, 2,801]"``: the mean with its currency, then its CI."""
    if not _finite(mean):
        return MISSING
    decimals = 0 if abs(mean) >= BIG_MONEY else 2
    bounds = ci(lo, hi, decimals)
    return f"{money(mean, currency, decimals=decimals)} {bounds}".rstrip()


def pct(x: Any, decimals: int = 0) -> str:
    """A share as a percentage: ``0.305`` -> ``"31 %"``."""
    return f"{100.0 * x:.{decimals}f} %" if _finite(x) else MISSING


def sku_label(sku: str, description: Any = None) -> str:
    """``"1007604 · SOFT DRINKS 12/18&15PK CAN CAR"`` (the id alone without a description)."""
    text = str(description).strip() if description is not None else ""
    if not text or text.lower() == "nan" or text == str(sku):
        return str(sku)
    return f"{sku} · {text}"


def week_dates(week_starts: Sequence[str] | None, n_weeks: int) -> list[str]:
    """The start date of plan weeks 1..n (empty text where the data have no calendar)."""
    starts = list(week_starts or [])
    return [starts[w] if w < len(starts) and starts[w] else "" for w in range(n_weeks)]


def week_label(week: int, week_starts: Sequence[str] | None) -> str:
    """``"week 3 (2026-03-16)"``, or ``"week 3"`` without a calendar."""
    dates = week_dates(week_starts, week)
    date = dates[week - 1] if week >= 1 else ""
    return f"week {week} ({date})" if date else f"week {week}"


def drivers(text: Any) -> list[str]:
    """The risk model's top drivers, one per line (the export joins them with ``;``)."""
    if not isinstance(text, str) or not text.strip():
        return []
    return [part.strip() for part in text.split(";") if part.strip()]


def words(key: str) -> str:
    """``"rec_sell_through"`` -> ``"rec sell through"`` (a readable column heading)."""
    return key.replace("_", " ")
